// The Python Tensor object: a hand-written CPython type that holds a tg::Tensor
// inline, and the pybind11 type caster that lets every m.def / method binding
// take and return tg::Tensor as before.
//
// Note [Tensor object]
// py::class_<Tensor> cost, per op result, a `new Tensor` for the holder plus an
// insert into (and later an erase from) pybind11's instance registry, and
// every failed overload try (a float offered to a `const Tensor&` parameter)
// an attribute lookup that raises and clears an AttributeError. A tensor is a
// single pointer, so the object here embeds it: creating one is a pymalloc
// allocation and a pointer move. The type is a heap type built with
// PyType_FromSpec: Python subclasses (nn.Parameter) get their __dict__ and GC
// from CPython as usual; instances support weak references; methods and
// properties are pybind11 cpp_functions set on the type (TensorClass below),
// so overloads, keyword arguments, docstrings and stubs work as they did.
// The hot arithmetic dunders are raw number slots (see tensor_object.cpp,
// Note [Operator slots]).
#pragma once

#include <pybind11/pybind11.h>

#include <new>

#include "tapegrad/tensor.h"

namespace tg::bind {

namespace py = pybind11;

struct TensorObject {
  PyObject_HEAD
  Tensor value;  // undefined only between tp_new and __init__
  PyObject* weakrefs;
};

// Set once by make_tensor_type (module init) and never freed.
extern PyTypeObject* g_tensor_type;

inline bool is_tensor(PyObject* o) {
  return Py_TYPE(o) == g_tensor_type || PyType_IsSubtype(Py_TYPE(o), g_tensor_type);
}
inline bool is_tensor(py::handle o) { return is_tensor(o.ptr()); }

// The tensor inside a Tensor object; TypeError if a subclass's __init__ never
// called Tensor.__init__.
[[noreturn]] void throw_uninitialized(PyObject* o);
inline Tensor& tensor_ref(PyObject* o) {
  Tensor& t = reinterpret_cast<TensorObject*>(o)->value;
  if (!t.defined()) throw_uninitialized(o);
  return t;
}
inline Tensor& tensor_ref(py::handle o) { return tensor_ref(o.ptr()); }

// A new reference to a fresh (exact) Tensor object holding t; None if t is
// undefined. Throws py::error_already_set when out of memory.
PyObject* alloc_tensor_object();  // exact type, value not yet constructed
inline PyObject* wrap_tensor(Tensor&& t) {
  if (!t.defined()) return Py_NewRef(Py_None);
  PyObject* o = alloc_tensor_object();
  new (&reinterpret_cast<TensorObject*>(o)->value) Tensor(std::move(t));
  return o;
}
inline PyObject* wrap_tensor(const Tensor& t) { return wrap_tensor(Tensor(t)); }

// Creates the Tensor type and adds it to m as m.Tensor.
py::object make_tensor_type(py::module_& m);

// What py::class_<Tensor> offered for building the type's method table.
class TensorClass : public py::object {
 public:
  explicit TensorClass(py::handle type) : py::object(py::reinterpret_borrow<py::object>(type)) {}

  template <class F, class... Extra>
  TensorClass& def(const char* name, F&& f, const Extra&... extra) {
    py::cpp_function cf(std::forward<F>(f), py::name(name), py::is_method(*this),
                        py::sibling(py::getattr(*this, name, py::none())), extra...);
    attr(name) = cf;
    return *this;
  }

  template <class G, class... Extra>
  TensorClass& def_property_readonly(const char* name, G&& get, const Extra&... extra) {
    py::cpp_function fget(std::forward<G>(get), py::is_method(*this), extra...);
    return add_property(name, fget, py::none());
  }

  template <class G, class S>
  TensorClass& def_property(const char* name, G&& get, S&& set) {
    py::cpp_function fget(std::forward<G>(get), py::is_method(*this));
    py::cpp_function fset(std::forward<S>(set), py::is_method(*this));
    return add_property(name, fget, fset);
  }

 private:
  TensorClass& add_property(const char* name, py::handle fget, py::handle fset) {
    py::handle property((PyObject*)&PyProperty_Type);
    attr(name) = property(fget, fset, py::none(), py::str(""));
    return *this;
  }
};

}  // namespace tg::bind

namespace pybind11::detail {

// tg::Tensor <-> tapegrad._C.Tensor. Loading borrows the object's tensor: the
// argument lives for the whole call, so a reference into it stays valid.
template <>
struct type_caster<tg::Tensor> {
 public:
  static constexpr auto name = const_name("tapegrad._C.Tensor");

  bool load(handle src, bool /*convert*/) {
    if (!tg::bind::is_tensor(src.ptr())) return false;
    ptr_ = &tg::bind::tensor_ref(src.ptr());
    return true;
  }

  static handle cast(const tg::Tensor& t, return_value_policy, handle) {
    return tg::bind::wrap_tensor(t);
  }
  static handle cast(tg::Tensor&& t, return_value_policy, handle) {
    return tg::bind::wrap_tensor(std::move(t));
  }
  static handle cast(const tg::Tensor* t, return_value_policy, handle) {
    if (!t) return none().release();
    return tg::bind::wrap_tensor(*t);
  }

  template <typename T_>
  using cast_op_type = pybind11::detail::cast_op_type<T_>;  // Tensor& or Tensor*
  operator tg::Tensor*() { return ptr_; }
  operator tg::Tensor&() { return *ptr_; }

 private:
  tg::Tensor* ptr_ = nullptr;
};

}  // namespace pybind11::detail
