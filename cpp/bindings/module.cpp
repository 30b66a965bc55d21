#include "bindings.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "tapegrad's C++ core (private; use the tapegrad package)";
  // tg::ValueError / IndexError derive from std::invalid_argument /
  // std::out_of_range, which pybind11 already maps to ValueError / IndexError.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const tg::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    }
  });
  tg::bind::init_tensor(m);
  tg::bind::init_ops(m);
  tg::bind::init_autograd(m);
  tg::bind::init_optim(m);
  tg::bind::init_compile(m);
}
