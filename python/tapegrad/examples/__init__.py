"""Runnable examples: python -m tapegrad.examples.<name>."""
