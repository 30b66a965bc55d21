"""tg.compile: record a training step once, then replay it from C++.

    step = tg.compile(train_step)      # or @tg.compile on the definition
    for x, y in loader:
        loss = step(x, y)              # replays forward, backward and update

See Note [Tape replay] in cpp/include/tapegrad/trace.h for how the core
records and replays; this module decides *when*: which recorded program a call
may replay, and when the Python it skipped would have done something else.
"""

import functools

from . import _C
from ._C import Tensor

__all__ = ["compile", "CompiledFunction"]

# Set while a step is being recorded on any thread (Module.__call__ and
# Optimizer.step look at it to report what the step depends on).
_recorder = None


def _note_module(module):
    if _recorder is not None and _C._trace_recording():
        _recorder.modules.append(module)


def _note_optimizer(optimizer):
    if _recorder is not None and _C._trace_recording():
        _recorder.optimizers.append(optimizer)


class _Recorder:
    __slots__ = ("modules", "optimizers")

    def __init__(self):
        self.modules = []
        self.optimizers = []


def _hyperparameters(optimizer):
    """What an optimizer's step takes from Python: every group's options and
    whether its state exists yet (a replay bakes them in)."""
    groups = []
    for group in optimizer.param_groups:
        items = []
        for key, value in group.items():
            if key == "params":
                continue
            if isinstance(value, Tensor):
                value = ("tensor", value.detach().numpy().tobytes())
            items.append((key, value))
        groups.append(tuple(items))
    return (tuple(groups), len(optimizer.state))


# ---------------------------------------------------------------- pytrees
# Arguments and results are nested tuples / lists / dicts of tensors and
# Python values. Tensors are program inputs / outputs; everything else is part
# of the cache key (arguments) or returned as recorded (results).
def _flatten(value, tensors):
    if isinstance(value, Tensor):
        tensors.append(value)
        return _TENSOR
    if isinstance(value, _C.RowSparseGrad):
        tensors.append(value)
        return _TENSOR
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_flatten(v, tensors) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, _flatten(v, tensors)) for k, v in value.items()))
    return ("const", value)


def _unflatten(spec, values):
    if spec is _TENSOR:
        return next(values)
    kind, body = spec
    if kind == "const":
        return body
    if kind is dict:
        return {k: _unflatten(s, values) for k, s in body}
    items = [_unflatten(s, values) for s in body]
    return items if kind is list else kind(items)


_TENSOR = object()


def _finish(spec, outputs):
    """The C fast path's results in the structure the step returned."""
    return _unflatten(spec, iter(outputs))


class _Entry:
    """One recorded program and the Python state it was recorded under."""
    __slots__ = ("calls", "program", "out_spec", "modules", "training", "optimizers")

    def __init__(self):
        self.calls = 0
        self.program = None

    def remember_state(self, modules, optimizers):
        self.modules = list({id(m): m for m in modules}.values())
        self.training = [m.training for m in self.modules]
        # Per optimizer, what its step baked in: shallow copies of the param
        # groups (comparing them with the live ones is one C-level comparison
        # per call, since unchanged values are the same objects) and the size
        # of its state. Tensor-valued options can change in place, so an
        # optimizer holding one is compared by value instead (_hyperparameters).
        self.optimizers = [
            (o, None, _hyperparameters(o)) if _has_tensor_option(o)
            else (o, [dict(g) for g in o.param_groups], len(o.state))
            for o in {id(o): o for o in optimizers}.values()]

    def python_state_matches(self):
        for module, training in zip(self.modules, self.training):
            if module.training != training:
                return False
        for opt, groups, baked in self.optimizers:
            if groups is None:
                if _hyperparameters(opt) != baked:
                    return False
                continue
            try:
                if opt.param_groups != groups or len(opt.state) != baked:
                    return False
            except Exception:  # a replaced 'params' list compares tensors: state changed
                return False
        return True


def _has_tensor_option(optimizer):
    return any(isinstance(v, Tensor) for g in optimizer.param_groups
               for k, v in g.items() if k != "params")


class CompiledFunction(_C._CompiledCall):
    """A function whose calls replay a recorded program (see :func:`compile`).

    Calling it runs the base type's C fast path (Note [Compiled call fast path]
    in cpp/bindings/init_compile.cpp): when the last call was positional tensors
    that selected a recorded program and the Python state it was recorded under
    still holds, the program replays with no Python in between; otherwise
    ``_call_slow`` decides, and leaves the fast path set up for the next call.
    """

    def __init__(self, fn, warmup=1, max_programs=8):
        if not callable(fn):
            raise TypeError(f"compile: expected a callable, got {type(fn).__name__}")
        if int(warmup) != warmup or warmup < 0:
            raise ValueError(f"compile: warmup must be a non-negative integer, got {warmup!r}")
        if int(max_programs) != max_programs or max_programs < 1:
            raise ValueError(f"compile: max_programs must be a positive integer, got "
                             f"{max_programs!r}")
        self.fn = fn
        self.warmup = int(warmup)
        self.max_programs = int(max_programs)
        self._entries = {}
        self.records = 0   # how many times a program was recorded (re-records included)
        self.replays = 0   # (the base type's counter: the fast path counts there too)
        functools.update_wrapper(self, fn)

    def _call_slow(self, args, kwargs):
        """Every call the C fast path does not take: finds (or records) the program
        for these arguments, then sets the fast path up for the next call when
        that call could take it (positional tensors only, a recorded program)."""
        _C._clear_fast_call(self)
        result, entry, grad_mode, fast_ok = self._dispatch(args, kwargs)
        if fast_ok and entry.program is not None:
            spec = entry.out_spec
            _C._set_fast_call(self, entry.program, tuple(entry.modules), tuple(entry.training),
                              tuple(entry.optimizers), entry, grad_mode,
                              None if spec is _TENSOR else spec, _finish)
        return result

    def _dispatch(self, args, kwargs):
        tensors = []
        spec = _flatten((args, kwargs), tensors)
        if any(not isinstance(t, Tensor) for t in tensors):
            raise TypeError("compile: row-sparse gradients cannot be arguments of a compiled "
                            "function")
        try:
            hash(spec)
        except TypeError:
            raise TypeError("compile: the non-tensor arguments of a compiled function must be "
                            "hashable (they select the recorded program)") from None
        grad_mode = _C.is_grad_enabled()
        key = (spec, tuple((tuple(t.shape), t.dtype, t.requires_grad) for t in tensors),
               grad_mode)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self.max_programs:
                self._entries.pop(next(iter(self._entries)))  # the oldest
            entry = self._entries[key] = _Entry()
        fast_ok = not kwargs and all(isinstance(a, Tensor) for a in args)
        if entry.program is not None and entry.python_state_matches():
            out = entry.program.run(tuple(tensors))
            if out is not None:
                self.replays += 1
                return _unflatten(entry.out_spec, iter(out)), entry, grad_mode, fast_ok
        if entry.program is None and entry.calls < self.warmup:
            entry.calls += 1
            return self.fn(*args, **kwargs), entry, grad_mode, fast_ok
        return self._record(entry, tensors, args, kwargs), entry, grad_mode, fast_ok

    def _record(self, entry, tensors, args, kwargs):
        global _recorder
        entry.program = None
        program = _C._Program()
        recorder = _Recorder()
        if _recorder is not None:
            raise RuntimeError("compile: a compiled function was called while another one is "
                               "being recorded; call it from outside the step")
        _recorder = recorder
        program.begin()
        try:
            for t in tensors:
                program.add_input(t)
            result = self.fn(*args, **kwargs)
            outs = []
            out_spec = _flatten(result, outs)
            for o in outs:
                program.add_output(o)
        finally:
            program.end()
            _recorder = None
        entry.program = program
        entry.out_spec = out_spec
        entry.remember_state(recorder.modules, recorder.optimizers)
        self.records += 1
        return result

    def __repr__(self):
        return (f"CompiledFunction({getattr(self.fn, '__qualname__', self.fn)!r}, "
                f"programs={sum(e.program is not None for e in self._entries.values())}, "
                f"records={self.records}, replays={self.replays})")


def compile(fn=None, *, warmup=1, max_programs=8):
    """Records the tape of ``fn`` (a training step) once and replays it from C++.

    ``fn`` runs eagerly for its first ``warmup`` calls (so lazily created state,
    such as optimizer moments, exists before recording), then one call records
    every core call it makes: forward ops, ``backward()``, optimizer updates,
    ``.grad`` reads and writes, grad-mode switches. Later calls with arguments of
    the same shapes, dtypes and ``requires_grad`` (and equal non-tensor
    arguments) replay that program in C++ with the new tensors, without running
    any Python, and give results identical to calling ``fn`` eagerly.

    What a replay repeats is the *recorded path*. Python that ran while recording
    is not run again, so:

    * tensors made from Python data inside ``fn`` (``tg.tensor(...)``) are
      constants, fixed at their recorded values; pass changing data as arguments;
    * reading values inside ``fn`` (``.item()``, ``.numpy()``, ``print(t)``,
      ``if t > 0:``) raises while recording, since a replay could not repeat what
      depends on them: return the tensor and read it after the call;
    * guards record again when the Python state the program baked in changes:
      argument shapes/dtypes (a new program per signature, up to
      ``max_programs``), grad mode, ``train()``/``eval()`` of the modules called,
      and the hyperparameters of the optimizers stepped (an LR scheduler stepping
      outside ``fn`` costs one recording per change).

    Other Python side effects of ``fn`` (appending to a list, counters) happen
    only on eager and recording calls. The returned object is a
    :class:`CompiledFunction`; its ``records`` and ``replays`` count what happened.
    Usable as ``tg.compile(fn)`` or as a decorator, with or without arguments.
    """
    if fn is None:
        return lambda f: CompiledFunction(f, warmup=warmup, max_programs=max_programs)
    return CompiledFunction(fn, warmup=warmup, max_programs=max_programs)


# ---------------------------------------------------------------- memory
def memory_stats():
    """Counters of the caching allocator (see Note [Caching allocator]):

    ``system_allocations`` / ``system_frees``: blocks obtained from / returned to
    the system (all threads); constant once a training loop is warm.
    ``cache_hits``: allocations served from a thread's cache. ``bytes_cached``:
    bytes held in caches now. ``cache_limit``: the per-thread cap.
    """
    return _C._memory_stats()


def empty_cache():
    """Returns the calling thread's cached blocks to the system."""
    _C._empty_cache()


def set_cache_limit(nbytes):
    """Caps the bytes each thread's cache keeps (0 turns caching off)."""
    if int(nbytes) != nbytes or nbytes < 0:
        raise ValueError(f"set_cache_limit: expected a non-negative number of bytes, got "
                         f"{nbytes!r}")
    _C._set_cache_limit(int(nbytes))

