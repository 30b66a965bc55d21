// The vector width of the build's target, for the kernels written with
// GCC/Clang vector extensions (vec_math.cpp, small_gemm.cpp): 32 bytes with
// AVX, else 16 (SSE, NEON); vec_math's runs go to 64 with AVX-512F (below).
// Private to cpp/src/kernels.
#pragma once

#if defined(__GNUC__)
namespace tg::vec {

#if defined(__AVX__)
constexpr int kBytes = 32;
#else
constexpr int kBytes = 16;
#endif

// The width of vec_math.cpp's exp / tanh / sigmoid / max runs: 64 bytes where
// the target has AVX-512F, since their lanes are independent and a 16-float
// vector halves the instructions per element. On the Zen 4 dev box (which
// executes a 512-bit op as two 256-bit halves) tanh over 512 x 100 floats went
// 30.7 -> 22.7 us, sigmoid 33 -> 25, exp 24 -> 18 (C++, medians of 9 blocks,
// 4 interleaved runs); the 5-class softmax rows of cross-entropy, one partial
// vector either way, measured the same. small_gemm.cpp's reductions are
// written for at most 8 float lanes and keep kBytes.
#if defined(__AVX512F__)
constexpr int kMathBytes = 64;
#else
constexpr int kMathBytes = kBytes;
#endif

// Of<float>::type: kBytes / 4 floats; Of<int32_t>::type: shuffle masks for them.
template <class T>
struct Of {
  typedef T type __attribute__((vector_size(kBytes)));
};

}  // namespace tg::vec
#endif
