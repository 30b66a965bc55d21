// Optimizer update kernels (tapegrad.optim calls these once per parameter).
// Arguments are converted with the GIL held; the update itself runs without it.
#include "bindings.h"
#include "tapegrad/optim.h"
#include "tapegrad/sparse.h"

namespace tg::bind {

namespace {

Tensor optional_tensor(const py::object& o) {
  return o.is_none() ? Tensor() : o.cast<Tensor>();
}

Ref<RowSparse> optional_sparse(const py::object& o) {
  return o.is_none() ? Ref<RowSparse>() : o.cast<Ref<RowSparse>>();
}

const RowSparse& sparse_arg(const Ref<RowSparse>& g, const char* op) {
  TG_CHECK(g, TypeError, op, ": expected a row-sparse gradient, got None");
  return *g;
}

}  // namespace

void init_optim(py::module_& m) {
  using namespace tg::optim;

  m.def("_optim_sgd", [](const Tensor& param, const Tensor& grad, py::object buf, double lr,
                         double momentum, double dampening, double weight_decay, bool nesterov,
                         bool maximize) -> py::object {
          SGDOptions o{lr, momentum, dampening, weight_decay, nesterov, maximize};
          Tensor b = optional_tensor(buf);
          {
            py::gil_scoped_release release;
            sgd(param, grad, b, o);
          }
          return b.defined() ? py::cast(b) : py::none();
        },
        py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("lr"),
        py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"),
        py::arg("nesterov"), py::arg("maximize"),
        "One SGD step on `param`; returns the momentum buffer (created on the first step)");

  // A momentum-free SGD step of a whole parameter group in one call
  // (optim::sgd_group).
  m.def("_optim_sgd_group", [](const std::vector<Tensor>& params, double lr,
                               double weight_decay, bool maximize) {
          SGDOptions o{lr, 0.0, 0.0, weight_decay, false, maximize};
          py::gil_scoped_release release;
          sgd_group(params, o);
        },
        py::arg("params"), py::arg("lr"), py::arg("weight_decay"), py::arg("maximize"),
        "One momentum-free SGD step on every parameter of `params` that has a gradient");

  // zero_grad(set_to_none=True) over a list: .grad = None where one is set,
  // in one call.
  m.def("_optim_grads_to_none", [](std::vector<Tensor>& params) {
          for (Tensor& p : params)
            if (p.sparse_grad() || p.grad().defined()) p.set_grad(Tensor());
        },
        py::arg("params"), "Sets .grad to None on every tensor of `params` that has one");

  m.def("_optim_sgd_sparse", [](const Tensor& param, const Ref<RowSparse>& grad, py::object buf,
                                double lr, double momentum, double dampening, double weight_decay,
                                bool nesterov, bool maximize) -> py::object {
          SGDOptions o{lr, momentum, dampening, weight_decay, nesterov, maximize};
          Ref<RowSparse> b = optional_sparse(buf), out;
          {
            py::gil_scoped_release release;
            out = sgd_sparse(param, sparse_arg(grad, "SGD"), b, o);
          }
          return out ? py::cast(out) : py::none();
        },
        py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("lr"),
        py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"),
        py::arg("nesterov"), py::arg("maximize"),
        "One SGD step with a row-sparse gradient; returns the (row-sparse) momentum buffer");

  m.def("_optim_adagrad", [](const Tensor& param, const Tensor& grad, const Tensor& sum,
                             const Tensor& step, double lr, double lr_decay, double weight_decay,
                             double eps, bool maximize) {
          AdagradOptions o{lr, lr_decay, weight_decay, eps, maximize};
          py::gil_scoped_release release;
          adagrad(param, grad, sum, step, o);
        },
        py::arg("param"), py::arg("grad"), py::arg("sum"), py::arg("step"), py::arg("lr"),
        py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"), py::arg("maximize"),
        "One Adagrad step (increments the `step` tensor)");

  m.def("_optim_adagrad_sparse", [](const Tensor& param, const Ref<RowSparse>& grad,
                                    const Tensor& sum, const Tensor& step, double lr,
                                    double lr_decay, double weight_decay, double eps,
                                    bool maximize) {
          AdagradOptions o{lr, lr_decay, weight_decay, eps, maximize};
          py::gil_scoped_release release;
          const RowSparse& g = sparse_arg(grad, "Adagrad");
          adagrad_sparse(param, g, sum, step, o);
        },
        py::arg("param"), py::arg("grad"), py::arg("sum"), py::arg("step"), py::arg("lr"),
        py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"), py::arg("maximize"),
        "One Adagrad step with a row-sparse gradient (increments the `step` tensor)");

  m.def("_optim_rmsprop", [](const Tensor& param, const Tensor& grad, const Tensor& square_avg,
                             py::object momentum_buffer, py::object grad_avg, const Tensor& step,
                             double lr, double alpha, double eps, double weight_decay,
                             double momentum, bool centered, bool maximize) {
          RMSpropOptions o{lr, alpha, eps, weight_decay, momentum, centered, maximize};
          Tensor buf = optional_tensor(momentum_buffer), ga = optional_tensor(grad_avg);
          py::gil_scoped_release release;
          increment_step(step);
          rmsprop(param, grad, square_avg, buf, ga, o);
        },
        py::arg("param"), py::arg("grad"), py::arg("square_avg"), py::arg("momentum_buffer"),
        py::arg("grad_avg"), py::arg("step"), py::arg("lr"), py::arg("alpha"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("momentum"), py::arg("centered"), py::arg("maximize"),
        "One RMSprop step (increments the `step` tensor)");

  m.def("_optim_adam", [](const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                          const Tensor& exp_avg_sq, py::object max_exp_avg_sq, const Tensor& step,
                          double lr, double beta1, double beta2, double eps, double weight_decay,
                          bool amsgrad, bool maximize, bool decoupled_weight_decay) {
          AdamOptions o{lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                        decoupled_weight_decay};
          Tensor vmax = optional_tensor(max_exp_avg_sq);
          py::gil_scoped_release release;
          adam(param, grad, exp_avg, exp_avg_sq, vmax, step, o);
        },
        py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
        py::arg("max_exp_avg_sq"), py::arg("step"), py::arg("lr"), py::arg("beta1"),
        py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("amsgrad"),
        py::arg("maximize"), py::arg("decoupled_weight_decay"),
        "One Adam (or, decoupled, AdamW) step (increments the `step` tensor)");

  m.def("_optim_sparse_adam", [](const Tensor& param, const Ref<RowSparse>& grad,
                                 const Tensor& exp_avg, const Tensor& exp_avg_sq, double step,
                                 double lr, double beta1, double beta2, double eps,
                                 bool maximize) {
          AdamOptions o;
          o.lr = lr;
          o.beta1 = beta1;
          o.beta2 = beta2;
          o.eps = eps;
          o.maximize = maximize;
          py::gil_scoped_release release;
          sparse_adam(param, sparse_arg(grad, "SparseAdam"), exp_avg, exp_avg_sq, step, o);
        },
        py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
        py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("maximize"),
        "One SparseAdam step; `step` is the parameter's step count including this one");

  // Rebuilds a RowSparseGrad (e.g. SGD's row-sparse momentum buffer in a
  // loaded checkpoint): values[i] is row indices[i] of a dense_shape tensor.
  m.def("_row_sparse_grad", [](const Tensor& indices, const Tensor& values,
                               const std::vector<int64_t>& dense_shape) {
          Shape shape = shape_of(dense_shape);
          TG_CHECK(shape.ndim >= 1, ValueError, "_row_sparse_grad: dense_shape must have at least "
                   "one dimension, got ", to_string(shape));
          TG_CHECK(is_floating(values.dtype()), TypeError, "_row_sparse_grad: values must be "
                   "float32 or float64, got ", values.describe());
          Ref<RowSparse> g = RowSparse::make(indices, values, shape);
          Shape vs = shape;
          vs[0] = g->nnz();
          TG_CHECK(g->values.shape() == vs, ValueError, "_row_sparse_grad: values ",
                   values.describe(), " do not match ", g->nnz(), " rows of a ", to_string(shape),
                   " tensor");
          const int64_t* idx = g->indices.data<int64_t>();
          for (int64_t i = 0; i < g->nnz(); i++)
            TG_CHECK(idx[i] >= 0 && idx[i] < shape[0], IndexError, "_row_sparse_grad: row ",
                     idx[i], " is out of range for ", to_string(shape));
          return g;
        },
        py::arg("indices"), py::arg("values"), py::arg("dense_shape"),
        "A RowSparseGrad from int64 row indices [nnz] and values [nnz, ...] (rows may repeat)");

  // zero_grad(set_to_none=False) on a row-sparse .grad: PyTorch zeroes a
  // sparse gradient into one with no rows (it stays sparse).
  m.def("_optim_zero_sparse_grad", [](const Tensor& param) { zero_sparse_grad(param); },
        py::arg("param"));
}

}  // namespace tg::bind
