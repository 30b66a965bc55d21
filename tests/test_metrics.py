"""tapegrad.utils.metrics against hand computations and the official CoNLL scorer conlleval.pl.

conlleval.pl is not part of this repository: it is fetched from the seqeval 1.2.2
source distribution (``pip download --no-deps --no-binary :all: seqeval==1.2.2``,
file ``tests/conlleval.pl``) into a cache directory under the pytest cache (or
$TMPDIR), and run with ``perl`` on
(a) ``tests/data/ground_truth.txt``, the chunking example shipped with it, and
(b) the real WikiANN dev tags against predictions made by corrupting them with a
    seeded random process.
Those tests skip, saying why, without network access, perl or the WikiANN data.
"""

import os
import re
import shutil
import subprocess
import tarfile

import numpy as np
import pytest

from tapegrad.utils.conll import read_conll
from tapegrad.utils.metrics import entity_scores, f1_score, get_entities, token_accuracy
from _fetch import cache_dir, pip_download

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIKIANN = os.path.join(REPO_ROOT, "..", "shared", "data", "wikiann-en")
SEQEVAL_VERSION = "1.2.2"
SDIST = f"seqeval-{SEQEVAL_VERSION}.tar.gz"
MEMBERS = {"conlleval.pl": "tests/conlleval.pl", "ground_truth.txt": "tests/data/ground_truth.txt"}


# ----------------------------------------------------------------------------- hand-computed cases


def test_get_entities_conlleval_chunk_rules():
    assert get_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
    assert get_entities(["B-PER", "B-PER", "I-PER"]) == [("PER", 0, 1), ("PER", 1, 3)]
    # I-X opens a chunk after O, at the start, or after another type (IOB1-style input)
    assert get_entities(["I-PER", "I-PER", "O", "I-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
    assert get_entities(["B-PER", "I-LOC", "I-LOC", "I-PER"]) == [("PER", 0, 1), ("LOC", 1, 3), ("PER", 3, 4)]
    assert get_entities(["O", "O"]) == [] and get_entities([]) == []
    assert get_entities(["B-A-B", "I-A-B"]) == [("A-B", 0, 2)]  # types may contain hyphens


def test_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "I-ORG", "O"]]
    s = entity_scores(gold, pred)
    # gold: PER(0,2) LOC(3,4) | ORG(0,1) PER(2,3); pred: PER(0,2) ORG(3,4) | ORG(0,2); correct: PER(0,2)
    assert (s.n_gold, s.n_pred, s.n_correct) == (4, 3, 1)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(1 / 4)
    assert s.f1 == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    assert s.accuracy == pytest.approx(4 / 7) and s.n_tokens == 7
    assert list(s.per_type) == ["LOC", "ORG", "PER"]
    assert (s.per_type["PER"].precision, s.per_type["PER"].recall) == (1.0, 0.5)
    assert (s.per_type["LOC"].precision, s.per_type["LOC"].recall, s.per_type["LOC"].f1) == (0.0, 0.0, 0.0)
    assert (s.per_type["ORG"].n_gold, s.per_type["ORG"].n_pred, s.per_type["ORG"].n_correct) == (1, 2, 0)
    assert token_accuracy(gold, pred) == s.accuracy and f1_score(gold, pred) == s.f1
    d = s.as_dict()
    assert d["PER"]["f1"] == pytest.approx(2 / 3) and d["n_correct"] == 1


def test_entities_do_not_cross_sentences_and_flat_input():
    gold = [["B-PER"], ["I-PER"]]
    assert entity_scores(gold, gold).n_gold == 2
    assert entity_scores(["B-PER", "I-PER"], ["B-PER", "I-PER"]).n_gold == 1  # one flat sequence


def test_perfect_and_empty():
    s = entity_scores([["O", "B-X"]], [["O", "B-X"]])
    assert (s.precision, s.recall, s.f1, s.accuracy) == (1.0, 1.0, 1.0, 1.0)
    e = entity_scores([["O"]], [["O"]])
    assert (e.precision, e.recall, e.f1, e.n_gold) == (0.0, 0.0, 0.0, 0)
    assert entity_scores([], []).n_tokens == 0


def test_invalid_input():
    with pytest.raises(ValueError, match="invalid IOB tag 'PER'"):
        entity_scores([["PER"]], [["O"]])
    with pytest.raises(ValueError, match="invalid IOB tag 'X-PER'"):
        entity_scores([["O"]], [["X-PER"]])
    with pytest.raises(ValueError, match="2 gold tags but 1"):
        entity_scores([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="sentences"):
        entity_scores([["O"], ["O"]], [["O"]])


# ----------------------------------------------------------------------------- fetching conlleval.pl


@pytest.fixture(scope="session")
def conlleval(pytestconfig):
    """Paths of conlleval.pl and the example ground_truth.txt from the seqeval sdist."""
    if shutil.which("perl") is None:
        pytest.skip("perl is not installed (needed to run the reference conlleval.pl)")
    d = cache_dir(pytestconfig, f"tapegrad-seqeval-{SEQEVAL_VERSION}")
    out = {k: d / k for k in MEMBERS}
    if all(p.exists() for p in out.values()):
        return out
    sdist = d / SDIST
    if not sdist.exists():
        spec = f"seqeval=={SEQEVAL_VERSION}"
        got, log = pip_download(d, [
            # seqeval's setup.py fetches setuptools_scm itself; the PEP 517 path installs it properly.
            ["--no-deps", "--no-binary", ":all:", "--use-pep517", spec],
            ["--no-deps", "--no-binary", ":all:", spec],
        ])
        if got is None or got.name != SDIST:
            pytest.skip(f"could not fetch the seqeval {SEQEVAL_VERSION} sdist with pip "
                        f"(no network or index?): {' | '.join(log)}")
    with tarfile.open(sdist, "r:gz") as tf:
        for key, member in MEMBERS.items():
            data = tf.extractfile(f"seqeval-{SEQEVAL_VERSION}/{member}").read()
            tmp = out[key].with_suffix(".part")
            tmp.write_bytes(data)
            os.replace(tmp, out[key])
    return out


# ----------------------------------------------------------------------------- comparing with conlleval.pl

_OVERALL = re.compile(
    r"processed (\d+) tokens with (\d+) phrases; found: (\d+) phrases; correct: (\d+)\.\n"
    r"accuracy:\s*([\d.]+)%; precision:\s*([\d.]+)%; recall:\s*([\d.]+)%; FB1:\s*([\d.]+)\n")
_TYPE = re.compile(r"^\s*(\S+): precision:\s*([\d.]+)%; recall:\s*([\d.]+)%; FB1:\s*([\d.]+)\s+(\d+)$", re.M)


def run_conlleval(script, path):
    with open(path, "rb") as f:
        r = subprocess.run(["perl", str(script)], stdin=f, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode("utf-8")


def close(ours, printed):
    """Our fraction equals conlleval's percentage to its 2 printed decimals."""
    return abs(100 * ours - float(printed)) <= 0.005 + 1e-9


def assert_matches_conlleval(scores, output):
    m = _OVERALL.search(output)
    assert m, output
    n_tok, n_gold, n_pred, n_correct = map(int, m.groups()[:4])
    acc, p, r, f = m.groups()[4:]
    assert (scores.n_tokens, scores.n_gold, scores.n_pred, scores.n_correct) == (n_tok, n_gold, n_pred, n_correct)
    assert close(scores.accuracy, acc) and close(scores.precision, p)
    assert close(scores.recall, r) and close(scores.f1, f)
    types = {t: rest for t, *rest in _TYPE.findall(output)}
    assert sorted(types) == sorted(scores.per_type)
    for t, (tp, tr, tf, found) in types.items():
        s = scores.per_type[t]
        assert close(s.precision, tp) and close(s.recall, tr) and close(s.f1, tf), (t, s, tp, tr, tf)
        assert s.n_pred == int(found)
    # and the report reproduces the scorer's output text exactly
    assert scores.report() == output


def read_columns(path):
    """Sentences of (gold, pred) from a 'word ... gold pred' file; blank lines separate sentences."""
    gold, pred, g, p = [], [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.split()
            if not cols:
                if g:
                    gold.append(g)
                    pred.append(p)
                g, p = [], []
                continue
            g.append(cols[-2])
            p.append(cols[-1])
    if g:
        gold.append(g)
        pred.append(p)
    return gold, pred


def test_conlleval_example_file(conlleval):
    """The chunking example shipped with conlleval (IOB1-style I- chunk starts, six chunk types)."""
    gold, pred = read_columns(conlleval["ground_truth.txt"])
    output = run_conlleval(conlleval["conlleval.pl"], conlleval["ground_truth.txt"])
    scores = entity_scores(gold, pred)
    assert scores.n_tokens == 961 and len(scores.per_type) == 6
    assert_matches_conlleval(scores, output)


TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def corrupt(sentences, rng, p_token, p_entity):
    """Seeded noise on gold tags: entity-level type swaps, drops and boundary shifts, then
    token-level random tags (which produce I- chunk starts and type switches mid-chunk)."""
    preds = []
    for _, tags in sentences:
        tags = list(tags)
        for typ, s, e in get_entities(tags):
            if rng.random() >= p_entity:
                continue
            op = rng.integers(4)
            if op == 0:  # wrong type
                new = rng.choice([t for t in ("PER", "ORG", "LOC") if t != typ])
                tags[s:e] = [f"B-{new}"] + [f"I-{new}"] * (e - s - 1)
            elif op == 1:  # missed entity
                tags[s:e] = ["O"] * (e - s)
            elif op == 2 and e < len(tags) and tags[e] == "O":  # extend by one token
                tags[e] = f"I-{typ}"
            elif op == 3 and e - s > 1:  # shrink from the left
                tags[s] = "O"
                tags[s + 1] = f"B-{typ}"
        for i in range(len(tags)):
            if rng.random() < p_token:
                tags[i] = TAGS[rng.integers(len(TAGS))]
        preds.append(tags)
    return preds


@pytest.fixture(scope="module")
def wikiann_dev():
    path = os.path.join(WIKIANN, "dev.txt")
    if not os.path.exists(path):
        pytest.skip(f"WikiANN dev data not found at {os.path.normpath(path)} (shared data directory absent)")
    return read_conll(path)


@pytest.mark.parametrize("seed, p_token, p_entity", [(0, 0.02, 0.1), (1, 0.2, 0.5)])
def test_conlleval_on_corrupted_wikiann_dev(conlleval, wikiann_dev, tmp_path, seed, p_token, p_entity):
    rng = np.random.default_rng(seed)
    gold = [tags for _, tags in wikiann_dev]
    pred = corrupt(wikiann_dev, rng, p_token, p_entity)
    path = tmp_path / "pred.txt"
    with open(path, "w", encoding="utf-8") as f:
        for (words, g), p in zip(wikiann_dev, pred):
            for w, gt, pt in zip(words, g, p):
                f.write(f"{'w' if w == '-X-' else w} {gt} {pt}\n")  # '-X-' is conlleval's boundary word
            f.write("\n")
    scores = entity_scores(gold, pred)
    assert scores.n_tokens > 80_000 and 0 < scores.f1 < 1
    assert_matches_conlleval(scores, run_conlleval(conlleval["conlleval.pl"], path))
