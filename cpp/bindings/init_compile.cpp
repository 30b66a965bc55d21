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
      // Raw CPython on the way in: this is the per-step cost tg.compile adds.
      .def("run", [](BoundProgram& b, py::tuple inputs) -> py::object {
             Program& p = b.program;
             size_t n = (size_t)PyTuple_GET_SIZE(inputs.ptr());
             if (n != p.num_inputs()) return py::none();
             for (size_t k = 0; k < n; k++) {
               PyObject* o = PyTuple_GET_ITEM(inputs.ptr(), k);
               if (!is_tensor(o) || !p.input_matches(k, tensor_ref(o))) return py::none();
             }
             std::unique_lock<std::mutex> lock(p.mutex(), std::defer_lock);
             {
               py::gil_scoped_release release;  // also while waiting for another thread's turn
               lock.lock();
               for (size_t k = 0; k < n; k++)
                 p.set_input(k, reinterpret_cast<TensorObject*>(PyTuple_GET_ITEM(inputs.ptr(), k))->value);
               p.replay();
             }
             py::tuple out(b.outputs.size());
             for (size_t i = 0; i < b.outputs.size(); i++) {
               auto [sparse, slot] = b.outputs[i];
               out[i] = sparse ? py::cast(p.sparse_output(slot)) : py::cast(p.output(slot));
             }
             p.clear();
             return std::move(out);
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
  m.def("_empty_cache", &memory::empty_cache);
  m.def("_set_cache_limit", &memory::set_cache_limit, py::arg("bytes"));
}

}  // namespace tg::bind
