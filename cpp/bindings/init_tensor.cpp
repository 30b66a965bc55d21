// The Tensor class: attributes, NumPy interop, operators and methods.
#include <cstring>

#include "bindings.h"
#include "tapegrad/trace.h"
#include "tapegrad/sparse.h"

namespace tg::bind {

std::vector<int64_t> dims_arg(const py::handle& dim) {
  if (dim.is_none()) return {};
  if (py::isinstance<py::int_>(dim)) return {dim.cast<int64_t>()};
  return dim.cast<std::vector<int64_t>>();
}

std::vector<int64_t> shape_args(const py::args& args) {
  if (args.size() == 1 && !py::isinstance<py::int_>(args[0]))
    return args[0].cast<std::vector<int64_t>>();
  return args.cast<std::vector<int64_t>>();
}

Shape shape_of(const std::vector<int64_t>& v) {
  for (int64_t d : v)
    TG_CHECK(d >= 0, ValueError, "negative dimension ", d, " in shape ", to_string(Dims::from(v)));
  return Dims::from(v);
}

Tensor tensor_arg(const py::handle& v, DType like, const char* op) {
  if (is_tensor(v)) return tensor_ref(v);
  if (py::isinstance<py::bool_>(v)) return Tensor::scalar(v.cast<bool>(), DType::Bool);
  if (py::isinstance<py::int_>(v))
    return Tensor::scalar(v.cast<double>(), is_floating(like) ? like : DType::Int64);
  if (py::isinstance<py::float_>(v))
    return Tensor::scalar(v.cast<double>(), is_floating(like) ? like : DType::Float32);
  throw TypeError(str(op, ": expected a Tensor or a Python number, got ",
                      std::string(py::str(py::type::of(v).attr("__name__")))));
}

// ---------------------------------------------------------------- numpy
static DType dtype_from_numpy(const py::dtype& dt) {
  if (!dt.attr("isnative").cast<bool>())
    throw ValueError(str("from_numpy: arrays with non-native byte order (",
                         std::string(py::str(dt)), ") are not supported; convert with "
                         "a.astype(a.dtype.newbyteorder('='))"));
  if (dt.is(py::dtype::of<float>())) return DType::Float32;
  if (dt.is(py::dtype::of<double>())) return DType::Float64;
  if (dt.is(py::dtype::of<int64_t>())) return DType::Int64;
  if (dt.is(py::dtype::of<bool>())) return DType::Bool;
  char k = dt.kind();
  int sz = (int)dt.itemsize();
  if (k == 'f' && sz == 4) return DType::Float32;
  if (k == 'f' && sz == 8) return DType::Float64;
  if (k == 'i' && sz == 8) return DType::Int64;
  if (k == 'b') return DType::Bool;
  throw TypeError(str("from_numpy: unsupported NumPy dtype ", std::string(py::str(dt)),
                      "; supported: float32, float64, int64, bool"));
}

static py::dtype numpy_dtype(DType dt) {
  switch (dt) {
    case DType::Float32: return py::dtype::of<float>();
    case DType::Float64: return py::dtype::of<double>();
    case DType::Int64: return py::dtype::of<int64_t>();
    case DType::Bool: return py::dtype::of<bool>();
  }
  return py::dtype::of<float>();
}

// Shares the array's memory; the storage keeps the array alive.
Tensor from_numpy(py::array arr) {
  DType dt = dtype_from_numpy(arr.dtype());
  TG_CHECK(arr.ndim() <= kMaxDims, ValueError, "from_numpy: tapegrad supports at most ",
           kMaxDims, " dimensions, got ", arr.ndim());
  Shape shape;
  Strides strides;
  shape.ndim = strides.ndim = (int)arr.ndim();
  int64_t isz = (int64_t)itemsize(dt);
  for (int i = 0; i < shape.ndim; i++) {
    shape.d[i] = arr.shape(i);
    int64_t st = arr.strides(i);
    TG_CHECK(st >= 0, ValueError, "from_numpy: arrays with negative strides are not supported; "
             "pass a copy (np.ascontiguousarray)");
    TG_CHECK(st % isz == 0, ValueError, "from_numpy: strides that are not a multiple of the "
             "item size are not supported; pass np.ascontiguousarray(a)");
    strides.d[i] = st / isz;
  }
  // A read-only array (np.broadcast_to, a constant) is copied: a tensor that
  // shares it could be written through. NumPy makes the copy, raising
  // MemoryError when it cannot be made.
  if (!arr.writeable()) {
    arr = py::module_::import("numpy").attr("array")(arr, py::arg("copy") = true);
    for (int i = 0; i < shape.ndim; i++) strides.d[i] = arr.strides(i) / isz;
  }
  PyObject* owner = arr.ptr();
  Py_INCREF(owner);
  return Tensor::from_blob(
      arr.mutable_data(), shape, strides, dt,
      [](void* ctx, void*) {
        py::gil_scoped_acquire gil;
        Py_DECREF((PyObject*)ctx);
      },
      owner, (size_t)arr.nbytes());
}

py::array to_numpy(const Tensor& t) {
  trace::check_read(t, "numpy");
  TensorImpl* impl = t.impl();
  auto* keep = new Ref<Storage>(impl->storage);
  py::capsule base(keep, [](void* p) { delete static_cast<Ref<Storage>*>(p); });
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  std::vector<py::ssize_t> strides;
  for (int64_t s : t.strides()) strides.push_back(s * (py::ssize_t)itemsize(t.dtype()));
  return py::array(numpy_dtype(t.dtype()), shape, strides, t.raw_data(), base);
}

// ---------------------------------------------------------------- class
void init_tensor(py::module_& m) {
  py::enum_<DType>(m, "dtype", "A tensor element type (tapegrad.float32, ...)")
      .value("float32", DType::Float32)
      .value("float64", DType::Float64)
      .value("int64", DType::Int64)
      .value("bool", DType::Bool)
      .def("__repr__", [](DType d) { return std::string("tapegrad.") + dtype_name(d); })
      .def("__str__", [](DType d) { return std::string("tapegrad.") + dtype_name(d); })
      .def_property_readonly("is_floating_point", [](DType d) { return is_floating(d); })
      .def_property_readonly("itemsize", [](DType d) { return itemsize(d); });

  // A row-sparse gradient (see cpp/include/tapegrad/sparse.h): what .grad
  // holds for an embedding looked up with sparse=True.
  py::class_<RowSparse, Ref<RowSparse>>(m, "RowSparseGrad",
      "A row-sparse gradient: values[i] is the gradient of row indices[i] (rows may repeat)")
      .def_property_readonly("is_sparse", [](const RowSparse&) { return true; })
      .def_property_readonly("shape", [](const RowSparse& s) { return py::tuple(py::cast(s.dense_shape.vec())); })
      .def_property_readonly("dtype", [](const RowSparse& s) { return s.values.dtype(); })
      .def("indices", [](const RowSparse& s) { return s.indices; })
      .def("values", [](const RowSparse& s) { return s.values; })
      .def("_indices", [](const RowSparse& s) { return s.indices; })
      .def("_values", [](const RowSparse& s) { return s.values; })
      .def("_nnz", &RowSparse::nnz)
      .def("coalesce", &RowSparse::coalesce)
      .def("to_dense", &RowSparse::to_dense)
      .def("__repr__", [](const RowSparse& s) {
        return str("RowSparseGrad(rows=", s.nnz(), ", shape=", to_string(s.dense_shape), ", dtype=",
                   dtype_name(s.values.dtype()), ")");
      });

  // Tensor(t), __init__ and the raw operator slots are in tensor_object.cpp.
  TensorClass cls(make_tensor_type(m));
  cls.def_property_readonly("shape", [](const Tensor& t) { return py::tuple(py::cast(t.shape().vec())); })
      .def("size", [](const Tensor& t, py::object dim) -> py::object {
             if (dim.is_none()) return py::tuple(py::cast(t.shape().vec()));
             return py::int_(t.size(dim.cast<int>()));
           }, py::arg("dim") = py::none())
      .def_property_readonly("dtype", &Tensor::dtype)
      .def_property_readonly("ndim", &Tensor::ndim)
      .def("dim", &Tensor::ndim)
      .def("numel", &Tensor::numel)
      .def("stride", [](const Tensor& t) { return py::tuple(py::cast(t.strides().vec())); })
      .def("storage_offset", [](const Tensor& t) { return t.impl()->offset; })
      .def("data_ptr", [](const Tensor& t) { return (uintptr_t)t.raw_data(); })
      .def("element_size", [](const Tensor& t) { return itemsize(t.dtype()); })
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("is_floating_point", [](const Tensor& t) { return is_floating(t.dtype()); })
      .def_property_readonly("_version", [](const Tensor& t) { return t.impl()->storage->version; })
      .def("_bump_version", [](const Tensor& t) { t.bump_version(); })
      .def("__len__", [](const Tensor& t) {
        TG_CHECK(t.ndim() > 0, TypeError, "len() of a 0-d tensor");
        return t.shape()[0];
      })
      .def("item", [](const Tensor& t) -> py::object {
        double v = t.item();
        if (t.dtype() == DType::Int64) return py::int_((int64_t)v);
        if (t.dtype() == DType::Bool) return py::bool_(v != 0);
        return py::float_(v);
      })
      .def("tolist", [](const Tensor& t) { return to_numpy(contiguous_copy(t)).attr("tolist")(); })
      .def("numpy", [](const Tensor& t, bool force) {
        if (t.requires_grad() && !force)
          throw RuntimeError("numpy: can't call numpy() on a tensor that requires grad; use "
                             "tensor.detach().numpy()");
        return to_numpy(t);
      }, py::arg("force") = false)
      // autograd attributes
      .def_property("requires_grad", &Tensor::requires_grad,
                    [](Tensor& t, bool r) { t.set_requires_grad(r); })
      .def_property("grad",
                    [](const Tensor& t) -> py::object {
                      if (Ref<RowSparse> s = t.sparse_grad()) return py::cast(s);
                      Tensor g = t.grad();
                      return g.defined() ? py::cast(g) : py::none();
                    },
                    [](Tensor& t, py::object g) {
                      if (py::isinstance<RowSparse>(g)) t.set_sparse_grad(g.cast<Ref<RowSparse>>());
                      else t.set_grad(g.is_none() ? Tensor() : g.cast<Tensor>());
                    })
      .def_property("data", &Tensor::detach, [](Tensor& t, const Tensor& v) {
        // Like PyTorch's `p.data = v`: the same tensor object now holds v's
        // values (shape and dtype may change); history and .grad stay.
        TG_CHECK(t.is_leaf(), RuntimeError, "data: can only be assigned on a leaf tensor");
        TG_CHECK(!trace::recording(), RuntimeError, "data: assigning .data inside a step that "
                 "tg.compile records is not supported (a replay could not repeat it)");
        TG_CHECK(!t.requires_grad() || is_floating(v.dtype()), TypeError,
                 "data: a tensor that requires grad needs floating data, got ", v.describe());
        TensorImpl* impl = t.impl();
        impl->set_storage(v.impl()->storage);
        impl->offset = v.impl()->offset;
        impl->shape = v.shape();
        impl->strides = v.strides();
        impl->dtype = v.dtype();
      })
      .def_property_readonly("is_leaf", &Tensor::is_leaf)
      .def_property_readonly("is_sparse", [](const Tensor&) { return false; })
      .def_property_readonly("grad_fn", [](const Tensor& t) -> py::object {
        if (t.is_leaf()) return py::none();
        return py::str(std::string(op_name(t.impl()->tape->at(t.impl()->record).op)) +
                       "_backward");
      })
      .def("retain_grad", &Tensor::retain_grad)
      .def_property_readonly("retains_grad", [](const Tensor& t) { return t.impl()->retains_grad; })
      .def("detach", &Tensor::detach)
      .def("backward", [](const Tensor& t, py::object gradient, py::object retain_graph,
                          bool create_graph) {
             if (create_graph)
               throw RuntimeError("backward: create_graph=True (higher-order gradients) is not "
                                  "supported by tapegrad's tape; gradients are never recorded");
             Tensor g = gradient.is_none() ? Tensor() : tensor_arg(gradient, t.dtype(), "backward");
             bool retain = retain_graph.is_none() ? false : retain_graph.cast<bool>();
             py::gil_scoped_release release;
             t.backward(g, retain);
           },
           py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none(),
           py::arg("create_graph") = false)
      .def("__hash__", [](py::object self) { return (intptr_t)self.ptr(); })
      .def("__array__", [](const Tensor& t, py::object dtype, py::object copy) {
             py::array a = to_numpy(t.detach());
             if (!dtype.is_none()) a = a.attr("astype")(dtype);
             if (!copy.is_none() && copy.cast<bool>()) a = a.attr("copy")();
             return a;
           },
           py::arg("dtype") = py::none(), py::arg("copy") = py::none())
      .def("__bool__", [](const Tensor& t) {
        TG_CHECK(t.numel() == 1, RuntimeError, "bool: the truth value of a tensor with more "
                 "than one element is ambiguous (", t.describe(), ")");
        return t.item() != 0;
      })
      .def("__float__", [](const Tensor& t) { return t.item(); })
      .def("__int__", [](const Tensor& t) { return (int64_t)t.item(); })
      .def("__index__", [](const Tensor& t) {
        TG_CHECK(t.dtype() == DType::Int64 && t.numel() == 1, TypeError,
                 "only integer tensors of a single element can be converted to an index");
        return (int64_t)t.item();
      });

  // Arithmetic operators. + - * / @ and unary - are raw number slots (see
  // Note [Operator slots] in tensor_object.cpp); the rest are methods.
  cls.def("__pow__", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, py::is_operator())
      .def("__pow__", [](const Tensor& a, double s) { return pow(a, s); }, py::is_operator())
      .def("__rpow__", [](const Tensor& a, double s) { return pow(s, a); }, py::is_operator())
      .def("__abs__", [](const Tensor& a) { return abs(a); })
      .def("__invert__", [](const Tensor& a) { return logical_not(a); });

  auto cmp = [&](const char* name, CmpOp op) {
    cls.def(name, [op](const Tensor& a, const Tensor& b) { return compare(a, b, op); },
            py::is_operator());
    cls.def(name, [op](const Tensor& a, double s) { return compare(a, s, op); },
            py::is_operator());
  };
  cmp("__eq__", CmpOp::Eq);
  cmp("__ne__", CmpOp::Ne);
  cmp("__lt__", CmpOp::Lt);
  cmp("__le__", CmpOp::Le);
  cmp("__gt__", CmpOp::Gt);
  cmp("__ge__", CmpOp::Ge);
  cmp("eq", CmpOp::Eq);
  cmp("ne", CmpOp::Ne);
  cmp("lt", CmpOp::Lt);
  cmp("le", CmpOp::Le);
  cmp("gt", CmpOp::Gt);
  cmp("ge", CmpOp::Ge);

  // In-place ops (recorded under autograd: Note [In-place ops with autograd]).
  // Each returns `self`, the same Python object, as PyTorch does.
  using InplaceFn = void (*)(Tensor&, py::object);
  auto inplace = [&](const char* name, InplaceFn fn) {
    cls.def(name, [fn](py::object self, py::object other) {
      fn(tensor_ref(self), other);
      return self;
    }, py::arg("other"));
  };
  auto add_with_alpha = [&](const char* name, double sign) {
    cls.def(name, [sign](py::object self, py::object other, double alpha) {
      Tensor& a = tensor_ref(self);
      add_(a, tensor_arg(other, a.dtype(), "add_"), sign * alpha);
      return self;
    }, py::arg("other"), py::arg("alpha") = 1.0);
  };
  add_with_alpha("add_", 1.0);
  add_with_alpha("sub_", -1.0);
  InplaceFn mul_into = [](Tensor& a, py::object b) {
    if (is_tensor(b)) mul_(a, tensor_ref(b));
    else mul_(a, b.cast<double>());
  };
  InplaceFn div_into = [](Tensor& a, py::object b) {
    if (is_tensor(b)) mul_(a, rdiv(1.0, tensor_ref(b)));
    else mul_(a, 1.0 / b.cast<double>());
  };
  inplace("mul_", mul_into);
  inplace("div_", div_into);
  inplace("__imul__", mul_into);
  inplace("__itruediv__", div_into);
  inplace("__iadd__", [](Tensor& a, py::object b) { add_(a, tensor_arg(b, a.dtype(), "add_"), 1.0); });
  inplace("__isub__", [](Tensor& a, py::object b) { add_(a, tensor_arg(b, a.dtype(), "sub_"), -1.0); });
  inplace("fill_", [](Tensor& a, py::object v) { fill_(a, v.cast<double>()); });
  inplace("copy_", [](Tensor& a, py::object src) { copy_(a, src.cast<Tensor>()); });
  cls.def("zero_", [](py::object self) { zero_(tensor_ref(self)); return self; });
#define TG_BIND_INPLACE(name) \
  cls.def(#name "_", [](py::object self) { name##_(tensor_ref(self)); return self; });
  TG_INPLACE_UNARY_OPS(TG_BIND_INPLACE)
#undef TG_BIND_INPLACE
  auto opt = [](const py::object& v) {
    return v.is_none() ? std::nullopt : std::optional<double>(v.cast<double>());
  };
  cls.def("clamp_", [opt](py::object self, py::object lo, py::object hi) {
    clamp_(tensor_ref(self), opt(lo), opt(hi));
    return self;
  }, py::arg("min") = py::none(), py::arg("max") = py::none());
  cls.attr("clip_") = cls.attr("clamp_");
  m.def("_leaky_relu_", [](py::object self, double slope) {
    leaky_relu_(tensor_ref(self), slope);
    return self;
  });
  m.def("_hardtanh_", [](py::object self, double lo, double hi) {
    hardtanh_(tensor_ref(self), lo, hi);
    return self;
  });
  cls.def("masked_fill_", [](py::object self, const Tensor& mask, py::object value) {
    Tensor& a = tensor_ref(self);
    masked_fill_(a, mask, is_tensor(value) ? tensor_ref(value)
                                           : Tensor::scalar(value.cast<double>(), a.dtype()));
    return self;
  }, py::arg("mask"), py::arg("value"));
  cls.def("requires_grad_", [](py::object self, bool r) {
    tensor_ref(self).set_requires_grad(r);
    return self;
  }, py::arg("requires_grad") = true);
}

}  // namespace tg::bind
