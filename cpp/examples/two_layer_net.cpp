// The lectures' two-layer network, built and trained from C++ alone:
//   h = tanh(V x + b),  s = W h + a,  loss = 1/2 ||s - y||^2 / N
// Checks the backward gradients against finite differences, then trains with
// SGD and requires the loss to fall. Exit code 0 on success.
#include <cmath>
#include <cstdio>

#include "tapegrad/ops.h"

using namespace tg;

int main() {
  manual_seed(0);
  const int64_t n = 256, hidden = 16;
  Tensor x = sub(mul(rand({n, 2}, DType::Float64), 2.0), 1.0);
  Tensor y = unsqueeze(mul(sin(mul(select(x, 1, 0), 3.0)), cos(mul(select(x, 1, 1), 2.0))), 1);

  Tensor V = mul(randn({hidden, 2}, DType::Float64), 0.7), b = Tensor::zeros({hidden}, DType::Float64);
  Tensor W = mul(randn({1, hidden}, DType::Float64), 0.25), a = Tensor::zeros({1}, DType::Float64);
  Tensor* params[] = {&V, &b, &W, &a};
  for (Tensor* p : params) p->set_requires_grad(true);

  auto loss_fn = [&]() {
    Tensor h = tanh(add(matmul(x, t(V)), b));
    Tensor s = add(matmul(h, t(W)), a);
    return div(mul(sum(square(sub(s, y))), 0.5), (double)n);
  };

  // Gradient check: backward against central differences on every parameter.
  loss_fn().backward();
  double worst = 0;
  for (Tensor* p : params) {
    std::vector<double> g = p->grad().to_vector();
    double* v = p->data<double>();
    for (int64_t i = 0; i < p->numel(); i++) {
      NoGradGuard ng;
      double orig = v[i], eps = 1e-6;
      v[i] = orig + eps;
      double plus = loss_fn().item();
      v[i] = orig - eps;
      double minus = loss_fn().item();
      v[i] = orig;
      worst = std::fmax(worst, std::fabs((plus - minus) / (2 * eps) - g[i]));
    }
  }
  std::printf("max |analytic - numerical| gradient difference: %.3g\n", worst);
  if (!(worst < 1e-7)) return 1;

  double first = 0, last = 0;
  for (int step = 0; step <= 500; step++) {
    for (Tensor* p : params) p->set_grad(Tensor());
    Tensor loss = loss_fn();
    loss.backward();
    NoGradGuard ng;
    for (Tensor* p : params) add_(*p, p->grad(), -0.5);
    if (step == 0) first = loss.item();
    last = loss.item();
    if (step % 100 == 0) std::printf("step %3d  loss %.5f\n", step, last);
  }
  std::printf("loss %.5f -> %.5f\n", first, last);
  return last < 0.5 * first ? 0 : 1;
}
