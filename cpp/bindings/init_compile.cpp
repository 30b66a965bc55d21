// tg.compile's C++ side: a recorded Program and its replay (see trace.h).
#include "bindings.h"
#include "tapegrad/memory.h"
#include "tapegrad/trace.h"

namespace tg::bind {

void init_compile(py::module_& m) {
  py::class_<Program>(m, "_Program", "A recorded step (see tapegrad.compile)")
      .def(py::init<>())
      .def("begin", &Program::begin)
      .def("end", &Program::end)
      .def("add_input", &Program::add_input, py::arg("tensor"))
      .def("output_slot", [](Program& p, py::handle v) -> std::pair<bool, int> {
             if (py::isinstance<RowSparse>(v))
               return {true, p.sparse_output_slot(v.cast<Ref<RowSparse>>())};
             return {false, p.output_slot(v.cast<Tensor>())};
           }, py::arg("value"))
      // One call per step: bind the inputs, replay without the GIL, collect the
      // outputs, drop the intermediates. None (nothing run) when an input does
      // not match what was recorded: the caller records again.
      .def("run", [](Program& p, const std::vector<Tensor>& inputs,
                     const std::vector<std::pair<bool, int>>& outputs) -> py::object {
             if (inputs.size() != p.num_inputs()) return py::none();
             for (size_t k = 0; k < inputs.size(); k++)
               if (!p.input_matches(k, inputs[k])) return py::none();
             std::unique_lock<std::mutex> lock(p.mutex(), std::defer_lock);
             {
               py::gil_scoped_release release;  // also while waiting for another thread's turn
               lock.lock();
               for (size_t k = 0; k < inputs.size(); k++) p.set_input(k, inputs[k]);
               p.replay();
             }
             py::tuple out(outputs.size());
             for (size_t i = 0; i < outputs.size(); i++) {
               auto [sparse, slot] = outputs[i];
               out[i] = sparse ? py::cast(p.sparse_output(slot)) : py::cast(p.output(slot));
             }
             p.clear();
             return std::move(out);
           }, py::arg("inputs"), py::arg("outputs"))
      .def("__len__", &Program::size)
      .def("instructions", [](const Program& p) {
             std::vector<std::string> names(p.instructions().begin(), p.instructions().end());
             return names;
           }, "What each recorded instruction calls, in order")
      .def("profile", [](Program& p, const std::vector<Tensor>& inputs) {
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
