// Autograd entry points, grad mode, the op table and threading controls.
#include "bindings.h"

#include <frameobject.h>

namespace tg::bind {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// The anomaly-mode location hook: "file.py:LINE" of the innermost Python frame
// outside the tapegrad package (its examples count as user code). Runs with or
// without the GIL held by the caller (a big matmul records without it).
void python_location(std::string* out) {
  py::gil_scoped_acquire gil;
  try {
    static const std::string pkg = [] {
      py::object os_path = py::module_::import("os.path");
      py::object file = py::module_::import("tapegrad").attr("__file__");
      return os_path.attr("dirname")(file).cast<std::string>() + "/";
    }();
    static const std::string examples = pkg + "examples/";
    PyFrameObject* f = PyEval_GetFrame();  // borrowed
    Py_XINCREF(f);
    while (f) {
      py::object code = py::reinterpret_steal<py::object>((PyObject*)PyFrame_GetCode(f));
      std::string file = code.attr("co_filename").cast<std::string>();
      if (!starts_with(file, pkg) || starts_with(file, examples)) {
        *out = file + ":" + std::to_string(PyFrame_GetLineNumber(f));
        Py_DECREF(f);
        return;
      }
      PyFrameObject* back = PyFrame_GetBack(f);  // new reference
      Py_DECREF(f);
      f = back;
    }
  } catch (py::error_already_set& e) {
    // A location is a courtesy: never let finding it raise.
  }
}

}  // namespace

void init_autograd(py::module_& m) {
  set_location_hook(&python_location);
  m.def("_set_anomaly_enabled", &set_anomaly_enabled, py::arg("mode"),
        "Anomaly mode for this thread (tg.autograd.detect_anomaly)");
  m.def("is_anomaly_enabled", &anomaly_enabled);
  m.def("_backward", [](const std::vector<Tensor>& roots, std::vector<py::object> grads,
                        bool retain_graph) {
    std::vector<Tensor> gs;
    for (size_t i = 0; i < roots.size(); i++)
      gs.push_back(i < grads.size() && !grads[i].is_none()
                       ? tensor_arg(grads[i], roots[i].dtype(), "backward")
                       : Tensor());
    py::gil_scoped_release release;
    backward(roots, gs, retain_graph);
  });
  m.def("_grad", [](const std::vector<Tensor>& outputs, std::vector<py::object> grad_outputs,
                    const std::vector<Tensor>& inputs, bool retain_graph, bool allow_unused) {
    std::vector<Tensor> gos;
    for (size_t i = 0; i < outputs.size(); i++)
      gos.push_back(i < grad_outputs.size() && !grad_outputs[i].is_none()
                        ? tensor_arg(grad_outputs[i], outputs[i].dtype(), "autograd.grad")
                        : Tensor());
    std::vector<Tensor> result;
    {
      py::gil_scoped_release release;
      result = grad(outputs, gos, inputs, retain_graph, allow_unused);
    }
    py::list out;
    for (const Tensor& r : result) out.append(r.defined() ? py::cast(r) : py::none());
    return out;
  });
  m.def("is_grad_enabled", &grad_enabled);
  m.def("_set_grad_enabled", &set_grad_enabled);
  m.def("op_names", &op_names, "Names of the recorded primitive ops, in op-table order");
  m.def("_tape_size", []() { return Tape::current().size(); },
        "Records in this thread's tape (slots in use), for tests of memory release");
  m.def("_tape_live", []() { return Tape::current().live(); });
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  m.def("_blas_name", &blas_name);
}

}  // namespace tg::bind
