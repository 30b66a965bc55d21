// Workloads 1 and 2 in LibTorch C++ (no Python): the same program as
// tapegrad_bench.cpp, so the tapegrad core is compared with PyTorch's core
// and not only with its Python layer. Built only when find_package(Torch)
// succeeds; see bench/cpp/CMakeLists.txt.
//
// Workload 2 uses the modules and optimizer a LibTorch user would:
// nn::Embedding(sparse) + nn::Linear (addmm, one fused op per layer) +
// F::cross_entropy, optim::SGD (which applies the sparse embedding gradient
// to the touched rows only) with zero_grad() setting gradients to none.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <exception>

#include "bench_common.h"

namespace {

constexpr const char* kLib = "LibTorch";
namespace F = torch::nn::functional;

torch::Tensor from_floats(const std::vector<float>& v, at::IntArrayRef shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

torch::Tensor from_ints(const std::vector<int64_t>& v, at::IntArrayRef shape) {
  return torch::from_blob(const_cast<int64_t*>(v.data()), shape, torch::kInt64).clone();
}

// ---------------------------------------------------------------- workload 1
torch::Tensor chain(const torch::Tensor& x) {
  torch::Tensor y = x;
  for (int i = 0; i < bench::kW1Pairs; i++) {
    y = y * bench::kW1Mul;
    y = y + bench::kW1Add;
  }
  return y;
}

bool run_w1(const bench::Options& o) {
  torch::Tensor x = from_floats(bench::w1_input(), {bench::kW1Size}).requires_grad_(true);

  chain(x).sum().backward();
  double want = 1;
  for (int i = 0; i < bench::kW1Pairs; i++) want = (float)(want * (float)bench::kW1Mul);
  bool ok = x.grad().defined() && (x.grad() - want).abs().max().item<double>() < 1e-5;
  if (!ok) std::fprintf(stderr, "libtorch_bench: w1 gradient check failed (want %.7f)\n", want);
  x.mutable_grad() = torch::Tensor();

  std::vector<bench::Case> cases = {
      {"w1", "forward", "ns/op", bench::kW1Ops, [&] { chain(x); }},
      {"w1", "forward+backward", "ns/op", bench::kW1Ops, [&] { chain(x).sum().backward(); }},
      {"w1", "forward, no grad", "ns/op", bench::kW1Ops, [&] {
         torch::NoGradGuard ng;
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
  torch::nn::Embedding emb{torch::nn::EmbeddingOptions(bench::kVocab, bench::kDim).sparse(true)};
  torch::nn::Linear l1{bench::kIn, bench::kHidden}, l2{bench::kHidden, bench::kClasses};
  std::unique_ptr<torch::optim::SGD> opt;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
  size_t next = 0;

  Ner(const bench::NerParams& p, const std::vector<bench::NerBatch>& bs) {
    {
      torch::NoGradGuard ng;
      emb->weight.copy_(from_floats(p.E, {bench::kVocab, bench::kDim}));
      l1->weight.copy_(from_floats(p.W1, {bench::kHidden, bench::kIn}));
      l1->bias.copy_(from_floats(p.b1, {bench::kHidden}));
      l2->weight.copy_(from_floats(p.W2, {bench::kClasses, bench::kHidden}));
      l2->bias.copy_(from_floats(p.b2, {bench::kClasses}));
    }
    std::vector<torch::Tensor> params = {emb->weight, l1->weight, l1->bias, l2->weight, l2->bias};
    opt = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(bench::kLr));
    for (const bench::NerBatch& b : bs)
      batches.emplace_back(from_ints(b.ids, {b.batch, bench::kWindow}),
                           from_ints(b.labels, {b.batch}));
  }

  torch::Tensor step() {
    const auto& [ids, y] = batches[next];
    next = (next + 1) % batches.size();
    torch::Tensor x = emb(ids).reshape({ids.size(0), bench::kIn});
    torch::Tensor loss = F::cross_entropy(l2(torch::tanh(l1(x))), y);
    opt->zero_grad();
    loss.backward();
    opt->step();
    return loss;
  }
};

bool run_w2(const bench::Options& o, const bench::NerParams& p) {
  Ner check(p, bench::check_batches());
  std::vector<double> losses;
  for (int i = 0; i < bench::kCheckSteps; i++) losses.push_back(check.step().item<double>());
  bench::report_check(kLib, losses);
  bool ok = true;
  for (double l : losses) ok = ok && std::isfinite(l);

  std::vector<std::unique_ptr<Ner>> models;
  for (int64_t b : o.batches) models.push_back(std::make_unique<Ner>(p, bench::ner_batches(b)));
  std::vector<bench::Case> cases;
  for (size_t i = 0; i < o.batches.size(); i++) {
    Ner* m = models[i].get();
    cases.push_back({"w2", "batch " + std::to_string(o.batches[i]), "steps/s", 1,
                     [m] { m->step(); }});
  }
  bench::measure(cases, o);
  for (const bench::Case& c : cases) bench::report(c, kLib, o);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  bench::Options o = bench::parse_args(argc, argv);
  try {
    // Inter-op threads must be set before any inter-op work starts.
    at::set_num_interop_threads(1);
    at::set_num_threads(o.threads);
    torch::manual_seed(0);
    bench::JsonLine()
        .str("library", kLib)
        .str("config", "info")
        .num("threads", o.threads)
        .num("library_threads", at::get_num_threads())
        .str("version", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) +
                             "." + std::to_string(TORCH_VERSION_PATCH))
        .print();
    bool ok = true;
    if (bench::wants(o, "w1")) ok = run_w1(o) && ok;
    if (bench::wants(o, "w2")) ok = run_w2(o, bench::ner_params()) && ok;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "libtorch_bench: %s\n", e.what());
    return 1;
  }
}
