"""The window NER model in tapegrad and in PyTorch, side by side in one run.

Same data (WikiANN English), same features, same architecture and
hyperparameters, same optimizers (Adam for dense parameters, SparseAdam for the
sparse word-embedding rows). Reports dev entity F1, token accuracy and the
median time per epoch of each, with the machine and thread count.

    python bench/ner_window_vs_torch.py --epochs 3 --threads 1
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np

import tapegrad as tg
from tapegrad.examples import ner_window as ner
from tapegrad.utils.conll import read_conll
from tapegrad.utils.metrics import entity_scores


def run_tapegrad(args, tr, dev, n_vocab, tags):
    tg.manual_seed(args.seed)
    model = ner.WindowTagger(n_vocab, len(tags), window=args.window, hidden=args.hidden,
                             dropout=args.dropout)
    dense = [p for n, p in model.named_parameters() if not n.startswith("words.")]
    opt = tg.optim.Adam(dense, lr=args.lr)
    sparse_opt = tg.optim.SparseAdam([model.words.weight], lr=args.lr)
    rng = np.random.default_rng(args.seed)
    times, result = [], None
    n = len(tr[2])
    for _ in range(args.epochs):
        order = rng.permutation(n)
        start = time.perf_counter()
        for i in range(0, n, args.batch_size):
            idx = order[i:i + args.batch_size]
            logits = model(tg.from_numpy(tr[0][idx]), tg.from_numpy(tr[1][idx]))
            loss = tg.nn.functional.cross_entropy(logits, tg.from_numpy(tr[2][idx]))
            opt.zero_grad()
            sparse_opt.zero_grad()
            loss.backward()
            opt.step()
            sparse_opt.step()
        times.append(time.perf_counter() - start)
        result = ner.evaluate(model, dev, tags)
    return times, result


def run_torch(args, tr, dev, n_vocab, tags):
    import torch

    torch.manual_seed(args.seed)

    class WindowTagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.words = torch.nn.Embedding(n_vocab, 50, padding_idx=0, sparse=True)
            self.cases = torch.nn.Embedding(ner.N_CASES, 4, padding_idx=0)
            self.hidden = torch.nn.Linear((2 * args.window + 1) * 54, args.hidden)
            self.drop = torch.nn.Dropout(args.dropout)
            self.out = torch.nn.Linear(args.hidden, len(tags))

        def forward(self, w, c):
            x = torch.cat([self.words(w), self.cases(c)], dim=2).reshape(w.shape[0], -1)
            return self.out(self.drop(torch.tanh(self.hidden(x))))

    model = WindowTagger()
    dense = [p for n, p in model.named_parameters() if not n.startswith("words.")]
    opt = torch.optim.Adam(dense, lr=args.lr)
    sparse_opt = torch.optim.SparseAdam([model.words.weight], lr=args.lr)
    rng = np.random.default_rng(args.seed)
    times, result = [], None
    n = len(tr[2])
    for _ in range(args.epochs):
        order = rng.permutation(n)
        start = time.perf_counter()
        for i in range(0, n, args.batch_size):
            idx = order[i:i + args.batch_size]
            logits = model(torch.from_numpy(tr[0][idx]), torch.from_numpy(tr[1][idx]))
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(tr[2][idx]))
            opt.zero_grad()
            sparse_opt.zero_grad()
            loss.backward()
            opt.step()
            sparse_opt.step()
        times.append(time.perf_counter() - start)
        model.eval()
        with torch.no_grad():
            pred = np.concatenate([
                model(torch.from_numpy(dev[0][i:i + 8192]), torch.from_numpy(dev[1][i:i + 8192]))
                .argmax(1).numpy() for i in range(0, len(dev[0]), 8192)])
        model.train()
        gold = [t for _, t in dev[3]]
        result = entity_scores(gold, ner.split_by_sentence([tags[i] for i in pred], dev[3]))
    return times, result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--window", type=int, default=2)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    data_dir = args.data_dir or ner.default_data_dir()
    if not data_dir:
        raise SystemExit("WikiANN not found: pass --data-dir or set TAPEGRAD_WIKIANN")
    tg.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None

    train_s = read_conll(os.path.join(data_dir, "train.txt"))
    dev_s = read_conll(os.path.join(data_dir, "dev.txt"))
    tags = sorted({t for _, ts in train_s for t in ts}, key=lambda t: (t != "O", t[2:], t))
    tag_index = {t: i for i, t in enumerate(tags)}
    vocab = ner.Vocab.from_sentences(train_s)
    tr = ner.prepare(train_s, vocab, tag_index, args.window)
    dev = ner.prepare(dev_s, vocab, tag_index, args.window)

    rows = [("tapegrad", run_tapegrad(args, tr, dev, len(vocab), tags))]
    if torch is not None:
        rows.append((f"PyTorch {torch.__version__} eager", run_torch(args, tr, dev, len(vocab), tags)))

    print(f"\nWindow NER on WikiANN English: {len(train_s)} train / {len(dev_s)} dev sentences, "
          f"{args.epochs} epochs, batch {args.batch_size}, {args.threads} thread(s), "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    print("| library | dev entity F1 | dev token accuracy | median s / epoch | ratio |")
    print("| --- | --- | --- | --- | --- |")
    base = statistics.median(rows[0][1][0])
    for name, (times, res) in rows:
        med = statistics.median(times)
        print(f"| {name} | {res.f1:.4f} | {res.accuracy:.4f} | {med:.2f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
