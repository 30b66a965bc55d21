"""Limits: shape arithmetic that would overflow 64-bit sizes, or an allocation
larger than memory, raises a Python exception instead of crashing."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F

BIG = 2**40


@pytest.mark.parametrize("make", [
    lambda: tg.zeros(BIG, BIG),
    lambda: tg.ones(BIG, BIG),
    lambda: tg.empty(BIG, BIG),
    lambda: tg.randn(BIG, 2**30),
    lambda: tg.full((2**33, 2**33), 1.0),
    lambda: tg.zeros(2**21, 2**21, 2**21),
], ids=["zeros", "ones", "empty", "randn", "full", "3d"])
def test_element_count_overflow_is_value_error(make):
    with pytest.raises(ValueError, match="64 bits|too large"):
        make()


@pytest.mark.parametrize("make", [
    lambda: tg.empty(2**62 // 8),
    lambda: tg.zeros(2**45),
    lambda: tg.ones(2**43, dtype=tg.float64),
], ids=["empty-2^59", "zeros-2^45", "ones-f64-2^43"])
def test_allocation_larger_than_memory(make):
    with pytest.raises((MemoryError, ValueError)):
        make()


def test_reshape_and_view_overflow():
    x = tg.zeros(2, 3)
    with pytest.raises(ValueError):
        x.reshape(BIG, BIG)
    with pytest.raises(ValueError):
        x.reshape(-1, 2**62)
    with pytest.raises(ValueError):
        x.view(BIG, BIG)


def test_materialising_a_huge_expand_raises():
    e = tg.zeros(1, 1).expand(2**31, 2**31)  # a view: no memory yet
    with pytest.raises((MemoryError, ValueError)):
        e.contiguous()
    with pytest.raises((MemoryError, ValueError)):
        tg.zeros(1, 1).expand(2**20, 1) @ tg.zeros(1, 1).expand(1, 2**20)


def test_expand_overflow_is_value_error():
    with pytest.raises(ValueError):
        tg.zeros(1, 1).expand(BIG, BIG)


def test_cat_and_stack_overflow():
    with pytest.raises((ValueError, MemoryError)):
        tg.cat([tg.zeros(1).expand(2**62), tg.zeros(1).expand(2**62)])
    with pytest.raises((ValueError, MemoryError)):
        tg.cat([tg.zeros(1).expand(BIG), tg.zeros(1)])
    with pytest.raises((ValueError, MemoryError)):
        tg.stack([tg.zeros(1).expand(2**62)] * 4)


def test_embedding_and_layers_with_huge_dims():
    with pytest.raises(ValueError):
        F.embedding(tg.tensor([0]), tg.zeros(1, 1).expand(BIG, 2**30))
    with pytest.raises(ValueError):
        tg.nn.Embedding(BIG, 2**30)
    with pytest.raises(ValueError):
        tg.nn.Linear(BIG, 2**30)
    w = tg.randn(10, 3)
    with pytest.raises(IndexError):
        F.embedding(tg.tensor([2**62]), w)
    with pytest.raises(IndexError):
        F.embedding(tg.tensor([-2**63]), w)


def test_negative_and_too_many_dims():
    with pytest.raises(ValueError):
        tg.zeros(-1)
    with pytest.raises(ValueError):
        tg.zeros(*(1,) * 9)
    with pytest.raises(ValueError):
        tg.from_numpy(np.zeros((1,) * 9, np.float32))


@pytest.mark.parametrize("arr", [
    np.zeros(3, np.float16), np.zeros(3, np.complex64), np.array([1, "a"], dtype=object),
    np.zeros(3, np.uint64),
], ids=["f16", "c64", "object", "u64"])
def test_from_numpy_unsupported_dtypes(arr):
    with pytest.raises((TypeError, ValueError)):
        tg.from_numpy(arr)


def test_from_numpy_layouts():
    # Negative strides and misaligned strides are refused with a clear error...
    with pytest.raises(ValueError, match="negative strides"):
        tg.from_numpy(np.arange(6.0)[::-1])
    buf = np.zeros(13, np.uint8)
    odd = np.ndarray((3,), dtype=np.float32, buffer=buf, offset=1, strides=(3,))
    with pytest.raises(ValueError, match="item size"):
        tg.from_numpy(odd)
    # ... empty and read-only ones work.
    assert tg.from_numpy(np.zeros((0, 3))).shape == (0, 3)
    ro = np.arange(4.0)
    ro.flags.writeable = False
    t = tg.from_numpy(ro)
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_from_numpy_huge_broadcast_does_not_crash():
    code = textwrap.dedent("""
        import numpy as np, tapegrad as tg
        try:
            tg.from_numpy(np.broadcast_to(np.zeros(1, np.float32), (2**40,)))
        except (MemoryError, ValueError):
            pass
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-1000:])
