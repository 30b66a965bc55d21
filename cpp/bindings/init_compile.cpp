// tg.compile's C++ side: a recorded Program and its replay (see trace.h).
#include "bindings.h"
#include "tapegrad/memory.h"
#include "tapegrad/trace.h"

namespace tg::bind {

// A program and where its outputs are: what one compiled-function entry holds.
struct BoundProgram {
  Program program;
  std::vector<std::pair<bool, int>> outputs;  // (row-sparse?, slot)
};

namespace {

// Binds the tensors in `inputs` (a tuple), replays without the GIL, collects
// the outputs and drops the intermediates: a new reference to the tuple of
// outputs, or to None (nothing run) when an input is not a tensor like the one
// recorded. Raw CPython on the way in and out: this is the per-step cost
// tg.compile adds. Throws (C++ or py::error_already_set) on failure.
PyObject* run_bound(BoundProgram& b, PyObject* inputs) {
  Program& p = b.program;
  size_t n = (size_t)PyTuple_GET_SIZE(inputs);
  if (n != p.num_inputs()) return Py_NewRef(Py_None);
  for (size_t k = 0; k < n; k++) {
    PyObject* o = PyTuple_GET_ITEM(inputs, k);
    if (!is_tensor(o) || !p.input_matches(k, tensor_ref(o))) return Py_NewRef(Py_None);
  }
  std::unique_lock<std::mutex> lock(p.mutex(), std::defer_lock);
  {
    py::gil_scoped_release release;  // also while waiting for another thread's turn
    lock.lock();
    for (size_t k = 0; k < n; k++)
      p.set_input(k, reinterpret_cast<TensorObject*>(PyTuple_GET_ITEM(inputs, k))->value);
    p.replay();
  }
  py::tuple out(b.outputs.size());
  for (size_t i = 0; i < b.outputs.size(); i++) {
    auto [sparse, slot] = b.outputs[i];
    out[i] = sparse ? py::cast(p.sparse_output(slot)) : py::cast(p.output(slot));
  }
  p.clear();
  return out.release().ptr();
}

// ---------------------------------------------------------------- fast call
// Note [Compiled call fast path]
// A compiled step at batch 1 replays in ~13 us; the Python around it (the
// CompiledFunction.__call__ checks: grad mode, module train/eval modes,
// optimizer options, then the pybind11 call of run) cost ~1.5 us more. So
// CompiledFunction's base type, _CompiledCall, does that call in C: when the
// last call was positional tensors that selected a recorded program,
// _set_fast_call() leaves here what the Python checks read (the program, the
// modules and the modes they were recorded in, each optimizer with a shallow
// copy of its param_groups and the size of its state), and tp_call repeats
// those checks with the same comparisons (attribute reads and one
// param_groups != comparison per optimizer) before replaying. Anything else,
// a check that fails, a keyword argument, or an input unlike the recorded
// one, goes to the Python method _call_slow(args, kwargs), which decides as
// before and sets or clears the fast state. An optimizer with tensor-valued
// options is compared by value in Python: its entry's python_state_matches()
// is called instead.
struct CompiledCallObject {
  PyObject_HEAD
  PyObject* program_obj;   // the _Program (keeps `program` alive); null: no fast state
  BoundProgram* program;
  PyObject* modules;       // tuple
  PyObject* training;      // tuple, one per module
  PyObject* optimizers;    // tuple of (optimizer, groups list or None, state size)
  PyObject* entry;         // for python_state_matches() when an optimizer needs it
  PyObject* out_spec;      // None: return the single output itself; else passed to finish
  PyObject* finish;        // finish(out_spec, outputs) when out_spec is not None
  int grad_mode;
  Py_ssize_t replays;
};

PyTypeObject* g_compiled_call_type = nullptr;
// Interned once at module init: the attribute and method names the fast path uses.
PyObject* g_str_training = nullptr;
PyObject* g_str_param_groups = nullptr;
PyObject* g_str_state = nullptr;
PyObject* g_str_call_slow = nullptr;
PyObject* g_str_state_matches = nullptr;

// The object fields of the fast state, one list for clear and traverse (a
// field missing from traverse would leak any cycle through it).
#define TG_FAST_STATE_OBJECTS(X) \
  X(program_obj) X(modules) X(training) X(optimizers) X(entry) X(out_spec) X(finish)

void compiled_call_clear_fast(CompiledCallObject* self) {
  self->program = nullptr;
#define TG_CLEAR(field) Py_CLEAR(self->field);
  TG_FAST_STATE_OBJECTS(TG_CLEAR)
#undef TG_CLEAR
}

int compiled_call_traverse(CompiledCallObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
#define TG_VISIT(field) Py_VISIT(self->field);
  TG_FAST_STATE_OBJECTS(TG_VISIT)
#undef TG_VISIT
  return 0;
}

int compiled_call_tp_clear(CompiledCallObject* self) {
  compiled_call_clear_fast(self);
  return 0;
}

void compiled_call_dealloc(CompiledCallObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  compiled_call_clear_fast(self);
  tp->tp_free((PyObject*)self);
  Py_DECREF(tp);
}

// 1: the Python state the program was recorded under still holds; 0: it does
// not (or comparing raised: the slow path will find out); -1: error set.
int fast_state_matches(CompiledCallObject* self) {
  Py_ssize_t nm = PyTuple_GET_SIZE(self->modules);
  for (Py_ssize_t i = 0; i < nm; i++) {
    PyObject* cur = PyObject_GetAttr(PyTuple_GET_ITEM(self->modules, i), g_str_training);
    if (!cur) return -1;
    PyObject* was = PyTuple_GET_ITEM(self->training, i);
    int differ = cur == was ? 0 : PyObject_RichCompareBool(cur, was, Py_NE);
    Py_DECREF(cur);
    if (differ != 0) return differ < 0 ? -1 : 0;
  }
  Py_ssize_t no = PyTuple_GET_SIZE(self->optimizers);
  for (Py_ssize_t i = 0; i < no; i++) {
    PyObject* spec = PyTuple_GET_ITEM(self->optimizers, i);
    PyObject* opt = PyTuple_GET_ITEM(spec, 0);
    PyObject* groups = PyTuple_GET_ITEM(spec, 1);
    if (groups == Py_None) {  // tensor-valued options: Python compares them by value
      PyObject* r = PyObject_CallMethodNoArgs(self->entry, g_str_state_matches);
      if (!r) return -1;
      int ok = PyObject_IsTrue(r);
      Py_DECREF(r);
      return ok;
    }
    PyObject* pg = PyObject_GetAttr(opt, g_str_param_groups);
    if (!pg) return -1;
    int differ = PyObject_RichCompareBool(pg, groups, Py_NE);
    Py_DECREF(pg);
    if (differ < 0) {  // a replaced 'params' list compares tensors: state changed
      PyErr_Clear();
      return 0;
    }
    if (differ) return 0;
    PyObject* state = PyObject_GetAttr(opt, g_str_state);
    if (!state) return -1;
    Py_ssize_t len = PyObject_Size(state);
    Py_DECREF(state);
    if (len < 0) return -1;
    if (len != PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 2))) return 0;
  }
  return 1;
}

PyObject* call_slow(PyObject* self, PyObject* args, PyObject* kwargs) {
  PyObject* kw = kwargs ? Py_NewRef(kwargs) : PyDict_New();
  if (!kw) return nullptr;
  PyObject* r = PyObject_CallMethodObjArgs(self, g_str_call_slow, args, kw, nullptr);
  Py_DECREF(kw);
  return r;
}

PyObject* compiled_call_call(PyObject* obj, PyObject* args, PyObject* kwargs) {
  auto* self = reinterpret_cast<CompiledCallObject*>(obj);
  if (!self->program_obj || (kwargs && PyDict_GET_SIZE(kwargs) != 0) ||
      (int)grad_enabled() != self->grad_mode)
    return call_slow(obj, args, kwargs);
  int ok = fast_state_matches(self);
  if (ok < 0) return nullptr;
  if (!ok) return call_slow(obj, args, kwargs);
  // Held for the replay: another thread may replace the fast state meanwhile.
  PyObject* program_obj = Py_NewRef(self->program_obj);
  PyObject* out;
  try {
    out = run_bound(*self->program, args);
  } catch (...) {
    Py_DECREF(program_obj);
    py::detail::try_translate_exceptions();
    return nullptr;
  }
  Py_DECREF(program_obj);
  if (out == Py_None) {  // an input unlike the recorded one
    Py_DECREF(out);
    return call_slow(obj, args, kwargs);
  }
  self->replays++;
  if (!self->out_spec) {
    PyObject* single = Py_NewRef(PyTuple_GET_ITEM(out, 0));
    Py_DECREF(out);
    return single;
  }
  PyObject* r = PyObject_CallFunctionObjArgs(self->finish, self->out_spec, out, nullptr);
  Py_DECREF(out);
  return r;
}

PyObject* compiled_call_get_replays(PyObject* obj, void*) {
  return PyLong_FromSsize_t(reinterpret_cast<CompiledCallObject*>(obj)->replays);
}

int compiled_call_set_replays(PyObject* obj, PyObject* value, void*) {
  if (!value) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete replays");
    return -1;
  }
  Py_ssize_t v = PyLong_AsSsize_t(value);
  if (v == -1 && PyErr_Occurred()) return -1;
  reinterpret_cast<CompiledCallObject*>(obj)->replays = v;
  return 0;
}

PyGetSetDef compiled_call_getset[] = {
    {"replays", compiled_call_get_replays, compiled_call_set_replays,
     "How many calls replayed a recorded program", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot compiled_call_slots[] = {
    {Py_tp_new, (void*)PyType_GenericNew},
    {Py_tp_dealloc, (void*)compiled_call_dealloc},
    {Py_tp_traverse, (void*)compiled_call_traverse},
    {Py_tp_clear, (void*)compiled_call_tp_clear},
    {Py_tp_call, (void*)compiled_call_call},
    {Py_tp_getset, (void*)compiled_call_getset},
    {Py_tp_doc, (void*)"Base of tapegrad.CompiledFunction: replays the last program from C "
                       "(Note [Compiled call fast path])"},
    {0, nullptr},
};

PyType_Spec compiled_call_spec = {
    "tapegrad._C._CompiledCall",
    (int)sizeof(CompiledCallObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    compiled_call_slots,
};

CompiledCallObject* as_compiled_call(py::handle h) {
  if (!PyObject_TypeCheck(h.ptr(), g_compiled_call_type))
    throw py::type_error("compile: expected a CompiledFunction");
  return reinterpret_cast<CompiledCallObject*>(h.ptr());
}

}  // namespace

void init_compile(py::module_& m) {
  py::class_<BoundProgram>(m, "_Program", "A recorded step (see tapegrad.compile)")
      .def(py::init<>())
      .def("begin", [](BoundProgram& b) { b.program.begin(); })
      .def("end", [](BoundProgram& b) { b.program.end(); })
      .def("add_input", [](BoundProgram& b, const Tensor& t) { b.program.add_input(t); },
           py::arg("tensor"))
      .def("add_output", [](BoundProgram& b, py::handle v) {
             Program& p = b.program;
             if (py::isinstance<RowSparse>(v))
               b.outputs.emplace_back(true, p.sparse_output_slot(v.cast<Ref<RowSparse>>()));
             else
               b.outputs.emplace_back(false, p.output_slot(v.cast<Tensor>()));
           }, py::arg("value"), "Declares the next value run() returns")
      // One call per step: bind the inputs, replay without the GIL, collect the
      // outputs, drop the intermediates. None (nothing run) when an input is
      // not a tensor like the one recorded: the caller takes the slow path.
      .def("run", [](BoundProgram& b, py::tuple inputs) -> py::object {
             return py::reinterpret_steal<py::object>(run_bound(b, inputs.ptr()));
           }, py::arg("inputs"))
      .def("__len__", [](const BoundProgram& b) { return b.program.size(); })
      .def("instructions", [](const BoundProgram& b) {
             std::vector<std::string> names(b.program.instructions().begin(),
                                            b.program.instructions().end());
             return names;
           }, "What each recorded instruction calls, in order")
      .def("profile", [](BoundProgram& b, const std::vector<Tensor>& inputs) {
             Program& p = b.program;
             TG_CHECK(inputs.size() == p.num_inputs(), ValueError, "compile: profile() takes ",
                      p.num_inputs(), " inputs, got ", inputs.size());
             for (size_t k = 0; k < inputs.size(); k++)
               TG_CHECK(p.input_matches(k, inputs[k]), ValueError, "compile: profile() input ", k,
                        " does not match the recorded shape, dtype or requires_grad");
             std::lock_guard<std::mutex> lock(p.mutex());
             for (size_t k = 0; k < inputs.size(); k++) p.set_input(k, inputs[k]);
             std::vector<double> ns;
             {
               py::gil_scoped_release release;
               ns = p.profile();
             }
             p.clear();
             return ns;
           }, py::arg("inputs"), "Replays once, timing each instruction (nanoseconds)");
  m.def("_trace_recording", &trace::recording,
        "True while tg.compile records a step on this thread");

  m.def("_memory_stats", [] {
    memory::Stats s = memory::stats();
    py::dict d;
    d["system_allocations"] = s.system_allocations;
    d["system_frees"] = s.system_frees;
    d["cache_hits"] = s.cache_hits;
    d["bytes_cached"] = s.bytes_cached;
    d["cache_limit"] = memory::cache_limit();
    return d;
  });
  for (auto [slot, name] : {std::pair{&g_str_training, "training"},
                            std::pair{&g_str_param_groups, "param_groups"},
                            std::pair{&g_str_state, "state"},
                            std::pair{&g_str_call_slow, "_call_slow"},
                            std::pair{&g_str_state_matches, "python_state_matches"}}) {
    *slot = PyUnicode_InternFromString(name);  // kept for the life of the process
    if (!*slot) throw py::error_already_set();
  }
  PyObject* type = PyType_FromSpec(&compiled_call_spec);
  if (!type) throw py::error_already_set();
  g_compiled_call_type = (PyTypeObject*)type;
  Py_INCREF(type);  // g_compiled_call_type's own reference
  m.attr("_CompiledCall") = py::reinterpret_steal<py::object>(type);
  // What the fast path checks and replays (see Note [Compiled call fast path]).
  m.def("_set_fast_call", [](py::handle fn, py::object program, py::tuple modules,
                             py::tuple training, py::tuple optimizers, py::object entry,
                             bool grad_mode, py::object out_spec, py::object finish) {
          CompiledCallObject* self = as_compiled_call(fn);
          TG_CHECK(modules.size() == training.size(), ValueError,
                   "compile: one training flag per module");
          for (py::handle spec : optimizers)
            TG_CHECK(py::isinstance<py::tuple>(spec) && py::len(spec) == 3, ValueError,
                     "compile: optimizer specs are (optimizer, groups, state size)");
          BoundProgram* bp = program.cast<BoundProgram*>();
          compiled_call_clear_fast(self);
          self->program = bp;
          self->program_obj = program.release().ptr();
          self->modules = modules.release().ptr();
          self->training = training.release().ptr();
          self->optimizers = optimizers.release().ptr();
          self->entry = entry.release().ptr();
          self->out_spec = out_spec.is_none() ? nullptr : out_spec.release().ptr();
          self->finish = out_spec.is_none() ? nullptr : finish.release().ptr();
          self->grad_mode = grad_mode;
        }, py::arg("fn"), py::arg("program"), py::arg("modules"), py::arg("training"),
        py::arg("optimizers"), py::arg("entry"), py::arg("grad_mode"), py::arg("out_spec"),
        py::arg("finish"));
  m.def("_clear_fast_call", [](py::handle fn) { compiled_call_clear_fast(as_compiled_call(fn)); },
        py::arg("fn"));
  m.def("_empty_cache", &memory::empty_cache);
  m.def("_set_cache_limit", &memory::set_cache_limit, py::arg("bytes"));
}

}  // namespace tg::bind
