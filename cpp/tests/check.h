// A minimal test harness for the C++ core: CHECK macros, a test registry and
// a float64 finite-difference gradient check. No third-party framework.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/ops.h"

namespace tgtest {

struct Case {
  const char* name;
  void (*fn)();
};
inline std::vector<Case>& registry() {
  static std::vector<Case> r;
  return r;
}
inline int& failures() {
  static int f = 0;
  return f;
}
struct Register {
  Register(const char* n, void (*f)()) { registry().push_back({n, f}); }
};

#define TEST(name)                                        \
  static void name();                                     \
  static tgtest::Register register_##name(#name, &name);  \
  static void name()

#define CHECK(cond)                                                             \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::printf("  FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
      tgtest::failures()++;                                                     \
    }                                                                           \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                   \
  do {                                                                          \
    double va_ = (a), vb_ = (b);                                                \
    if (!(std::fabs(va_ - vb_) <= (tol))) {                                     \
      std::printf("  FAILED %s:%d: %s = %.10g, expected %.10g\n", __FILE__,      \
                  __LINE__, #a, va_, vb_);                                      \
      tgtest::failures()++;                                                     \
    }                                                                           \
  } while (0)

#define CHECK_THROWS(Err, stmt)                                                 \
  do {                                                                          \
    bool thrown_ = false;                                                       \
    try {                                                                       \
      stmt;                                                                     \
    } catch (const Err&) {                                                      \
      thrown_ = true;                                                           \
    }                                                                           \
    if (!thrown_) {                                                             \
      std::printf("  FAILED %s:%d: %s did not throw %s\n", __FILE__, __LINE__,   \
                  #stmt, #Err);                                                 \
      tgtest::failures()++;                                                     \
    }                                                                           \
  } while (0)

// Compares d loss / d inputs[k] from backward with central differences.
inline double max_grad_error(const std::function<tg::Tensor(std::vector<tg::Tensor>&)>& loss_fn,
                             std::vector<tg::Tensor> inputs, double eps = 1e-6) {
  for (auto& t : inputs) t.impl()->grad.reset();
  loss_fn(inputs).backward();
  double worst = 0;
  for (auto& t : inputs) {
    if (!t.requires_grad()) continue;
    std::vector<double> analytic = t.grad().to_vector();
    double* x = t.data<double>();
    for (int64_t i = 0; i < t.numel(); i++) {
      tg::NoGradGuard ng;
      double orig = x[i];
      x[i] = orig + eps;
      double plus = loss_fn(inputs).item();
      x[i] = orig - eps;
      double minus = loss_fn(inputs).item();
      x[i] = orig;
      double numeric = (plus - minus) / (2 * eps);
      worst = std::fmax(worst, std::fabs(numeric - analytic[i]) / (1 + std::fabs(numeric)));
    }
  }
  return worst;
}

inline int run_all() {
  for (auto& c : registry()) {
    int before = failures();
    c.fn();
    std::printf("%s %s\n", failures() == before ? "ok    " : "FAILED", c.name);
  }
  std::printf("%d tests, %d failures\n", (int)registry().size(), failures());
  return failures() ? 1 : 0;
}

}  // namespace tgtest
