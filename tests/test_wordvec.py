"""tapegrad.utils.wordvec on the real word-vector files that ship in the gensim wheel.

The files (gensim/test/test_data/ in gensim 4.4.0) are fetched with
``pip download --no-deps gensim==4.4.0`` into a cache directory under the pytest
cache (or $TMPDIR) and read straight out of the wheel; nothing is copied into
this repository. Used:

=============================  ===============================================
test_glove.txt                 GloVe text, no header, 76 x 50
word2vec_pre_kv_c              word2vec text format (``count dim`` header), 1750 x 10
lee_fasttext.vec               fastText .vec (trailing space on each line), 1762 x 10
crime-and-punishment.vec       fastText .vec with Cyrillic (UTF-8) words, 291 x 5
euclidean_vectors.bin          word2vec binary, no newline between records, 2747 x 10
poincare_vectors.bin           word2vec binary whose float bytes contain 0x0A, 1182 x 10
high_precision.kv.bin / .txt   the same 2 vectors in binary (float16-rounded) and text
pretrained.vec                 header says 3 vectors, holds 1 (a real inconsistent file)
toy-model.bin                  a fastText *model* (not a vector file)
=============================  ===============================================

Values are checked against independent readings written here (``struct.unpack``
for binary records, ``float()`` per text field) and against results from gensim's
own test suite (``most_similar('war')`` on euclidean_vectors.bin; the bin/txt
relation of high_precision.kv).
"""

import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F
from tapegrad.utils.wordvec import build_embedding_matrix, detect_format, load_word_vectors
from _fetch import cache_dir, pip_download

GENSIM_VERSION = "4.4.0"
FILES = [
    "test_glove.txt", "word2vec_pre_kv_c", "lee_fasttext.vec", "crime-and-punishment.vec",
    "euclidean_vectors.bin", "poincare_vectors.bin", "high_precision.kv.bin", "high_precision.kv.txt",
    "pretrained.vec", "toy-model.bin",
]


@pytest.fixture(scope="session")
def data(pytestconfig):
    """Directory holding FILES, extracted from the gensim wheel (cached)."""
    d = cache_dir(pytestconfig, f"tapegrad-gensim-{GENSIM_VERSION}-test-data")
    if all((d / f).exists() for f in FILES):
        return d
    wheels = sorted(d.glob(f"gensim-{GENSIM_VERSION}-*.whl"))
    if not wheels:
        spec = f"gensim=={GENSIM_VERSION}"
        # Any wheel holds the same test data; ask for one fixed platform so every host gets one.
        got, log = pip_download(d, [
            ["--no-deps", "--only-binary", ":all:", "--platform", "manylinux_2_28_x86_64",
             "--python-version", "3.11", spec],
            ["--no-deps", "--only-binary", ":all:", spec],
        ])
        if got is None:
            pytest.skip(f"could not fetch the gensim {GENSIM_VERSION} wheel with pip "
                        f"(no network or index?): {' | '.join(log)}")
        wheels = [got]
    with zipfile.ZipFile(wheels[0]) as zf:
        names = set(zf.namelist())
        for f in FILES:
            member = f"gensim/test/test_data/{f}"
            if member not in names:
                pytest.skip(f"{member} is not in {wheels[0].name}")
            part = d / (f + ".part")
            part.write_bytes(zf.read(member))
            os.replace(part, d / f)
    wheels[0].unlink()  # 28 MB; only the extracted files are needed from now on
    return d


# ----------------------------------------------------------------------------- independent readers


def read_text_independently(path, header):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if header:
        count, dim = map(int, lines[0].split())
        lines = lines[1:]
    rows = [line.split() for line in lines if line.strip()]
    words = [r[0] for r in rows]
    vecs = np.array([[np.float32(float(x)) for x in r[1:]] for r in rows], dtype=np.float32)
    if header:
        assert vecs.shape == (count, dim)
    return words, vecs


def read_binary_independently(path):
    """Walk the records with bytes.index and struct.unpack; also returns record start offsets."""
    raw = Path(path).read_bytes()
    nl = raw.index(b"\n")
    count, dim = map(int, raw[:nl].split())
    pos, words, vecs, starts = nl + 1, [], [], []
    for _ in range(count):
        while raw[pos:pos + 1] == b"\n":
            pos += 1
        starts.append(pos)
        sp = raw.index(b" ", pos)
        words.append(raw[pos:sp].decode("utf-8"))
        vecs.append(struct.unpack(f"<{dim}f", raw[sp + 1:sp + 1 + 4 * dim]))
        pos = sp + 1 + 4 * dim
    assert raw[pos:].strip() == b""
    return words, np.array(vecs, dtype=np.float32), starts


def check_loaded(vocab, matrix, words, vecs):
    assert matrix.dtype == np.float32 and matrix.shape == vecs.shape and matrix.flags.c_contiguous
    assert list(vocab) == words and list(vocab.values()) == list(range(len(words)))
    np.testing.assert_array_equal(matrix, vecs)  # bit-exact


# ----------------------------------------------------------------------------- the real files


@pytest.mark.parametrize("name, fmt", [
    ("test_glove.txt", "glove"), ("word2vec_pre_kv_c", "fasttext"), ("lee_fasttext.vec", "fasttext"),
    ("crime-and-punishment.vec", "fasttext"), ("high_precision.kv.txt", "fasttext"),
    ("euclidean_vectors.bin", "word2vec_binary"), ("poincare_vectors.bin", "word2vec_binary"),
    ("high_precision.kv.bin", "word2vec_binary"),
])
def test_detect_format(data, name, fmt):
    assert detect_format(data / name) == fmt


@pytest.mark.parametrize("name, header, shape, first", [
    ("test_glove.txt", False, (76, 50), "the"),
    ("word2vec_pre_kv_c", True, (1750, 10), "the"),
    ("lee_fasttext.vec", True, (1762, 10), "the"),
    ("crime-and-punishment.vec", True, (291, 5), "и"),
])
@pytest.mark.parametrize("fmt", ["auto", "explicit"])
def test_text_files_match_independent_reading(data, name, header, shape, first, fmt):
    words, vecs = read_text_independently(data / name, header)
    fmt = ("fasttext" if header else "glove") if fmt == "explicit" else "auto"
    vocab, matrix = load_word_vectors(data / name, format=fmt)
    assert matrix.shape == shape and next(iter(vocab)) == first
    check_loaded(vocab, matrix, words, vecs)


def test_glove_file_has_non_ascii_words(data):
    vocab, _ = load_word_vectors(data / "test_glove.txt")
    assert "ö" in vocab and "é" in vocab


def test_word2vec_text_alias(data):
    a = load_word_vectors(data / "word2vec_pre_kv_c", format="word2vec_text")
    b = load_word_vectors(data / "word2vec_pre_kv_c", format="fasttext")
    assert a[0] == b[0] and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("name, shape", [("euclidean_vectors.bin", (2747, 10)), ("poincare_vectors.bin", (1182, 10))])
def test_binary_files_match_independent_reading(data, name, shape):
    words, vecs, _ = read_binary_independently(data / name)
    vocab, matrix = load_word_vectors(data / name)
    assert matrix.shape == shape
    check_loaded(vocab, matrix, words, vecs)
    check_loaded(*load_word_vectors(data / name, format="word2vec_binary"), words, vecs)


def test_binary_most_similar_matches_gensim_test_suite(data):
    """gensim's test_keyedvectors.py expects these 5 neighbours of 'war' in euclidean_vectors.bin."""
    vocab, m = load_word_vectors(data / "euclidean_vectors.bin")
    unit = m / np.linalg.norm(m, axis=1, keepdims=True)
    sims = unit @ unit[vocab["war"]]
    sims[vocab["war"]] = -np.inf
    words = list(vocab)
    assert [words[i] for i in np.argsort(-sims, kind="stable")[:5]] == [
        "conflict", "administration", "terrorism", "call", "israel"]


def test_binary_and_text_versions_agree(data):
    """high_precision.kv.bin was written by gensim from the .txt loaded as float16 (test_datatype.py)."""
    vb, mb = load_word_vectors(data / "high_precision.kv.bin")
    vt, mt = load_word_vectors(data / "high_precision.kv.txt")
    assert list(vb) == list(vt) == ["kangaroo.n.01", "horse.n.01"]
    np.testing.assert_array_equal(mb, mt.astype(np.float16).astype(np.float32))
    assert mt[vt["horse.n.01"], 0] == np.float32(-0.0008546282343595379)


def test_binary_with_newline_after_each_record(data, tmp_path):
    """The original word2vec tool writes '\\n' after each vector; same vectors as without."""
    words, vecs, _ = read_binary_independently(data / "euclidean_vectors.bin")
    path = tmp_path / "nl.bin"
    with open(path, "wb") as f:
        f.write(f"{len(words)} {vecs.shape[1]}\n".encode())
        for w, v in zip(words, vecs):
            f.write(w.encode() + b" " + v.astype("<f4").tobytes() + b"\n")
    assert detect_format(path) == "word2vec_binary"
    check_loaded(*load_word_vectors(path), words, vecs)


@pytest.mark.parametrize("name", ["lee_fasttext.vec", "test_glove.txt", "euclidean_vectors.bin"])
def test_limit_and_vocab(data, name):
    full_vocab, full = load_word_vectors(data / name)
    words = list(full_vocab)
    v, m = load_word_vectors(data / name, limit=10)
    assert list(v) == words[:10]
    np.testing.assert_array_equal(m, full[:10])
    v0, m0 = load_word_vectors(data / name, limit=0)
    assert v0 == {} and m0.shape == (0, full.shape[1]) and m0.dtype == np.float32
    wanted = [words[7], words[3], "no-such-word", words[-1]]
    v, m = load_word_vectors(data / name, vocab=wanted)
    assert list(v) == [words[3], words[7], words[-1]]  # file order
    np.testing.assert_array_equal(m, full[[3, 7, len(words) - 1]])
    v, m = load_word_vectors(data / name, vocab=wanted, limit=5)
    assert list(v) == [words[3]]


# ----------------------------------------------------------------------------- inconsistent files


def test_real_file_with_wrong_header_count(data):
    with pytest.raises(ValueError, match=r"pretrained\.vec: the header says 3 vectors but the file has 1"):
        load_word_vectors(data / "pretrained.vec")


def test_fasttext_model_binary_is_not_a_vector_file(data):
    with pytest.raises(ValueError, match=r"toy-model\.bin:1"):
        load_word_vectors(data / "toy-model.bin")


def edited_copy(src, dst, lineno, edit):
    lines = Path(src).read_text(encoding="utf-8").split("\n")
    lines[lineno - 1] = edit(lines[lineno - 1])
    Path(dst).write_text("\n".join(lines), encoding="utf-8")
    return dst


@pytest.mark.parametrize("name, fmt, lineno, edit, match", [
    ("lee_fasttext.vec", "auto", 57, lambda s: s.rsplit(" ", 2)[0], r":57: expected 10 values after the word, got 9"),
    ("lee_fasttext.vec", "fasttext", 300, lambda s: s + " 0.5", r":300: expected 10 values after the word, got 11"),
    ("lee_fasttext.vec", "fasttext", 301, lambda s: s + "\t0.5 ", r":301: expected 10 values after the word, got 11"),
    ("lee_fasttext.vec", "auto", 1, lambda s: "1762 11", r":2: expected 11 values after the word, got 10"),
    ("lee_fasttext.vec", "auto", 1, lambda s: "1762 ten", r":2: expected 1 values"),
    ("lee_fasttext.vec", "fasttext", 1, lambda s: "hello", r":1: expected a 'count dim' header"),
    ("lee_fasttext.vec", "auto", 1, lambda s: "1700 10", r":1702: more vectors than the header's count 1700"),
    ("lee_fasttext.vec", "auto", 1, lambda s: "1800 10", r"says 1800 vectors but the file has 1762"),
    ("lee_fasttext.vec", "auto", 1000, lambda s: "w 1 2 3 4 5 six 7 8 9 10", r":1000: 'six' is not a number"),
    ("test_glove.txt", "auto", 40, lambda s: s + " 1.0", r":40: expected 50 values after the word, got 51"),
    ("test_glove.txt", "glove", 76, lambda s: " ".join(s.split()[:-5]), r":76: expected 50 values after the word, got 45"),
    ("word2vec_pre_kv_c", "glove", 2, lambda s: s, r":2: expected 1 values after the word, got 10 \(the first line looks"),
])
def test_text_errors_name_file_and_line(data, tmp_path, name, fmt, lineno, edit, match):
    path = edited_copy(data / name, tmp_path / ("bad_" + name), lineno, edit)
    with pytest.raises(ValueError, match=match) as e:
        load_word_vectors(path, format=fmt)
    assert str(path) in str(e.value)


def test_binary_truncated_at_every_record(data, tmp_path):
    src = data / "euclidean_vectors.bin"
    raw = src.read_bytes()
    _, _, starts = read_binary_independently(src)
    path = tmp_path / "trunc.bin"
    rng = np.random.default_rng(0)
    for rec in [1, 2, 100, 2746, 2747] + rng.integers(1, 2748, size=20).tolist():
        start = starts[rec - 1]
        end = starts[rec] if rec < len(starts) else len(raw)
        for cut in (start, start + 3, end - 1):  # before the word, inside it, inside the vector
            path.write_bytes(raw[:cut])
            with pytest.raises(ValueError, match=rf"trunc\.bin: record {rec} \(of 2747\)"):
                load_word_vectors(path, format="word2vec_binary")
    # a limit that stops before the damage reads fine
    path.write_bytes(raw[:starts[100] + 5])
    assert load_word_vectors(path, format="word2vec_binary", limit=100)[1].shape == (100, 10)


def test_binary_header_errors(data, tmp_path):
    raw = (data / "euclidean_vectors.bin").read_bytes()
    body = raw[raw.index(b"\n") + 1:]
    path = tmp_path / "h.bin"
    path.write_bytes(b"2747 11\n" + body)  # wrong dim: records run into each other
    with pytest.raises(ValueError, match=r"h\.bin: record \d+"):
        load_word_vectors(path, format="word2vec_binary")
    path.write_bytes(b"2700 10\n" + body)  # too small a count: data left over
    with pytest.raises(ValueError, match=r"bytes follow the 2700 records"):
        load_word_vectors(path, format="word2vec_binary")
    path.write_bytes(b"2747 10 3\n" + body)
    with pytest.raises(ValueError, match=r"h\.bin: expected a 'count dim' header"):
        load_word_vectors(path, format="word2vec_binary")
    path.write_bytes(b"2747 0\n" + body)
    with pytest.raises(ValueError, match="invalid header"):
        load_word_vectors(path, format="word2vec_binary")


def test_binary_bad_utf8_word(tmp_path):
    path = tmp_path / "u.bin"
    path.write_bytes(b"2 2\nok " + np.ones(2, "<f4").tobytes() + b"\xff\xfe " + np.ones(2, "<f4").tobytes())
    with pytest.raises(ValueError, match=r"record 2: can't decode"):
        load_word_vectors(path)
    vocab, _ = load_word_vectors(path, unicode_errors="replace")
    assert len(vocab) == 2


def test_argument_errors(data):
    with pytest.raises(ValueError, match="format"):
        load_word_vectors(data / "test_glove.txt", format="elmo")
    with pytest.raises(ValueError, match="limit"):
        load_word_vectors(data / "test_glove.txt", limit=-1)


def test_extra_whitespace_is_tolerated(tmp_path):
    path = tmp_path / "ws.txt"
    path.write_text("a 1  2 \nb\t3 4\t\n", encoding="utf-8")
    vocab, m = load_word_vectors(path, format="glove")
    assert vocab == {"a": 0, "b": 1} and m.tolist() == [[1, 2], [3, 4]]


def test_duplicate_words_keep_first(tmp_path):
    path = tmp_path / "dup.txt"
    path.write_text("a 1 2\nb 3 4\na 5 6\n\n", encoding="utf-8")
    vocab, m = load_word_vectors(path)
    assert vocab == {"a": 0, "b": 1} and m.tolist() == [[1, 2], [3, 4]]


# ----------------------------------------------------------------------------- build_embedding_matrix


def test_build_embedding_matrix(data):
    vocab, vecs = load_word_vectors(data / "euclidean_vectors.bin")
    words = ["<pad>", "war", "War", "PEACE", "zzz-unknown", "the", "qqq-unknown"]
    m, missing = build_embedding_matrix(words, vecs, vocab, unknown="random", seed=3, zero_words=["<pad>"])
    assert m.dtype == np.float32 and m.shape == (7, 10)
    assert missing == ["zzz-unknown", "qqq-unknown"]
    np.testing.assert_array_equal(m[0], 0)  # padding row
    np.testing.assert_array_equal(m[1], vecs[vocab["war"]])
    np.testing.assert_array_equal(m[2], vecs[vocab["war"]])  # lowercase fallback
    np.testing.assert_array_equal(m[3], vecs[vocab["peace"]])
    np.testing.assert_array_equal(m[5], vecs[vocab["the"]])
    # unknown rows: N(0, std(vecs)^2) from default_rng(seed), in row order
    expected = np.random.default_rng(3).normal(0.0, float(vecs.astype(np.float64).std()), size=(2, 10))
    expected = expected.astype(np.float32)
    np.testing.assert_array_equal(m[[4, 6]], expected)
    m2, _ = build_embedding_matrix(words, vecs, vocab, unknown="random", seed=3, zero_words=["<pad>"])
    np.testing.assert_array_equal(m, m2)  # reproducible

    z, missing_z = build_embedding_matrix(words, vecs, vocab, unknown="zeros", lowercase_fallback=False)
    assert missing_z == ["<pad>", "War", "PEACE", "zzz-unknown", "qqq-unknown"]
    np.testing.assert_array_equal(z[[0, 2, 3, 4, 6]], 0)

    # a dict vocab (word -> row) works the same, and the matrix feeds an embedding lookup
    d = {w: i for i, w in enumerate(words)}
    md, _ = build_embedding_matrix(d, vecs, vocab, seed=3, zero_words=["<pad>"])
    np.testing.assert_array_equal(md, m)
    idx = tg.tensor([[1, 5], [3, 0]])
    out = F.embedding(idx, tg.from_numpy(md))
    np.testing.assert_array_equal(out.numpy(), md[[[1, 5], [3, 0]]])


def test_build_embedding_matrix_errors():
    with pytest.raises(ValueError, match="unknown"):
        build_embedding_matrix(["a"], np.zeros((1, 2)), {"a": 0}, unknown="mean")
    with pytest.raises(ValueError, match="rows 0..n-1"):
        build_embedding_matrix({"a": 1}, np.zeros((1, 2)), {"a": 0})
    with pytest.raises(ValueError, match="2-D"):
        build_embedding_matrix(["a"], np.zeros(2), {"a": 0})
