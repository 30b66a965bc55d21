import os
import sys

import numpy as np
import pytest

# test_ops.py imports the spec table as a plain module.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seeded_and_grad_mode_restored():
    """Every test starts from a fixed seed with grad mode on, and must leave it on."""
    import tapegrad as tg

    tg.manual_seed(0)
    np.random.seed(0)
    yield
    enabled = tg.is_grad_enabled()
    tg.set_grad_enabled(True)
    assert enabled, "the test left grad mode disabled"
