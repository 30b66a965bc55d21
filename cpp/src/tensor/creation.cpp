// Tensor creation: ranges, the identity, and random tensors from the one
// global generator.
#include <cmath>
#include <mutex>
#include <random>

#include "tapegrad/kernels.h"
#include "tapegrad/ops.h"
#include "tapegrad/trace.h"

namespace tg {

// ---------------------------------------------------------------- arange / eye
// [start, start + step, ...) up to `end`, ceil((end - start) / step) values,
// computed as start + i * step in double (in int64 for an int64 result, with
// start and step truncated first, as PyTorch does).
Tensor arange(double start, double end, double step, DType dt) {
  TG_TRACE(arange, start, end, step, dt);
  TG_CHECK(std::isfinite(start) && std::isfinite(end) && std::isfinite(step), ValueError,
           "arange: unsupported range: start=", start, ", end=", end, ", step=", step);
  TG_CHECK(step != 0, ValueError, "arange: step must be nonzero");
  TG_CHECK((step > 0 && end >= start) || (step < 0 && end <= start), ValueError,
           "arange: upper bound and lower bound inconsistent with step sign (start=", start,
           ", end=", end, ", step=", step, ")");
  TG_CHECK(dt != DType::Bool, TypeError, "arange: dtype bool is not supported");
  double size = std::ceil((end - start) / step);
  TG_CHECK(size >= 0 && size < 9.0e18, ValueError, "arange: invalid number of elements ", size,
           " for start=", start, ", end=", end, ", step=", step);
  int64_t n = (int64_t)size;
  Tensor out = Tensor::empty(Shape{n}, dt);
  if (dt == DType::Int64) {
    int64_t s0 = (int64_t)start, st = (int64_t)step;
    int64_t* o = out.data<int64_t>();
    for (int64_t i = 0; i < n; i++) o[i] = s0 + i * st;
    return out;
  }
  dispatch_float(dt, "arange", [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    for (int64_t i = 0; i < n; i++) o[i] = (T)(start + (double)i * step);
  });
  return out;
}

// An n x m matrix with ones on the diagonal.
Tensor eye(int64_t n, int64_t m, DType dt) {
  TG_TRACE(eye, n, m, dt);
  TG_CHECK(n >= 0, ValueError, "eye: n must be non-negative, got ", n);
  TG_CHECK(m >= 0, ValueError, "eye: m must be non-negative, got ", m);
  Tensor out = Tensor::zeros(Shape{n, m}, dt);
  int64_t k = n < m ? n : m;
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    for (int64_t i = 0; i < k; i++) o[i * m + i] = (T)1;
  });
  return out;
}

// ---------------------------------------------------------------- random
// Note [Random generator]
// One process-wide std::mt19937_64 behind a mutex (locked once per tensor,
// not per number). It starts from PyTorch's default seed, 67280421310721, so
// runs are reproducible even without manual_seed, and manual_seed(s) restarts
// the stream. The engine's output is fixed by the C++ standard and the
// conversions below are our own (no std::*_distribution, whose algorithms
// vary between standard libraries), so a seed gives the same numbers on every
// platform. The streams are not PyTorch's: same seed, different numbers.
namespace {
constexpr uint64_t kDefaultSeed = 67280421310721ULL;

struct Generator {
  std::mutex mu;
  std::mt19937_64 engine{kDefaultSeed};
};

Generator& generator() {
  static Generator g;
  return g;
}

// U[0, 1) with the full precision of T.
inline double uniform53(std::mt19937_64& e) { return (double)(e() >> 11) * 0x1p-53; }
inline float uniform24(std::mt19937_64& e) { return (float)(e() >> 40) * 0x1p-24f; }

DType check_float(DType dt, const char* op) {
  TG_CHECK(is_floating(dt), TypeError, op, ": dtype must be float32 or float64, got ",
           dtype_name(dt));
  return dt;
}
}  // namespace

void manual_seed(uint64_t seed) {
  TG_TRACE(manual_seed, seed);
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mu);
  g.engine.seed(seed);
}

Tensor rand(const Shape& shape, DType dt) {
  TG_TRACE(rand, shape, dt);
  Tensor out = Tensor::empty(shape, check_float(dt, "rand"));
  int64_t n = out.numel();
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mu);
  if (dt == DType::Float32) {
    float* o = out.data<float>();
    for (int64_t i = 0; i < n; i++) o[i] = uniform24(g.engine);
  } else {
    double* o = out.data<double>();
    for (int64_t i = 0; i < n; i++) o[i] = uniform53(g.engine);
  }
  return out;
}

// Box-Muller: two uniforms give two independent normals.
Tensor randn(const Shape& shape, DType dt) {
  TG_TRACE(randn, shape, dt);
  Tensor out = Tensor::empty(shape, check_float(dt, "randn"));
  int64_t n = out.numel();
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mu);
  dispatch_float(dt, "randn", [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    const double two_pi = 6.283185307179586476925286766559;
    for (int64_t i = 0; i < n; i += 2) {
      double u1 = 1.0 - uniform53(g.engine);  // (0, 1]: log(u1) is finite
      double u2 = uniform53(g.engine);
      double r = std::sqrt(-2.0 * std::log(u1));
      o[i] = (T)(r * std::cos(two_pi * u2));
      if (i + 1 < n) o[i + 1] = (T)(r * std::sin(two_pi * u2));
    }
  });
  return out;
}

// Uniform integers in [low, high), unbiased (rejection sampling).
Tensor randint(int64_t low, int64_t high, const Shape& shape) {
  TG_TRACE(randint, low, high, shape);
  TG_CHECK(high > low, ValueError, "randint: high (", high, ") must be greater than low (", low,
           ")");
  Tensor out = Tensor::empty(shape, DType::Int64);
  int64_t n = out.numel();
  uint64_t range = (uint64_t)high - (uint64_t)low;
  uint64_t threshold = (0 - range) % range;  // 2^64 mod range: draws below it are rejected
  int64_t* o = out.data<int64_t>();
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mu);
  for (int64_t i = 0; i < n; i++) {
    uint64_t x;
    do x = g.engine();
    while (x < threshold);
    o[i] = (int64_t)((uint64_t)low + x % range);
  }
  return out;
}

}  // namespace tg
