// The Tensor type object (see Note [Tensor object] in tensor_object.h) and its
// raw number slots.
#include "bindings.h"

#include <structmember.h>

namespace tg::bind {

PyTypeObject* g_tensor_type = nullptr;

void throw_uninitialized(PyObject* o) {
  throw TypeError(str(Py_TYPE(o)->tp_name, ": the tensor was never initialized; a subclass "
                      "that overrides __init__ must call super().__init__(data)"));
}

namespace {

// Exact Tensor objects are recycled through a small free list (as CPython
// does for floats and tuples): an eager op's result then costs no allocator
// call. Guarded by the GIL; entries hold no reference to the type.
constexpr int kFreeListMax = 64;
PyObject* g_free_list[kFreeListMax];
int g_free_count = 0;

}  // namespace

PyObject* alloc_tensor_object() {
  if (g_free_count > 0) {
    PyObject* o = g_free_list[--g_free_count];
    PyObject_Init(o, g_tensor_type);  // new reference, takes a type reference
    return o;
  }
  PyObject* o = g_tensor_type->tp_alloc(g_tensor_type, 0);
  if (!o) throw py::error_already_set();
  return o;
}

namespace {

// ---------------------------------------------------------------- lifetime
PyObject* tensor_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* o = type->tp_alloc(type, 0);
  if (o) new (&reinterpret_cast<TensorObject*>(o)->value) Tensor();
  return o;
}

void tensor_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  auto* o = reinterpret_cast<TensorObject*>(self);
  if (o->weakrefs) {
    PyObject_ClearWeakRefs(self);
    o->weakrefs = nullptr;
  }
  o->value.~Tensor();  // may release tape records (never calls back into Python)
  if (tp == g_tensor_type && g_free_count < kFreeListMax) {
    g_free_list[g_free_count++] = self;
  } else {
    tp->tp_free(self);
  }
  Py_DECREF(tp);
}

// Tensor(data): another handle on data's values (shared storage, no
// history); lets subclasses such as nn.Parameter wrap an existing tensor.
int tensor_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"data", nullptr};
  PyObject* data = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Tensor", const_cast<char**>(kwlist), &data))
    return -1;
  if (!is_tensor(data)) {
    PyErr_Format(PyExc_TypeError, "Tensor(): expected a Tensor, got %s", Py_TYPE(data)->tp_name);
    return -1;
  }
  try {
    reinterpret_cast<TensorObject*>(self)->value = tensor_ref(data).detach();
  } catch (...) {
    py::detail::try_translate_exceptions();
    return -1;
  }
  return 0;
}

// ---------------------------------------------------------------- number slots
// Note [Operator slots]
// t + 2.0 used to go through pybind11's overload resolution: the (Tensor,
// Tensor) overload failed first (slowly), then (Tensor, double) matched. The
// slots below decide directly: tensor (op) tensor, tensor (op) scalar and the
// reflected scalar (op) tensor (CPython calls the same slot with the operands
// swapped). A scalar is whatever pybind11's double caster accepts with
// conversion (float, int, bool, NumPy scalars, ...), exactly the operands the
// old `double` overloads took, with exact floats and ints decided inline.
// Anything else returns NotImplemented, as the old operators did.
bool scalar_operand(PyObject* o, double* out) {
  if (PyFloat_CheckExact(o)) {
    *out = PyFloat_AS_DOUBLE(o);
    return true;
  }
  py::detail::make_caster<double> c;
  if (!c.load(o, true)) return false;
  *out = (double)c;
  return true;
}

template <class TT, class TS, class ST>
PyObject* binary_slot(PyObject* a, PyObject* b, TT tensor_tensor, TS tensor_scalar,
                      ST scalar_tensor) {
  try {
    double s;
    if (is_tensor(a)) {
      const Tensor& x = tensor_ref(a);
      if (PyFloat_CheckExact(b)) return wrap_tensor(tensor_scalar(x, PyFloat_AS_DOUBLE(b)));
      if (is_tensor(b)) return wrap_tensor(tensor_tensor(x, tensor_ref(b)));
      if (scalar_operand(b, &s)) return wrap_tensor(tensor_scalar(x, s));
    } else if (scalar_operand(a, &s)) {  // reflected: b is the tensor
      return wrap_tensor(scalar_tensor(s, tensor_ref(b)));
    }
  } catch (...) {
    py::detail::try_translate_exceptions();
    return nullptr;
  }
  Py_RETURN_NOTIMPLEMENTED;
}

PyObject* nb_add(PyObject* a, PyObject* b) {
  return binary_slot(
      a, b, [](const Tensor& x, const Tensor& y) { return add(x, y); },
      [](const Tensor& x, double s) { return add(x, s); },
      [](double s, const Tensor& y) { return add(y, s); });
}

PyObject* nb_subtract(PyObject* a, PyObject* b) {
  return binary_slot(
      a, b, [](const Tensor& x, const Tensor& y) { return sub(x, y); },
      [](const Tensor& x, double s) { return sub(x, s); },
      [](double s, const Tensor& y) { return rsub(s, y); });
}

PyObject* nb_multiply(PyObject* a, PyObject* b) {
  return binary_slot(
      a, b, [](const Tensor& x, const Tensor& y) { return mul(x, y); },
      [](const Tensor& x, double s) { return mul(x, s); },
      [](double s, const Tensor& y) { return mul(y, s); });
}

PyObject* nb_true_divide(PyObject* a, PyObject* b) {
  return binary_slot(
      a, b, [](const Tensor& x, const Tensor& y) { return div(x, y); },
      [](const Tensor& x, double s) { return div(x, s); },
      [](double s, const Tensor& y) { return rdiv(s, y); });
}

// a @ b: tensors only (no scalar form), as before.
PyObject* nb_matrix_multiply(PyObject* a, PyObject* b) {
  if (!is_tensor(a) || !is_tensor(b)) Py_RETURN_NOTIMPLEMENTED;
  try {
    return wrap_tensor(matmul_gil(tensor_ref(a), tensor_ref(b)));
  } catch (...) {
    py::detail::try_translate_exceptions();
    return nullptr;
  }
}

PyObject* nb_negative(PyObject* a) {
  try {
    return wrap_tensor(neg(tensor_ref(a)));
  } catch (...) {
    py::detail::try_translate_exceptions();
    return nullptr;
  }
}

PyMemberDef tensor_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TensorObject, weakrefs), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

}  // namespace

py::object make_tensor_type(py::module_& m) {
  static PyType_Slot slots[] = {
      {Py_tp_new, (void*)tensor_new},
      {Py_tp_init, (void*)tensor_init},
      {Py_tp_dealloc, (void*)tensor_dealloc},
      {Py_tp_members, (void*)tensor_members},
      {Py_nb_add, (void*)nb_add},
      {Py_nb_subtract, (void*)nb_subtract},
      {Py_nb_multiply, (void*)nb_multiply},
      {Py_nb_true_divide, (void*)nb_true_divide},
      {Py_nb_matrix_multiply, (void*)nb_matrix_multiply},
      {Py_nb_negative, (void*)nb_negative},
      {0, nullptr},
  };
  static PyType_Spec spec = {
      "tapegrad._C.Tensor",
      (int)sizeof(TensorObject),
      0,
      Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
      slots,
  };
  PyObject* type = PyType_FromSpec(&spec);
  if (!type) throw py::error_already_set();
  g_tensor_type = (PyTypeObject*)type;
  Py_INCREF(type);  // g_tensor_type's reference: the type outlives every tensor
  py::object cls = py::reinterpret_steal<py::object>(type);
  m.attr("Tensor") = cls;
  return cls;
}

}  // namespace tg::bind
