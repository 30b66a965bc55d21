// Shared declarations for the pybind11 module tapegrad._C. The bindings are
// thin: argument conversion and nothing else; all semantics live in the core.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "tapegrad/kernels.h"
#include "tapegrad/ops.h"

namespace py = pybind11;

// tg::Ref is an intrusive pointer: safe to rebuild from a raw pointer.
PYBIND11_DECLARE_HOLDER_TYPE(T, tg::Ref<T>, true)

namespace tg::bind {

void init_tensor(py::module_& m);
void init_ops(py::module_& m);
void init_autograd(py::module_& m);
void init_optim(py::module_& m);

// dim=None -> {} (all dims), an int -> {d}, a sequence of ints -> as is.
std::vector<int64_t> dims_arg(const py::handle& dim);
// f(2, 3), f((2, 3)) and f([2, 3]) all mean the shape [2, 3].
std::vector<int64_t> shape_args(const py::args& args);
// A Tensor, or a Python number made into a 0-d tensor of `like`'s dtype.
Tensor tensor_arg(const py::handle& v, DType like, const char* op);
Shape shape_of(const std::vector<int64_t>& v);
Tensor from_numpy(py::array arr);
py::array to_numpy(const Tensor& t);

}  // namespace tg::bind
