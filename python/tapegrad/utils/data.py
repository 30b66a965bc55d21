"""``TensorDataset`` and ``DataLoader`` with PyTorch's names and batching rules.

    ds = TensorDataset(x, y)                      # x: (N, ...), y: (N,)
    loader = DataLoader(ds, batch_size=32, shuffle=True, seed=0)
    for xb, yb in loader:                         # tuples of tapegrad tensors
        ...
    len(loader)                                   # batches per epoch

Batches of a ``TensorDataset`` are cut with one index array per batch
(``index_select`` for shuffled order, a slice view for sequential order): no
per-example Python work. Other datasets (anything with ``__len__`` and
``__getitem__``) are fetched item by item and collated like PyTorch's
``default_collate``: tensors, arrays and numbers are stacked along a new first
dimension, tuples/lists/dicts are collated field by field. ``Subset``,
``ConcatDataset`` and ``random_split`` give such datasets too:

    train, dev = random_split(ds, [0.9, 0.1])     # permutation from tg's RNG

Shuffling: each pass over the loader draws a fresh permutation from a
``numpy.random.Generator``. With ``seed=`` (or ``generator=`` an int or a
``numpy.random.Generator``) that generator is made once, so two loaders with
the same seed produce the same sequence of epochs. Without one, every epoch
seeds ``numpy.random.default_rng`` from ``tg.randint``, so ``tg.manual_seed``
makes the order reproducible, as ``torch.manual_seed`` does for PyTorch's
loader.
"""

from __future__ import annotations

import bisect
import math
import numbers
import warnings

import numpy as np

from .. import _C
from .._creation import randint as _randint
from .._grad_mode import no_grad as _no_grad

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataLoader",
           "default_collate"]


class Dataset:
    """Base class for map-style datasets: implement ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self):  # pragma: no cover - abstract
        raise NotImplementedError


def _as_tensor(x):
    if isinstance(x, _C.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return _C.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"TensorDataset: expected tensors (or NumPy arrays), got {type(x).__name__}")


class TensorDataset(Dataset):
    """Dataset wrapping tensors that share their first dimension; item ``i`` is ``tuple(t[i] ...)``."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        tensors = tuple(_as_tensor(t) for t in tensors)
        for i, t in enumerate(tensors):
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d; every tensor needs a first (example) dimension")
        sizes = [t.shape[0] for t in tensors]
        if any(s != sizes[0] for s in sizes):
            raise ValueError(f"TensorDataset: size mismatch between tensors along dim 0: {sizes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def _batch(self, indices):
        """Rows `indices` (int64 array) of every tensor, as a tuple; one gather per tensor."""
        idx = _C.from_numpy(np.ascontiguousarray(indices, dtype=np.int64))
        with _no_grad():
            return tuple(_C.index_select(t, 0, idx) for t in self.tensors)

    def _slice(self, start, stop):
        with _no_grad():
            return tuple(t[start:stop] for t in self.tensors)


class Subset(Dataset):
    """The items of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """Several datasets one after another; ``cumulative_sizes[i]`` is where dataset i ends."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise ValueError(f"ConcatDataset: absolute value of index {idx} should not "
                                 f"exceed dataset length {n}")
            idx += n
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} is out of range for length {n}")
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


def _split_lengths(n, lengths):
    """Counts, or fractions summing to 1 turned into counts as torch does: floor of
    each share, then the remainder handed out one by one from the first split on."""
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1: "
                                 f"{frac}")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range((n - sum(counts))):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0; this might "
                              "result in an empty dataset.", UserWarning, stacklevel=3)
        return counts
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal "
                         f"the length of the input dataset ({n})")
    return lengths


def random_split(dataset, lengths, generator=None):
    """Non-overlapping random Subsets of the given lengths (counts, or fractions of
    len(dataset) summing to 1). The permutation comes from ``generator`` (an int seed
    or a numpy.random.Generator) if given, else from tapegrad's RNG, so
    tg.manual_seed makes it repeatable."""
    counts = _split_lengths(len(dataset), lengths)
    rng = _make_rng(generator, None, "random_split")
    if rng is None:
        rng = np.random.default_rng(int(_randint(0, 2**62, (1,)).item()))
    order = rng.permutation(len(dataset)).tolist()
    out, start = [], 0
    for c in counts:
        out.append(Subset(dataset, order[start:start + c]))
        start += c
    return out


def default_collate(batch):
    """Stack a list of examples into a batch (tensors, arrays and numbers become tensors)."""
    first = batch[0]
    if isinstance(first, _C.Tensor):
        with _no_grad():
            return _C.stack(list(batch), 0)
    if isinstance(first, (np.ndarray, np.generic)):
        return _C.from_numpy(np.ascontiguousarray(np.stack([np.asarray(b) for b in batch])))
    if isinstance(first, bool):
        return _C.from_numpy(np.array(batch, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return _C.from_numpy(np.array(batch, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return _C.from_numpy(np.array(batch, dtype=np.float32))
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        n = len(first)
        if any(len(b) != n for b in batch):
            raise ValueError("default_collate: examples in a batch have different numbers of fields")
        return tuple(default_collate([b[i] for b in batch]) for i in range(n))
    raise TypeError(f"default_collate: don't know how to batch {type(first).__name__}")


def _make_rng(generator, seed, owner="DataLoader"):
    if generator is not None and seed is not None:
        raise ValueError(f"{owner}: pass either generator= or seed=, not both")
    if seed is None:
        seed = generator
    if seed is None:
        return None
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise TypeError(f"{owner}: seed/generator must be an int or a numpy.random.Generator, got {type(seed).__name__}")


class DataLoader:
    """Iterate over a dataset in batches: ``DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False)``.

    Yields tuples of tapegrad tensors for a ``TensorDataset`` (batched along dim 0; the
    last batch is smaller unless ``drop_last``). ``len(loader)`` is the number of batches
    per epoch. ``collate_fn`` replaces :func:`default_collate` for other datasets.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, generator=None, *,
                 seed=None, collate_fn=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self._rng = _make_rng(generator, seed)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self):
        n = len(self.dataset)
        if not self.shuffle:
            return None
        rng = self._rng
        if rng is None:
            # Seeded from tapegrad's RNG, so tg.manual_seed(...) fixes the order.
            rng = np.random.default_rng(int(_randint(0, 2**62, (1,)).item()))
        return rng.permutation(n).astype(np.int64)

    def __iter__(self):
        n = len(self.dataset)
        order = self._order()
        bs = self.batch_size
        stop = (n // bs) * bs if self.drop_last else n
        rows = _tensor_rows(self.dataset) if self.collate_fn is None else None
        for start in range(0, stop, bs):
            end = min(start + bs, n)
            if rows is not None:
                base, mapping = rows
                if order is None and mapping is None:
                    yield base._slice(start, end)
                else:
                    idx = np.arange(start, end) if order is None else order[start:end]
                    yield base._batch(idx if mapping is None else mapping[idx])
            else:
                idx = range(start, end) if order is None else order[start:end].tolist()
                items = [self.dataset[i] for i in idx]
                yield (self.collate_fn or default_collate)(items)


def _tensor_rows(dataset):
    """(TensorDataset, int64 row map or None) when `dataset` is a TensorDataset or
    Subsets of one, whose batches can then be gathered in one index_select per
    tensor; None otherwise."""
    mapping = None
    while isinstance(dataset, Subset):
        idx = np.asarray(dataset.indices, dtype=np.int64).reshape(-1)
        idx = np.where(idx < 0, idx + len(dataset.dataset), idx)  # Python's negative indices
        mapping = idx if mapping is None else idx[mapping]
        dataset = dataset.dataset
    if not isinstance(dataset, TensorDataset) or (mapping is not None and mapping.size and (
            mapping.min() < 0 or mapping.max() >= len(dataset))):
        return None  # out-of-range indices take the per-item path, which raises on them
    return dataset, mapping
