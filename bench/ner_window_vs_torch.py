"""The window NER model in tapegrad and in PyTorch, side by side in one run.

Same data (WikiANN English), same features, same architecture and
hyperparameters, same optimizers (Adam for dense parameters, SparseAdam for the
sparse word-embedding rows). Reports dev entity F1, token accuracy and the
median time per epoch of each, with the machine and thread count.

    python bench/ner_window_vs_torch.py --epochs 3 --threads 1
    python bench/ner_window_vs_torch.py --memory --epochs 1   # peak RSS, one process each

With --memory each library trains in a fresh process that imports only that
library, and the table gives the process's peak resident memory (getrusage
ru_maxrss) next to its resident memory just before training (after imports and
data preparation), so both the whole footprint a user sees and what training
itself adds are shown.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
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
    p.add_argument("--memory", action="store_true",
                   help="peak RSS of each library, each in a fresh process")
    p.add_argument("--only", choices=("tapegrad", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory:
        return memory_table(args, argv if argv is not None else sys.argv[1:])

    data_dir = args.data_dir or ner.default_data_dir()
    if not data_dir:
        raise SystemExit("WikiANN not found: pass --data-dir or set TAPEGRAD_WIKIANN")
    tg.set_num_threads(args.threads)
    torch = None
    if args.only != "tapegrad":
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            pass

    train_s = read_conll(os.path.join(data_dir, "train.txt"))
    dev_s = read_conll(os.path.join(data_dir, "dev.txt"))
    tags = sorted({t for _, ts in train_s for t in ts}, key=lambda t: (t != "O", t[2:], t))
    tag_index = {t: i for i, t in enumerate(tags)}
    vocab = ner.Vocab.from_sentences(train_s)
    tr = ner.prepare(train_s, vocab, tag_index, args.window)
    dev = ner.prepare(dev_s, vocab, tag_index, args.window)

    if args.only:
        before = rss_mb()
        run = run_tapegrad if args.only == "tapegrad" else run_torch
        times, res = run(args, tr, dev, len(vocab), tags)
        print("MEMORY " + json.dumps({"before_mb": before, "peak_mb": peak_rss_mb(),
                                      "s_per_epoch": statistics.median(times), "f1": res.f1}))
        return
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


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_table(args, argv):
    base = [a for a in argv if a != "--memory"]
    rows = []
    for lib in ("tapegrad", "torch"):
        r = subprocess.run([sys.executable, os.path.abspath(__file__), *base, "--only", lib],
                           capture_output=True, text=True)
        line = [x for x in r.stdout.splitlines() if x.startswith("MEMORY ")]
        if r.returncode != 0 or not line:
            rows.append((lib, None, r.stderr.strip().splitlines()[-1:] or ["failed"]))
            continue
        rows.append((lib, json.loads(line[0][7:]), None))
    print(f"\nWindow NER on WikiANN English, peak resident memory, {args.epochs} epoch(s), batch "
          f"{args.batch_size}, {args.threads} thread(s), one fresh process per library\n")
    print("| library | RSS before training (MB) | peak RSS (MB) | added by training (MB) "
          "| s / epoch | dev F1 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for lib, m, err in rows:
        if m is None:
            print(f"| {lib} | n/a ({err[0]}) | | | | |")
            continue
        print(f"| {lib} | {m['before_mb']:.0f} | {m['peak_mb']:.0f} | "
              f"{m['peak_mb'] - m['before_mb']:.0f} | {m['s_per_epoch']:.2f} | {m['f1']:.4f} |")


if __name__ == "__main__":
    main()
