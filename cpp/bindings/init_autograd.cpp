// Autograd entry points, grad mode, the op table and threading controls.
#include "bindings.h"

namespace tg::bind {

void init_autograd(py::module_& m) {
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
