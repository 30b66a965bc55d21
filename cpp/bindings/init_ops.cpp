// Ops as tapegrad._C functions and as Tensor methods (registered together so
// the two spellings cannot drift apart).
#include "bindings.h"

namespace tg::bind {

namespace {

// tg.f(input, ...) and input.f(...) from one callable.
template <class F, class... Extra>
void def_both(py::module_& m, TensorClass& cls, const char* name, F f,
              const Extra&... extra) {
  m.def(name, f, py::arg("input"), extra...);
  cls.def(name, f, extra...);
}

bool is_number(const py::handle& v) {
  return py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v);
}

// PyTorch's return_types.max / min: a namedtuple (values, indices).
py::object values_indices(const char* name, std::pair<Tensor, Tensor> vi) {
  static py::object max_t = py::module_::import("collections")
                                .attr("namedtuple")("max", py::make_tuple("values", "indices"));
  static py::object min_t = py::module_::import("collections")
                                .attr("namedtuple")("min", py::make_tuple("values", "indices"));
  py::object type = std::string(name) == "max" ? max_t : min_t;
  return type(vi.first, vi.second);
}

std::optional<int64_t> opt_int(const py::object& v) {
  if (v.is_none()) return std::nullopt;
  return v.cast<int64_t>();
}

std::optional<double> opt_double(const py::object& v) {
  if (v.is_none()) return std::nullopt;
  return v.cast<double>();
}

}  // namespace

void init_ops(py::module_& m) {
  TensorClass cls(m.attr("Tensor"));

  // ---------------------------------------------------------------- binary
  // `other` may be a tensor or a Python number (then the scalar form is used).
#define TG_BIND_BINARY(name, tensor_call, scalar_call)                                \
  def_both(m, cls, name, [](const Tensor& a, py::object other) {                      \
    if (is_number(other) && !py::isinstance<py::bool_>(other)) {                      \
      double s = other.cast<double>();                                                \
      return scalar_call;                                                             \
    }                                                                                 \
    Tensor b = tensor_arg(other, a.dtype(), name);                                    \
    return tensor_call;                                                               \
  }, py::arg("other"))
  TG_BIND_BINARY("add", add(a, b), add(a, s));
  TG_BIND_BINARY("sub", sub(a, b), sub(a, s));
  TG_BIND_BINARY("mul", mul(a, b), mul(a, s));
  TG_BIND_BINARY("div", div(a, b), div(a, s));
  TG_BIND_BINARY("pow", pow(a, b), pow(a, s));
  TG_BIND_BINARY("maximum", maximum(a, b), maximum(a, Tensor::scalar(s, a.dtype())));
  TG_BIND_BINARY("minimum", minimum(a, b), minimum(a, Tensor::scalar(s, a.dtype())));
#undef TG_BIND_BINARY
  // add(input, other, alpha=a) = input + a * other: a second overload, so the
  // plain call's binding does no keyword parsing.
  auto with_alpha = [&](const char* name, double sign) {
    def_both(m, cls, name, [sign, name](const Tensor& a, py::object other, double alpha) {
      double k = sign * alpha;
      if (is_number(other) && !py::isinstance<py::bool_>(other))
        return add(a, k * other.cast<double>());
      Tensor b = tensor_arg(other, a.dtype(), name);
      return k == 1.0 ? add(a, b) : k == -1.0 ? sub(a, b) : add(a, mul(b, k));
    }, py::arg("other"), py::kw_only(), py::arg("alpha"));
  };
  with_alpha("add", 1.0);
  with_alpha("sub", -1.0);
  m.def("pow", [](double base, const Tensor& exponent) { return pow(base, exponent); },
        py::arg("self"), py::arg("exponent"));

  m.def("where", [](const Tensor& cond, py::object a, py::object b) {
    DType like = is_tensor(a)   ? tensor_ref(a).dtype()
                 : is_tensor(b) ? tensor_ref(b).dtype()
                                             : DType::Float32;
    return where(cond, tensor_arg(a, like, "where"), tensor_arg(b, like, "where"));
  }, py::arg("condition"), py::arg("input"), py::arg("other"));
  cls.def("where", [](const Tensor& self, const Tensor& cond, py::object other) {
    return where(cond, self, tensor_arg(other, self.dtype(), "where"));
  }, py::arg("condition"), py::arg("other"));

  // ---------------------------------------------------------------- unary
  def_both(m, cls, "neg", [](const Tensor& a) { return neg(a); });
  def_both(m, cls, "exp", [](const Tensor& a) { return exp(a); });
  def_both(m, cls, "log", [](const Tensor& a) { return log(a); });
  def_both(m, cls, "sqrt", [](const Tensor& a) { return sqrt(a); });
  def_both(m, cls, "abs", [](const Tensor& a) { return abs(a); });
  def_both(m, cls, "sin", [](const Tensor& a) { return sin(a); });
  def_both(m, cls, "cos", [](const Tensor& a) { return cos(a); });
  def_both(m, cls, "square", [](const Tensor& a) { return square(a); });
  def_both(m, cls, "log1p", [](const Tensor& a) { return log1p(a); });
  def_both(m, cls, "expm1", [](const Tensor& a) { return expm1(a); });
  def_both(m, cls, "erf", [](const Tensor& a) { return erf(a); });
  def_both(m, cls, "sigmoid", [](const Tensor& a) { return sigmoid(a); });
  def_both(m, cls, "tanh", [](const Tensor& a) { return tanh(a); });
  def_both(m, cls, "relu", [](const Tensor& a) { return relu(a); });
  def_both(m, cls, "sign", [](const Tensor& a) { return sign(a); });
  def_both(m, cls, "isnan", [](const Tensor& a) { return isnan(a); });
  def_both(m, cls, "logical_not", [](const Tensor& a) { return logical_not(a); });
  def_both(m, cls, "clamp", [](const Tensor& a, py::object lo, py::object hi) {
    return clamp(a, opt_double(lo), opt_double(hi));
  }, py::arg("min") = py::none(), py::arg("max") = py::none());
  m.attr("clip") = m.attr("clamp");
  cls.attr("clip") = cls.attr("clamp");
  def_both(m, cls, "softmax", [](const Tensor& a, int64_t dim) { return softmax(a, dim); },
           py::arg("dim"));
  def_both(m, cls, "log_softmax", [](const Tensor& a, int64_t dim) { return log_softmax(a, dim); },
           py::arg("dim"));

  // dtype conversion
  cls.def("to", [](const Tensor& a, DType dt) { return to(a, dt); }, py::arg("dtype"))
      .def("float", [](const Tensor& a) { return to(a, DType::Float32); })
      .def("double", [](const Tensor& a) { return to(a, DType::Float64); })
      .def("long", [](const Tensor& a) { return to(a, DType::Int64); })
      .def("bool", [](const Tensor& a) { return to(a, DType::Bool); })
      .def("type", [](const Tensor& a, DType dt) { return to(a, dt); }, py::arg("dtype"));

  // ---------------------------------------------------------------- reductions
  def_both(m, cls, "sum", [](const Tensor& a, py::object dim, bool keepdim) {
    return sum(a, dims_arg(dim), keepdim);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  def_both(m, cls, "mean", [](const Tensor& a, py::object dim, bool keepdim) {
    return mean(a, dims_arg(dim), keepdim);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  def_both(m, cls, "logsumexp", [](const Tensor& a, py::object dim, bool keepdim) {
    return logsumexp(a, dims_arg(dim), keepdim);
  }, py::arg("dim"), py::arg("keepdim") = false);
  def_both(m, cls, "var", [](const Tensor& a, py::object dim, py::object unbiased,
                             bool keepdim, py::object correction) {
    double c = correction.is_none() ? (unbiased.is_none() || unbiased.cast<bool>() ? 1.0 : 0.0)
                                    : correction.cast<double>();
    return var(a, dims_arg(dim), c, keepdim);
  }, py::arg("dim") = py::none(), py::arg("unbiased") = py::none(), py::arg("keepdim") = false,
     py::kw_only(), py::arg("correction") = py::none());
  def_both(m, cls, "std", [](const Tensor& a, py::object dim, py::object unbiased,
                             bool keepdim, py::object correction) {
    double c = correction.is_none() ? (unbiased.is_none() || unbiased.cast<bool>() ? 1.0 : 0.0)
                                    : correction.cast<double>();
    return sqrt(var(a, dims_arg(dim), c, keepdim));
  }, py::arg("dim") = py::none(), py::arg("unbiased") = py::none(), py::arg("keepdim") = false,
     py::kw_only(), py::arg("correction") = py::none());
  // cumsum(input, dim, *, dtype=None): dtype casts the input first, as torch.
#define TG_BIND_SCAN(name)                                                              \
  def_both(m, cls, #name, [](const Tensor& a, int64_t dim, py::object dtype) {          \
    return name(dtype.is_none() ? a : to(a, dtype.cast<DType>()), dim);                 \
  }, py::arg("dim"), py::kw_only(), py::arg("dtype") = py::none())
  TG_BIND_SCAN(cumsum);
  TG_BIND_SCAN(cumprod);
#undef TG_BIND_SCAN
  // max(input) -> value; max(input, dim, keepdim) -> (values, indices); max(input, other)
#define TG_BIND_EXTREMUM(name, all_fn, dim_fn, pair_fn)                                  \
  def_both(m, cls, name, [](const Tensor& a, py::object dim, bool keepdim) -> py::object { \
    if (dim.is_none()) return py::cast(all_fn(a));                                       \
    if (is_tensor(dim)) return py::cast(pair_fn(a, tensor_ref(dim)));                 \
    return values_indices(name, dim_fn(a, dim.cast<int64_t>(), keepdim));                \
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false)
  TG_BIND_EXTREMUM("max", max, max, maximum);
  TG_BIND_EXTREMUM("min", min, min, minimum);
#undef TG_BIND_EXTREMUM
  m.def("amax", [](const Tensor& a, py::object dim, bool keepdim) -> Tensor {
    if (dim.is_none()) return max(a);
    return max(a, dim.cast<int64_t>(), keepdim).first;
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  def_both(m, cls, "argmax", [](const Tensor& a, py::object dim, bool keepdim) {
    return argmax(a, opt_int(dim), keepdim);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  def_both(m, cls, "argmin", [](const Tensor& a, py::object dim, bool keepdim) {
    return argmin(a, opt_int(dim), keepdim);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);

  // ---------------------------------------------------------------- linear algebra
  def_both(m, cls, "matmul", [](const Tensor& a, const Tensor& b) { return matmul_gil(a, b); },
           py::arg("other"));
  def_both(m, cls, "mm", [](const Tensor& a, const Tensor& b) {
    TG_CHECK(a.ndim() == 2 && b.ndim() == 2, ValueError, "mm: expected 2-D tensors, got ",
             a.describe(), " and ", b.describe());
    return matmul_gil(a, b);
  }, py::arg("mat2"));
  def_both(m, cls, "dot", [](const Tensor& a, const Tensor& b) { return dot(a, b); },
           py::arg("other"));
  def_both(m, cls, "outer", [](const Tensor& a, const Tensor& b) { return outer(a, b); },
           py::arg("vec2"));

  // ---------------------------------------------------------------- shapes
  cls.def("reshape", [](const Tensor& a, py::args shape) { return reshape(a, shape_args(shape)); })
      .def("view", [](const Tensor& a, py::args shape) { return view(a, shape_args(shape)); })
      .def("permute", [](const Tensor& a, py::args dims) { return permute(a, shape_args(dims)); })
      .def("expand", [](const Tensor& a, py::args shape) { return expand(a, shape_args(shape)); })
      .def("expand_as", [](const Tensor& a, const Tensor& o) { return expand(a, o.shape().vec()); })
      .def("reshape_as", [](const Tensor& a, const Tensor& o) { return reshape(a, o.shape().vec()); })
      .def("view_as", [](const Tensor& a, const Tensor& o) { return view(a, o.shape().vec()); })
      .def("contiguous", [](const Tensor& a) { return contiguous(a); })
      .def_property_readonly("T", [](const Tensor& a) {
        std::vector<int64_t> dims;
        for (int i = a.ndim() - 1; i >= 0; i--) dims.push_back(i);
        return permute(a, dims);
      })
      .def_property_readonly("mT", [](const Tensor& a) { return transpose(a, -2, -1); });
  m.def("reshape", [](const Tensor& a, std::vector<int64_t> s) { return reshape(a, s); },
        py::arg("input"), py::arg("shape"));
  m.def("permute", [](const Tensor& a, std::vector<int64_t> d) { return permute(a, d); },
        py::arg("input"), py::arg("dims"));
  def_both(m, cls, "transpose", [](const Tensor& a, int64_t d0, int64_t d1) {
    return transpose(a, d0, d1);
  }, py::arg("dim0"), py::arg("dim1"));
  def_both(m, cls, "t", [](const Tensor& a) { return t(a); });
  def_both(m, cls, "squeeze", [](const Tensor& a, py::object dim) {
    return squeeze(a, opt_int(dim));
  }, py::arg("dim") = py::none());
  def_both(m, cls, "unsqueeze", [](const Tensor& a, int64_t dim) { return unsqueeze(a, dim); },
           py::arg("dim"));
  def_both(m, cls, "flatten", [](const Tensor& a, int64_t s, int64_t e) {
    return flatten(a, s, e);
  }, py::arg("start_dim") = 0, py::arg("end_dim") = -1);
  def_both(m, cls, "clone", [](const Tensor& a) { return clone(a); });
  def_both(m, cls, "narrow", [](const Tensor& a, int64_t dim, int64_t start, int64_t length) {
    return narrow(a, dim, start, length);
  }, py::arg("dim"), py::arg("start"), py::arg("length"));
  def_both(m, cls, "select", [](const Tensor& a, int64_t dim, int64_t index) {
    return select(a, dim, index);
  }, py::arg("dim"), py::arg("index"));
  def_both(m, cls, "split", [](const Tensor& a, py::object size, int64_t dim) {
    if (py::isinstance<py::int_>(size)) return split(a, size.cast<int64_t>(), dim);
    return split(a, size.cast<std::vector<int64_t>>(), dim);
  }, py::arg("split_size_or_sections"), py::arg("dim") = 0);
  def_both(m, cls, "chunk", [](const Tensor& a, int64_t chunks, int64_t dim) {
    return chunk(a, chunks, dim);
  }, py::arg("chunks"), py::arg("dim") = 0);
  def_both(m, cls, "index_select", [](const Tensor& a, int64_t dim, const Tensor& index) {
    return index_select(a, dim, index);
  }, py::arg("dim"), py::arg("index"));
  def_both(m, cls, "gather", [](const Tensor& a, int64_t dim, const Tensor& index) {
    return gather(a, dim, index);
  }, py::arg("dim"), py::arg("index"));
  m.def("cat", [](const std::vector<Tensor>& ts, int64_t dim) { return cat(ts, dim); },
        py::arg("tensors"), py::arg("dim") = 0);
  m.attr("concat") = m.attr("cat");
  m.def("stack", [](const std::vector<Tensor>& ts, int64_t dim) { return stack(ts, dim); },
        py::arg("tensors"), py::arg("dim") = 0);
  m.def("_slice", [](const Tensor& a, int64_t dim, py::object start, py::object stop,
                     int64_t step) { return slice(a, dim, opt_int(start), opt_int(stop), step); });

  // ---------------------------------------------------------------- nn.functional
  m.def("leaky_relu", [](const Tensor& a, double slope) { return leaky_relu(a, slope); },
        py::arg("input"), py::arg("negative_slope") = 0.01);
  m.def("hardtanh", [](const Tensor& a, double lo, double hi) { return hardtanh(a, lo, hi); },
        py::arg("input"), py::arg("min_val") = -1.0, py::arg("max_val") = 1.0);
  m.def("prelu", [](const Tensor& a, const Tensor& w) { return prelu(a, w); }, py::arg("input"),
        py::arg("weight"));
  m.def("embedding", [](const Tensor& idx, const Tensor& w, py::object padding_idx, bool sparse) {
    return embedding(idx, w, opt_int(padding_idx), sparse);
  }, py::arg("input"), py::arg("weight"), py::arg("padding_idx") = py::none(),
     py::arg("sparse") = false);
  m.def("cross_entropy", [](const Tensor& x, const Tensor& y, const std::string& red,
                            int64_t ignore) {
    return cross_entropy(x, y, parse_reduction(red, "cross_entropy"), ignore);
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean",
     py::arg("ignore_index") = -100);
  m.def("nll_loss", [](const Tensor& x, const Tensor& y, const std::string& red, int64_t ignore) {
    return nll_loss(x, y, parse_reduction(red, "nll_loss"), ignore);
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean",
     py::arg("ignore_index") = -100);
  m.def("binary_cross_entropy_with_logits", [](const Tensor& x, const Tensor& y,
                                               const std::string& red) {
    return binary_cross_entropy_with_logits(
        x, y, parse_reduction(red, "binary_cross_entropy_with_logits"));
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean");
  m.def("mse_loss", [](const Tensor& x, const Tensor& y, const std::string& red) {
    return mse_loss(x, y, parse_reduction(red, "mse_loss"));
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean");

  // ---------------------------------------------------------------- fused linear
  // _linear(input, weight, bias=None, activation="none"): the fused linear op
  // (Note [Fused linear]); nn.functional.linear and nn.Sequential call it. Runs
  // without the GIL when big, as matmul_gil does.
  m.def("_linear", [](const Tensor& x, const Tensor& w, py::object b, const std::string& act) {
    Tensor bias = b.is_none() ? Tensor() : b.cast<Tensor>();
    Activation a = parse_activation(act, "linear");
    double work = x.defined() && w.defined() && w.ndim() == 2
                      ? (double)x.numel() * (double)w.shape()[0] : 0.0;
    if (work < (double)(1 << 18)) return linear(x, w, bias, a);
    py::gil_scoped_release release;
    return linear(x, w, bias, a);
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(),
     py::arg("activation") = "none");
  // For tests of Note [Core threads]: (regions run on the pool, threads of the last one).
  m.def("_parallel_debug", [] { return py::make_tuple(parallel_regions(), parallel_last_threads()); });

  // ---------------------------------------------------------------- creation
  m.def("_empty", [](std::vector<int64_t> s, DType dt) { return Tensor::empty(shape_of(s), dt); });
  m.def("_zeros", [](std::vector<int64_t> s, DType dt) { return Tensor::zeros(shape_of(s), dt); });
  m.def("_full", [](std::vector<int64_t> s, double v, DType dt) {
    return Tensor::full(shape_of(s), v, dt);
  });
  m.def("_arange", &arange);
  m.def("_eye", &eye);
  m.def("_rand", [](std::vector<int64_t> s, DType dt) { return rand(shape_of(s), dt); });
  m.def("_randn", [](std::vector<int64_t> s, DType dt) { return randn(shape_of(s), dt); });
  m.def("_randint", [](int64_t lo, int64_t hi, std::vector<int64_t> s) {
    return randint(lo, hi, shape_of(s));
  });
  m.def("manual_seed", &manual_seed, py::arg("seed"));
  m.def("from_numpy", &from_numpy, py::arg("ndarray"));
}

}  // namespace tg::bind
