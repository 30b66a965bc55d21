"""tapegrad.serialization: save/load round trips, atomic saves, and damaged files always raising ValueError."""

import collections
import io
import json
import math
import os
import struct
import zipfile

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.serialization import FORMAT_VERSION, load, save

# ----------------------------------------------------------------------------- helpers


def assert_same(a, b, where="obj"):
    """Deep equality that also checks types, dtypes, shapes and requires_grad."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, tg.Tensor):
        assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape), where
        assert a.requires_grad == b.requires_grad, where
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=where)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype, where
        assert (a == b) or (np.isnan(a) and np.isnan(b)), where
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b)), where
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), f"{where}: keys {list(a)} != {list(b)}"
        for (ka, va), kb in zip(a.items(), b.keys()):
            assert type(ka) is type(kb), f"{where}: key {ka!r} type {type(ka)} != {type(kb)}"
            assert_same(va, b[kb], f"{where}[{ka!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def make_state():
    """A model + optimizer + scheduler checkpoint with every supported leaf type."""
    tg.manual_seed(0)
    w = tg.randn(3, 4, requires_grad=True)
    b = tg.zeros(4, requires_grad=True)
    model = collections.OrderedDict(
        [
            ("layer.weight", w),
            ("layer.bias", b),
            ("emb", tg.randn(5, 2, dtype=tg.float64)),
            ("counts", tg.tensor([1, 2, 3])),  # int64
            ("mask", tg.tensor([True, False, True])),  # bool
            ("scalar", tg.tensor(2.5)),  # 0-d
            ("empty", tg.zeros(0, 3)),
            ("transposed", tg.arange(6, dtype=tg.float32).reshape(2, 3).t()),  # non-contiguous
        ]
    )
    optim = {
        # per-param state keyed by int, in non-sorted order
        "state": {
            1: {"step": 7, "exp_avg": tg.ones(4), "exp_avg_sq": tg.full((4,), 0.5)},
            0: {"step": 7, "exp_avg": tg.zeros(3, 4), "exp_avg_sq": tg.ones(3, 4)},
        },
        "param_groups": [
            {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
             "params": [0, 1], "maximize": False, "foreach": None},
        ],
    }
    sched = {"base_lrs": [0.001], "last_epoch": 12, "_step_count": 13, "gamma": 0.5, "verbose": False,
             "_last_lr": [0.000125], "milestones": {3: 1, 6: 2}}
    misc = {
        "arrays": [np.arange(6, dtype=np.int64).reshape(2, 3), np.linspace(0, 1, 5), np.ones(3, np.float32),
                   np.array([True, False]), np.zeros((0,), np.float64), np.asarray(np.float32(3.5))],
        "np_scalars": (np.float32(1.25), np.float64(-2.0), np.int64(-7), np.bool_(True)),
        "floats": [0.1, -0.0, float("inf"), float("-inf"), float("nan"), 1e308, 5e-324],
        "ints": [0, -1, 2**70, -(2**65)],
        "strs": ["", "héllo wörld ✓", "line\nbreak", '"quoted"', "{json}"],
        "none": None, "true": True, "false": False,
        "empty": {"list": [], "tuple": (), "dict": {}},
        "nested": [[[{"deep": (1, [2, {"x": None}])}]]],
        "keys": {0: "int", "0": "str", -3: "neg", 1.5: "float", None: "none", True: "bool",
                 (1, "a"): "tuple", (): "empty tuple", 10**20: "big"},
    }
    return {"model": model, "optimizer": optim, "scheduler": sched, "epoch": 12, "misc": misc}


@pytest.fixture
def state():
    return make_state()


def write_raw(path, header, arrays=(), header_bytes=None):
    """An .npz with a hand-made header, to build files save() would never write."""
    if header_bytes is None:
        header_bytes = json.dumps(header).encode()
    np.savez(path, __tapegrad__=np.frombuffer(header_bytes, np.uint8), **dict(arrays))


def header_for(root, version=FORMAT_VERSION):
    return {"format": "tapegrad-checkpoint", "version": version, "root": root}


def tmp_files(d):
    return sorted(p for p in os.listdir(d) if p.endswith(".tmp"))


# ----------------------------------------------------------------------------- round trips


def test_round_trip_all_leaf_types(tmp_path, state):
    path = tmp_path / "ckpt.npz"
    save(state, path)
    out = load(path)
    assert_same(state, out)
    assert isinstance(out["model"], collections.OrderedDict)
    assert type(out["optimizer"]["state"]) is dict
    assert list(out["optimizer"]["state"]) == [1, 0]  # int keys, order kept
    assert all(type(k) is int for k in out["optimizer"]["state"])
    assert type(out["misc"]["keys"][True]) is str and out["misc"]["keys"][True] == "bool"
    assert isinstance(out["model"]["layer.weight"], tg.Tensor)
    assert out["model"]["layer.weight"].requires_grad and out["model"]["layer.weight"].is_leaf
    assert tmp_files(tmp_path) == []


def test_file_is_a_plain_npz_with_a_json_header(tmp_path, state):
    path = tmp_path / "ckpt.npz"
    save(state, path)
    with np.load(path, allow_pickle=False) as npz:  # readable by NumPy alone, no pickle
        header = json.loads(npz["__tapegrad__"].tobytes().decode())
        names = sorted(npz.files)
        assert npz["a0"].dtype == np.float32
    assert header["format"] == "tapegrad-checkpoint" and header["version"] == FORMAT_VERSION
    assert header["root"]["t"] == "dict"
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist()[0] == "__tapegrad__.npy"
    assert "__tapegrad__" in names and all(n == "__tapegrad__" or n.startswith("a") for n in names)


def test_loaded_tensors_own_their_memory(tmp_path):
    a = np.arange(4, dtype=np.float32)
    t = tg.from_numpy(a)
    save({"t": t, "a": a}, tmp_path / "x.npz")
    a[:] = -1  # changes both t and a after the save
    out = load(tmp_path / "x.npz")
    np.testing.assert_array_equal(out["t"].numpy(), [0, 1, 2, 3])
    np.testing.assert_array_equal(out["a"], [0, 1, 2, 3])
    out["t"].numpy()[0] = 100  # and the loaded tensor is writable
    assert out["t"][0].item() == 100


def test_shared_tensors_stay_shared(tmp_path):
    w = tg.randn(2, 2, requires_grad=True)
    state = {"model": {"w": w, "tied": w}, "list": [w]}
    save(state, tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as npz:
        assert len(npz.files) == 2  # header + one array
    out = load(tmp_path / "s.npz")
    assert out["model"]["w"] is out["model"]["tied"] is out["list"][0]


def test_file_objects(state):
    buf = io.BytesIO()
    save(state, buf)
    buf.seek(0)
    assert_same(state, load(buf))


def test_overwrite_and_pathlike(tmp_path):
    path = tmp_path / "c.npz"
    save({"v": 1}, str(path))
    save({"v": 2}, path)
    assert load(str(path)) == {"v": 2}
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]


def test_saved_file_gets_normal_permissions(tmp_path):
    if os.name != "posix":
        pytest.skip("POSIX permissions only")
    path = tmp_path / "p.npz"
    save({"x": 1}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert (os.stat(path).st_mode & 0o777) == (0o666 & ~umask)


def test_trainable_state_round_trip_resumes_identically(tmp_path):
    """A checkpoint restores parameters bit-for-bit, so a resumed step computes the same loss."""
    tg.manual_seed(1)
    w = tg.randn(4, 3, requires_grad=True)
    x = tg.randn(8, 4)
    save({"w": w}, tmp_path / "w.npz")
    w2 = load(tmp_path / "w.npz")["w"]
    loss1 = ((x @ w) ** 2).mean()
    loss2 = ((x @ w2) ** 2).mean()
    loss1.backward()
    loss2.backward()
    assert loss1.item() == loss2.item()
    np.testing.assert_array_equal(w.grad.numpy(), w2.grad.numpy())


def test_load_options(tmp_path):
    save({"a": 1}, tmp_path / "o.npz")
    assert load(tmp_path / "o.npz", map_location="cpu", weights_only=True) == {"a": 1}
    with pytest.raises(ValueError, match="map_location"):
        load(tmp_path / "o.npz", map_location="cuda:0")


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")


# ----------------------------------------------------------------------------- unsupported input to save


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"f": lambda x: x}, r"obj\['f'\]"),
        ({"o": object()}, "object"),
        ({"a": [1, {"set": {1, 2}}]}, r"obj\['a'\]\[1\]\['set'\]"),
        ({"i32": np.zeros(3, np.int32)}, "int32"),
        ({"f16": np.zeros(3, np.float16)}, "float16"),
        ({"obj": np.array([{}, 1], dtype=object)}, "object"),
        ({"bytes": b"raw"}, "bytes"),
        ({frozenset(): 1}, "dict key"),
        ({np.int64(3): 1}, "dict key"),
    ],
)
def test_unsupported_objects_raise_type_error(tmp_path, bad, match):
    with pytest.raises(TypeError, match=match):
        save(bad, tmp_path / "bad.npz")
    assert os.listdir(tmp_path) == []


def test_reference_cycle_is_rejected(tmp_path):
    a = []
    a.append(a)
    with pytest.raises(ValueError, match="cycle"):
        save({"a": a}, tmp_path / "cyc.npz")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- atomicity


@pytest.fixture
def old_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    save({"version": "old", "w": tg.ones(3)}, path)
    return path, path.read_bytes()


def _assert_untouched(path, old_bytes):
    assert path.read_bytes() == old_bytes
    assert load(path)["version"] == "old"
    assert tmp_files(path.parent) == [], "a temporary file was left behind"


def test_failure_inside_savez_leaves_old_file(monkeypatch, old_file):
    path, old = old_file
    real_savez = np.savez

    def savez_then_fail(file, *args, **kwds):
        real_savez(file, *args, **kwds)  # a partial archive is on disk in the temp file ...
        file.write(b"garbage")
        raise OSError("disk full")  # ... when the write fails

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save({"version": "new", "w": tg.zeros(1000)}, path)
    _assert_untouched(path, old)


def test_interrupt_midway_leaves_old_file(monkeypatch, old_file):
    path, old = old_file

    def interrupted(file, *args, **kwds):
        file.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save({"version": "new"}, path)
    _assert_untouched(path, old)


def test_failing_replace_leaves_old_file(monkeypatch, old_file):
    path, old = old_file

    def no_replace(src, dst):
        raise PermissionError("replace refused")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(PermissionError):
        save({"version": "new"}, path)
    _assert_untouched(path, old)


def test_failing_fsync_leaves_old_file(monkeypatch, old_file):
    path, old = old_file

    def no_fsync(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(OSError, match="fsync"):
        save({"version": "new"}, path)
    _assert_untouched(path, old)


def test_unserialisable_object_leaves_old_file(old_file):
    path, old = old_file
    with pytest.raises(TypeError):
        save({"version": "new", "w": tg.ones(3), "bad": object()}, path)
    _assert_untouched(path, old)


def test_save_fsyncs_file_and_directory_and_replaces(monkeypatch, tmp_path):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}")
                                                                  if os.path.exists("/proc/self/fd") else None)),
                                                  real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", os.path.dirname(a) == os.path.dirname(b))),
                                                     real_replace(a, b))[1])
    save({"x": tg.ones(2)}, tmp_path / "f.npz")
    kinds = [c[0] for c in calls]
    assert kinds == ["fsync", "replace", "fsync"] if os.name == "posix" else kinds[:2] == ["fsync", "replace"]
    assert calls[1][1] is True  # temp file in the target's directory
    if os.name == "posix" and calls[0][1] is not None:
        assert calls[0][1] is False and calls[2][1] is True  # file first, then the directory


# ----------------------------------------------------------------------------- damaged and foreign files


def _load_outcome(path, original):
    """'error' if load raised ValueError, 'same' if it returned the original; anything else fails the test."""
    try:
        out = load(path)
    except ValueError as e:
        assert str(path) in str(e), f"error message does not name the file: {e}"
        return "error"
    assert_same(original, out)
    return "same"


def make_small_state():
    """Every node type in a small file, so that every byte of it can be damaged in turn."""
    return {
        "w": tg.tensor([[1.5, -2.0]], requires_grad=True),
        "state": {0: {"step": 3, "m": tg.tensor([1, 2])}, 1: {"mask": np.array([True, False])}},
        "groups": [{"lr": 0.1, "betas": (0.9, 0.999), "name": "g", "x": None, "f": False}],
        "s": np.float64(2.5),
        "od": collections.OrderedDict(a=np.zeros((2, 0))),
    }


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    state = make_small_state()
    path = tmp_path_factory.mktemp("good") / "good.npz"
    save(state, path)
    return state, path.read_bytes()


def _entry_data_ranges(data):
    """[start, end) of each ZIP entry's stored bytes (the .npy files themselves)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    ranges = []
    for info in infos:
        off = info.header_offset
        assert data[off:off + 4] == b"PK\x03\x04"
        name_len, extra_len = struct.unpack("<HH", data[off + 26:off + 30])
        start = off + 30 + name_len + extra_len
        ranges.append((start, start + info.compress_size))
    return ranges


def test_truncated_files_raise_value_error(tmp_path, good_bytes):
    state, data = good_bytes
    path = tmp_path / "trunc.npz"
    for n in range(len(data)):
        path.write_bytes(data[:n])
        assert _load_outcome(path, state) == "error", f"truncation at {n} of {len(data)} bytes loaded"


def test_every_single_byte_flip_is_caught_or_harmless(tmp_path, good_bytes):
    state, data = good_bytes
    path = tmp_path / "flip.npz"
    content = set()
    for a, b in _entry_data_ranges(data):
        content.update(range(a, b))
    outcomes = collections.Counter()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0xFF
        path.write_bytes(bytes(bad))
        outcome = _load_outcome(path, state)
        outcomes[outcome] += 1
        # Every byte of every entry (header JSON and arrays) is covered by its CRC-32.
        assert i not in content or outcome == "error", f"flip at content byte {i} loaded"
    # Only ZIP bookkeeping that carries no content (timestamps, "version made by",
    # attributes, ...) may change without an error, and then the data loads intact.
    assert outcomes["error"] > 0.8 * len(data), outcomes


def test_random_multi_byte_mutations(tmp_path, good_bytes):
    state, data = good_bytes
    rng = np.random.default_rng(1234)
    path = tmp_path / "mut.npz"
    for _ in range(300):
        bad = bytearray(data)
        kind = rng.integers(3)
        if kind == 0:  # overwrite a few random bytes
            for i in rng.integers(0, len(bad), size=rng.integers(1, 8)):
                bad[i] = int(rng.integers(256))
        elif kind == 1:  # delete a chunk
            i = int(rng.integers(len(bad)))
            del bad[i:i + int(rng.integers(1, 50))]
        else:  # insert junk
            i = int(rng.integers(len(bad)))
            bad[i:i] = rng.integers(0, 256, size=int(rng.integers(1, 50)), dtype=np.uint8).tobytes()
        path.write_bytes(bytes(bad))
        _load_outcome(path, state)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "not a ZIP"),
        (b"hello, this is text\n", "not a ZIP"),
        (b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", "not a ZIP"),
        (b"PK\x05\x06" + b"\x00" * 18, "not a tapegrad checkpoint"),  # an empty ZIP archive
    ],
)
def test_foreign_files_raise_value_error(tmp_path, content, match):
    path = tmp_path / "foreign.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as e:
        load(path)
    assert str(path) in str(e.value)


def test_plain_npz_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weights=np.ones(3))
    with pytest.raises(ValueError, match="not a tapegrad checkpoint"):
        load(path)


def test_zip_with_other_files_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(ValueError, match="not a tapegrad checkpoint"):
        load(path)


def test_header_without_format_marker(tmp_path):
    path = tmp_path / "h.npz"
    write_raw(path, {"version": 1, "root": {"t": "none"}})
    with pytest.raises(ValueError, match="not a tapegrad checkpoint"):
        load(path)


@pytest.mark.parametrize("version", [0, 2, 99, "1", None, True])
def test_wrong_format_version(tmp_path, version):
    path = tmp_path / "v.npz"
    write_raw(path, header_for({"t": "none"}, version=version))
    with pytest.raises(ValueError, match="version"):
        load(path)


def test_header_that_is_not_json(tmp_path):
    path = tmp_path / "j.npz"
    write_raw(path, None, header_bytes=b"{not json")
    with pytest.raises(ValueError, match="JSON"):
        load(path)
    write_raw(path, None, header_bytes=b"\xff\xfe")
    with pytest.raises(ValueError, match="JSON"):
        load(path)


@pytest.mark.parametrize(
    "root, arrays, match",
    [
        ({"t": "banana"}, {}, "unknown type"),
        ({"t": "int", "v": "3"}, {}, "wrong type"),
        ({"t": "int", "v": True}, {}, "wrong type"),
        ({"t": "float", "v": "pi"}, {}, "invalid value"),
        ({"t": "list"}, {}, "no 'items'"),
        ({"t": "dict", "keys": [{"t": "str", "v": "a"}], "values": [], "ordered": False}, {}, "1 keys but 0 values"),
        ({"t": "dict", "keys": [{"t": "list", "items": []}], "values": [{"t": "none"}], "ordered": False}, {},
         "key"),
        ({"t": "dict", "keys": [{"t": "int", "v": 1}, {"t": "int", "v": 1}],
          "values": [{"t": "none"}, {"t": "none"}], "ordered": False}, {}, "twice"),
        ({"t": "tensor", "array": "a0", "dtype": "float32", "shape": [3], "requires_grad": False}, {},
         "missing entry"),
        ({"t": "tensor", "array": "a0", "dtype": "float32", "shape": [3], "requires_grad": False},
         {"a0": np.ones(4, np.float32)}, r"float32 \[4\] but the header says float32 \[3\]"),
        ({"t": "tensor", "array": "a0", "dtype": "float64", "shape": [3], "requires_grad": False},
         {"a0": np.ones(3, np.float32)}, "header says float64"),
        ({"t": "tensor", "array": "a0", "dtype": "int32", "shape": [3], "requires_grad": False},
         {"a0": np.ones(3, np.float32)}, "unsupported dtype 'int32'"),
        ({"t": "ndarray", "array": "a0", "dtype": "int32", "shape": [3]},
         {"a0": np.ones(3, np.int32)}, "dtype int32"),
        ({"t": "ndarray", "array": "a0", "dtype": "float16", "shape": [3]},
         {"a0": np.ones(3, np.float16)}, "dtype float16"),
        ({"t": "ndarray", "array": "a0", "dtype": "float32", "shape": [-1]},
         {"a0": np.ones(3, np.float32)}, "invalid shape"),
        ({"t": "tensor", "array": "a0", "dtype": "int64", "shape": [2], "requires_grad": True},
         {"a0": np.ones(2, np.int64)}, "can't require grad"),
        ({"t": "none"}, {"a0": np.ones(2)}, "not referenced"),
        ({"t": "npscalar", "array": "a0", "dtype": "float32", "shape": [2]},
         {"a0": np.ones(2, np.float32)}, "scalar"),
    ],
)
def test_inconsistent_headers_raise_value_error(tmp_path, root, arrays, match):
    path = tmp_path / "bad.npz"
    write_raw(path, header_for(root), arrays)
    with pytest.raises(ValueError, match=match) as e:
        load(path)
    assert str(path) in str(e.value)


def test_npy_entry_shorter_than_its_header(tmp_path):
    """CRC is valid but the .npy header promises more data than the entry holds."""
    path = tmp_path / "short.npz"
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ones(10, np.float32))
    entry = buf.getvalue()[:-8]  # drop two elements
    hbuf = io.BytesIO()
    header = json.dumps(header_for({"t": "ndarray", "array": "a0", "dtype": "float32", "shape": [10]})).encode()
    np.lib.format.write_array(hbuf, np.frombuffer(header, np.uint8))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__tapegrad__.npy", hbuf.getvalue())
        zf.writestr("a0.npy", entry)
    with pytest.raises(ValueError, match=r"\(40 bytes\) but 32 bytes"):
        load(path)


def test_unexpected_entry_name(tmp_path):
    path = tmp_path / "names.npz"
    save({"a": 1}, path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("payload.py", "print('hi')")
    with pytest.raises(ValueError, match="unexpected entry 'payload.py'"):
        load(path)


_unpickled = []


def _record_unpickle():
    _unpickled.append(True)
    return "unpickled!"


class _Evil:
    def __reduce__(self):
        return (_record_unpickle, ())


@pytest.mark.parametrize("node_dtype", ["float32", "object"])
def test_pickled_object_array_is_rejected_without_unpickling(tmp_path, node_dtype):
    path = tmp_path / "evil.npz"
    evil = np.empty(2, dtype=object)
    evil[0], evil[1] = _Evil(), 1
    write_raw(path, header_for({"t": "ndarray", "array": "a0", "dtype": node_dtype, "shape": [2]}), {"a0": evil})
    with np.load(path, allow_pickle=True) as npz:  # the file really holds a pickle
        npz["a0"]
    assert _unpickled == [True]
    _unpickled.clear()
    with pytest.raises(ValueError, match="pickled data is never loaded"):
        load(path)
    assert _unpickled == [], "load() unpickled data"


def test_deeply_nested_header_is_a_value_error(tmp_path):
    path = tmp_path / "deep.npz"
    depth = 100_000
    text = '{"format":"tapegrad-checkpoint","version":1,"root":' + '{"t":"list","items":[' * depth + \
        "]}" * depth + "}"
    write_raw(path, None, header_bytes=text.encode())
    with pytest.raises(ValueError):
        load(path)


def test_big_endian_arrays_load_native(tmp_path):
    path = tmp_path / "be.npz"
    a = np.arange(3, dtype=">f4")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a)
    hbuf = io.BytesIO()
    header = json.dumps(header_for({"t": "ndarray", "array": "a0", "dtype": "float32", "shape": [3]})).encode()
    np.lib.format.write_array(hbuf, np.frombuffer(header, np.uint8))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__tapegrad__.npy", hbuf.getvalue())
        zf.writestr("a0.npy", buf.getvalue())
    # Only little-endian data is part of the format.
    with pytest.raises(ValueError, match="dtype"):
        load(path)


def test_save_writes_little_endian_from_big_endian_input(tmp_path):
    a = np.arange(3, dtype=">f8")
    save({"a": a}, tmp_path / "le.npz")
    out = load(tmp_path / "le.npz")["a"]
    assert out.dtype == np.dtype("float64") and out.dtype.byteorder in "=<"
    np.testing.assert_array_equal(out, [0, 1, 2])


def test_row_sparse_gradient_round_trips(tmp_path):
    """SGD momentum after sparse embedding steps is row-sparse: it must save and load."""
    import tapegrad.nn.functional as F

    w = tg.zeros(6, 3, requires_grad=True)
    F.embedding(tg.tensor([1, 4, 1]), w, sparse=True).sum().backward()
    path = tmp_path / "sparse.ckpt"
    tg.save({"g": w.grad}, path)
    g = tg.load(path)["g"]
    assert g.is_sparse and tuple(g.shape) == (6, 3)
    np.testing.assert_array_equal(g.to_dense().numpy(), w.grad.to_dense().numpy())


def test_sgd_momentum_state_with_sparse_gradients_round_trips(tmp_path):
    import tapegrad.nn.functional as F

    w = tg.ones(5, 2, requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1, momentum=0.9)
    for idx in ([0, 2], [2, 3]):
        opt.zero_grad()
        F.embedding(tg.tensor(idx), w, sparse=True).sum().backward()
        opt.step()
    tg.save(opt.state_dict(), tmp_path / "opt.ckpt")
    w2 = tg.tensor(w.detach().numpy().copy(), requires_grad=True)
    opt2 = tg.optim.SGD([w2], lr=0.1, momentum=0.9)
    opt2.load_state_dict(tg.load(tmp_path / "opt.ckpt"))
    for o, p in ((opt, w), (opt2, w2)):
        o.zero_grad()
        F.embedding(tg.tensor([0, 4]), p, sparse=True).sum().backward()
        o.step()
    np.testing.assert_array_equal(w.detach().numpy(), w2.detach().numpy())


def test_corrupt_row_sparse_node_is_rejected(tmp_path):
    import tapegrad.nn.functional as F

    w = tg.zeros(4, 2, requires_grad=True)
    F.embedding(tg.tensor([3]), w, sparse=True).sum().backward()
    path = tmp_path / "s.ckpt"
    tg.save({"g": w.grad}, path)
    # Claim a smaller table than the stored row index allows.
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    header_name = "__tapegrad__.npy"
    assert b'"shape":[4,2]' in members[header_name]
    members[header_name] = members[header_name].replace(b'"shape":[4,2]', b'"shape":[2,2]')
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(ValueError, match="s.ckpt"):
        tg.load(path)
