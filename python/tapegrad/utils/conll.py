"""Read CoNLL-style NER files into ``(words, tags)`` sentences with IOB2 tags.

    sentences = read_conll("../shared/data/wikiann-en/train.txt")
    words, tags = sentences[0]     # ['R.H.', 'Saunders', ...], ['B-ORG', 'I-ORG', ...]

Accepted layouts (one token per line, a blank line ends a sentence):

* WikiANN: ``en:word<TAB>tag``. The ``xx:`` language prefix is stripped: with
  ``strip_prefix=None`` (default) it is detected from the first token
  (``^[a-z]{2,3}:``) and stripped only if every token in the file has it, so a
  CoNLL file whose first word happens to be ``re:`` keeps its words intact.
  ``strip_prefix="en:"`` strips that prefix wherever present; ``False`` never
  strips.
* CoNLL-2003: ``word POS chunk tag``: the word is the first column and the tag
  the last. Lines holding a tab are split on tabs (so words may contain
  spaces), others on runs of whitespace. ``-DOCSTART-`` lines are skipped.

Tags: ``O``, ``B-TYPE``, ``I-TYPE``, or a plain ``TYPE`` with no prefix (plain
runs are converted to IOB2: the first token of a run of one type gets
``B-``, the rest ``I-``). With ``scheme="iob2"`` (default) the file must
already be valid IOB2 where it uses prefixes: an ``I-X`` that does not continue
an ``X`` chunk is an error. ``scheme="iob1"`` converts IOB1 (the original
CoNLL-2003 tagging, where ``I-X`` opens a chunk and ``B-X`` only separates two
adjacent ``X`` chunks) to IOB2.

Malformed input (a line with a single column, a tag such as ``X-PER`` or
``B-``) raises ``ValueError`` naming the file and line number.
"""

from __future__ import annotations

import os
import re

__all__ = ["read_conll", "iob1_to_iob2"]

_PREFIX_RE = re.compile(r"^([a-z]{2,3}):")


_TAG_CACHE = {}


def _parse_tag(tag):
    """(prefix, type) with prefix in 'B', 'I', 'O', or '' for a plain type; None if invalid."""
    try:
        return _TAG_CACHE[tag]
    except KeyError:
        pass
    parsed = _parse_tag_uncached(tag)
    if len(_TAG_CACHE) < 10000:
        _TAG_CACHE[tag] = parsed
    return parsed


def _parse_tag_uncached(tag):
    if tag == "O":
        return "O", ""
    if "-" in tag:
        prefix, typ = tag.split("-", 1)
        if prefix in ("B", "I") and typ and not typ.isspace():
            return prefix, typ
        return None
    return "", tag


def iob1_to_iob2(tags):
    """Convert one sentence's IOB1 tags to IOB2 (an ``I-X`` that opens a chunk becomes ``B-X``)."""
    out = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def read_conll(path, strip_prefix=None, scheme="iob2", encoding="utf-8"):
    """Read a CoNLL/IOB file; returns a list of ``(words, tags)`` pairs of lists of str.

    ``strip_prefix``: ``None`` auto-detects a language prefix such as ``en:`` (stripped
    only when every token has it), a string strips exactly that prefix, ``False`` keeps
    words as they are. ``scheme``: ``"iob2"`` (validate) or ``"iob1"`` (convert to IOB2).
    Plain tags without a prefix are converted to IOB2 under either scheme.
    """
    if scheme not in ("iob2", "iob1"):
        raise ValueError(f"read_conll: scheme must be 'iob2' or 'iob1', got {scheme!r}")
    if strip_prefix is not None and strip_prefix is not False and not isinstance(strip_prefix, str):
        raise TypeError(f"read_conll: strip_prefix must be None, False or a str, got {strip_prefix!r}")
    name = os.fspath(path)

    sentences = []  # (words, tags, line numbers)
    words, tags, lines = [], [], []

    def end_sentence():
        nonlocal words, tags, lines
        if words:
            sentences.append((words, tags, lines))
        words, tags, lines = [], [], []

    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # tolerate a byte-order mark
    with open(name, encoding=encoding, newline=None) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                end_sentence()
                continue
            if line.startswith("-DOCSTART-"):
                end_sentence()
                continue
            if "\t" in line:
                cols = [c.strip() for c in line.split("\t")]
            else:
                cols = line.split()
            if len(cols) < 2:
                raise ValueError(
                    f"{name}:{lineno}: expected a word and a tag (the tag in the last column), "
                    f"got a single column: {line!r}"
                )
            word, tag = cols[0], cols[-1]
            if not word:
                raise ValueError(f"{name}:{lineno}: empty word in line {line!r}")
            if not tag:
                raise ValueError(f"{name}:{lineno}: empty tag in line {line!r}")
            if _parse_tag(tag) is None:
                raise ValueError(
                    f"{name}:{lineno}: invalid tag {tag!r}; expected 'O', 'B-TYPE', 'I-TYPE' "
                    f"or a plain 'TYPE'"
                )
            words.append(word)
            tags.append(tag)
            lines.append(lineno)
    end_sentence()

    # Language prefix.
    prefix = None
    if isinstance(strip_prefix, str):
        prefix = strip_prefix
    elif strip_prefix is None and sentences:
        m = _PREFIX_RE.match(sentences[0][0][0])
        if m and all(w.startswith(m.group(0)) for ws, _, _ in sentences for w in ws):
            prefix = m.group(0)

    out = []
    for ws, ts, ls in sentences:
        if prefix:
            ws = [w[len(prefix):] if w.startswith(prefix) else w for w in ws]
        out.append((ws, _to_iob2(ts, ls, name, scheme)))
    return out


def _to_iob2(tags, lines, name, scheme):
    out = []
    prev_type = None  # type of the previous token's chunk, None after O / at the start
    for tag, lineno in zip(tags, lines):
        prefix, typ = _parse_tag(tag)
        if prefix == "O":
            out.append("O")
            prev_type = None
            continue
        if prefix == "":  # plain type: a run of one type is one chunk
            prefix = "I" if prev_type == typ else "B"
        elif prefix == "I" and prev_type != typ:
            if scheme == "iob1":
                prefix = "B"
            else:
                before = "the start of the sentence" if prev_type is None and not out else repr(out[-1])
                raise ValueError(
                    f"{name}:{lineno}: tag {tag!r} follows {before}, which is not valid IOB2 "
                    f"(an I-{typ} must continue a {typ} chunk); pass scheme='iob1' to read IOB1 files"
                )
        out.append(f"{prefix}-{typ}")
        prev_type = typ
    return out
