// Workloads 1 and 2 on the tapegrad C++ core alone (no Python), through the
// public headers only. See bench_common.h for the protocol and the output;
// libtorch_bench.cpp is the same program written against LibTorch.
//
// Also the CTest smoke test (`tapegrad_bench --quick`): besides timing, it
// checks w1's gradient and that w2's first steps give finite, falling losses,
// and exits non-zero when they do not.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#if defined(__linux__)
#include <unistd.h>
#endif

#include "bench_common.h"
#include "tapegrad/kernels.h"
#include "tapegrad/ops.h"
#include "tapegrad/optim.h"
#include "tapegrad/sparse.h"

namespace {

using namespace tg;
constexpr const char* kLib = "tapegrad";

Tensor from_floats(const std::vector<float>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::Float32);
  std::memcpy(t.data<float>(), v.data(), v.size() * sizeof(float));
  return t;
}

Tensor from_ints(const std::vector<int64_t>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::Int64);
  std::memcpy(t.data<int64_t>(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

// ---------------------------------------------------------------- workload 1
Tensor chain(const Tensor& x) {
  Tensor y = x;
  for (int i = 0; i < bench::kW1Pairs; i++) {
    y = mul(y, bench::kW1Mul);
    y = add(y, bench::kW1Add);
  }
  return y;
}

bool run_w1(const bench::Options& o) {
  Tensor x = from_floats(bench::w1_input(), {bench::kW1Size});
  x.set_requires_grad(true);

  // Check: d sum(y) / dx = 1.0001^32 everywhere (float32 products, as recorded).
  sum(chain(x)).backward();
  double want = 1;
  for (int i = 0; i < bench::kW1Pairs; i++) want = (float)(want * (float)bench::kW1Mul);
  bool ok = x.grad().defined();
  if (ok)
    for (double g : x.grad().to_vector()) ok = ok && std::fabs(g - want) < 1e-5;
  if (!ok) std::fprintf(stderr, "tapegrad_bench: w1 gradient check failed (want %.7f)\n", want);
  x.set_grad(Tensor());

  // As bench/workloads/overhead.py: the result dies at the end of each call
  // (freeing the tape), and x.grad keeps accumulating.
  std::vector<bench::Case> cases = {
      {"w1", "forward", "ns/op", bench::kW1Ops, [&] { chain(x); }},
      {"w1", "forward+backward", "ns/op", bench::kW1Ops, [&] { sum(chain(x)).backward(); }},
      {"w1", "forward, no grad", "ns/op", bench::kW1Ops, [&] {
         NoGradGuard ng;
         chain(x);
       }},
  };
  bench::measure(cases, o);
  for (const bench::Case& c : cases) bench::report(c, kLib, o);
  bench::report_w1_derived(cases, kLib, o, bench::kW1Ops);
  return ok;
}

// ---------------------------------------------------------------- workload 2
struct Ner {
  Tensor E, W1, b1, W2, b2;
  std::vector<std::pair<Tensor, Tensor>> batches;  // (ids [B, 5], labels [B])
  size_t next = 0;
  optim::SGDOptions sgd;

  Ner(const bench::NerParams& p, const std::vector<bench::NerBatch>& bs) {
    E = from_floats(p.E, {bench::kVocab, bench::kDim});
    W1 = from_floats(p.W1, {bench::kHidden, bench::kIn});
    b1 = from_floats(p.b1, {bench::kHidden});
    W2 = from_floats(p.W2, {bench::kClasses, bench::kHidden});
    b2 = from_floats(p.b2, {bench::kClasses});
    for (Tensor* t : {&E, &W1, &b1, &W2, &b2}) t->set_requires_grad(true);
    for (const bench::NerBatch& b : bs)
      batches.emplace_back(from_ints(b.ids, {b.batch, bench::kWindow}),
                           from_ints(b.labels, {b.batch}));
    sgd.lr = bench::kLr;
  }

  // One training step, as bench/workloads/ner.py's: zero_grad (to none),
  // forward, backward, SGD on the dense parameters and on E's rows.
  Tensor step() {
    const auto& [ids, y] = batches[next];
    next = (next + 1) % batches.size();
    Tensor* dense[] = {&W1, &b1, &W2, &b2};
    for (Tensor* p : dense) p->set_grad(Tensor());
    E.set_grad(Tensor());  // also drops a row-sparse .grad

    // The Linears as the fused linear op, which is what nn.Linear runs in
    // Python (and LibTorch's Linear module is the peer): dW comes out in W's
    // layout, where add(matmul(x, t(W)), b) would copy a transposed gradient.
    Tensor x = reshape(embedding(ids, E, std::nullopt, /*sparse=*/true), {ids.size(0), bench::kIn});
    Tensor h = tanh(linear(x, W1, b1, Activation::None));
    Tensor z = linear(h, W2, b2, Activation::None);
    Tensor loss = cross_entropy(z, y);
    loss.backward();

    Tensor no_momentum;
    for (Tensor* p : dense) optim::sgd(*p, p->grad(), no_momentum, sgd);
    // The row-sparse gradient has no accessor on Tensor; it lives on the impl.
    const Ref<RowSparse>& g = E.impl()->sparse_grad;
    if (g) optim::sgd_sparse(E, *g, Ref<RowSparse>(), sgd);
    return loss;
  }
};

bool run_w2(const bench::Options& o, const bench::NerParams& p) {
  // Same-math check: the first losses from the shared init, batch 8.
  Ner check(p, bench::check_batches());
  std::vector<double> losses;
  for (int i = 0; i < bench::kCheckSteps; i++) losses.push_back(check.step().item());
  bench::report_check(kLib, losses);
  bool ok = true;
  for (double l : losses) ok = ok && std::isfinite(l) && l > 0 && l < 20;
  ok = ok && losses.back() < losses.front();  // the same batch again: the loss must fall
  if (!ok) std::fprintf(stderr, "tapegrad_bench: w2 first losses are not finite and falling\n");

  std::vector<Ner> models;
  models.reserve(o.batches.size());
  for (int64_t b : o.batches) models.emplace_back(p, bench::ner_batches(b));
  std::vector<bench::Case> cases;
  for (size_t i = 0; i < o.batches.size(); i++) {
    Ner* m = &models[i];
    cases.push_back({"w2", "batch " + std::to_string(o.batches[i]), "steps/s", 1,
                     [m] { m->step(); }});
  }
  bench::measure(cases, o);
  for (const bench::Case& c : cases) bench::report(c, kLib, o);

  // After thousands of steps on the (fixed, cycled) batches, still finite.
  for (Ner& m : models) {
    double l = m.step().item();
    if (!std::isfinite(l)) {
      std::fprintf(stderr, "tapegrad_bench: w2 loss became %g after training\n", l);
      ok = false;
    }
  }
  return ok;
}

}  // namespace

// The OpenBLAS worker spin the Python package sets (Note [OpenBLAS worker
// spin] in python/tapegrad/__init__.py): OpenBLAS reads it once, when the
// library loads, which for this binary is before main(), so the binary sets it
// and runs itself again. Without it OpenBLAS's workers spin for ~0.1 s after
// every GEMM and, on two threads on the 2-core machine, hold the second core
// through the work between GEMMs, where the core's own pool worker needs it:
// the batch-512 NER step ran ~1.5x faster with it (bench/cpp/README.md). A
// value the user set is kept, so either setting can be measured.
void use_tapegrad_blas_spin(char** argv) {
#if defined(__linux__)
  if (std::getenv("OPENBLAS_THREAD_TIMEOUT")) return;
  setenv("OPENBLAS_THREAD_TIMEOUT", "16", 1);
  execv("/proc/self/exe", argv);
  // execv returned: run on with OpenBLAS's own spin (the info line says which).
#else
  (void)argv;
#endif
}

int main(int argc, char** argv) {
  use_tapegrad_blas_spin(argv);
  bench::Options o = bench::parse_args(argc, argv);
  try {
    tg::set_num_threads(o.threads);
    manual_seed(0);
    bench::JsonLine()
        .str("library", kLib)
        .str("config", "info")
        .num("threads", o.threads)
        .num("library_threads", tg::get_num_threads())
        .str("blas", tg::blas_name())
        .str("openblas_thread_timeout", std::getenv("OPENBLAS_THREAD_TIMEOUT")
                                            ? std::getenv("OPENBLAS_THREAD_TIMEOUT")
                                            : "unset")
        .print();
    bool ok = true;
    if (bench::wants(o, "w1")) ok = run_w1(o) && ok;
    if (bench::wants(o, "w2")) ok = run_w2(o, bench::ner_params()) && ok;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tapegrad_bench: %s\n", e.what());
    return 1;
  }
}
