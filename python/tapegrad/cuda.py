"""tapegrad.cuda: there is no GPU backend (see tapegrad/_device.py).

These answer the questions a PyTorch script asks before it decides where to
run, so that it falls back to the CPU unchanged.
"""


def is_available():
    return False


def device_count():
    return 0


def manual_seed(seed):
    """A no-op, as torch.cuda.manual_seed is without a GPU (seed tapegrad.manual_seed)."""


def manual_seed_all(seed):
    """A no-op, as torch.cuda.manual_seed_all is without a GPU."""
