// C++ unit tests of the core: tape, engine, gradients, errors, memory.
#include "check.h"

using namespace tg;

static Tensor param(std::vector<double> v, Shape s) {
  Tensor t = Tensor::from_vector(v, s, DType::Float64);
  t.set_requires_grad(true);
  return t;
}

TEST(lecture_example_max_routes_plus_distributes) {
  // f(x, y, z) = (x + y) * max(y, z) at (1, 2, 0): value 6, gradients (2, 5, 0).
  Tensor x = param({1}, {}), y = param({2}, {}), z = param({0}, {});
  Tensor f = mul(add(x, y), maximum(y, z));
  CHECK_NEAR(f.item(), 6, 0);
  f.backward();
  CHECK_NEAR(x.grad().item(), 2, 0);
  CHECK_NEAR(y.grad().item(), 5, 0);
  CHECK_NEAR(z.grad().item(), 0, 0);
}

TEST(fan_out_gradients_sum) {
  Tensor x = param({3}, {});
  Tensor y = add(mul(x, x), x);  // dy/dx = 2x + 1
  y.backward();
  CHECK_NEAR(x.grad().item(), 7, 1e-12);
}

TEST(grad_accumulates_across_backward_calls) {
  Tensor x = param({1, 2}, {2});
  sum(mul(x, 3.0)).backward();
  sum(mul(x, 3.0)).backward();
  CHECK_NEAR(x.grad().to_vector()[1], 6, 1e-12);
}

TEST(quadratic_form_gradient) {
  // x^T A x + b^T x + c: gradient (A + A^T) x + b.
  Tensor A = Tensor::from_vector({1, 2, 3, 4}, {2, 2}, DType::Float64);
  Tensor b = Tensor::from_vector({0.5, -1}, {2}, DType::Float64);
  Tensor x = param({1, -2}, {2});
  Tensor f = add(add(dot(x, matmul(A, x)), dot(b, x)), 3.0);
  f.backward();
  std::vector<double> g = x.grad().to_vector();
  CHECK_NEAR(g[0], (1 + 1) * 1 + (2 + 3) * -2 + 0.5, 1e-12);
  CHECK_NEAR(g[1], (3 + 2) * 1 + (4 + 4) * -2 - 1, 1e-12);
}

TEST(finite_differences_two_layer_net) {
  // h = tanh(V x + b); s = W h + a; loss = 1/2 ||s - y||^2
  manual_seed(1);
  std::vector<Tensor> in = {to(randn({4, 3}), DType::Float64), to(randn({4}), DType::Float64),
                            to(randn({2, 4}), DType::Float64), to(randn({2}), DType::Float64)};
  for (auto& t : in) t.set_requires_grad(true);
  Tensor x = to(randn({5, 3}), DType::Float64), y = to(randn({5, 2}), DType::Float64);
  auto loss = [&](std::vector<Tensor>& p) {
    Tensor h = tanh(add(matmul(x, t(p[0])), p[1]));
    Tensor s = add(matmul(h, t(p[2])), p[3]);
    return mul(sum(square(sub(s, y))), 0.5);
  };
  CHECK(tgtest::max_grad_error(loss, in) < 1e-7);
}

TEST(finite_differences_many_ops) {
  manual_seed(2);
  Tensor a = to(rand({3, 4}), DType::Float64);
  a = add(a, 0.5);
  a = a.detach();
  a.set_requires_grad(true);
  Tensor idx = Tensor::from_vector({2, 0, 2}, {3}, DType::Int64);
  std::vector<std::function<Tensor(std::vector<Tensor>&)>> fns = {
      [](auto& p) { return sum(exp(p[0])); },
      [](auto& p) { return sum(log(p[0])); },
      [](auto& p) { return sum(sigmoid(p[0])); },
      [](auto& p) { return sum(mul(softmax(p[0], 1), p[0])); },
      [](auto& p) { return sum(log_softmax(p[0], 0)); },
      [](auto& p) { return sum(logsumexp(p[0], {1})); },
      [](auto& p) { return sum(max(p[0], 1).first); },
      [](auto& p) { return sum(square(slice(p[0], 1, 1, std::nullopt, 2))); },
      [](auto& p) { return sum(mul(cat({p[0], square(p[0])}, 0), 2.0)); },
      [&](auto& p) { return sum(square(index_select(p[0], 0, idx))); },
      [&](auto& p) { return sum(square(embedding(idx, p[0]))); },
      [&](auto& p) {
        Tensor target = Tensor::from_vector({1, 3, 0}, {3}, DType::Int64);
        return cross_entropy(p[0], target);
      },
  };
  for (size_t i = 0; i < fns.size(); i++) {
    std::vector<Tensor> in = {a};
    double err = tgtest::max_grad_error(fns[i], in);
    if (!(err < 1e-6)) std::printf("  op case %zu: error %g\n", i, err);
    CHECK(err < 1e-6);
  }
}

TEST(tape_is_released_after_each_step) {
  Tensor w = param({1, 2, 3}, {3});
  for (int step = 0; step < 100; step++) {
    Tensor loss = sum(square(mul(w, 2.0)));
    loss.backward();
  }
  // Every step's tensors are gone: no live record remains, the tape is empty.
  CHECK(Tape::current().live() == 0);
  CHECK(Tape::current().size() == 0);
}

TEST(tape_compacts_under_a_long_lived_tensor) {
  Tensor w = param({1, 2}, {2});
  Tensor kept = mul(w, 2.0);  // lives across the loop, pinning the bottom record
  for (int step = 0; step < 20000; step++) {
    Tensor out = exp(mul(w, 0.5));  // never backwarded: must still be freed
  }
  CHECK(Tape::current().live() == 1);
  CHECK(Tape::current().size() < 8192);
  kept.backward(Tensor::full({2}, 1.0, DType::Float64));
  CHECK_NEAR(w.grad().to_vector()[0], 2, 0);
}

TEST(long_chain_backward_and_release_do_not_recurse) {
  Tensor x = param({1}, {});
  Tensor y = x;
  for (int i = 0; i < 200000; i++) y = mul(y, 1.0);
  y.backward();
  CHECK_NEAR(x.grad().item(), 1, 0);
}

TEST(errors_name_the_op) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  CHECK_THROWS(ValueError, add(a, b));
  CHECK_THROWS(ValueError, matmul(a, b));
  CHECK_THROWS(TypeError, matmul(a, Tensor::zeros({3, 2}, DType::Float64)));
  Tensor w = Tensor::zeros({5, 2});
  CHECK_THROWS(IndexError, embedding(Tensor::from_vector({7}, {1}, DType::Int64), w));
  CHECK_THROWS(IndexError, embedding(Tensor::from_vector({-1}, {1}, DType::Int64), w));
  try {
    add(a, b);
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("add") != std::string::npos);
    CHECK(std::string(e.what()).find("[2, 3]") != std::string::npos);
  }
}

TEST(backward_twice_needs_retain_graph) {
  Tensor x = param({1, 2}, {2});
  Tensor y = sum(exp(x));
  y.backward(Tensor(), true);
  y.backward();
  CHECK_NEAR(x.grad().to_vector()[0], 2 * std::exp(1.0), 1e-12);
  CHECK_THROWS(RuntimeError, y.backward());
}

TEST(inplace_change_of_saved_tensor_is_detected) {
  Tensor w = Tensor::from_vector({1, 2}, {2}, DType::Float64);
  Tensor x = param({3, 4}, {2});
  Tensor y = sum(mul(x, w));
  {
    NoGradGuard ng;
    add_(w, Tensor::scalar(1.0, DType::Float64));
  }
  CHECK_THROWS(RuntimeError, y.backward());
}

TEST(non_scalar_backward_needs_gradient) {
  Tensor x = param({1, 2}, {2});
  CHECK_THROWS(RuntimeError, mul(x, 2.0).backward());
}

int main() { return tgtest::run_all(); }
