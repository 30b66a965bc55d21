// Leak test: 1,000 training steps of the window-NER-shaped model, written
// against the C++ API alone. Meant for the sanitizer build (.ci/sanitize:
// AddressSanitizer + LeakSanitizer, detect_leaks=1), where LeakSanitizer
// reports every heap block still allocated and unreachable at exit; it also
// runs (fast) in the ordinary CTest build.
//
// Per step: a batch of 5-word windows looked up in a 2,000 x 50 embedding
// table with sparse=true, the 5 word vectors concatenated (250), Linear
// 250 -> 100 (matmul + bias), tanh, Linear 100 -> 5, cross_entropy, backward,
// then SGD updates under NoGradGuard: add_ for the dense parameters and the
// row-sparse gradient's add_to for the table. Even steps also go through the
// optimizer kernels (sparse SGD with momentum, Adam / SparseAdam) so their
// state buffers are exercised.
//
// Beyond LeakSanitizer's end-of-run report the test checks, from inside:
//  * the tape is empty after every step once the step's tensors are gone;
//  * the heap does not grow over the steps after warm-up (ASan's allocator
//    statistics when built with it, otherwise skipped);
//  * the loss falls (the model really trains).
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "check.h"
#include "window_model.h"
#include "tapegrad/optim.h"

#if defined(__SANITIZE_ADDRESS__)
#define TG_HAVE_ALLOC_STATS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TG_HAVE_ALLOC_STATS 1
#endif
#endif
#ifdef TG_HAVE_ALLOC_STATS
// From <sanitizer/allocator_interface.h> (not every toolchain ships the header).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

using namespace tg;

namespace {

using namespace test_model;
constexpr int64_t kBatch = 64;

Tensor forward(Model& m, const Tensor& ids) {
  Tensor vecs = embedding(ids, m.E, std::nullopt, /*sparse=*/true);  // [B, 5, 50]
  std::vector<Tensor> cols;
  for (int64_t k = 0; k < kWindow; k++) cols.push_back(select(vecs, 1, k));
  Tensor x = cat(cols, 1);                                        // [B, 250]
  Tensor h = tanh(add(matmul(x, t(m.W1)), m.b1));                 // [B, 100]
  return add(matmul(h, t(m.W2)), m.b2);                           // [B, 5]
}

// A fixed synthetic task: the tag is a function of the middle word.
void make_batch(Tensor& ids, Tensor& target) {
  ids = randint(0, kVocab, {kBatch, kWindow});
  std::vector<double> mid = select(ids, 1, kWindow / 2).to_vector(), tags(kBatch);
  for (int64_t i = 0; i < kBatch; i++) tags[i] = (double)((int64_t)mid[i] % kTags);
  target = Tensor::from_vector(tags, {kBatch}, DType::Int64);
}

int64_t heap_bytes() {
#ifdef TG_HAVE_ALLOC_STATS
  return (int64_t)__sanitizer_get_current_allocated_bytes();
#else
  return -1;
#endif
}

}  // namespace

TEST(ner_window_1000_steps_no_growth) {
  Model m = make_model(0);
  const double lr = 0.1;
  optim::SGDOptions sgd_opt;
  sgd_opt.lr = lr;
  sgd_opt.momentum = 0.9;
  optim::AdamOptions adam_opt;
  adam_opt.lr = 1e-3;
  Ref<RowSparse> e_momentum;
  Tensor e_avg = Tensor::zeros(m.E.shape()), e_avg_sq = Tensor::zeros(m.E.shape());
  std::vector<Tensor> avg, avg_sq;
  for (Tensor* p : m.dense()) {
    avg.push_back(Tensor::zeros(p->shape()));
    avg_sq.push_back(Tensor::zeros(p->shape()));
  }

  const int steps = 1000, warm = 100;
  int64_t heap_warm = -1, heap_peak_growth = 0;
  double first_loss = 0, last_loss = 0;
  int tape_not_empty = 0;
  for (int step = 0; step < steps; step++) {
    {
      Tensor ids, target;
      make_batch(ids, target);
      for (Tensor* p : m.dense()) p->set_grad(Tensor());
      m.E.set_grad(Tensor());  // also drops a row-sparse grad
      Tensor loss = cross_entropy(forward(m, ids), target);
      loss.backward();
      double v = loss.item();
      if (step == 0) first_loss = v;
      last_loss = v;

      CHECK(m.E.impl()->sparse_grad);
      if (!m.E.impl()->sparse_grad) break;
      const RowSparse& eg = *m.E.impl()->sparse_grad;
      NoGradGuard ng;
      switch (step % 4) {
        case 0:
        case 1:  // plain SGD: p -= lr * grad, the table through its sparse rows
          for (Tensor* p : m.dense()) add_(*p, p->grad(), -lr);
          eg.add_to(m.E, -lr);
          break;
        case 2: {  // the optimizer kernels: sparse SGD with momentum, dense SGD
          e_momentum = optim::sgd_sparse(m.E, eg, e_momentum, sgd_opt);
          optim::SGDOptions plain;
          plain.lr = lr;
          Tensor no_buf;
          for (Tensor* p : m.dense()) optim::sgd(*p, p->grad(), no_buf, plain);
          break;
        }
        case 3: {  // Adam on the dense parameters, SparseAdam on the table
          double s = step / 4 + 1;
          auto d = m.dense();
          for (size_t i = 0; i < d.size(); i++)
            optim::adam(*d[i], d[i]->grad(), avg[i], avg_sq[i], Tensor(), s, adam_opt);
          Ref<RowSparse> c = eg.coalesce();
          optim::sparse_adam(m.E, *c, e_avg, e_avg_sq, s, adam_opt);
          break;
        }
      }
    }
    // The step's tensors are gone: nothing may be left on the tape.
    if (Tape::current().size() != 0 || Tape::current().live() != 0) tape_not_empty++;
    int64_t h = heap_bytes();
    if (step == warm) heap_warm = h;
    if (step > warm && h >= 0) heap_peak_growth = std::max(heap_peak_growth, h - heap_warm);
  }
  CHECK(tape_not_empty == 0);
  std::printf("  loss %.4f -> %.4f over %d steps\n", first_loss, last_loss, steps);
  CHECK(last_loss < 0.8 * first_loss);
  if (heap_warm >= 0) {
    std::printf("  live heap after warm-up %lld bytes; max growth over steps %d..%d: %lld bytes\n",
                (long long)heap_warm, warm, steps, (long long)heap_peak_growth);
    // The momentum buffer's rows only grow toward the vocabulary (2,000 x 50
    // floats, 400 kB); anything past that and a little slack is a leak.
    CHECK(heap_peak_growth < 1 << 20);
  } else {
    std::printf("  (heap statistics need the AddressSanitizer build; skipped)\n");
  }
}

TEST(dropped_graphs_free_their_records) {
  // Graphs built and dropped without backward, one kept across iterations (the
  // `out = model(x)` pattern), and a retained graph backpropagated twice.
  Model m = make_model(1);
  Tensor ids, target;
  make_batch(ids, target);
  Tensor held;
  for (int i = 0; i < 200; i++) {
    held = forward(m, ids);  // the previous step's graph dies here
    CHECK(Tape::current().live() > 0);
  }
  held = Tensor();
  CHECK(Tape::current().live() == 0);
  CHECK(Tape::current().size() == 0);

  Tensor loss = cross_entropy(forward(m, ids), target);
  loss.backward(Tensor(), /*retain_graph=*/true);
  loss.backward();
  loss = Tensor();
  CHECK(Tape::current().size() == 0);
  m.E.set_grad(Tensor());
}

int main() { return tgtest::run_all(); }
