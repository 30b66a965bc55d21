"""Checkpoints: ``save(obj, f)`` and ``load(f)`` for state dicts (exported as ``tg.save`` / ``tg.load``).

``obj`` is a state dict or anything built the same way: dicts (``OrderedDict``
included), lists and tuples nesting tapegrad Tensors, NumPy arrays and scalars,
Python ints, floats, bools, strings and ``None``. That covers model state dicts,
optimizer state dicts (``param_groups`` with lists of ints and floats, per-param
state keyed by int holding tensors and step counts) and scheduler state dicts::

    tg.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3}, "ckpt.npz")
    ckpt = tg.load("ckpt.npz")

Loading never executes code from the file: no pickle anywhere (object arrays are
refused), and the structure is rebuilt from a JSON description that can only
name the types listed below.

File format (version 1)
-----------------------
A NumPy ``.npz`` archive written by ``np.savez`` (a ZIP archive, entries stored
uncompressed, one ``.npy`` file per entry):

``__tapegrad__.npy``
    1-D ``uint8`` array holding the UTF-8 JSON header::

        {"format": "tapegrad-checkpoint", "version": 1, "root": <node>}

``a0.npy``, ``a1.npy``, ...
    one array per distinct tensor or array in ``obj``, C order, little-endian,
    dtype one of ``float32``, ``float64``, ``int64``, ``bool``.

A ``<node>`` is a JSON object whose ``"t"`` field gives its type:

=============  ==============================================================
``"none"``     ``None``
``"bool"``     ``{"t": "bool", "v": true}``
``"int"``      ``{"t": "int", "v": 3}`` (any size)
``"float"``    ``{"t": "float", "v": "0.1"}``: ``repr()`` of the float, so
               ``nan`` and ``inf`` survive and values round-trip exactly
``"str"``      ``{"t": "str", "v": "..."}``
``"list"``     ``{"t": "list", "items": [<node>, ...]}``
``"tuple"``    ``{"t": "tuple", "items": [<node>, ...]}``
``"dict"``     ``{"t": "dict", "keys": [<node>, ...], "values": [<node>, ...],
               "ordered": false}``; keys are ``none``/``bool``/``int``/
               ``float``/``str`` nodes or tuples of them, so int keys come back
               as ints; insertion order is kept; ``ordered`` marks an
               ``OrderedDict``
``"tensor"``   ``{"t": "tensor", "array": "a0", "dtype": "float32",
               "shape": [2, 3], "requires_grad": false}``
``"ndarray"``  ``{"t": "ndarray", "array": "a1", "dtype": ..., "shape": ...}``
``"rowsparse"`` a row-sparse gradient (``RowSparseGrad``, e.g. SGD momentum after
               sparse steps): ``{"t": "rowsparse", "indices": <tensor node>,
               "values": <tensor node>, "shape": [rows, ...]}``
``"npscalar"`` a NumPy scalar (``np.float32(1.0)``), stored as a 0-d array
=============  ==============================================================

Every array entry is referenced by at least one node; a tensor or array that
appears several times in ``obj`` is stored once and loads as one object shared
by all its places. Loaded tensors are ``tg.from_numpy`` of fresh arrays, so they
own their memory and ``requires_grad`` is restored.

Saving is atomic: the archive is written to a temporary file in the target's
directory, flushed and fsynced, then ``os.replace``-d onto the target and the
directory fsynced. A failure or crash at any point leaves either the old file
or the new one in place, never a half-written one, and no temporary file.

Loading checks everything: the ZIP structure and every entry's CRC, the JSON
header (format name, version, node types and fields), each array's ``.npy``
header against the JSON (dtype, shape) and against the number of bytes present.
Any failure is a ``ValueError`` naming the file and what is wrong. Array data is
read with ``numpy.lib.format``'s header parser and ``np.frombuffer`` after those
checks, so there is no pickle code path at all (stricter than
``np.load(allow_pickle=False)``; the files stay plain ``np.load``-able).
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import secrets
import struct
import zipfile
import zlib

import numpy as np

from . import _C

__all__ = ["save", "load", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "tapegrad-checkpoint"
FORMAT_VERSION = 1
_HEADER_KEY = "__tapegrad__"

# dtype name -> the exact on-disk dtype string (little-endian).
_DTYPES = {"float32": "<f4", "float64": "<f8", "int64": "<i8", "bool": "|b1"}
_SCALAR_LEAVES = (type(None), bool, int, float, str)


# --------------------------------------------------------------------------- save


class _Encoder:
    def __init__(self):
        self.arrays = {}  # key -> ndarray, in order of first appearance
        self._memo = {}  # id(tensor or array) -> (key, object kept alive)
        self._active = set()  # ids of containers on the current path (cycle check)

    def _store(self, obj, arr, where):
        """Register `arr` (the data of `obj`) and return its entry key."""
        hit = self._memo.get(id(obj))
        if hit is not None:
            return hit[0]
        name = arr.dtype.name
        if name not in _DTYPES or arr.dtype.kind == "O":
            raise TypeError(
                f"save: unsupported dtype {arr.dtype} at {where}; a checkpoint holds "
                f"float32, float64, int64 or bool (convert with .astype(...))"
            )
        # A C-ordered little-endian copy: never hold a view of live parameter memory.
        arr = np.array(arr, dtype=np.dtype(_DTYPES[name]), order="C", copy=True)
        key = f"a{len(self.arrays)}"
        self.arrays[key] = arr
        self._memo[id(obj)] = (key, obj)
        return key

    def node(self, obj, where):
        # NumPy scalars first (np.float64 subclasses float); bool before int (a subclass).
        if isinstance(obj, np.generic):
            arr = np.asarray(obj)
            key = self._store(obj, arr, where)
            return {"t": "npscalar", "array": key, "dtype": arr.dtype.name, "shape": []}
        if obj is None:
            return {"t": "none"}
        if isinstance(obj, bool):
            return {"t": "bool", "v": obj}
        if isinstance(obj, int):
            return {"t": "int", "v": int(obj)}
        if isinstance(obj, float):
            return {"t": "float", "v": repr(float(obj))}
        if isinstance(obj, str):
            return {"t": "str", "v": str(obj)}
        if isinstance(obj, _C.Tensor):
            arr = obj.detach().numpy()
            key = self._store(obj, arr, where)
            return {
                "t": "tensor",
                "array": key,
                "dtype": arr.dtype.name,
                "shape": list(arr.shape),
                "requires_grad": bool(obj.requires_grad),
            }
        if isinstance(obj, _C.RowSparseGrad):
            return {"t": "rowsparse", "indices": self.node(obj.indices(), f"{where}.indices"),
                    "values": self.node(obj.values(), f"{where}.values"),
                    "shape": [int(d) for d in obj.shape]}
        if isinstance(obj, np.ndarray):
            key = self._store(obj, obj, where)
            return {"t": "ndarray", "array": key, "dtype": obj.dtype.name, "shape": list(obj.shape)}
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in self._active:
                raise ValueError(f"save: {where} contains itself (reference cycle)")
            self._active.add(id(obj))
            try:
                if isinstance(obj, dict):
                    keys, values = [], []
                    for k, v in obj.items():
                        keys.append(self.key_node(k, where))
                        values.append(self.node(v, f"{where}[{k!r}]"))
                    return {
                        "t": "dict",
                        "keys": keys,
                        "values": values,
                        "ordered": isinstance(obj, collections.OrderedDict),
                    }
                items = [self.node(v, f"{where}[{i}]") for i, v in enumerate(obj)]
                return {"t": "tuple" if isinstance(obj, tuple) else "list", "items": items}
            finally:
                self._active.discard(id(obj))
        raise TypeError(
            f"save: cannot store an object of type {type(obj).__module__}.{type(obj).__qualname__} "
            f"at {where}; a checkpoint holds dicts, lists, tuples, tensors, NumPy arrays, "
            f"numbers, strings, bools and None"
        )

    def key_node(self, k, where):
        if isinstance(k, tuple):
            return {"t": "tuple", "items": [self.key_node(x, where) for x in k]}
        if isinstance(k, _SCALAR_LEAVES) and not isinstance(k, np.generic):
            return self.node(k, where)
        raise TypeError(
            f"save: unsupported dict key {k!r} of type {type(k).__name__} in {where}; "
            f"keys must be str, int, float, bool, None or tuples of them"
        )


def _header_array(root):
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root}
    text = json.dumps(header, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _write_npz(fileobj, header, arrays):
    # The header goes first; our keys (a0, a1, ...) can't clash with savez's own kwargs.
    np.savez(fileobj, **{_HEADER_KEY: header}, **arrays)


def _fsync_dir(dirname):
    if os.name != "posix":  # pragma: no cover - directories can't be opened on Windows
        return
    fd = os.open(dirname, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(obj, f):
    """Save a state dict (nested dicts/lists/tuples of tensors, arrays and scalars) to ``f``.

    ``f`` is a path (``str`` or ``os.PathLike``) or a binary file object. Writing to a path
    is atomic (temporary file in the same directory, fsync, ``os.replace``, directory
    fsync): an interrupted save leaves the previous file untouched. Objects of other
    types raise ``TypeError`` naming where they sit in ``obj``, before anything is written.
    See the module docstring for the format.
    """
    enc = _Encoder()
    header = _header_array(enc.node(obj, "obj"))
    arrays = enc.arrays

    if hasattr(f, "write"):
        _write_npz(f, header, arrays)
        return

    path = os.path.abspath(os.fspath(f))
    dirname, base = os.path.split(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: {path} is a directory")
    while True:
        tmp = os.path.join(dirname, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            # O_EXCL: never clobber anything; the kernel applies the umask to 0o666.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_npz(fh, header, arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(dirname)


# --------------------------------------------------------------------------- load


class _Invalid(Exception):
    """A problem with the file's contents; load() turns it into ValueError(path: ...)."""


# What a damaged archive can raise from zipfile / numpy / json while being parsed.
_PARSE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    KeyError,
    IndexError,
    ValueError,
    TypeError,
    OverflowError,
    UnicodeDecodeError,
    NotImplementedError,  # zipfile: unsupported compression method
    RuntimeError,  # zipfile: "File is encrypted", bad password
    RecursionError,
    MemoryError,
    OSError,  # lzma/bz2 decompressors on garbage
)


def _read_member(zf, name):
    try:
        return zf.read(name)  # verifies the entry's CRC-32
    except _PARSE_ERRORS as e:
        raise _Invalid(f"entry {name!r} is damaged ({type(e).__name__}: {e})") from e


def _parse_npy(data, name, allow_uint8=False):
    """Parse one .npy entry from bytes, checking its header against its length first."""
    fp = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise _Invalid(f"entry {name!r}: unsupported .npy version {version}")
    except _Invalid:
        raise
    except _PARSE_ERRORS as e:
        raise _Invalid(f"entry {name!r} has a bad .npy header ({type(e).__name__}: {e})") from e
    if dtype.hasobject or dtype.kind == "O":
        raise _Invalid(f"entry {name!r} holds Python objects (pickled data is never loaded)")
    allowed = set(_DTYPES.values()) | ({"|u1"} if allow_uint8 else set())
    if dtype.str not in allowed:
        raise _Invalid(
            f"entry {name!r} has dtype {dtype} ({dtype.str}); a checkpoint holds float32, "
            f"float64, int64 or bool arrays"
        )
    if fortran:
        raise _Invalid(f"entry {name!r} is in Fortran order; tapegrad writes C order")
    count = math.prod(shape)
    expected = count * dtype.itemsize
    present = len(data) - fp.tell()
    if present != expected:
        raise _Invalid(
            f"entry {name!r}: header says shape {tuple(shape)} {dtype.name} ({expected} bytes) "
            f"but {present} bytes of data are present"
        )
    # The data is plain bytes of a checked size and dtype: no pickle path exists here.
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=fp.tell()).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)  # writable, native, owns its memory


class _Decoder:
    def __init__(self, arrays):
        self.arrays = arrays
        self.used = set()
        self.loaded = {}  # array key -> loaded object (shared references stay shared)

    def _field(self, node, name, types, where):
        if name not in node:
            raise _Invalid(f"header: node at {where} has no {name!r} field")
        v = node[name]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in _as_tuple(types)):
            raise _Invalid(f"header: field {name!r} of node at {where} has the wrong type ({type(v).__name__})")
        return v

    def _array(self, node, kind, where):
        key = self._field(node, "array", str, where)
        dtype = self._field(node, "dtype", str, where)
        shape = self._field(node, "shape", list, where)
        if dtype not in _DTYPES:
            raise _Invalid(f"header: {kind} at {where} has unsupported dtype {dtype!r}")
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
            raise _Invalid(f"header: {kind} at {where} has an invalid shape {shape!r}")
        if key not in self.arrays:
            raise _Invalid(f"header: {kind} at {where} refers to a missing entry {key!r}")
        arr = self.arrays[key]
        if arr.dtype.name != dtype or list(arr.shape) != shape:
            raise _Invalid(
                f"entry {key!r} is {arr.dtype.name} {list(arr.shape)} but the header says "
                f"{dtype} {shape} (for the {kind} at {where})"
            )
        self.used.add(key)
        return key, arr

    def node(self, node, where):
        if not isinstance(node, dict):
            raise _Invalid(f"header: node at {where} is not an object")
        t = node.get("t")
        if t == "none":
            return None
        if t == "bool":
            return self._field(node, "v", bool, where)
        if t == "int":
            return self._field(node, "v", int, where)
        if t == "float":
            v = self._field(node, "v", str, where)
            try:
                return float(v)
            except ValueError:
                raise _Invalid(f"header: float at {where} has an invalid value {v!r}") from None
        if t == "str":
            return self._field(node, "v", str, where)
        if t == "list" or t == "tuple":
            items = self._field(node, "items", list, where)
            out = [self.node(x, f"{where}[{i}]") for i, x in enumerate(items)]
            return tuple(out) if t == "tuple" else out
        if t == "dict":
            keys = self._field(node, "keys", list, where)
            values = self._field(node, "values", list, where)
            ordered = self._field(node, "ordered", bool, where)
            if len(keys) != len(values):
                raise _Invalid(f"header: dict at {where} has {len(keys)} keys but {len(values)} values")
            out = collections.OrderedDict() if ordered else {}
            for kn, vn in zip(keys, values):
                k = self.key(kn, where)
                if k in out:
                    raise _Invalid(f"header: dict at {where} has the key {k!r} twice")
                out[k] = self.node(vn, f"{where}[{k!r}]")
            return out
        if t == "tensor":
            key, arr = self._array(node, "tensor", where)
            requires_grad = self._field(node, "requires_grad", bool, where)
            if key not in self.loaded:
                if requires_grad and arr.dtype.kind != "f":
                    raise _Invalid(f"header: {arr.dtype.name} tensor at {where} can't require grad")
                tensor = _C.from_numpy(arr)
                if requires_grad:
                    tensor.requires_grad_(True)
                self.loaded[key] = tensor
            return self.loaded[key]
        if t == "rowsparse":
            shape = self._field(node, "shape", list, where)
            indices = self.node(self._field(node, "indices", dict, where), f"{where}.indices")
            values = self.node(self._field(node, "values", dict, where), f"{where}.values")
            if not (isinstance(indices, _C.Tensor) and isinstance(values, _C.Tensor)):
                raise _Invalid(f"header: row-sparse gradient at {where} needs tensor indices and values")
            if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                raise _Invalid(f"header: row-sparse gradient at {where} has a bad shape {shape!r}")
            try:
                return _C._row_sparse_grad(indices, values, shape)
            except (TypeError, ValueError, IndexError) as e:
                raise _Invalid(f"header: row-sparse gradient at {where}: {e}") from None
        if t == "ndarray":
            key, arr = self._array(node, "ndarray", where)
            return self.loaded.setdefault(key, arr)
        if t == "npscalar":
            key, arr = self._array(node, "npscalar", where)
            if arr.ndim != 0:
                raise _Invalid(f"header: NumPy scalar at {where} is stored with shape {list(arr.shape)}")
            return self.loaded.setdefault(key, arr[()])
        raise _Invalid(f"header: node at {where} has unknown type {t!r}")

    def key(self, node, where):
        if isinstance(node, dict) and node.get("t") == "tuple":
            items = self._field(node, "items", list, where)
            return tuple(self.key(x, where) for x in items)
        if isinstance(node, dict) and node.get("t") in ("none", "bool", "int", "float", "str"):
            return self.node(node, where)
        raise _Invalid(f"header: dict at {where} has a key that is not a str/int/float/bool/None/tuple node")


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


def _parse(fileobj):
    try:
        zf = zipfile.ZipFile(fileobj)
    except _PARSE_ERRORS as e:
        raise _Invalid(f"not a ZIP/.npz archive ({type(e).__name__}: {e})") from e
    with zf:
        try:
            names = zf.namelist()
        except _PARSE_ERRORS as e:  # pragma: no cover
            raise _Invalid(f"unreadable ZIP directory ({type(e).__name__}: {e})") from e
        if len(set(names)) != len(names):
            raise _Invalid("the archive has duplicate entries")
        header_name = _HEADER_KEY + ".npy"
        if header_name not in names:
            raise _Invalid(f"not a tapegrad checkpoint (no {header_name} entry)")
        raw = _parse_npy(_read_member(zf, header_name), header_name, allow_uint8=True)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise _Invalid(f"not a tapegrad checkpoint ({header_name} is not a 1-D uint8 array)")
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise _Invalid(f"the JSON header is damaged ({type(e).__name__}: {e})") from e
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise _Invalid("not a tapegrad checkpoint (the header has no 'format': 'tapegrad-checkpoint')")
        version = header.get("version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise _Invalid(
                f"unsupported checkpoint format version {version!r} "
                f"(this tapegrad reads version {FORMAT_VERSION})"
            )
        if "root" not in header:
            raise _Invalid("the header has no 'root' node")

        arrays = {}
        for name in names:
            if name == header_name:
                continue
            if not name.endswith(".npy") or "/" in name:
                raise _Invalid(f"unexpected entry {name!r} in the archive")
            arrays[name[: -len(".npy")]] = _parse_npy(_read_member(zf, name), name)

    dec = _Decoder(arrays)
    try:
        obj = dec.node(header["root"], "obj")
    except RecursionError:
        raise _Invalid("the header nests too deeply") from None
    unused = sorted(set(arrays) - dec.used)
    if unused:
        raise _Invalid(f"entries {unused} are not referenced by the header")
    return obj


def load(f, map_location=None, weights_only=True):
    """Load a checkpoint written by :func:`save`; tensors come back as tapegrad tensors.

    ``f`` is a path or a binary file object. Nothing in the file is executed
    (``weights_only`` is accepted for PyTorch compatibility: loading is always data-only).
    ``map_location`` may be ``None`` or ``"cpu"``. A damaged, truncated or foreign file,
    an unknown format version, an unsupported dtype or an array that disagrees with the
    header raises ``ValueError`` naming the file and the problem; a missing file raises
    ``FileNotFoundError``.
    """
    del weights_only  # always data-only
    if map_location not in (None, "cpu"):
        raise ValueError(f"load: map_location={map_location!r} is not supported (tapegrad runs on the CPU)")
    if hasattr(f, "read"):
        label = getattr(f, "name", None) or repr(f)
        data = f.read()
    else:
        label = os.fspath(f)
        with open(label, "rb") as fh:
            data = fh.read()
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"load: {label} was opened in text mode; open it with 'rb'")
    try:
        return _parse(io.BytesIO(data))
    except _Invalid as e:
        raise ValueError(f"load: {label}: {e}") from e.__cause__
