// Shared declarations for the pybind11 module tapegrad._C. The bindings are
// thin: argument conversion and nothing else; all semantics live in the core.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "tapegrad/kernels.h"
#include "tapegrad/ops.h"
#include "tensor_object.h"

namespace py = pybind11;

// tg::Ref is an intrusive pointer: safe to rebuild from a raw pointer.
PYBIND11_DECLARE_HOLDER_TYPE(T, tg::Ref<T>, true)

namespace tg::bind {

void init_tensor(py::module_& m);
void init_ops(py::module_& m);
void init_autograd(py::module_& m);
void init_optim(py::module_& m);
void init_compile(py::module_& m);

// dim=None -> {} (all dims), an int -> {d}, a sequence of ints -> as is.
std::vector<int64_t> dims_arg(const py::handle& dim);
// f(2, 3), f((2, 3)) and f([2, 3]) all mean the shape [2, 3].
std::vector<int64_t> shape_args(const py::args& args);
// A Tensor, or a Python number made into a 0-d tensor of `like`'s dtype.
Tensor tensor_arg(const py::handle& v, DType like, const char* op);
Shape shape_of(const std::vector<int64_t>& v);
Tensor from_numpy(py::array arr);
py::array to_numpy(const Tensor& t);

// matmul, run without the GIL when it is big enough (about 2^18 multiply-adds)
// for other Python threads to gain from the overlap; small ones keep the GIL
// (releasing it costs more than they take). The tape is per thread and locks
// itself (see tape.h), so recording without the GIL is safe.
inline Tensor matmul_gil(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.ndim() == 0 || b.ndim() == 0) return matmul(a, b);
  double work = (double)a.numel() * (double)(b.ndim() >= 2 ? b.shape()[b.ndim() - 1] : 1);
  if (work < (double)(1 << 18)) return matmul(a, b);
  py::gil_scoped_release release;
  return matmul(a, b);
}

}  // namespace tg::bind
