// The vector width of the build's target, for the kernels written with
// GCC/Clang vector extensions (vec_math.cpp, small_gemm.cpp): 32 bytes with
// AVX, else 16 (SSE, NEON). Private to cpp/src/kernels.
#pragma once

#if defined(__GNUC__)
namespace tg::vec {

#if defined(__AVX__)
constexpr int kBytes = 32;
#else
constexpr int kBytes = 16;
#endif

// Of<float>::type: kBytes / 4 floats; Of<int32_t>::type: shuffle masks for them.
template <class T>
struct Of {
  typedef T type __attribute__((vector_size(kBytes)));
};

}  // namespace tg::vec
#endif
