// How long the NER embedding table stays in cache on this machine: the
// batch-512 gather of workload 2 (2,560 rows of 50 floats from the 20,000 x 50
// table, tg::embedding with grad mode off), timed right after the previous
// gather and after a pause of busy compute that touches no memory. If the
// gather slows down with the pause alone, something other than our own data
// (other tenants of a shared L3, the hypervisor) evicts the table: the
// training step's gather and sparse row update then read from DRAM whatever
// the step does between them (Note [Embedding rows floor] in
// bench/workloads/ner.py).
//
//   build/bench/bench/cpp/table_residency [--rounds R]
//
// Prints one JSON object per pause: {"workload":"residency","pause_us":300,
// "gather_us":..,"samples_us":[..]}, medians over rounds of each round's
// median gather. One thread (the core's default).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <vector>

#include "bench_common.h"
#include "tapegrad/ops.h"

namespace {

using namespace tg;

// Spins for `us` microseconds on arithmetic in registers only.
double busy_compute(double us) {
  const double until = bench::now_s() + us * 1e-6;
  double acc = 1.0;
  while (bench::now_s() < until)
    for (int i = 0; i < 64; i++) acc = acc * 1.0000001 + 1e-9;
  return acc;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7;
  bool ok = true;
  for (int i = 1; i < argc && ok; i++) {
    ok = std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc;
    if (ok) rounds = std::atoi(argv[++i]);
  }
  if (!ok || rounds < 1) {
    std::fprintf(stderr, "usage: %s [--rounds R]   (R >= 1, default 7)\n", argv[0]);
    return 2;
  }
  const bench::NerParams p = bench::ner_params();
  Tensor E = Tensor::empty({bench::kVocab, bench::kDim}, DType::Float32);
  std::memcpy(E.data<float>(), p.E.data(), p.E.size() * sizeof(float));
  std::vector<Tensor> ids;
  for (const bench::NerBatch& b : bench::ner_batches(512)) {
    Tensor t = Tensor::empty({b.batch, bench::kWindow}, DType::Int64);
    std::memcpy(t.data<int64_t>(), b.ids.data(), b.ids.size() * sizeof(int64_t));
    ids.push_back(t);
  }
  NoGradGuard no_grad;
  double sink = 0;
  const double pauses_us[] = {0, 30, 100, 300, 1000};
  std::vector<std::vector<double>> per_pause(std::size(pauses_us));
  for (int r = 0; r < rounds; r++) {
    for (size_t k = 0; k < std::size(pauses_us); k++) {  // pauses interleaved: same noise for all
      std::vector<double> t;
      for (int i = 0; i < 64; i++) {
        sink += busy_compute(pauses_us[k]);
        const double t0 = bench::now_s();
        Tensor x = embedding(ids[i % ids.size()], E, std::nullopt, false);
        t.push_back((bench::now_s() - t0) * 1e6);
        sink += x.data<float>()[0];
      }
      per_pause[k].push_back(bench::median(t));
    }
  }
  for (size_t k = 0; k < std::size(pauses_us); k++)
    bench::JsonLine()
        .str("workload", "residency")
        .num("pause_us", pauses_us[k])
        .num("gather_us", bench::median(per_pause[k]))
        .list("samples_us", per_pause[k])
        .print();
  return sink == 12345.678 ? 1 : 0;  // keeps the work observable
}
