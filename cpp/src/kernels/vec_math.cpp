// Vectorised batch math kernels for float32/float64 runs: the NaN-aware max,
// exp with a shift and running sum (softmax, logsumexp, cross-entropy), and exp
// in place. Raw pointers only.
#include <cmath>
#include <cstring>
#include <limits>

#include "tapegrad/kernels.h"

namespace tg {

// Note [Vectorised exp]
// softmax, log_softmax, logsumexp and cross_entropy spend their time in exp
// and in the row max. GCC will not auto-vectorise either without -ffast-math
// (float compares may trap, so it refuses to if-convert them; libm's expf is
// scalar), so these run on GCC/Clang vector extensions: branch-free selects by
// explicit masks, lowered to AVX / SSE / NEON as the target allows.
//
// exp (float32): Cephes' expf. n = round(x / ln2), r = x - n ln2 (Cody-Waite,
// |r| <= ln2/2), e^r by a degree-6 polynomial, times 2^n applied as two
// factors 2^(n/2) 2^(n - n/2) so that overflow (inf above 88.72) and gradual
// underflow (subnormals down to -103.97, then 0) round as IEEE does. Measured
// against exp in double over a sweep of all floats: at most 1.004 ulp; NaN
// propagates, exp(-inf) = 0, exp(inf) = inf. float64 uses std::exp.
//
// Declared in tapegrad/kernels.h; used by softmax, logsumexp and the losses.
#if defined(__GNUC__)
#define TG_HAVE_VEC 1
namespace {
#if defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
typedef float VF __attribute__((vector_size(kVecBytes)));
typedef int32_t VI __attribute__((vector_size(kVecBytes)));
typedef uint32_t VU __attribute__((vector_size(kVecBytes)));
typedef double VD __attribute__((vector_size(kVecBytes)));
constexpr int kWF = kVecBytes / 4, kWD = kVecBytes / 8;

template <class V, class S, int W>
inline V splat(S c) {
  V v;
  for (int k = 0; k < W; k++) v[k] = c;
  return v;
}
inline VF splatf(float c) { return splat<VF, float, kWF>(c); }
inline VU splatu(uint32_t c) { return splat<VU, uint32_t, kWF>(c); }
template <class V, class M>
inline V select(M mask, V a, V b) {  // mask ? a : b, lane by lane
  return (V)((mask & (M)a) | (~mask & (M)b));
}

inline VF exp_vec(VF x) {
  x = select(x < splatf(-110.f), splatf(-110.f), x);  // NaN compares false: stays NaN
  x = select(x > splatf(100.f), splatf(100.f), x);
  const VF magic = splatf(12582912.f);  // 1.5 * 2^23: adding it rounds to an integer
  VF t = x * splatf(1.44269504088896341f) + magic;
  VF nf = t - magic;
  // b = n + 256 from the integer in t's mantissa; unsigned, so that even the
  // garbage lanes of a NaN input stay well defined (b is in [97, 400] else).
  VU b = (VU)t - splatu(0x4B400000u - 256u);
  VF r = x - nf * splatf(0.693359375f);
  r = r - nf * splatf(-2.12194440e-4f);
  VF z = r * r;
  VF p = splatf(1.9875691500e-4f);
  p = p * r + splatf(1.3981999507e-3f);
  p = p * r + splatf(8.3334519073e-3f);
  p = p * r + splatf(4.1665795894e-2f);
  p = p * r + splatf(1.6666665459e-1f);
  p = p * r + splatf(5.0000001201e-1f);
  p = p * z + r + splatf(1.0f);
  // 2^n1 * 2^n2 with n1 = floor(n / 2), n2 = n - n1: biased exponents
  // n1 + 127 = b/2 - 1 and n2 + 127 = b - b/2 - 1, both in [47, 199].
  VU h = b >> 1;
  return p * (VF)((h - splatu(1u)) << 23) * (VF)((b - h - splatu(1u)) << 23);
}

// Max of x[0, n) with NaN winning; -inf for n == 0.
template <class T, class V, int W>
T max_vec(const T* x, int64_t n) {
  V m = splat<V, T, W>(-std::numeric_limits<T>::infinity());
  auto nan = m != m;  // all lanes false
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    V v;
    std::memcpy(&v, x + i, sizeof v);
    m = select(v > m, v, m);
    nan |= (v != v);
  }
  T best = -std::numeric_limits<T>::infinity();
  bool any_nan = false;
  for (int k = 0; k < W; k++) {
    any_nan |= nan[k] != 0;
    if (m[k] > best) best = m[k];
  }
  for (; i < n; i++) {
    any_nan |= x[i] != x[i];
    if (x[i] > best) best = x[i];
  }
  return any_nan ? std::numeric_limits<T>::quiet_NaN() : best;
}
}  // namespace
#endif

float max_run(const float* x, int64_t n) {
#ifdef TG_HAVE_VEC
  return max_vec<float, VF, kWF>(x, n);
#else
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; i++) {
    if (x[i] != x[i]) return x[i];
    if (x[i] > m) m = x[i];
  }
  return m;
#endif
}

double max_run(const double* x, int64_t n) {
#ifdef TG_HAVE_VEC
  return max_vec<double, VD, kWD>(x, n);
#else
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; i++) {
    if (x[i] != x[i]) return x[i];
    if (x[i] > m) m = x[i];
  }
  return m;
#endif
}

// out[i] = exp(x[i] - shift) (out may be null); returns the sum of the
// exponentials, accumulated in float lanes over short blocks and in double
// across blocks.
double exp_shifted_sum(const float* x, int64_t n, float shift, float* out) {
#ifdef TG_HAVE_VEC
  double total = 0;
  VF sv = splatf(shift);
  int64_t i = 0;
  while (i < n) {
    int64_t end = std::min(n, i + 16 * kWF);
    VF acc = splatf(0.f);
    for (; i + kWF <= end; i += kWF) {
      VF v;
      std::memcpy(&v, x + i, sizeof v);
      v = exp_vec(v - sv);
      if (out) std::memcpy(out + i, &v, sizeof v);
      acc += v;
    }
    if (i < end) {  // the last, partial vector
      int64_t m = end - i;
      VF v = splatf(0.f);
      std::memcpy(&v, x + i, (size_t)m * sizeof(float));
      v = exp_vec(v - sv);
      for (int k = (int)m; k < kWF; k++) v[k] = 0.f;
      if (out) std::memcpy(out + i, &v, (size_t)m * sizeof(float));
      acc += v;
      i = end;
    }
    for (int k = 0; k < kWF; k++) total += (double)acc[k];
  }
  return total;
#else
  double total = 0;
  for (int64_t i = 0; i < n; i++) {
    float e = std::exp(x[i] - shift);
    if (out) out[i] = e;
    total += (double)e;
  }
  return total;
#endif
}

double exp_shifted_sum(const double* x, int64_t n, double shift, double* out) {
  double s0 = 0, s1 = 0;
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    double e0 = std::exp(x[i] - shift), e1 = std::exp(x[i + 1] - shift);
    if (out) {
      out[i] = e0;
      out[i + 1] = e1;
    }
    s0 += e0;
    s1 += e1;
  }
  for (; i < n; i++) {
    double e = std::exp(x[i] - shift);
    if (out) out[i] = e;
    s0 += e;
  }
  return s0 + s1;
}

// x[i] = exp(x[i]).
void exp_inplace(float* x, int64_t n) {
#ifdef TG_HAVE_VEC
  int64_t i = 0;
  for (; i + kWF <= n; i += kWF) {
    VF v;
    std::memcpy(&v, x + i, sizeof v);
    v = exp_vec(v);
    std::memcpy(x + i, &v, sizeof v);
  }
  if (i < n) {
    VF v = splatf(0.f);
    std::memcpy(&v, x + i, (size_t)(n - i) * sizeof(float));
    v = exp_vec(v);
    std::memcpy(x + i, &v, (size_t)(n - i) * sizeof(float));
  }
#else
  for (int64_t i = 0; i < n; i++) x[i] = std::exp(x[i]);
#endif
}

void exp_inplace(double* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = std::exp(x[i]);
}

}  // namespace tg

// ---------------------------------------------------------------- exp / tanh / sigmoid runs
namespace tg {

void exp_run(const float* x, float* y, int64_t n) {
  if (y != x) std::memcpy(y, x, (size_t)n * sizeof(float));
  exp_inplace(y, n);
}
void exp_run(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::exp(x[i]);
}

void tanh_run(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::tanh(x[i]);
}
void tanh_run(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::tanh(x[i]);
}

// float32: 1 / (1 + exp(-x)) on the vectorised exp (exp(-x) = inf gives
// exactly 0, so no branch is needed).
void sigmoid_run(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = -x[i];
  exp_inplace(y, n);
  for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + y[i]);
}
// float64: exp(x) / (1 + exp(x)) for x < 0 so that neither branch overflows.
void sigmoid_run(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double v = x[i];
    if (v >= 0) {
      y[i] = 1.0 / (1.0 + std::exp(-v));
    } else {
      double e = std::exp(v);
      y[i] = e / (1.0 + e);
    }
  }
}

}  // namespace tg
