// The core's own thread pool: parallel_for (kernels.h) over large elementwise
// and reduction kernels, and the blocks of large GEMMs.
//
// Note [Core threads]
// tg.set_num_threads(n) sets the core's threads, which also run large GEMMs
// in blocks while OpenBLAS runs one thread (Note [GEMMs on the core's
// threads] in blas.cpp): kernels
// over at least 2 * grain elements split into up to n contiguous pieces, one
// per thread, the caller running the first. Below that a kernel runs inline
// and pays one compare, so small tensors are never slower. Until
// set_num_threads() is called the core's loops use one thread (BLAS keeps its
// own default, which get_num_threads() reports): on a shared, oversubscribed
// machine a woken worker waits for a time slice, which can cost more than the
// split saves (measured at load 6 on the 2-core dev box: 1M-element adds 2-9x
// slower on 2 threads), so using more threads is the user's explicit choice.
//
// Grains (kernels.h), measured on the idle 2-core dev box, 2 threads vs 1,
// medians of interleaved runs: exp / tanh / sigmoid split from 32K elements
// (kGrainMath = 16K per thread), where 2 threads already run 1.5-1.8x faster;
// one-flop loops (add, mul, where, copies: memory bound) split from 256K
// (kGrainCheap = 128K per thread): 1.1x there, 1.4-1.5x from 1M. Gathers and
// updates of rows at random indices (embedding; sparse SGD, Adagrad and
// SparseAdam) wait on memory, not arithmetic, and split from 64K elements
// (kGrainRowElems per thread): on two threads the batch-512 NER step ran
// ~10% faster (interleaved A/B, 8 rounds), its share of the BLAS floor
// 62% -> 68%. The dense optimizers'
// updates (SGD, Adagrad, RMSprop, Adam) split like exp: they stream three to
// five arrays of the parameter's size, more than one core's outstanding
// misses keep busy; on two threads Adam over 1M parameters ran 2.1x faster
// and the MLP step's share of the floor went 0.833 -> 0.872 (interleaved
// A/B, 7 rounds). Workers spin
// for ~20-40 us before sleeping (and the caller likewise waits for them), so
// back-to-back kernels skip the futex wake-up that otherwise made every split
// below ~1M elements slower.
//
// Determinism: elementwise kernels compute each element from its own inputs
// only, so any split gives the same bits as one thread. Reductions that split
// (the fused linear's bias gradient, exp_shifted_sum over long rows) sum over
// blocks fixed by the data size alone, never by the thread count, and add the
// block sums in order: their results do not depend on n either. (BLAS results
// may depend on its thread count; that is OpenBLAS's, not the core's.)
//
// The pool: n - 1 persistent workers, started on first use and kept (blocked
// on a condition variable between regions, after the spin); piece k goes to worker k (static
// assignment, so a region's thread count is exactly its piece count: the
// debug counter parallel_last_threads() reports it). One region runs at a
// time: a second thread (Python threads release the GIL in big matmuls) runs
// the same pieces one after another instead of waiting (so its results are
// the pool's, bit for bit), and a kernel called from inside a region runs
// inline. An
// exception thrown by a piece is rethrown in the caller after all pieces end.
// After fork() the child starts a fresh pool (the parent's workers do not
// exist there). Workers are never joined: they sleep until the process exits.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TG_PAUSE() _mm_pause()
#else
#define TG_PAUSE() std::this_thread::yield()
#endif

#include "tapegrad/kernels.h"

namespace tg {
namespace {

thread_local bool t_in_region = false;
// Pause iterations (~20-40 us) a worker waits for the next region, and the
// caller for the workers, before blocking on the condition variable.
constexpr int kSpin = 2000;
std::atomic<int64_t> g_regions{0};
std::atomic<int> g_last_threads{1};

struct Pool {
  std::mutex busy;  // held for the duration of one region
  std::mutex m;
  std::condition_variable wake, done;
  std::vector<std::thread> workers;
  uint64_t generation = 0;
  std::atomic<uint64_t> published{0};  // = generation, readable without m
  // the current region (written under m before generation++)
  RangeFn fn = nullptr;
  void* ctx = nullptr;
  int pieces = 0;
  int64_t n = 0, piece = 0;
  std::atomic<int> remaining{0};  // pieces not yet finished (changed under m)
  std::exception_ptr error;

  void run_piece(int k) {
    int64_t b = std::min(n, k * piece), e = k + 1 == pieces ? n : std::min(n, (k + 1) * piece);
    try {
      if (b < e) fn(ctx, b, e);
    } catch (...) {
      std::lock_guard<std::mutex> g(m);
      if (!error) error = std::current_exception();
    }
  }

  void worker(int k) {  // runs piece k of every region that has one
    t_in_region = true;  // kernels inside a piece run inline
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(m);
    for (;;) {
      // Spin briefly before sleeping: back-to-back kernels then start without
      // a futex wake-up (tens of microseconds on a VM).
      lk.unlock();
      for (int i = 0; i < kSpin && published.load(std::memory_order_acquire) == seen; i++)
        TG_PAUSE();
      lk.lock();
      wake.wait(lk, [&] { return generation != seen; });
      seen = generation;
      if (k >= pieces) continue;
      lk.unlock();
      run_piece(k);
      lk.lock();
      if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) done.notify_one();
    }
  }
};

Pool* g_pool = nullptr;
std::mutex g_pool_mu;

void after_fork_child() { g_pool = nullptr; }  // the old one is leaked: its threads are gone

Pool& pool() {
  std::lock_guard<std::mutex> g(g_pool_mu);
  if (!g_pool) {
    static bool registered = (pthread_atfork(nullptr, nullptr, after_fork_child), true);
    (void)registered;
    g_pool = new Pool();
  }
  return *g_pool;
}

}  // namespace

int parallel_threads_for(int64_t n, int64_t grain) {
  if (t_in_region) return 1;
  int64_t by_size = n / std::max<int64_t>(grain, 1);
  int nt = core_num_threads();
  return (int)std::max<int64_t>(1, std::min<int64_t>({(int64_t)nt, by_size, 64}));
}

void parallel_run(int64_t n, int nthreads, int64_t align, RangeFn fn, void* ctx) {
  align = std::max<int64_t>(align, 1);
  int64_t piece = (n + nthreads - 1) / nthreads;
  piece = (piece + align - 1) / align * align;
  int pieces = (int)((n + piece - 1) / piece);
  Pool& p = pool();
  std::unique_lock<std::mutex> busy(p.busy, std::try_to_lock);
  if (pieces <= 1) {
    fn(ctx, 0, n);
    return;
  }
  if (!busy.owns_lock()) {
    // Another thread's region is running: the caller runs the same pieces in
    // order, so that a GEMM split into blocks (whose last bits depend on the
    // blocks) gives the bits it gives on the pool, whatever other threads do.
    for (int64_t b = 0; b < n; b += piece) fn(ctx, b, std::min(n, b + piece));
    return;
  }
  {
    std::lock_guard<std::mutex> g(p.m);
    while ((int)p.workers.size() < pieces - 1) {
      int k = (int)p.workers.size() + 1;
      p.workers.emplace_back([&p, k] { p.worker(k); });
      p.workers.back().detach();
    }
    p.fn = fn;
    p.ctx = ctx;
    p.n = n;
    p.piece = piece;
    p.pieces = pieces;
    p.remaining = pieces - 1;
    p.error = nullptr;
    p.generation++;
    p.published.store(p.generation, std::memory_order_release);
  }
  p.wake.notify_all();
  t_in_region = true;
  p.run_piece(0);
  t_in_region = false;
  std::exception_ptr err;
  for (int i = 0; i < kSpin && p.remaining.load(std::memory_order_acquire) != 0; i++) TG_PAUSE();
  {
    std::unique_lock<std::mutex> lk(p.m);
    p.done.wait(lk, [&] { return p.remaining == 0; });
    err = p.error;
    p.error = nullptr;
  }
  g_regions.fetch_add(1, std::memory_order_relaxed);
  g_last_threads.store(pieces, std::memory_order_relaxed);
  if (err) std::rethrow_exception(err);
}

int64_t parallel_regions() { return g_regions.load(std::memory_order_relaxed); }
int parallel_last_threads() { return g_last_threads.load(std::memory_order_relaxed); }

}  // namespace tg
