"""The runnable examples: they train on real data and must reach real accuracy."""

import os

import pytest

from tapegrad.examples import demo

HERE = os.path.dirname(os.path.abspath(__file__))
WIKIANN = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "wikiann-en"))


def test_demo_loss_falls(capsys):
    final, first = demo.main(["--steps", "600"])
    assert final < 0.25 * first
    assert "loss fell" in capsys.readouterr().out


def test_digits_reaches_95_percent():
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install scikit-learn)")
    from tapegrad.examples import digits

    acc = digits.main(["--quiet"])
    assert acc >= 0.95


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory):
    if not os.path.exists(os.path.join(WIKIANN, "train.txt")):
        pytest.skip(f"WikiANN data not found at {WIKIANN}")
    from tapegrad.examples import ner_window

    ckpt = str(tmp_path_factory.mktemp("ner") / "best.tgckpt")
    # The full training set: an epoch takes a few seconds.
    args = ["--data-dir", WIKIANN, "--epochs", "2", "--max-dev-sentences", "3000",
            "--checkpoint", ckpt, "--seed", "0"]
    lines = []
    model, history = ner_window.train(ner_window.build_parser().parse_args(args), say=lines.append)
    return ckpt, history, lines


def test_ner_window_learns_entities(ner_run):
    ckpt, history, lines = ner_run
    # Tagging every token O gives entity F1 0 and token accuracy ~0.6 on WikiANN;
    # only a model that has learnt names clears these levels.
    assert history[-1]["dev_f1"] > 0.38
    assert history[-1]["dev_accuracy"] > 0.8
    assert history[-1]["loss"] < history[0]["loss"]
    assert os.path.exists(ckpt)
    assert any("dev entity P/R/F1" in line for line in lines)


def test_ner_window_predicts_a_sentence(ner_run, capsys):
    from tapegrad.examples import ner_window

    ckpt, _, _ = ner_run
    tagged = ner_window.main(["--checkpoint", ckpt, "--predict",
                              "Samuel Quinn was arrested in the Hilton Hotel in Paris in April 1989."])
    words = [w for w, _ in tagged]
    assert words[:2] == ["Samuel", "Quinn"] and words[-1] == "."
    tags = dict(tagged)
    assert tags["Samuel"].endswith("PER") or tags["Quinn"].endswith("PER")
    assert tags["Paris"].endswith("LOC")
    assert "Paris" in capsys.readouterr().out


def test_ner_window_rejects_malformed_conll(tmp_path):
    from tapegrad.examples import ner_window

    bad = tmp_path / "bad.txt"
    bad.write_text("Paris\tB-LOC\nonecolumn\n\n")
    with pytest.raises(ValueError, match=r"bad.txt:2"):
        ner_window.main(["--train", str(bad), "--dev", str(bad), "--epochs", "1",
                         "--checkpoint", str(tmp_path / "c.tgckpt")])
