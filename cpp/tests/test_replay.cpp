// Tape replay from C++ (trace.h): a recorded NER training step replays to the
// same bits as eager execution, and a warm replay performs no heap allocation
// at all: this binary replaces the global operator new / delete with counting
// versions, so every allocation in the core (vectors, std::function, tensors'
// blocks via the caching allocator's system calls) is seen.
//
// The step: a 5-word window looked up in a 2,000 x 50 embedding table with
// sparse=true, reshaped to 250, Linear 250 -> 100, tanh, Linear 100 -> 5,
// cross_entropy, backward, SGD on the dense parameters, sparse SGD on the
// table, grads reset to none first (what zero_grad does).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "check.h"
#include "window_model.h"
#include "tapegrad/memory.h"
#include "tapegrad/optim.h"
#include "tapegrad/trace.h"

// ---------------------------------------------------------------- counting new
static std::atomic<long> g_news{0};
static int g_report = 0;
// With TG_REPORT_NEW=1 the first warm allocations call this: a place for a
// debugger's breakpoint (gdb -ex 'break report_allocation') to show who allocates.
extern "C" __attribute__((noinline)) void report_allocation(std::size_t n) {
  std::fprintf(stderr, "warm allocation of %zu bytes\n", n);
}

void* operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (g_report > 0) {
    g_report--;
    report_allocation(n);
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  size_t al = (size_t)a, rounded = (n + al - 1) / al * al;
  if (void* p = std::aligned_alloc(al, rounded ? rounded : al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace tg;

namespace {

using namespace test_model;

Tensor step(Model& m, const Tensor& ids, const Tensor& target) {
  for (Tensor* p : m.dense()) p->set_grad(Tensor());
  m.E.set_grad(Tensor());
  Tensor x = reshape(embedding(ids, m.E, std::nullopt, /*sparse=*/true), {ids.size(0), -1});
  Tensor h = tanh(add(matmul(x, t(m.W1)), m.b1));
  Tensor loss = cross_entropy(add(matmul(h, t(m.W2)), m.b2), target);
  backward({loss}, {Tensor()}, false);
  optim::SGDOptions o;
  o.lr = 0.1;
  Tensor no_buffer;
  for (Tensor* p : m.dense()) optim::sgd(*p, p->grad(), no_buffer, o);
  optim::sgd_sparse(m.E, *m.E.sparse_grad(), Ref<RowSparse>(), o);
  return loss;
}

void batch(int64_t b, uint64_t seed, Tensor& ids, Tensor& target) {
  manual_seed(seed);
  ids = randint(0, kVocab, {b, kWindow});
  target = randint(0, kTags, {b});
}

bool same_bits(const Tensor& a, const Tensor& b) {
  Tensor x = contiguous_copy(a.detach()), y = contiguous_copy(b.detach());
  return x.shape() == y.shape() && x.dtype() == y.dtype() &&
         std::memcmp(x.raw_data(), y.raw_data(), (size_t)x.numel() * itemsize(x.dtype())) == 0;
}

}  // namespace

TEST(replay_matches_eager_bit_for_bit) {
  Model a = make_model(1), b = make_model(1);
  Tensor ids, target;
  batch(16, 100, ids, target);
  Program program;
  program.begin();
  program.add_input(ids);
  program.add_input(target);
  Tensor recorded = step(a, ids, target);
  int loss_slot = program.output_slot(recorded);
  program.end();
  CHECK(program.size() > 10);
  CHECK(same_bits(recorded, step(b, ids, target)));

  for (int i = 0; i < 20; i++) {
    batch(16, 200 + i, ids, target);
    program.set_input(0, ids);
    program.set_input(1, target);
    program.replay();
    Tensor replayed = program.output(loss_slot);
    program.clear();
    Tensor eager = step(b, ids, target);
    CHECK(same_bits(replayed, eager));
  }
  for (size_t k = 0; k < a.dense().size(); k++) CHECK(same_bits(*a.dense()[k], *b.dense()[k]));
  CHECK(same_bits(a.E, b.E));
  // A different batch size is not what was recorded.
  batch(8, 1, ids, target);
  CHECK(!program.input_matches(0, ids));
  CHECK_THROWS(ValueError, program.set_input(0, ids));
}

TEST(warm_replay_allocates_nothing) {
  if (memory::cache_limit() == 0) {  // the sanitizer job turns the cache off
    std::printf("  skipped: the caching allocator is off (TAPEGRAD_CACHE_LIMIT=0)\n");
    return;
  }
  for (int64_t b : {1, 32}) {
    Model m = make_model(2);
    Tensor ids, target;
    batch(b, 7, ids, target);
    Program program;
    program.begin();
    program.add_input(ids);
    program.add_input(target);
    int slot = program.output_slot(step(m, ids, target));
    program.end();
    double first = 0, last = 0;
    for (int i = 0; i < 20; i++) {  // warm up: caches fill, vectors reach their sizes
      program.set_input(0, ids);
      program.set_input(1, target);
      program.replay();
      if (i == 0) first = program.output(slot).item();
      program.clear();
    }
    long news = g_news.load();
    if (std::getenv("TG_REPORT_NEW")) g_report = atoi(std::getenv("TG_REPORT_NEW"));
    uint64_t system = memory::stats().system_allocations;
    for (int i = 0; i < 200; i++) {
      program.set_input(0, ids);
      program.set_input(1, target);
      program.replay();
      last = program.output(slot).item();
      program.clear();
    }
    g_report = 0;
    long new_calls = g_news.load() - news;
    uint64_t system_calls = memory::stats().system_allocations - system;
    std::printf("  batch %lld: %ld operator new and %llu system allocations in 200 warm "
                "replays; loss %.4f -> %.4f\n",
                (long long)b, new_calls, (unsigned long long)system_calls, first, last);
    CHECK(new_calls == 0);
    CHECK(system_calls == 0);
    CHECK(last < first);  // it trains (the same batch, over and over)
  }
}

TEST(reading_values_while_recording_throws) {
  Model m = make_model(3);
  Tensor ids, target;
  batch(4, 9, ids, target);
  Program program;
  program.begin();
  program.add_input(ids);
  Tensor loss = step(m, ids, target);
  CHECK_THROWS(RuntimeError, loss.item());
  program.end();
  CHECK(std::isfinite(loss.item()));  // fine once recording stopped
}

// Every op reads a process-wide count of recording threads before its own
// thread's program (trace::active()): two threads begin recording and wait
// there while this thread runs the step eagerly, then record theirs. Each
// program holds its own thread's step only, and the count is back to zero.
TEST(threads_record_at_once_beside_eager_work) {
  Model eager_model = make_model(4), models[2] = {make_model(4), make_model(4)};
  Tensor ids, target;
  batch(8, 11, ids, target);
  size_t alone;  // the size of the same recording made with no other thread about
  {
    Model m = make_model(4);
    Program p;
    p.begin();
    p.add_input(ids);
    p.add_input(target);
    p.output_slot(step(m, ids, target));
    p.end();
    alone = p.size();
  }
  Tensor want1 = step(eager_model, ids, target);  // eager steps 1 and 2 from the shared init
  Tensor want2 = step(eager_model, ids, target);
  std::atomic<int> begun{0};
  std::atomic<bool> eager_done{false};
  Program programs[2];
  Tensor recorded[2];
  int slots[2];
  std::vector<std::thread> threads;
  for (int k = 0; k < 2; k++)
    threads.emplace_back([&, k] {
      programs[k].begin();
      programs[k].add_input(ids);
      programs[k].add_input(target);
      begun++;
      while (!eager_done.load()) std::this_thread::yield();  // both mid-recording meanwhile
      recorded[k] = step(models[k], ids, target);
      slots[k] = programs[k].output_slot(recorded[k]);
      programs[k].end();
    });
  while (begun.load() < 2) std::this_thread::yield();
  CHECK(trace::active() == nullptr);
  Model here = make_model(4);
  CHECK(same_bits(step(here, ids, target), want1));  // eager, recorded nowhere
  eager_done = true;
  for (std::thread& t : threads) t.join();
  CHECK(trace::g_recording_threads.load() == 0);
  for (int k = 0; k < 2; k++) {
    CHECK(same_bits(recorded[k], want1));
    CHECK(programs[k].size() == alone);  // none of the other threads' ops
    programs[k].set_input(0, ids);
    programs[k].set_input(1, target);
    programs[k].replay();  // each model's second step
    CHECK(same_bits(programs[k].output(slots[k]), want2));
  }
}

int main() { return tgtest::run_all(); }
