"""tapegrad.utils.data (TensorDataset, DataLoader), tapegrad.utils.conll (read_conll) and utils.progress."""

import collections
import io
import os
import sys

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.utils import progress as progress_mod
from tapegrad.utils.conll import iob1_to_iob2, read_conll
from tapegrad.utils.data import (
    ConcatDataset, DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split,
)
from tapegrad.utils.progress import progress

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIKIANN = os.path.join(REPO_ROOT, "..", "shared", "data", "wikiann-en")


def wikiann(split):
    path = os.path.join(WIKIANN, f"{split}.txt")
    if not os.path.exists(path):
        pytest.skip(f"WikiANN data not found at {os.path.normpath(path)} (shared data directory absent)")
    return path


# ----------------------------------------------------------------------------- DataLoader


def make_dataset(n=10):
    ids = np.arange(n, dtype=np.int64)
    x = tg.from_numpy(np.stack([ids * 1.0, ids * 10.0], axis=1).astype(np.float32))  # (n, 2)
    y = tg.from_numpy(ids.copy())  # int64 labels == example id
    m = tg.from_numpy(ids % 2 == 0)  # bool
    img = tg.from_numpy(np.arange(n * 6, dtype=np.float64).reshape(n, 2, 3))  # (n, 2, 3)
    return TensorDataset(x, y, m, img), ids


def check_batch(batch, ids):
    """Every field of the batch holds exactly the rows `ids` of the dataset built by make_dataset."""
    x, y, m, img = batch
    assert isinstance(x, tg.Tensor) and isinstance(y, tg.Tensor)
    assert x.dtype == tg.float32 and y.dtype == tg.int64 and m.dtype == tg.bool and img.dtype == tg.float64
    np.testing.assert_array_equal(y.numpy(), ids)
    np.testing.assert_array_equal(x.numpy(), np.stack([ids * 1.0, ids * 10.0], axis=1))
    np.testing.assert_array_equal(m.numpy(), ids % 2 == 0)
    np.testing.assert_array_equal(img.numpy(), np.arange(60, dtype=np.float64).reshape(10, 2, 3)[ids])


def test_tensor_dataset_basics():
    ds, _ = make_dataset()
    assert len(ds) == 10
    x, y, m, img = ds[3]
    assert y.item() == 3 and x.numpy().tolist() == [3.0, 30.0] and tuple(img.shape) == (2, 3)
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(tg.zeros(3, 2), tg.zeros(4))
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(tg.tensor(1.0))
    with pytest.raises(ValueError):
        TensorDataset()
    ds2 = TensorDataset(np.ones((4, 2), np.float32), np.arange(4))  # NumPy input is accepted
    assert isinstance(ds2.tensors[0], tg.Tensor) and len(ds2) == 4


@pytest.mark.parametrize("n, bs, drop_last, sizes", [
    (10, 3, False, [3, 3, 3, 1]),
    (10, 3, True, [3, 3, 3]),
    (10, 5, False, [5, 5]),
    (10, 5, True, [5, 5]),
    (10, 1, False, [1] * 10),
    (10, 10, False, [10]),
    (10, 32, False, [10]),
    (10, 32, True, []),
])
def test_sequential_batches(n, bs, drop_last, sizes):
    ds, ids = make_dataset(n)
    loader = DataLoader(ds, batch_size=bs, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) == len(batches)
    assert [len(b[1]) for b in batches] == sizes
    start = 0
    for b, size in zip(batches, sizes):
        check_batch(b, ids[start:start + size])  # hand computation: consecutive slices
        start += size


def test_default_batch_size_is_one():
    ds, _ = make_dataset(4)
    loader = DataLoader(ds)
    assert len(loader) == 4 and [b[1].numpy().tolist() for b in loader] == [[0], [1], [2], [3]]


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffle_covers_every_example_once_per_epoch(drop_last):
    ds, ids = make_dataset(10)
    loader = DataLoader(ds, batch_size=3, shuffle=True, drop_last=drop_last, seed=7)
    epochs = []
    for _ in range(4):
        seen = []
        for b in loader:
            check_batch(b, b[1].numpy())  # fields of one example stay together
            seen.extend(b[1].numpy().tolist())
        if drop_last:
            assert len(seen) == 9 and len(set(seen)) == 9
        else:
            assert sorted(seen) == list(range(10))
        epochs.append(seen)
    assert len({tuple(e) for e in epochs}) > 1, "every epoch used the same order"


def test_shuffle_order_matches_documented_rule():
    """seed=s: epoch k uses the k-th permutation drawn from numpy.random.default_rng(s)."""
    ds, ids = make_dataset(10)
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=123)
    rng = np.random.default_rng(123)
    for _ in range(3):
        perm = rng.permutation(10)
        batches = list(loader)
        assert [len(b[1]) for b in batches] == [4, 4, 2]
        for b, start in zip(batches, (0, 4, 8)):
            check_batch(b, perm[start:start + 4])


def test_shuffle_with_same_seed_is_reproducible():
    ds, _ = make_dataset(10)
    a = DataLoader(ds, batch_size=3, shuffle=True, seed=5)
    b = DataLoader(ds, batch_size=3, shuffle=True, seed=5)
    c = DataLoader(ds, batch_size=3, shuffle=True, seed=6)
    order = lambda loader: [tuple(bt[1].numpy().tolist()) for bt in loader]  # noqa: E731
    ea1, ea2 = order(a), order(a)
    assert ea1 == order(b) and ea2 == order(b)  # same epoch sequence
    assert order(c) != ea1 or order(c) != ea2
    g = DataLoader(ds, batch_size=3, shuffle=True, generator=np.random.default_rng(5))
    assert order(g) == ea1
    gi = DataLoader(ds, batch_size=3, shuffle=True, generator=5)
    assert order(gi) == ea1


def test_shuffle_without_seed_follows_tg_manual_seed():
    ds, _ = make_dataset(50)
    loader = DataLoader(ds, batch_size=7, shuffle=True)
    order = lambda: np.concatenate([bt[1].numpy() for bt in loader])  # noqa: E731
    tg.manual_seed(42)
    first, second = order(), order()
    tg.manual_seed(42)
    np.testing.assert_array_equal(order(), first)
    np.testing.assert_array_equal(order(), second)
    assert not np.array_equal(first, second)
    assert sorted(first.tolist()) == list(range(50))


def test_tensor_dataset_batches_are_vectorised(monkeypatch):
    """No per-example __getitem__ calls for a TensorDataset, shuffled or not."""
    ds, _ = make_dataset(10)

    def no_per_example(self, i):
        raise AssertionError("per-example indexing")

    monkeypatch.setattr(TensorDataset, "__getitem__", no_per_example)
    assert sum(len(b[0]) for b in DataLoader(ds, batch_size=4)) == 10
    assert sum(len(b[0]) for b in DataLoader(ds, batch_size=4, shuffle=True, seed=0)) == 10


def test_large_dataset_is_fast():
    import time

    n = 200_000
    ds = TensorDataset(tg.randn(n, 16), tg.randint(0, 5, (n,)))
    t0 = time.perf_counter()
    count = sum(len(yb) for _, yb in DataLoader(ds, batch_size=64, shuffle=True, seed=0))
    assert count == n
    assert time.perf_counter() - t0 < 5.0


def test_batches_do_not_record_grad():
    w = tg.randn(6, 2, requires_grad=True)
    ds = TensorDataset(w, tg.arange(6))
    for xb, _ in DataLoader(ds, batch_size=4, shuffle=True, seed=1):
        assert not xb.requires_grad
    for xb, _ in DataLoader(ds, batch_size=4):
        assert not xb.requires_grad


class PairList(Dataset):
    def __init__(self, n):
        self.n = n
        self.calls = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.calls += 1
        return np.full(3, i, np.float32), i, {"w": float(i) / 2, "flag": i % 2 == 1}


def test_generic_dataset_is_collated():
    ds = PairList(5)
    batches = list(DataLoader(ds, batch_size=2, shuffle=True, seed=3))
    assert [len(b[1]) for b in batches] == [2, 2, 1]
    order = np.random.default_rng(3).permutation(5)
    got = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(got, order)
    feats, ids, extra = batches[0]
    assert feats.dtype == tg.float32 and tuple(feats.shape) == (2, 3) and ids.dtype == tg.int64
    assert extra["w"].dtype == tg.float32 and extra["flag"].dtype == tg.bool
    np.testing.assert_array_equal(feats.numpy()[:, 0], ids.numpy())
    assert ds.calls == 5
    custom = DataLoader(ds, batch_size=5, collate_fn=lambda items: [it[1] for it in items])
    assert list(custom) == [[0, 1, 2, 3, 4]]


def test_default_collate_stacks_tensors():
    out = default_collate([tg.tensor([1.0, 2.0]), tg.tensor([3.0, 4.0])])
    np.testing.assert_array_equal(out.numpy(), [[1, 2], [3, 4]])
    assert default_collate(["a", "b"]) == ["a", "b"]


@pytest.mark.parametrize("kwargs, err", [
    ({"batch_size": 0}, ValueError), ({"batch_size": 2.5}, ValueError), ({"batch_size": True}, ValueError),
    ({"seed": 1, "generator": 2}, ValueError), ({"seed": "x"}, TypeError),
])
def test_loader_argument_errors(kwargs, err):
    ds, _ = make_dataset(4)
    with pytest.raises(err):
        DataLoader(ds, **kwargs)


# ----------------------------------------------------------------------------- read_conll on WikiANN


def raw_token_lines(path):
    """An independent pass over the file: (word, tag) for every non-blank line."""
    with open(path, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]


# ---------------------------------------------------------------- Subset, ConcatDataset, splits
TORCH_REASON = "torch is not installed (CI installs torch==2.13.0)"

def _numbered(n, start=0):
    return TensorDataset(tg.arange(start, start + n, dtype=tg.int64),
                         tg.arange(start, start + n, dtype=tg.float64) * 0.5)


def test_subset_indexes_through_and_loads():
    ds = _numbered(10)
    sub = Subset(ds, [7, 2, 5])
    assert len(sub) == 3 and sub[0][0].item() == 7 and sub[-1][0].item() == 5
    assert [x[0].item() for x in sub[[0, 2]]] == [7, 5]
    batches = list(DataLoader(sub, batch_size=2))
    assert [b[0].tolist() for b in batches] == [[7, 2], [5]]
    assert batches[0][1].dtype == tg.float64


@pytest.mark.parametrize("shuffle", [False, True])
def test_subsets_of_a_tensor_dataset_are_batched_vectorised_and_equal_per_item(shuffle,
                                                                             monkeypatch):
    ds = _numbered(30)
    sub = Subset(Subset(ds, list(range(29, -1, -1))), [3, -1, 7, 0, 12, 5, 5])
    expected = [[sub[i][0].item() for i in range(len(sub))]]
    per_item = list(DataLoader(sub, batch_size=3, shuffle=shuffle, seed=1,
                               collate_fn=default_collate))

    def no_per_example(self, i):
        raise AssertionError("per-example indexing")

    monkeypatch.setattr(TensorDataset, "__getitem__", no_per_example)
    fast = list(DataLoader(sub, batch_size=3, shuffle=shuffle, seed=1))
    assert [b[0].tolist() for b in fast] == [b[0].tolist() for b in per_item]
    assert [b[1].tolist() for b in fast] == [b[1].tolist() for b in per_item]
    assert fast[0][1].dtype == tg.float64
    if not shuffle:
        assert sum((b[0].tolist() for b in fast), []) == expected[0] == [26, 0, 22, 29, 17, 24, 24]


def test_concat_dataset_matches_torch_indexing():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ours = ConcatDataset([_numbered(3), _numbered(0), _numbered(4, 100)])
    theirs = torch.utils.data.ConcatDataset([list(range(3)), [], list(range(100, 104))])
    assert len(ours) == len(theirs) == 7
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    for i in range(-7, 7):
        assert ours[i][0].item() == theirs[i], i
    with pytest.raises(IndexError, match="out of range"):
        ours[7]
    with pytest.raises(ValueError, match="should not exceed"):
        ours[-8]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    loader = DataLoader(ours, batch_size=3, shuffle=True, seed=0)
    assert sorted(sum((b[0].tolist() for b in loader), [])) == [0, 1, 2, 100, 101, 102, 103]


@pytest.mark.parametrize("n,lengths", [(10, [0.5, 0.3, 0.2]), (11, [0.5, 0.5]),
                                       (7, [0.34, 0.33, 0.33]), (9, [4, 5]), (5, [1.0])])
def test_random_split_lengths_match_torch(n, lengths):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ours = random_split(_numbered(n), lengths)
    theirs = torch.utils.data.random_split(range(n), lengths)
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    got = sorted(x[0].item() for s in ours for x in s)
    assert got == list(range(n))  # disjoint and complete


def test_random_split_fraction_rounding_rule():
    """floor of each share, then the remainder one by one from the first split."""
    assert [len(s) for s in random_split(_numbered(10), [0.25, 0.25, 0.5])] == [3, 2, 5]
    assert [len(s) for s in random_split(_numbered(7), [0.5, 0.25, 0.25])] == [4, 2, 1]


def test_random_split_is_seeded_by_tg_and_generator():
    tg.manual_seed(4)
    a = random_split(_numbered(20), [10, 10])[0].indices
    tg.manual_seed(4)
    b = random_split(_numbered(20), [10, 10])[0].indices
    assert a == b and a != list(range(10))
    c = random_split(_numbered(20), [10, 10], generator=7)[0].indices
    d = random_split(_numbered(20), [10, 10], generator=np.random.default_rng(7))[0].indices
    assert c == d


def test_random_split_errors_and_empty_split_warning():
    with pytest.raises(ValueError, match=r"sum of input lengths \(9\) does not equal.*\(10\)"):
        random_split(_numbered(10), [4, 5])
    with pytest.raises(ValueError, match="not between 0 and 1"):
        random_split(_numbered(10), [1.5, -0.5])
    with pytest.warns(UserWarning, match="split at index [12] is 0"):
        random_split(_numbered(2), [0.9, 0.05, 0.05])
    with pytest.raises(TypeError, match="random_split: seed/generator"):
        random_split(_numbered(4), [2, 2], generator="seed")



def test_read_conll_wikiann_train():
    path = wikiann("train")
    sents = read_conll(path)
    assert len(sents) == 20_000
    raw = raw_token_lines(path)
    assert sum(len(w) for w, _ in sents) == len(raw)
    assert all(len(w) == len(t) > 0 for w, t in sents)
    words = [w for ws, _ in sents for w in ws]
    tags = [t for _, ts in sents for t in ts]
    assert {t for t in tags} == {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"}
    # words are the raw words without their "en:" prefix; tags are untouched (already IOB2)
    assert all(rw == "en:" + w for (rw, _), w in zip(raw, words))
    assert collections.Counter(tags) == collections.Counter(t for _, t in raw)
    assert sents[0] == (["R.H.", "Saunders", "(", "St.", "Lawrence", "River", ")", "(", "968", "MW", ")"],
                        ["B-ORG", "I-ORG", "O", "B-ORG", "I-ORG", "I-ORG", "O", "O", "O", "O", "O"])


@pytest.mark.parametrize("split", ["dev", "test"])
def test_read_conll_wikiann_dev_test(split):
    sents = read_conll(wikiann(split))
    assert len(sents) == 10_000
    assert not any(w.startswith("en:") for ws, _ in sents for w in ws)


def test_wikiann_prefix_kept_when_asked():
    path = wikiann("dev")
    kept = read_conll(path, strip_prefix=False)
    assert all(w.startswith("en:") for ws, _ in kept for w in ws)
    stripped = read_conll(path, strip_prefix="en:")
    assert stripped == [([w[3:] for w in ws], ts) for ws, ts in kept]


# ----------------------------------------------------------------------------- read_conll on small files


def write(tmp_path, text, name="f.txt"):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return p


CONLL2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP ORG
rejects VBZ B-VP O
German JJ B-NP MISC
call NN I-NP O
to TO B-VP O
boycott VB I-VP O
British JJ B-NP MISC
lamb NN I-NP O
. . O O

Peter NNP B-NP PER
Blackburn NNP I-NP PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP LOC
1996-08-22 CD I-NP O
"""


def test_conll2003_with_docstart_and_plain_tags(tmp_path):
    sents = read_conll(write(tmp_path, CONLL2003))
    assert sents == [
        (["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
         ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
        (["BRUSSELS", "1996-08-22"], ["B-LOC", "O"]),
    ]


def test_plain_tag_runs_become_iob2(tmp_path):
    text = "a PER\nb PER\nc LOC\nd PER\ne O\nf PER\n"
    assert read_conll(write(tmp_path, text)) == [
        (list("abcdef"), ["B-PER", "I-PER", "B-LOC", "B-PER", "O", "B-PER"])]


def test_iob1_conversion(tmp_path):
    # The original CoNLL-2003 tagging: I- opens a chunk, B- only splits two adjacent chunks of one type.
    text = ("U.N. NNP I-NP I-ORG\nofficial NN I-NP O\nEkeus NNP I-NP I-PER\nheads VBZ I-VP O\n"
            "Rolf I-PER\nEkeus I-PER\nHans B-PER\nBlix I-PER\nin O\nNew I-LOC\nYork I-LOC\nLondon I-ORG\n")
    sents = read_conll(write(tmp_path, text), scheme="iob1")
    assert sents[0][1] == ["B-ORG", "O", "B-PER", "O", "B-PER", "I-PER", "B-PER", "I-PER", "O",
                           "B-LOC", "I-LOC", "B-ORG"]
    assert iob1_to_iob2(["I-X", "B-X", "I-X", "I-Y", "O", "I-Y"]) == ["B-X", "B-X", "I-X", "B-Y", "O", "B-Y"]
    with pytest.raises(ValueError, match=r"f\.txt:1: .*scheme='iob1'"):
        read_conll(write(tmp_path, text))


def test_tabs_spaces_crlf_and_no_final_blank_line(tmp_path):
    text = "New York\tNNP\tB-LOC\r\nCity\tNNP\tI-LOC\r\n\r\n\r\nhello   O\r\nworld\tO"
    assert read_conll(write(tmp_path, text)) == [
        (["New York", "City"], ["B-LOC", "I-LOC"]), (["hello", "world"], ["O", "O"])]


def test_byte_order_mark_is_ignored(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes("\ufeffen:Paris\tB-LOC\nen:!\tO\n".encode("utf-8"))
    assert read_conll(p) == [(["Paris", "!"], ["B-LOC", "O"])]


def test_prefix_autodetect_needs_every_token(tmp_path):
    # The first word looks like a language prefix but the others don't have it: keep the words.
    text = "re:\tO\nthe\tO\nmeeting\tB-ORG\n"
    assert read_conll(write(tmp_path, text))[0][0] == ["re:", "the", "meeting"]
    text = "de:Berlin\tB-LOC\nde:ist\tO\n\nde:schön\tO\n"
    assert read_conll(write(tmp_path, text)) == [(["Berlin", "ist"], ["B-LOC", "O"]), (["schön"], ["O"])]
    assert read_conll(write(tmp_path, text), strip_prefix=False)[0][0] == ["de:Berlin", "de:ist"]


@pytest.mark.parametrize("text, line, match", [
    ("a O\nbroken\nc O\n", 2, "single column"),
    ("a O\n\nb X-PER\n", 3, "invalid tag 'X-PER'"),
    ("a B-\n", 1, "invalid tag 'B-'"),
    ("a O\nb E-PER\n", 2, "invalid tag 'E-PER'"),
    ("a O\nb I-PER\n", 2, "I-PER"),
    ("a B-LOC\nb I-PER\n", 2, "I-PER"),
    ("\t\tO\n", 1, "empty word"),
    ("w\t\n", 1, "single column|empty tag"),
])
def test_malformed_lines(tmp_path, text, line, match):
    p = write(tmp_path, text, name="bad.conll")
    with pytest.raises(ValueError, match=match) as e:
        read_conll(p)
    assert f"bad.conll:{line}:" in str(e.value)


def test_read_conll_argument_errors(tmp_path):
    p = write(tmp_path, "a O\n")
    with pytest.raises(ValueError, match="scheme"):
        read_conll(p, scheme="bilou")
    with pytest.raises(TypeError):
        read_conll(p, strip_prefix=3)
    with pytest.raises(FileNotFoundError):
        read_conll(tmp_path / "missing.txt")


# ----------------------------------------------------------------------------- progress


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_pass_through_without_a_terminal():
    items = [1, 2, 3]
    assert progress(items, file=io.StringIO()) is items
    assert list(progress(iter(items), desc="x", file=io.StringIO())) == items


def test_progress_summary_line():
    out = io.StringIO()
    assert list(progress(range(4), desc="epoch 1", summary=True, file=out)) == [0, 1, 2, 3]
    assert out.getvalue().startswith("epoch 1: 4 it in ") and out.getvalue().count("\n") == 1


def test_progress_without_tqdm_on_a_terminal(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    items = [1, 2]
    assert progress(items, file=FakeTTY()) is items


def test_progress_uses_tqdm_on_a_terminal():
    pytest.importorskip("tqdm", reason="tqdm not installed (optional dependency)")
    out = FakeTTY()
    assert list(progress(range(3), desc="bar", file=out)) == [0, 1, 2]
    assert "bar" in out.getvalue()


def test_progress_module_exports():
    assert progress_mod.progress is progress
