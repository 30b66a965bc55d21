"""Load pretrained word vectors (GloVe text, word2vec binary, fastText ``.vec``) and build embedding matrices.

    vocab, vectors = load_word_vectors("glove.6B.50d.txt")          # format detected
    weights, missing = build_embedding_matrix(my_words, vectors, vocab, unknown="random", seed=0)
    emb = tg.nn.Embedding.from_pretrained(tg.from_numpy(weights), freeze=False)

``load_word_vectors`` returns ``(vocab, matrix)``: ``vocab`` maps each word to
its row of ``matrix``, a float32 array of shape ``(n, dim)``, rows in file order.

Formats
-------
``"glove"``
    text, no header; each line ``word v1 ... vd`` separated by single spaces
    (``dim`` is taken from the first line).
``"fasttext"`` (alias ``"word2vec_text"``)
    the same lines after a ``count dim`` header line (fastText ``.vec``,
    word2vec ``-binary 0`` output).
``"word2vec_binary"``
    a ``count dim\\n`` header, then per word ``word<space>`` followed by
    ``dim`` little-endian float32 values (``4*dim`` bytes), optionally followed
    by a newline.
``"auto"`` (default)
    a first line of two integers is a header; then the first record decides
    between text (a line of ``word`` and ``dim`` numbers) and binary. Anything
    else is GloVe.

Fields are separated by single spaces; runs of spaces or tabs are tolerated,
as are trailing spaces (fastText writes one). Words cannot contain spaces. Blank lines are skipped. A word that occurs twice keeps its first vector.

``limit`` reads at most that many vectors from the start of the file (the most
frequent words, in the usual files); ``vocab`` keeps only the words in that
collection (rows are renumbered in file order).

Inconsistent input raises ``ValueError`` naming the file and the line (text) or
record (binary, counted from 1): a row with the wrong number of values or a
value that is not a number, a malformed header, a header count that disagrees
with the rows present, a truncated binary record, undecodable words.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

__all__ = ["load_word_vectors", "detect_format", "build_embedding_matrix"]

_FORMATS = ("auto", "glove", "fasttext", "word2vec_text", "word2vec_binary")
_CHUNK = 8192  # rows converted per np.array call
_SEPARATORS = re.compile(r"[ \t]+")
_MAX_DIM_CAP = 1 << 20  # a dim above this must also fit in the file (one record needs > dim bytes)


def _check_dim(name, dim, size, header_text):
    """Reject a header dim that no file of `size` bytes can hold (nothing is allocated from it)."""
    if dim > max(size, _MAX_DIM_CAP):
        raise ValueError(
            f"{name}:1: invalid header {header_text!r}: dim {dim} is impossible for a file of {size} bytes"
        )


def _parse_header(line):
    """(count, dim) if `line` (bytes) is a 'count dim' header, else None."""
    parts = line.split()
    if len(parts) != 2:
        return None
    try:
        count, dim = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return count, dim


def _looks_like_text_record(line, dim, encoding):
    """Is `line` (bytes) a text record: a word then numbers (dim of them, or at least two,
    so that a header whose dim is wrong still reads as text and gets a clear error)?"""
    try:
        parts = _SEPARATORS.split(line.decode(encoding).strip())
    except UnicodeDecodeError:
        return False
    if len(parts) - 1 != dim and len(parts) < 3:
        return False
    try:
        [float(x) for x in parts[1:]]
    except ValueError:
        return False
    return True


def detect_format(path, encoding="utf-8"):
    """Guess the format of a word-vector file: ``"glove"``, ``"fasttext"`` or ``"word2vec_binary"``."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        first = f.readline(1 << 20)
        header = _parse_header(first)
        if header is None:
            return "glove"
        count, dim = header
        if count == 0 or dim <= 0:
            return "fasttext"
        # A text record is at most a long word plus dim numbers of ~25 characters.
        # Never ask for more than the file can hold (a huge header dim would overflow readline).
        second = f.readline(max(1, min(4096 + 32 * dim, size)))
        return "fasttext" if _looks_like_text_record(second, dim, encoding) else "word2vec_binary"


def _check_limit(limit):
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
        raise ValueError(f"load_word_vectors: limit must be a non-negative int or None, got {limit!r}")
    return int(limit)


def load_word_vectors(path, format="auto", limit=None, vocab=None, encoding="utf-8", unicode_errors="strict"):
    """Read a word-vector file; returns ``(vocab: dict word -> row, matrix: float32 (n, dim))``.

    ``format``: ``"auto"``, ``"glove"``, ``"fasttext"`` (= ``"word2vec_text"``) or
    ``"word2vec_binary"``. ``limit``: read at most this many vectors. ``vocab``: keep only
    these words. See the module docstring for the formats and the errors raised.
    """
    if format not in _FORMATS:
        raise ValueError(f"load_word_vectors: format must be one of {_FORMATS}, got {format!r}")
    name = os.fspath(path)
    limit = _check_limit(limit)
    keep = None if vocab is None else set(vocab)
    if format == "auto":
        format = detect_format(name, encoding)
    if format == "word2vec_binary":
        return _load_binary(name, limit, keep, encoding, unicode_errors)
    return _load_text(name, format, limit, keep, encoding, unicode_errors)


def _to_matrix(flat, nrows, dim, rows_lines, name):
    try:
        with np.errstate(over="raise"):
            return np.array(flat, dtype=np.float32).reshape(nrows, dim)
    except FloatingPointError:
        # A finite value beyond float32's range: name the line instead of letting NumPy warn.
        for i, lineno in enumerate(rows_lines):
            for v in flat[i * dim:(i + 1) * dim]:
                x = float(v)
                if math.isfinite(x) and abs(x) > float(np.finfo(np.float32).max):
                    with np.errstate(over="ignore"):
                        if np.isinf(np.float32(x)):
                            raise ValueError(
                                f"{name}:{lineno}: {v!r} is outside the float32 range") from None
        raise ValueError(f"{name}: a value is outside the float32 range") from None  # pragma: no cover
    except ValueError:
        # Find the offending line for the message.
        for i, lineno in enumerate(rows_lines):
            for v in flat[i * dim:(i + 1) * dim]:
                try:
                    float(v)
                except ValueError:
                    raise ValueError(f"{name}:{lineno}: {v!r} is not a number") from None
        raise  # pragma: no cover


def _load_text(name, format, limit, keep, encoding, unicode_errors):
    words = {}
    chunks = []  # float32 arrays
    flat, rows_lines = [], []
    count = dim = None
    header_line = False
    rows_read = 0

    def flush():
        if rows_lines:
            chunks.append(_to_matrix(flat, len(rows_lines), dim, rows_lines, name))
            flat.clear()
            rows_lines.clear()

    with open(name, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode(encoding, unicode_errors)
            except UnicodeDecodeError as e:
                raise ValueError(f"{name}:{lineno}: can't decode the line as {encoding} ({e})") from None
            line = line.rstrip()
            if lineno == 1 and format in ("fasttext", "word2vec_text"):
                header = _parse_header(raw)
                if header is None:
                    raise ValueError(
                        f"{name}:1: expected a 'count dim' header line for format {format!r}, got "
                        f"{line[:60]!r} (use format='glove' for files without a header)"
                    )
                count, dim = header
                if count < 0 or dim <= 0:
                    raise ValueError(f"{name}:1: invalid header {line!r} (count {count}, dim {dim})")
                _check_dim(name, dim, os.fstat(f.fileno()).st_size, line)
                header_line = True
                continue
            if not line:
                continue
            parts = line.split(" ")
            if dim is None or len(parts) != dim + 1:
                parts = _SEPARATORS.split(line)  # tolerate runs of spaces and tabs
            if dim is None:  # GloVe: the first row fixes the dimension
                dim = len(parts) - 1
                if dim <= 0:
                    raise ValueError(f"{name}:{lineno}: expected a word followed by numbers, got {line[:60]!r}")
            if limit is not None and rows_read >= limit:
                break
            if len(parts) != dim + 1:
                hint = ""
                if format == "glove" and lineno == 2 and dim == 1:
                    hint = " (the first line looks like a 'count dim' header: use format='fasttext')"
                raise ValueError(
                    f"{name}:{lineno}: expected {dim} values after the word, got {len(parts) - 1}{hint}"
                )
            rows_read += 1
            if count is not None and rows_read > count:
                raise ValueError(f"{name}:{lineno}: more vectors than the header's count {count}")
            word = parts[0]
            if not word:
                raise ValueError(f"{name}:{lineno}: empty word")
            if (keep is not None and word not in keep) or word in words:
                continue
            words[word] = len(words)
            flat.extend(parts[1:])
            rows_lines.append(lineno)
            if len(rows_lines) >= _CHUNK:
                flush()
    flush()
    if header_line and (limit is None or rows_read < limit) and rows_read != count:
        raise ValueError(f"{name}: the header says {count} vectors but the file has {rows_read} (truncated?)")
    if dim is None:
        dim = 0
    matrix = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    return words, matrix


def _load_binary(name, limit, keep, encoding, unicode_errors):
    with open(name, "rb") as f:
        data = f.read()
    nl = data.find(b"\n")
    header = _parse_header(data[:nl]) if nl >= 0 else None
    if header is None:
        raise ValueError(f"{name}: expected a 'count dim' header line for a word2vec binary file")
    count, dim = header
    if count < 0 or dim <= 0:
        raise ValueError(f"{name}: invalid header (count {count}, dim {dim})")
    _check_dim(name, dim, len(data), data[:nl].decode("ascii", "replace").rstrip())
    nbytes = 4 * dim
    n = count if limit is None else min(count, limit)
    words = {}
    offsets = []
    pos = nl + 1
    size = len(data)
    for rec in range(1, n + 1):
        while pos < size and data[pos] == 0x0A:  # the optional newline after the previous vector
            pos += 1
        sp = data.find(b" ", pos)
        if pos >= size or sp < 0:
            raise ValueError(
                f"{name}: record {rec} (of {count}) is missing or truncated: no 'word ' at byte {pos}"
            )
        wbytes = data[pos:sp]
        if not wbytes:
            raise ValueError(f"{name}: record {rec}: empty word at byte {pos}")
        start = sp + 1
        if start + nbytes > size:
            raise ValueError(
                f"{name}: record {rec} (of {count}) is truncated: {size - start} of {nbytes} vector bytes present"
            )
        pos = start + nbytes
        try:
            word = wbytes.decode(encoding, unicode_errors)
        except UnicodeDecodeError as e:
            raise ValueError(f"{name}: record {rec}: can't decode the word as {encoding} ({e})") from None
        if (keep is not None and word not in keep) or word in words:
            continue
        words[word] = len(words)
        offsets.append(start)
    if n == count and data[pos:].strip(b"\n\r \t"):
        raise ValueError(
            f"{name}: {size - pos} bytes follow the {count} records of the header "
            f"(wrong count or dim in the header?)"
        )
    if not offsets:
        return words, np.zeros((0, dim), dtype=np.float32)
    buf = np.frombuffer(data, dtype=np.uint8)
    offsets = np.asarray(offsets, dtype=np.int64)
    raw = np.empty((len(offsets), nbytes), dtype=np.uint8)
    cols = np.arange(nbytes, dtype=np.int64)
    for i in range(0, len(offsets), _CHUNK):
        raw[i:i + _CHUNK] = buf[offsets[i:i + _CHUNK, None] + cols]
    matrix = raw.view("<f4").astype(np.float32, copy=False).reshape(len(offsets), dim)
    return words, matrix


def build_embedding_matrix(vocab_words, vectors, vocab_index, unknown="random", seed=0,
                           lowercase_fallback=True, scale=None, zero_words=()):
    """Rows of pretrained ``vectors`` for ``vocab_words``; returns ``(matrix, missing)``.

    ``vocab_words``: the model's words in row order (a sequence, or a dict word -> row
    with rows 0..n-1). ``vectors``, ``vocab_index``: what :func:`load_word_vectors` returns.
    A word not in ``vocab_index`` is looked up lowercased when ``lowercase_fallback``;
    still missing, its row is drawn from ``N(0, scale^2)`` (``unknown="random"``, seeded by
    ``seed``; ``scale`` defaults to the standard deviation of ``vectors``) or zeros
    (``unknown="zeros"``). Words in ``zero_words`` (e.g. a padding token) get zero rows
    and are not counted as missing. ``matrix`` is float32 ``(len(vocab_words), dim)``,
    ready for ``nn.Embedding.from_pretrained(tg.from_numpy(matrix))``; ``missing`` lists the
    words that got an unknown-word row, in row order (``len(missing)`` is the count).
    """
    if unknown not in ("random", "zeros"):
        raise ValueError(f"build_embedding_matrix: unknown must be 'random' or 'zeros', got {unknown!r}")
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"build_embedding_matrix: vectors must be 2-D (n, dim), got shape {vectors.shape}")
    if isinstance(vocab_words, dict):
        rows = sorted(vocab_words.items(), key=lambda kv: kv[1])
        if [r for _, r in rows] != list(range(len(rows))):
            raise ValueError("build_embedding_matrix: a dict vocab must map words to rows 0..n-1")
        vocab_words = [w for w, _ in rows]
    else:
        vocab_words = list(vocab_words)
    n, dim = len(vocab_words), vectors.shape[1]
    zero_words = set(zero_words)

    src = np.full(n, -1, dtype=np.int64)
    missing_rows = []
    for i, w in enumerate(vocab_words):
        if w in zero_words:
            continue
        j = vocab_index.get(w)
        if j is None and lowercase_fallback:
            j = vocab_index.get(w.lower())
        if j is None:
            missing_rows.append(i)
        else:
            src[i] = j

    matrix = np.zeros((n, dim), dtype=np.float32)
    found = src >= 0
    matrix[found] = vectors[src[found]]
    if unknown == "random" and missing_rows:
        if scale is None:
            scale = float(vectors.std(dtype=np.float64)) if vectors.size else 1.0
        rng = np.random.default_rng(seed)
        matrix[missing_rows] = rng.normal(0.0, scale, size=(len(missing_rows), dim)).astype(np.float32)
    return matrix, [vocab_words[i] for i in missing_rows]
