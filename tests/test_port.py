"""The brief's promise: a PyTorch CPU training script ports by changing its
imports. `train` below is written against PyTorch's API only, as a user would
write it (device selection, DataLoader, a model with in-place activations,
weighted and smoothed cross-entropy, Adam with weight decay, a scheduler,
gradient clipping, eval with inference_mode, a state_dict round trip); it runs
unchanged with `torch` and with `tapegrad` passed as the module, and the two
runs must agree step by step."""

import numpy as np
import pytest

import tapegrad

TORCH_REASON = "torch is not installed (CI installs torch==2.13.0); skipping the PyTorch comparison"


def make_data(seed=0, n=96, d=6, classes=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, classes))
    y = (x @ w + 0.3 * rng.normal(size=(n, classes))).argmax(1).astype(np.int64)
    return x, y


def initial_state(d=6, h=16, classes=3, seed=1):
    rng = np.random.default_rng(seed)
    return {
        "0.weight": rng.normal(scale=0.4, size=(h, d)), "0.bias": rng.normal(scale=0.1, size=h),
        "3.weight": rng.normal(scale=0.3, size=(h, h)), "3.bias": np.zeros(h),
        "5.weight": rng.normal(scale=0.3, size=(classes, h)), "5.bias": np.zeros(classes),
    }


def train(torch, x_np, y_np, init, epochs=3, dropout=0.0):
    """Written against PyTorch's API; nothing here knows about tapegrad."""
    nn, F = torch.nn, torch.nn.functional
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)

    x = torch.tensor(x_np)
    y = torch.from_numpy(y_np)
    train_set = torch.utils.data.TensorDataset(x[:64], y[:64])
    loader = torch.utils.data.DataLoader(train_set, batch_size=16, shuffle=False)

    model = nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3),
    ).to(device)
    model.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in init.items()})
    class_weight = torch.tensor([1.0, 2.0, 0.5], device=device)
    criterion = nn.CrossEntropyLoss(weight=class_weight, label_smoothing=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    losses = []
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = criterion(logits, yb) + 1e-3 * logits.pow(2).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            opt.step()
            losses.append(loss.item())
        sched.step()

    model.eval()
    with torch.inference_mode():
        logits = model(x[64:].to(device))
        probs = F.softmax(logits, dim=1)
        pred = probs.argmax(dim=1)
        acc = (pred == y[64:]).float().mean().item()
        top2 = torch.topk(probs, 2, dim=1).indices
    state = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    return np.array(losses), acc, top2.numpy(), state, opt.param_groups[0]["lr"]


def test_the_script_runs_unchanged_on_tapegrad():
    x, y = make_data()
    losses, acc, top2, state, lr = train(tapegrad, x, y, initial_state(), dropout=0.2)
    assert np.isfinite(losses).all() and losses[-4:].mean() < losses[:4].mean()
    assert 0.0 <= acc <= 1.0 and top2.shape == (32, 2) and lr == pytest.approx(0.005)
    assert sorted(state) == sorted(initial_state())


def test_the_script_gives_pytorchs_numbers():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x, y = make_data()
    got = train(tapegrad, x, y, initial_state())
    want = train(torch, x, y, initial_state())
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)  # float32 rounding over 12 Adam steps
    assert got[1] == want[1]
    np.testing.assert_array_equal(got[2], want[2])
    for k in want[3]:
        np.testing.assert_allclose(got[3][k], want[3][k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert got[4] == want[4]
