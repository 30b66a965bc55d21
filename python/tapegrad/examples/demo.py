"""A tiny model trained from scratch: the lectures' two-layer net.

    h = tanh(V x + b),  s = W h + a,  loss = 1/2 ||s - y||^2 / N

fitted by plain minibatch SGD to y = sin(3 x0) * cos(2 x1) on random points.
Prints the loss falling. Run: python -m tapegrad.examples.demo
"""

import argparse
import time

import tapegrad as tg


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    tg.manual_seed(args.seed)
    n = 512
    x = tg.rand(n, 2) * 2 - 1
    y = ((x[:, 0] * 3).sin() * (x[:, 1] * 2).cos()).unsqueeze(1)

    h = args.hidden
    V = (tg.randn(h, 2) * (1 / 2 ** 0.5)).requires_grad_()
    b = tg.zeros(h, requires_grad=True)
    W = (tg.randn(1, h) * (1 / h ** 0.5)).requires_grad_()
    a = tg.zeros(1, requires_grad=True)
    params = [V, b, W, a]

    start = time.perf_counter()
    first = None
    for step in range(args.steps + 1):
        idx = tg.randint(0, n, (64,))
        xb, yb = x[idx], y[idx]
        hidden = (xb @ V.T + b).tanh()
        scores = hidden @ W.T + a
        loss = tg.nn.functional.mse_loss(scores, yb, reduction="sum", half=True) / 64
        for p in params:
            p.grad = None
        loss.backward()
        with tg.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=args.lr)
        if step % (args.steps // 10) == 0:
            with tg.no_grad():
                full = 0.5 * ((((x @ V.T + b).tanh() @ W.T + a) - y) ** 2).mean()
            first = first if first is not None else full.item()
            print(f"step {step:5d}  minibatch loss {loss.item():.5f}  full-data loss {full.item():.5f}")
    elapsed = time.perf_counter() - start
    print(f"loss fell from {first:.5f} to {full.item():.5f} in {args.steps} steps "
          f"({elapsed:.2f} s, {args.steps / elapsed:.0f} steps/s)")
    return full.item(), first


if __name__ == "__main__":
    main()
