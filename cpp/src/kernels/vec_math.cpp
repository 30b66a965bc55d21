// Vectorised batch math kernels for float32/float64 runs: the NaN-aware max,
// exp with a shift and running sum (softmax, logsumexp, cross-entropy), and exp
// in place. Raw pointers only.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tapegrad/kernels.h"
#include "vec_width.h"

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
// against exp in double over all 2^32 floats: at most 1.011 ulp (worst at
// x = -5.878; ulp of the exact result's binade, as in Note [Vectorised tanh
// and sigmoid]); NaN propagates, exp(-inf) = 0, exp(inf) = inf. float64 uses
// std::exp.
//
// Declared in tapegrad/kernels.h; used by softmax, logsumexp and the losses.
#if defined(__GNUC__)
#define TG_HAVE_VEC 1
namespace {
constexpr int kVecBytes = vec::kMathBytes;
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

// exp's core for an x already in range: returns e^r and sets n (mod 2^32;
// unsigned, so that even the garbage lanes of a NaN input stay well defined),
// with x = n ln2 + r.
inline VF exp_reduced(VF x, VU& n) {
  const VF magic = splatf(12582912.f);  // 1.5 * 2^23: adding it rounds to an integer
  VF t = x * splatf(1.44269504088896341f) + magic;
  VF nf = t - magic;
  n = (VU)t - splatu(0x4B400000u);  // the integer in t's mantissa
  VF r = x - nf * splatf(0.693359375f);
  r = r - nf * splatf(-2.12194440e-4f);
  VF z = r * r;
  VF p = splatf(1.9875691500e-4f);
  p = p * r + splatf(1.3981999507e-3f);
  p = p * r + splatf(8.3334519073e-3f);
  p = p * r + splatf(4.1665795894e-2f);
  p = p * r + splatf(1.6666665459e-1f);
  p = p * r + splatf(5.0000001201e-1f);
  return p * z + r + splatf(1.0f);
}

inline VF exp_vec(VF x) {
  x = select(x < splatf(-110.f), splatf(-110.f), x);  // NaN compares false: stays NaN
  x = select(x > splatf(100.f), splatf(100.f), x);
  VU n;
  VF p = exp_reduced(x, n);
  // 2^n1 * 2^n2 with n1 = floor(n / 2), n2 = n - n1, from b = n + 256 (in
  // [97, 400]): biased exponents n1 + 127 = b/2 - 1 and n2 + 127 = b - b/2 - 1,
  // both in [47, 199].
  VU b = n + splatu(256u);
  VU h = b >> 1;
  return p * (VF)((h - splatu(1u)) << 23) * (VF)((b - h - splatu(1u)) << 23);
}

// Note [Vectorised tanh and sigmoid]
// tanh (float32): Cephes' tanhf, branch-free. |x| < 0.625: the odd polynomial
// |x| + |x| z P(z), z = x^2 (exact for subnormals and +-0, whose z underflows);
// else sign(x) (1 - 2 / (exp(2|x|) + 1)) on the vectorised exp (exp_vec_tanh:
// exp_vec without the range handling that 2|x| <= 20 does not need, equal to
// it bit for bit, as a sweep of all 2^32 inputs showed), which saturates to
// exactly +-1 from |x| ~ 9.01 on. NaN propagates through the exp branch.
//
// sigmoid (float32): with e = exp(-|x|) in (0, 1] (it never overflows),
// 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0: the negative side keeps
// full relative accuracy down to the subnormal results of x in [-103.9, -87.3]
// (1 / (1 + exp(-x)) would flush them to 0 once exp(-x) overflows), and
// sigmoid(-inf) = 0, sigmoid(inf) = 1, NaN propagates.
//
// Error, measured against tanh / exp in double over every float32 bit
// pattern (all 2^32): tanh <= 1.331 ulp (worst at x = 0.6283, just above the
// branch point), sigmoid <= 2.402 ulp (worst at x = -4.157: exp's <= 1.011
// ulp error in e, whose binade is above the result's, counts up to twice),
// exp <= 1.011 ulp. Stated bounds, held by tests/test_vec_math.py on a sweep of
// millions of patterns plus subnormals, +-0, +-inf, NaNs, the saturation
// regions and the worst cases above: tanh 1.5 ulp, sigmoid 2.5 ulp, exp 1.02
// ulp. NaN propagates, saturation is exact (tanh = +-1 for |x| >= 9.011,
// sigmoid = 1 for x >= 16.64, 0 below -103.97), overflow gives inf. Each lane
// depends only on its own input, so results do not depend on how a run is
// split (threads, rows of the fused linear, alignment).
// exp(y) for the tanh below, y = 2|x| >= 0 or NaN: exp_vec's steps for y in
// [0, 20], where 2^n is one exact power of two (n <= 29), so its values are
// exp_vec's to the bit. Larger y is clamped to 20: tanh is then 1 - 2/(e+1)
// with 2/(e+1) < 4.2e-9, which rounds to exactly 1 either way.
inline VF exp_vec_tanh(VF y) {
  y = select(y > splatf(20.f), splatf(20.f), y);  // NaN compares false: stays NaN
  VU n;
  VF p = exp_reduced(y, n);
  return p * (VF)((n + splatu(127u)) << 23);  // 2^n, n in [0, 29]: one exact factor
}

inline VF tanh_vec(VF x) {
  const VU sign_mask = splatu(0x80000000u);
  VF a = (VF)((VU)x & ~sign_mask);
  VF z = x * x;
  VF p = splatf(-5.70498872745e-3f);
  p = p * z + splatf(2.06390887954e-2f);
  p = p * z + splatf(-5.37397155531e-2f);
  p = p * z + splatf(1.33314422036e-1f);
  p = p * z + splatf(-3.33332819422e-1f);
  VF small = p * z * a + a;  // |tanh x| on both branches, then x's sign (keeps -0)
  VF e = exp_vec_tanh(a + a);
  VF large = splatf(1.f) - splatf(2.f) / (e + splatf(1.f));
  VF t = select(a < splatf(0.625f), small, large);
  return (VF)((VU)t | ((VU)x & sign_mask));
}

// Note [Vectorised log]
// log (float32): Cephes' logf, branch-free. x = m 2^e with m in [sqrt(1/2),
// sqrt(2)) (subnormals scaled by 2^23 first), f = m - 1, log x = f - f^2/2 +
// f^3 P(f) + e ln2, ln2 split in two (Cody-Waite) so that e ln2 adds no
// rounding of its own. Specials by selects: log(+-0) = -inf, log(x < 0) = NaN,
// log(inf) = inf, NaN propagates. Error, measured against log in double over
// every positive float32 (all 2^31 patterns; the AVX2 build, but each lane's
// arithmetic does not depend on the width): <= 0.827 ulp (worst at x =
// 1.413642, near the reduction's seam at sqrt(2)); tests/test_vec_math.py
// holds it to 0.9 ulp on its sweeps. tg.log uses it, and via log1p below
// cross-entropy's few-class rows.
__attribute__((always_inline)) inline VF log_vec(VF x) {
  typedef decltype(x < x) VM;
  const VM sub = (x < splatf(1.17549435e-38f)) & (x > splatf(0.f));
  VF xs = select(sub, x * splatf(8388608.f), x);  // 2^23: subnormals to normals
  VU u = (VU)xs;
  VI e = (VI)((u >> 23) & splatu(0xffu)) - splat<VI, int32_t, kWF>(126);
  e = select(sub, e - splat<VI, int32_t, kWF>(23), e);
  VF m = (VF)((u & splatu(0x007fffffu)) | splatu(0x3f000000u));  // [0.5, 1)
  const VM lo = m < splatf(0.707106781186547524f);
  e = select(lo, e - splat<VI, int32_t, kWF>(1), e);
  VF f = select(lo, m + m, m) - splatf(1.f);
  VF ef = __builtin_convertvector(e, VF);
  VF z = f * f;
  VF p = splatf(7.0376836292e-2f);
  p = p * f + splatf(-1.1514610310e-1f);
  p = p * f + splatf(1.1676998740e-1f);
  p = p * f + splatf(-1.2420140846e-1f);
  p = p * f + splatf(1.4249322787e-1f);
  p = p * f + splatf(-1.6668057665e-1f);
  p = p * f + splatf(2.0000714765e-1f);
  p = p * f + splatf(-2.4999993993e-1f);
  p = p * f + splatf(3.3333331174e-1f);
  VF y = f * z * p + ef * splatf(-2.12194440e-4f);
  y = y - splatf(0.5f) * z;
  VF r = (f + y) + ef * splatf(0.693359375f);
  const VF inf = splatf(std::numeric_limits<float>::infinity());
  r = select(x == inf, inf, r);
  r = select(x == splatf(0.f), -inf, r);
  r = select(x < splatf(0.f), splatf(std::numeric_limits<float>::quiet_NaN()), r);
  return select(x != x, x, r);  // NaN in, the same NaN out
}

// log1p (float32): with u = 1 + x rounded, log1p x = log(u) x / (u - 1), and
// x itself where u == 1 (Goldberg, "What every computer scientist should know
// about floating-point arithmetic", Theorem 4): the quotient x / (u - 1)
// undoes u's rounding. log1p(-1) = -inf, below -1 NaN, inf = inf, -0 = -0,
// NaN propagates. Measured against log1p in double over every float32 above
// -1: <= 2.47 ulp (worst at x = 0.015624939), so tg.log1p keeps libm's;
// cross-entropy's few-class rows use it (their losses are tested within 3 ulp
// in tests/test_nn_losses.py).
__attribute__((always_inline)) inline VF log1p_vec(VF x) {
  VF u = x + splatf(1.f);
  VF d = u - splatf(1.f);
  VF r = log_vec(u) * (x / d);
  r = select(d == splatf(0.f), x, r);
  return select(x == splatf(std::numeric_limits<float>::infinity()), x, r);
}

inline VF sigmoid_vec(VF x) {
  VF a = (VF)((VU)x & splatu(0x7fffffffu));
  VF e = exp_vec(-a);
  VF num = select(x < splatf(0.f), e, splatf(1.f));
  return num / (splatf(1.f) + e);
}

// y[i] = F(x[i]) over a run: pairs of vectors, whole vectors, then the last
// partial vector padded (lanes are independent, so padding never changes a
// value). The pairs: F is one long dependency chain (exp's polynomial, then a
// divide), and two chains side by side let the core overlap them (tanh on
// 512x100: 47 -> 39 us; four would spill the constants out of registers).
template <VF (*F)(VF)>
void map_vec(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 2 * kWF <= n; i += 2 * kWF) {
    VF a, b;
    std::memcpy(&a, x + i, sizeof a);
    std::memcpy(&b, x + i + kWF, sizeof b);
    a = F(a);
    b = F(b);
    std::memcpy(y + i, &a, sizeof a);
    std::memcpy(y + i + kWF, &b, sizeof b);
  }
  for (; i + kWF <= n; i += kWF) {
    VF v;
    std::memcpy(&v, x + i, sizeof v);
    v = F(v);
    std::memcpy(y + i, &v, sizeof v);
  }
  if (i < n) {
    VF v = splatf(0.f);
    std::memcpy(&v, x + i, (size_t)(n - i) * sizeof(float));
    v = F(v);
    std::memcpy(y + i, &v, (size_t)(n - i) * sizeof(float));
  }
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
static double exp_shifted_sum_seq(const float* x, int64_t n, float shift, float* out) {
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

static double exp_shifted_sum_seq(const double* x, int64_t n, double shift, double* out) {
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

// Runs longer than kSumBlock are summed per block of kSumBlock elements (in
// parallel when large, Note [Core threads]) and the block sums added in order:
// the result depends on n only, never on the thread count. Shorter runs (all
// softmax rows of usual sizes) are one block, summed as before.
constexpr int64_t kSumBlock = 65536;

template <class T>
static double exp_shifted_sum_blocks(const T* x, int64_t n, T shift, T* out) {
  if (n <= kSumBlock) return exp_shifted_sum_seq(x, n, shift, out);
  int64_t nb = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> part((size_t)nb);
  parallel_for(nb, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      int64_t off = b * kSumBlock, m = std::min(kSumBlock, n - off);
      part[b] = exp_shifted_sum_seq(x + off, m, shift, out ? out + off : nullptr);
    }
  }, 1);
  double total = 0;
  for (double v : part) total += v;
  return total;
}

double exp_shifted_sum(const float* x, int64_t n, float shift, float* out) {
  return exp_shifted_sum_blocks(x, n, shift, out);
}
double exp_shifted_sum(const double* x, int64_t n, double shift, double* out) {
  return exp_shifted_sum_blocks(x, n, shift, out);
}

// x[i] = exp(x[i]).
void exp_inplace(float* x, int64_t n) { exp_run(x, x, n); }

void exp_inplace(double* x, int64_t n) { exp_run(x, x, n); }

}  // namespace tg

// ---------------------------------------------------------------- exp / tanh / sigmoid runs
namespace tg {
namespace {

#ifdef TG_HAVE_VEC
void exp_seq(const float* x, float* y, int64_t n) { map_vec<exp_vec>(x, y, n); }
void tanh_seq(const float* x, float* y, int64_t n) { map_vec<tanh_vec>(x, y, n); }
void sigmoid_seq(const float* x, float* y, int64_t n) { map_vec<sigmoid_vec>(x, y, n); }
void log_seq(const float* x, float* y, int64_t n) { map_vec<log_vec>(x, y, n); }
void log1p_seq(const float* x, float* y, int64_t n) { map_vec<log1p_vec>(x, y, n); }
#else
void exp_seq(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::exp(x[i]);
}
void tanh_seq(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::tanh(x[i]);
}
void sigmoid_seq(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float e = std::exp(-std::fabs(x[i]));
    y[i] = (x[i] < 0 ? e : 1.0f) / (1.0f + e);
  }
}
void log_seq(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::log(x[i]);
}
void log1p_seq(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::log1p(x[i]);
}
#endif

void exp_seq(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::exp(x[i]);
}
void tanh_seq(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::tanh(x[i]);
}
void log_seq(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::log(x[i]);
}
void log1p_seq(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = std::log1p(x[i]);
}
// float64: exp(x) / (1 + exp(x)) for x < 0 so that neither branch overflows.
void sigmoid_seq(const double* x, double* y, int64_t n) {
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

}  // namespace

// Split across threads in pieces aligned to 64 elements (whole vectors): each
// element's value does not depend on the split.
#define TG_RUN(name, T)                                                         \
  void name##_run(const T* x, T* y, int64_t n) {                                \
    parallel_for(n, kGrainMath, [&](int64_t b, int64_t e) { name##_seq(x + b, y + b, e - b); }); \
  }
TG_RUN(exp, float)
TG_RUN(exp, double)
TG_RUN(tanh, float)
TG_RUN(tanh, double)
TG_RUN(sigmoid, float)
TG_RUN(sigmoid, double)
TG_RUN(log, float)
TG_RUN(log, double)
TG_RUN(log1p, float)
TG_RUN(log1p, double)
#undef TG_RUN

}  // namespace tg
