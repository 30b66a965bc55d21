// A warm training step makes no heap allocation at all: not from the caching
// allocator's system calls (which tapegrad._C.memory_stats() counts for the
// Python tests), and not from std::vector, std::function or anything else
// either. This executable interposes the C allocator (malloc, calloc,
// realloc, aligned_alloc, posix_memalign, memalign; operator new goes through
// malloc) and counts every call made while the counting is on, from any
// thread: the core's pool workers and OpenBLAS's included.
//
// What is counted is the library's own allocations: arguments the caller
// builds (reshape's std::vector of sizes) are built once, outside the loop.
// From Python, the interpreter and pybind11's argument conversion allocate
// too; the Python tests count the caching allocator (tests/test_memory.py).
//
// The step is the benchmark's window-NER step (bench/cpp/tapegrad_bench.cpp):
// the sparse embedding gather, the fused linear, tanh, linear, cross_entropy,
// backward, then optim::sgd on the dense parameters and optim::sgd_sparse on
// the table's rows, at batch 512 (every kernel that splits across the pool
// does) and batch 8, on one thread and on two.
//
// Interposing malloc does not mix with AddressSanitizer's own interposition:
// under the sanitizer build the test reports itself skipped.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "check.h"
#include "window_model.h"
#include "tapegrad/kernels.h"
#include "tapegrad/optim.h"
#include "tapegrad/sparse.h"

#if defined(__SANITIZE_ADDRESS__)
#define TG_NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TG_NO_INTERPOSE 1
#endif
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_calls{0};
inline void count() {
  if (g_counting.load(std::memory_order_relaxed)) g_calls.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#if !defined(TG_NO_INTERPOSE) && defined(__GLIBC__)
#define TG_COUNTS_MALLOC 1
// glibc's own entry points, under the names it exports for exactly this use.
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t s) {
  count();
  return __libc_calloc(n, s);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) {
  count();
  return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) {
  count();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  count();
  void* p = __libc_memalign(a, n);
  if (!p) return 12;  // ENOMEM
  *out = p;
  return 0;
}
}
#endif

using namespace tg;
using namespace test_model;

namespace {

struct Ner {
  Model m = make_model(3);
  Tensor ids, y;
  std::vector<int64_t> x_shape;  // reshape takes a vector: the caller's, built once
  optim::SGDOptions sgd;

  explicit Ner(int64_t batch) {
    ids = randint(0, kVocab, {batch, kWindow});
    y = randint(0, kTags, {batch});
    x_shape = {batch, kWindow * kDim};
    sgd.lr = 0.05;
  }

  // Adam on the dense parameters and SparseAdam on the table's rows instead
  // of SGD: optimizer state, a step count, and the coalescing of the rows.
  bool adam = false;
  std::vector<Tensor> m1, m2;  // per dense parameter, then the table's
  double t = 0;
  optim::AdamOptions adam_opts;

  void use_adam() {
    adam = true;
    NoGradGuard ng;
    for (Tensor* p : {&m.W1, &m.b1, &m.W2, &m.b2, &m.E}) {
      m1.push_back(Tensor::zeros(p->shape(), p->dtype()));
      m2.push_back(Tensor::zeros(p->shape(), p->dtype()));
    }
    adam_opts.lr = 1e-3;
  }

  double step() {
    Tensor* dense[] = {&m.W1, &m.b1, &m.W2, &m.b2};  // (Model::dense() returns a vector)
    for (Tensor* p : dense) p->set_grad(Tensor());
    m.E.set_grad(Tensor());
    Tensor x = reshape(embedding(ids, m.E, std::nullopt, /*sparse=*/true), x_shape);
    Tensor h = tanh(linear(x, m.W1, m.b1, Activation::None));
    Tensor loss = cross_entropy(linear(h, m.W2, m.b2, Activation::None), y);
    loss.backward();
    const Ref<RowSparse>& g = m.E.impl()->sparse_grad;
    if (adam) {
      t += 1;
      for (int i = 0; i < 4; i++)
        optim::adam(*dense[i], dense[i]->grad(), m1[i], m2[i], Tensor(), t, adam_opts);
      if (g) optim::sparse_adam(m.E, *g, m1[4], m2[4], t, adam_opts);
      return loss.item();
    }
    Tensor no_momentum;
    for (Tensor* p : dense) optim::sgd(*p, p->grad(), no_momentum, sgd);
    if (g) optim::sgd_sparse(m.E, *g, Ref<RowSparse>(), sgd);
    return loss.item();
  }
};

// Heap allocations made by `steps` warm steps (after `warm` uncounted ones).
long allocations_in_steps(Ner& ner, int warm, int steps) {
  for (int i = 0; i < warm; i++) ner.step();
  g_calls = 0;
  g_counting = true;
  for (int i = 0; i < steps; i++) ner.step();
  g_counting = false;
  return g_calls.load();
}

void check_steps_allocate_nothing(int threads) {
  if (const char* limit = std::getenv("TAPEGRAD_CACHE_LIMIT")) {
    if (std::strtoull(limit, nullptr, 10) < (64u << 20)) {  // the sanitizer job's 0, say
      std::printf("  skipped: TAPEGRAD_CACHE_LIMIT=%s is below the 64 MB default\n", limit);
      return;
    }
  }
  set_num_threads(threads);
  for (bool adam : {false, true})
    for (int64_t batch : {int64_t(512), int64_t(8)}) {
      Ner ner(batch);
      if (adam) ner.use_adam();
      double first = ner.step();
      long n = allocations_in_steps(ner, 20, 50);
      std::printf("  %d thread(s), batch %lld, %s: %ld heap allocations in 50 warm steps\n",
                  threads, (long long)batch, adam ? "Adam + SparseAdam" : "SGD", n);
      CHECK(n == 0);
      CHECK(ner.step() < first);  // and it trains
    }
}

}  // namespace

TEST(the_counter_counts) {
#ifdef TG_COUNTS_MALLOC
  g_calls = 0;
  g_counting = true;
  std::vector<int>* v = new std::vector<int>(100);
  void* p = std::malloc(10);
  g_counting = false;
  std::free(p);
  delete v;
  CHECK(g_calls.load() >= 3);  // the vector, its buffer, the malloc
#endif
}

TEST(warm_ner_step_allocates_nothing_one_thread) {
#ifdef TG_COUNTS_MALLOC
  check_steps_allocate_nothing(1);
#else
  std::printf("  skipped: the allocator is interposed by the sanitizer (or not glibc)\n");
#endif
}

TEST(warm_ner_step_allocates_nothing_two_threads) {
#ifdef TG_COUNTS_MALLOC
  check_steps_allocate_nothing(2);
#else
  std::printf("  skipped: the allocator is interposed by the sanitizer (or not glibc)\n");
#endif
}

int main() { return tgtest::run_all(); }
