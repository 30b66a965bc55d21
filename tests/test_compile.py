"""tg.compile (tape replay): replays give exactly what eager execution gives.

Each test trains two identical models side by side, one through the compiled
step and one eagerly, and compares losses and parameters bit for bit after
every step: a replay runs the same core calls in the same order on the same
buffers, so nothing may differ, not even the last bit. Then the guards (shape
changes, train/eval, hyperparameter changes, grad mode), what recording
refuses (reading values, SparseAdam, sparse momentum), the output structures,
and that a warm replay neither runs Python nor allocates from the system.
"""

import copy
import threading

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn as nn
import tapegrad.nn.functional as F

VOCAB, DIM, WINDOW, HIDDEN, TAGS = 300, 8, 5, 16, 5


class WindowNER(nn.Module):
    def __init__(self, sparse=True, dropout=0.0):
        super().__init__()
        self.words = nn.Embedding(VOCAB, DIM, sparse=sparse)
        self.hidden = nn.Linear(WINDOW * DIM, HIDDEN)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(HIDDEN, TAGS)

    def forward(self, ids):
        x = self.words(ids).reshape(ids.shape[0], -1)
        return self.out(self.drop(tg.tanh(self.hidden(x))))


def data(batch, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [(tg.from_numpy(rng.integers(0, VOCAB, (batch, WINDOW))),
             tg.from_numpy(rng.integers(0, TAGS, batch))) for _ in range(n)]


def make_step(model, opts):
    def step(ids, y):
        for o in opts:
            o.zero_grad()
        loss = F.cross_entropy(model(ids), y)
        loss.backward()
        for o in opts:
            o.step()
        return loss
    return step


def twins(make_opts, dtype="float32", **model_kw):
    tg.manual_seed(0)
    a = WindowNER(**model_kw)
    if dtype == "float64":
        a.double()
    b = copy.deepcopy(a)
    return (a, make_opts(a)), (b, make_opts(b))


def same_params(a, b):
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=n)


def bits(t):
    return t.detach().numpy().tobytes()


OPTIMIZERS = {
    "sgd": lambda m: [tg.optim.SGD(m.parameters(), lr=0.2)],
    "sgd_momentum_dense": lambda m: [tg.optim.SGD(
        [p for n, p in m.named_parameters() if not n.startswith("words")], lr=0.1,
        momentum=0.9, nesterov=True, weight_decay=1e-3),
        tg.optim.SGD([m.words.weight], lr=0.1)],
    "adam_adagrad": lambda m: [tg.optim.Adam(
        [p for n, p in m.named_parameters() if not n.startswith("words")], lr=1e-2,
        amsgrad=True), tg.optim.Adagrad([m.words.weight], lr=0.1)],
    "adamw": lambda m: [tg.optim.AdamW(
        [p for n, p in m.named_parameters() if not n.startswith("words")], lr=1e-2),
        tg.optim.SGD([m.words.weight], lr=0.1)],
    "rmsprop": lambda m: [tg.optim.RMSprop(
        [p for n, p in m.named_parameters() if not n.startswith("words")], lr=1e-3,
        momentum=0.5, centered=True), tg.optim.SGD([m.words.weight], lr=0.1)],
}


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_replay_is_bit_identical_to_eager(opt, dtype):
    (ma, oa), (mb, ob) = twins(OPTIMIZERS[opt], dtype)
    compiled, eager = tg.compile(make_step(ma, oa)), make_step(mb, ob)
    for i, (ids, y) in enumerate(data(8, n=10)):
        la, lb = compiled(ids, y), eager(ids, y)
        assert bits(la) == bits(lb), (i, la.item(), lb.item())
        same_params(ma, mb)
    assert compiled.records == 1 and compiled.replays == 8  # warm-up, record, 8 replays


def test_dense_embedding_and_returned_structure():
    (ma, oa), (mb, ob) = twins(lambda m: [tg.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)],
                               sparse=False)

    def step(model, opts, ids, y):
        for o in opts:
            o.zero_grad()
        logits = model(ids)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        for o in opts:
            o.step()
        with tg.no_grad():
            acc = (logits.argmax(dim=1) == y).float().mean()
        return {"loss": loss, "stats": (acc, logits.detach()), "tag": "ner", "none": None}

    compiled = tg.compile(lambda ids, y: step(ma, oa, ids, y))
    for ids, y in data(4, n=6):
        ra, rb = compiled(ids, y), step(mb, ob, ids, y)
        assert set(ra) == {"loss", "stats", "tag", "none"}
        assert ra["tag"] == "ner" and ra["none"] is None and isinstance(ra["stats"], tuple)
        assert bits(ra["loss"]) == bits(rb["loss"])
        assert bits(ra["stats"][0]) == bits(rb["stats"][0])
        assert bits(ra["stats"][1]) == bits(rb["stats"][1])
        assert ra["loss"].requires_grad and not ra["stats"][1].requires_grad
    same_params(ma, mb)
    assert compiled.replays == 4


def test_shape_change_records_a_second_program_and_both_replay():
    (ma, oa), (mb, ob) = twins(OPTIMIZERS["sgd"])
    compiled, eager = tg.compile(make_step(ma, oa)), make_step(mb, ob)
    batches = data(8, n=4) + data(3, n=4, seed=1) + data(8, n=3, seed=2)
    for ids, y in batches:
        assert bits(compiled(ids, y)) == bits(eager(ids, y))
    same_params(ma, mb)
    assert compiled.records == 2
    assert compiled.replays == len(batches) - 4  # two warm-ups, two recordings


def test_train_eval_switch_is_a_guard():
    (ma, oa), (mb, ob) = twins(OPTIMIZERS["sgd"], dropout=0.3)
    compiled, eager = tg.compile(make_step(ma, oa)), make_step(mb, ob)
    for i, (ids, y) in enumerate(data(8, n=12)):
        for m in (ma, mb):
            m.train(i < 6)
        tg.manual_seed(100 + i)
        la = compiled(ids, y)
        tg.manual_seed(100 + i)
        lb = eager(ids, y)
        assert bits(la) == bits(lb), i
    same_params(ma, mb)
    assert compiled.records == 2  # dropout on, then off


def test_scheduler_changes_rerecord():
    (ma, oa), (mb, ob) = twins(OPTIMIZERS["sgd"])
    sa = tg.optim.lr_scheduler.StepLR(oa[0], step_size=3, gamma=0.5)
    sb = tg.optim.lr_scheduler.StepLR(ob[0], step_size=3, gamma=0.5)
    compiled, eager = tg.compile(make_step(ma, oa)), make_step(mb, ob)
    for ids, y in data(8, n=9):
        assert bits(compiled(ids, y)) == bits(eager(ids, y))
        sa.step(), sb.step()
    same_params(ma, mb)
    assert compiled.records == 3  # one per learning rate
    assert compiled.replays == 9 - 1 - 3


def test_grad_mode_is_part_of_the_key():
    model = nn.Linear(4, 2)
    f = tg.compile(lambda x: model(x).sum(), warmup=0)
    x = tg.randn(3, 4)
    assert f(x).requires_grad
    with tg.no_grad():
        assert not f(x).requires_grad
    assert f(x).requires_grad
    assert f.records == 2 and f.replays == 1


def test_warm_replay_runs_no_python():
    calls = []
    model = WindowNER()
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    inner = make_step(model, [opt])

    def step(ids, y):
        calls.append(1)  # a Python side effect: only eager and recording calls run it
        return inner(ids, y)

    compiled = tg.compile(step)
    for ids, y in data(8, n=10):
        compiled(ids, y)
    assert len(calls) == 2 and compiled.replays == 8
    # Nothing of the last replay's graph outlives its result.
    assert tg._C._tape_live() == 0


def test_warm_replay_does_not_allocate_from_the_system():
    model = WindowNER()
    dense = [p for n, p in model.named_parameters() if not n.startswith("words")]
    step = tg.compile(make_step(model, [tg.optim.Adam(dense, lr=1e-3),
                                        tg.optim.Adagrad([model.words.weight], lr=0.1)]))
    batches = data(16, n=8)
    for ids, y in batches * 3:
        step(ids, y)
    before = tg.memory_stats()
    for ids, y in batches * 10:
        step(ids, y)
    after = tg.memory_stats()
    assert after["system_allocations"] == before["system_allocations"], (before, after)
    assert after["cache_hits"] > before["cache_hits"]


def test_reading_values_while_recording_raises():
    model = nn.Linear(3, 1)
    x = tg.randn(2, 3)

    def reads_item(x):
        y = model(x).sum()
        if y.item() > 0:  # value-dependent Python: cannot be replayed
            y = y * 2
        return y

    def reads_numpy(x):
        return model(x).detach().numpy().sum()

    def prints(x):
        print(model(x))

    for fn in (reads_item, reads_numpy, prints):
        f = tg.compile(fn, warmup=0)
        with pytest.raises(RuntimeError, match="tg.compile records"):
            f(x)
    # Outside a compiled function the same calls are fine (nothing is left on).
    assert isinstance(reads_item(x).item(), float)


def test_an_error_while_recording_propagates_and_the_next_call_records_again():
    model = nn.Linear(3, 2)
    fail = [True]

    def step(x):
        y = model(x)
        if fail[0]:
            raise KeyError("boom")
        return y.sum()

    f = tg.compile(step, warmup=0)
    with pytest.raises(KeyError, match="boom"):
        f(tg.randn(4, 3))
    assert not tg._C._trace_recording()
    fail[0] = False
    x = tg.randn(4, 3)
    assert bits(f(x)) == bits(model(x).sum())
    assert bits(f(x)) == bits(model(x).sum())
    assert f.records == 1 and f.replays == 1


def test_refusals_name_the_problem():
    model = WindowNER()
    sparse_adam = tg.optim.SparseAdam([model.words.weight], lr=1e-2)
    step = tg.compile(make_step(model, [sparse_adam]))
    batches = data(4, n=2)
    step(*batches[0])  # the eager warm-up works
    with pytest.raises(RuntimeError, match="SparseAdam.*tg.compile"):
        step(*batches[1])
    model = WindowNER()
    step = tg.compile(make_step(model, [tg.optim.SGD(model.parameters(), lr=0.1,
                                                     momentum=0.9)]))
    step(*batches[0])
    with pytest.raises(RuntimeError, match="momentum with row-sparse gradients"):
        step(*batches[1])
    with pytest.raises(TypeError, match="callable"):
        tg.compile(3)
    with pytest.raises(ValueError, match="warmup"):
        tg.compile(lambda: None, warmup=-1)


def test_recording_is_not_reentrant():
    inner = tg.compile(lambda x: x * 2, warmup=0)
    outer = tg.compile(lambda x: inner(x) + 1, warmup=0)
    with pytest.raises(RuntimeError, match="being recorded"):
        outer(tg.randn(3))
    assert not tg._C._trace_recording()


def test_non_tensor_arguments_select_the_program():
    w = tg.randn(3, requires_grad=True)
    f = tg.compile(lambda x, scale, *, power=1: (x * w * scale) ** power, warmup=0)
    x = tg.randn(3)
    for scale, power in [(2.0, 1), (3.0, 1), (2.0, 2), (2.0, 1)]:
        np.testing.assert_array_equal(f(x, scale, power=power).detach().numpy(),
                                      ((x * w * scale) ** power).detach().numpy())
    assert f.records == 3 and f.replays == 1
    with pytest.raises(TypeError, match="hashable"):
        f(x, {1.0})


def test_decorator_forms_and_repr():
    @tg.compile
    def double(x):
        return x * 2

    @tg.compile(warmup=0)
    def triple(x):
        return x * 3

    x = tg.randn(4)
    for _ in range(3):
        np.testing.assert_array_equal(double(x).numpy(), (x * 2).numpy())
        np.testing.assert_array_equal(triple(x).numpy(), (x * 3).numpy())
    assert double.__name__ == "double"
    assert "replays=2" in repr(triple)


def test_constants_made_inside_the_step_are_frozen_and_parameters_are_live():
    w = tg.ones(3, requires_grad=True)
    f = tg.compile(lambda x: x * w + tg.tensor([1.0, 2.0, 3.0]), warmup=0)
    x = tg.zeros(3)
    assert f(x).tolist() == [1.0, 2.0, 3.0]
    with tg.no_grad():
        w.mul_(2.0)  # in-place updates of the step's parameters are seen by replays
    assert f(x + 1).tolist() == [3.0, 4.0, 5.0]


def test_threads_take_turns_on_one_program():
    model = nn.Linear(64, 64)
    f = tg.compile(lambda x: tg.tanh(model(x)).sum(), warmup=0)
    xs = [tg.randn(32, 64) for _ in range(8)]
    with tg.no_grad():
        want = [bits(tg.tanh(model(x)).sum()) for x in xs]
    f(xs[0])  # record on this thread
    got = {}

    def worker(k):
        for _ in range(20):
            got[k] = bits(f(xs[k]))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[k] for k in range(8)] == want


def test_a_recording_thread_leaves_other_threads_eager():
    # Every op checks a process-wide count of recording threads before its own
    # thread's program (trace.h): while a thread is paused mid-recording, this
    # thread's ops must be neither recorded into its program nor replayed.
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    paused, go = threading.Event(), threading.Event()
    results, errors = [], []

    def step(x):
        y = x * w + 1.0
        if not paused.is_set():  # only while recording (warmup=0: the first call)
            paused.set()
            go.wait(10)
        return (y * y).sum()

    def worker():
        try:
            f = tg.compile(step, warmup=0)
            f(tg.ones(3))  # records
            results.extend(f(tg.full((3,), float(v))).item() for v in (2, 3))
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=worker)
    t.start()
    assert paused.wait(10)
    a = tg.tensor([0.5, -1.0, 2.0], requires_grad=True)  # eager, beside the recording
    loss = (a * w).sum() * 2.0
    loss.backward()
    assert loss.item() == 2.0 * (0.5 - 2.0 + 6.0)
    assert a.grad.tolist() == [2.0, 4.0, 6.0]
    go.set()
    t.join()
    assert not errors, errors
    with tg.no_grad():  # the replays are the step alone, with none of this thread's ops
        want = [float(((tg.full((3,), float(v)) * w + 1.0) ** 2).sum().item()) for v in (2, 3)]
    assert results == want
    g = tg.compile(lambda x: (x * 3.0).sum(), warmup=0)  # and recording works here after it
    assert [g(tg.ones(2)).item(), g(tg.full((2,), 2.0)).item()] == [6.0, 12.0]


def test_memory_stats_and_cache_controls():
    stats = tg.memory_stats()
    assert {"system_allocations", "system_frees", "cache_hits", "bytes_cached",
            "cache_limit"} <= set(stats)
    limit = stats["cache_limit"]
    try:
        tg.set_cache_limit(0)
        assert tg.memory_stats()["cache_limit"] == 0
        a = tg.memory_stats()["system_allocations"]
        for _ in range(10):
            tg.randn(100) * 2
        assert tg.memory_stats()["system_allocations"] > a  # nothing is cached
    finally:
        tg.set_cache_limit(limit)
    tg.empty_cache()
    with pytest.raises(ValueError, match="set_cache_limit"):
        tg.set_cache_limit(-1)


def test_memory_stats_count_every_thread_and_keep_exited_ones():
    # Each thread counts its own hits and cached bytes (no shared atomics on the
    # allocation path); stats() sums the live threads and keeps what exited
    # threads counted. An exiting thread gives its cached blocks back.
    if tg.memory_stats()["cache_limit"] == 0:
        pytest.skip("caching is off (TAPEGRAD_CACHE_LIMIT=0, as in the sanitizer job)")
    # A thread an earlier test joined may still be exiting (its C++ thread-locals,
    # and so its cache, go after join() returns) and give its cached blocks back
    # in the middle of this test: wait until the cached total holds still.
    import gc
    import time
    gc.collect()
    last, steady = None, 0
    for _ in range(200):
        now = tg.memory_stats()["bytes_cached"]
        steady = steady + 1 if now == last else 0
        if steady >= 3:
            break
        last = now
        time.sleep(0.01)
    before = tg.memory_stats()
    seen = {}
    ready, done = threading.Event(), threading.Event()

    def worker():
        for _ in range(200):
            (tg.randn(32, 32) * 2.0).sum()
        seen["hits"] = tg.memory_stats()["cache_hits"]
        seen["bytes"] = tg.memory_stats()["bytes_cached"]
        ready.set()
        done.wait()

    t = threading.Thread(target=worker)
    t.start()
    ready.wait()
    assert seen["hits"] >= before["cache_hits"] + 200 * 3  # the live thread's hits are seen
    assert seen["bytes"] > before["bytes_cached"]           # and the blocks it cached
    done.set()
    t.join()
    after = tg.memory_stats()
    assert after["cache_hits"] >= seen["hits"]              # kept after the thread exited
    assert after["bytes_cached"] <= seen["bytes"]


# ---------------------------------------------------------------- the C call path
# Note [Compiled call fast path] (cpp/bindings/init_compile.cpp): once a call
# of positional tensors has selected a recorded program, the next calls replay
# it from C after repeating the Python checks there.
def test_fast_path_guards_match_the_python_ones():
    (ma, oa), (mb, ob) = twins(OPTIMIZERS["sgd"], dropout=0.2)
    compiled, eager = tg.compile(make_step(ma, oa)), make_step(mb, ob)
    batches = data(8, n=16)
    for i, (ids, y) in enumerate(batches):
        if i == 5:  # an option changed in place: re-record
            for o in (oa[0], ob[0]):
                o.param_groups[0]["lr"] = 0.05
        if i == 8:  # a module switched to eval: re-record
            ma.eval(), mb.eval()
        if i == 11:  # state appearing changes len(optimizer.state): re-record
            for o in (oa[0], ob[0]):
                o.state["marker"] = {}
        if i == 13:  # a keyword call takes the slow path, positional calls come back
            tg.manual_seed(i)
            la = compiled(ids, y=y)
        else:
            tg.manual_seed(i)
            la = compiled(ids, y)
        tg.manual_seed(i)
        assert bits(la) == bits(eager(ids, y)), i
    same_params(ma, mb)
    # warm-up and recording, then one record per change; the keyword call (its own
    # key) warms up eagerly; every other call replays.
    assert compiled.records == 4
    assert compiled.replays == 16 - 1 - 4 - 1


def test_fast_path_with_a_tensor_valued_option_compares_it_by_value():
    # A tensor in a param group (here a key of the user's own) can change in
    # place, so the replay's guard compares its value, through Python.
    (ma, oa), (mb, ob) = twins(OPTIMIZERS["sgd"])
    tag = tg.tensor(1.0)
    oa[0].param_groups[0]["my_tag"] = tag
    compiled, eager = tg.compile(make_step(ma, oa)), make_step(mb, ob)
    for i, (ids, y) in enumerate(data(8, n=8)):
        if i == 4:
            with tg.no_grad():
                tag.fill_(2.0)
        assert bits(compiled(ids, y)) == bits(eager(ids, y)), i
    same_params(ma, mb)
    assert compiled.records == 2
    assert compiled.replays == 8 - 1 - 2


def test_an_error_in_a_fast_replay_propagates_and_the_function_recovers():
    model = WindowNER()
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    compiled = tg.compile(make_step(model, [opt]))
    good = data(4, n=3)
    for ids, y in good:
        compiled(ids, y)
    replays = compiled.replays
    bad = tg.from_numpy(np.full((4, WINDOW), VOCAB + 7, dtype=np.int64))
    with pytest.raises(IndexError, match=r"embedding: index 307 is out of range"):
        compiled(bad, good[0][1])
    assert compiled.replays == replays
    compiled(*good[1])
    assert compiled.replays == replays + 1
    assert tg._C._tape_live() == 0


def test_a_compiled_function_in_a_reference_cycle_is_collected():
    import gc
    import weakref

    class Holder:
        pass

    h = Holder()
    model = nn.Linear(3, 2)
    h.step = tg.compile(lambda x: (model(x).sum(), h)[0], warmup=0)
    x = tg.randn(2, 3)
    h.step(x), h.step(x)  # recorded, then the fast path set up (it holds the entry)
    assert h.step.replays == 1
    ref = weakref.ref(h.step)
    del h
    gc.collect()
    assert ref() is None
