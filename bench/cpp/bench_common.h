// Shared by the C++ benchmark binaries (tapegrad_bench, libtorch_bench): the
// command line, the timing protocol, the JSON output and the workloads'
// deterministic data. Knows nothing of either library, so that both binaries
// time and report the same way and see the same numbers.
//
// Note [C++ benchmark timing]
// The protocol of bench/workloads/common.py, in C++: every case gets a warm-up
// (at least 3 calls and warmup_ms), a calibration that picks the number of
// calls making one timed block of about block_ms, then `rounds` rounds in which
// every case times one block, the order of the cases rotating from round to
// round so a burst of load from other processes lands on all cases alike. A
// sample is a block's wall time / its calls; reports are medians (the machine
// these run on is shared and noisy: means would mostly measure the neighbours).
// Cases of different libraries live in different binaries (tapegrad is a
// static library built with this project's flags, LibTorch comes with its
// own), so bench/workloads/cpp.py interleaves the binaries' runs instead.
//
// Output: one JSON object per line on stdout, e.g.
//   {"workload":"w1","library":"tapegrad","config":"forward","unit":"ns/op",
//    "per_call":64,"threads":1,"calls":8000,"samples_s":[...],"median_s":..,"median":..}
// where `median` is in `unit` (ns per op for w1, steps per second for w2) and
// samples_s are seconds per call. Progress and errors go to stderr.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace bench {

// ---------------------------------------------------------------- options
struct Options {
  int threads = 1;
  bool quick = false;
  int rounds = 9;
  double block_ms = 250;
  double warmup_ms = 300;
  std::vector<std::string> only = {"w1", "w2"};
  std::vector<int64_t> batches = {1, 32, 512};
};

inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

inline void usage(const char* prog, FILE* f) {
  std::fprintf(f,
               "usage: %s [--threads N] [--quick] [--rounds R] [--block-ms MS] [--warmup-ms MS]\n"
               "          [--only w1,w2] [--batches 1,32,512]\n"
               "  --threads N     intra-op threads (default 1)\n"
               "  --quick         smoke run: 3 rounds of 20 ms blocks, 20 ms warm-up\n"
               "  --rounds R      timed rounds per case (default 9)\n"
               "  --block-ms MS   length of one timed block (default 250)\n"
               "  --warmup-ms MS  minimum warm-up per case (default 300)\n"
               "  --only LIST     workloads: w1 (per-op overhead), w2 (window NER step)\n"
               "  --batches LIST  w2 batch sizes (default 1,32,512)\n"
               "Prints one JSON object per measurement on stdout.\n",
               prog);
}

inline Options parse_args(int argc, char** argv) {
  Options o;
  bool rounds_set = false, block_set = false, warmup_set = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: %s needs a value\n", argv[0], a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") {
      o.threads = std::atoi(value().c_str());
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--rounds") {
      o.rounds = std::atoi(value().c_str());
      rounds_set = true;
    } else if (a == "--block-ms") {
      o.block_ms = std::atof(value().c_str());
      block_set = true;
    } else if (a == "--warmup-ms") {
      o.warmup_ms = std::atof(value().c_str());
      warmup_set = true;
    } else if (a == "--only") {
      o.only = split_list(value());
    } else if (a == "--batches") {
      o.batches.clear();
      for (const std::string& b : split_list(value())) o.batches.push_back(std::atoll(b.c_str()));
    } else if (a == "-h" || a == "--help") {
      usage(argv[0], stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "%s: unknown argument %s\n", argv[0], a.c_str());
      usage(argv[0], stderr);
      std::exit(2);
    }
  }
  if (o.quick) {
    if (!rounds_set) o.rounds = 3;
    if (!block_set) o.block_ms = 20;
    if (!warmup_set) o.warmup_ms = 20;
  }
  if (o.threads < 1 || o.rounds < 1 || o.block_ms <= 0 || o.batches.empty()) {
    std::fprintf(stderr, "%s: --threads, --rounds, --block-ms must be positive, --batches non-empty\n",
                 argv[0]);
    std::exit(2);
  }
  for (const std::string& w : o.only) {
    if (w != "w1" && w != "w2") {
      std::fprintf(stderr, "%s: --only: unknown workload '%s' (w1, w2)\n", argv[0], w.c_str());
      std::exit(2);
    }
  }
  return o;
}

inline bool wants(const Options& o, const char* w) {
  return std::find(o.only.begin(), o.only.end(), w) != o.only.end();
}

// ---------------------------------------------------------------- timing
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One thing to time. `per_call` is how many units one call is (64 ops for w1,
// 1 step for w2); `unit` is "ns/op" (median = ns per unit) or "steps/s"
// (median = calls per second / per_call).
struct Case {
  Case(std::string workload_, std::string config_, std::string unit_, double per_call_,
       std::function<void()> fn_)
      : workload(std::move(workload_)), config(std::move(config_)), unit(std::move(unit_)),
        per_call(per_call_), fn(std::move(fn_)) {}

  std::string workload, config, unit;
  double per_call = 1;
  std::function<void()> fn;
  // filled by measure()
  int64_t calls = 0;
  std::vector<double> samples_s;
};

inline double in_unit(const Case& c, double seconds_per_call) {
  if (c.unit == "steps/s") return c.per_call / seconds_per_call;
  return seconds_per_call * 1e9 / c.per_call;  // "ns/op"
}

// See Note [C++ benchmark timing].
inline void measure(std::vector<Case>& cases, const Options& o) {
  const double block_s = o.block_ms * 1e-3, warmup_s = o.warmup_ms * 1e-3;
  for (Case& c : cases) {
    double t0 = now_s();
    for (int n = 0; n < 3 || now_s() - t0 < warmup_s; n++) c.fn();
    t0 = now_s();
    c.fn();
    double one = std::max(now_s() - t0, 1e-8);
    int64_t inner = std::max<int64_t>(1, (int64_t)(block_s / one));
    t0 = now_s();
    for (int64_t i = 0; i < inner; i++) c.fn();
    double per = std::max((now_s() - t0) / inner, 1e-10);
    c.calls = std::max<int64_t>(1, (int64_t)(block_s / per));
    c.samples_s.clear();
  }
  const size_t n = cases.size();
  for (int r = 0; r < o.rounds; r++) {
    for (size_t j = 0; j < n; j++) {
      Case& c = cases[(j + r) % n];
      double t0 = now_s();
      for (int64_t i = 0; i < c.calls; i++) c.fn();
      c.samples_s.push_back((now_s() - t0) / c.calls);
    }
  }
}

// ---------------------------------------------------------------- JSON
inline std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if ((unsigned char)ch < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

inline std::string json_num(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}

inline std::string json_list(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); i++) out += (i ? "," : "") + json_num(v[i]);
  return out + "]";
}

// A JSON object built field by field, printed as one line.
class JsonLine {
 public:
  JsonLine& str(const char* k, const std::string& v) { return raw(k, json_str(v)); }
  JsonLine& num(const char* k, double v) { return raw(k, json_num(v)); }
  JsonLine& list(const char* k, const std::vector<double>& v) { return raw(k, json_list(v)); }
  JsonLine& raw(const char* k, const std::string& v) {
    body_ += (body_.empty() ? "" : ",") + json_str(k) + ":" + v;
    return *this;
  }
  void print() const {
    std::printf("{%s}\n", body_.c_str());
    std::fflush(stdout);
  }

 private:
  std::string body_;
};

inline void report(const Case& c, const char* library, const Options& o) {
  double med = median(c.samples_s);
  JsonLine()
      .str("workload", c.workload)
      .str("library", library)
      .str("config", c.config)
      .str("unit", c.unit)
      .num("per_call", c.per_call)
      .num("threads", o.threads)
      .num("calls", (double)c.calls)
      .list("samples_s", c.samples_s)
      .num("median_s", med)
      .num("median", in_unit(c, med))
      .print();
}

// The median over rounds of f(sample_a[r], sample_b[r]): a derived quantity
// from two cases timed in the same rounds.
template <class F>
double paired_median(const Case& a, const Case& b, F f) {
  std::vector<double> v;
  for (size_t r = 0; r < a.samples_s.size() && r < b.samples_s.size(); r++)
    v.push_back(f(a.samples_s[r], b.samples_s[r]));
  return median(v);
}

// Workload 1's derived per-node figures (medians over rounds of per-round
// values; cases[0..2] = forward, forward+backward, forward without grad):
//   record_backward_ns = (forward+backward) / nodes: the per-node cost of
//                        recording plus backward, op execution included;
//   backward_ns        = (forward+backward - forward) / nodes;
//   record_only_ns     = (forward - forward without grad) / ops: what recording
//                        adds to executing the op.
// nodes = the 64 ops + the sum. bench/workloads/cpp.py computes the same.
inline void report_w1_derived(const std::vector<Case>& cases, const char* library,
                              const Options& o, int ops) {
  const Case &f = cases[0], &fb = cases[1], &ng = cases[2];
  const double nodes = ops + 1;
  JsonLine()
      .str("workload", "w1")
      .str("library", library)
      .str("config", "per node")
      .num("threads", o.threads)
      .num("record_backward_ns", paired_median(fb, fb, [&](double a, double) {
             return a * 1e9 / nodes;
           }))
      .num("backward_ns", paired_median(f, fb, [&](double a, double b) {
             return (b - a) * 1e9 / nodes;
           }))
      .num("record_only_ns", paired_median(ng, f, [&](double a, double b) {
             return (b - a) * 1e9 / ops;
           }))
      .print();
}

// ---------------------------------------------------------------- data
// A small deterministic generator (splitmix64), so that both binaries start
// from the same initial values and see the same batches without sharing a
// library's RNG.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal() {  // Box-Muller, one value per call (simple, deterministic)
    double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  int64_t below(int64_t n) { return (int64_t)(next() % (uint64_t)n); }
};

// Workload 1: 32 x (y = y * 1.0001; y = y + 0.5) on 16 floats.
constexpr int kW1Pairs = 32;
constexpr int kW1Ops = 2 * kW1Pairs;
constexpr int kW1Size = 16;
constexpr double kW1Mul = 1.0001, kW1Add = 0.5;

inline std::vector<float> w1_input() {
  Rng rng(0);
  std::vector<float> x(kW1Size);
  for (float& v : x) v = (float)rng.normal();
  return x;
}

// Workload 2: the window NER model of bench/workloads/ner.py.
constexpr int64_t kVocab = 20000, kDim = 50, kWindow = 5, kIn = kWindow * kDim, kHidden = 100,
                  kClasses = 5;
constexpr double kLr = 0.1;
constexpr int kNerBatches = 16;  // distinct batches cycled through per batch size

// Embeddings N(0, 1); Linear weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))
// (PyTorch's defaults), float32, row-major in PyTorch's (out, in) layout.
struct NerParams {
  std::vector<float> E, W1, b1, W2, b2;
};

inline NerParams ner_params(uint64_t seed = 0) {
  Rng rng(seed);
  NerParams p;
  p.E.resize(kVocab * kDim);
  for (float& v : p.E) v = (float)rng.normal();
  double k1 = 1 / std::sqrt((double)kIn), k2 = 1 / std::sqrt((double)kHidden);
  p.W1.resize(kHidden * kIn);
  for (float& v : p.W1) v = (float)rng.uniform(-k1, k1);
  p.b1.resize(kHidden);
  for (float& v : p.b1) v = (float)rng.uniform(-k1, k1);
  p.W2.resize(kClasses * kHidden);
  for (float& v : p.W2) v = (float)rng.uniform(-k2, k2);
  p.b2.resize(kClasses);
  for (float& v : p.b2) v = (float)rng.uniform(-k2, k2);
  return p;
}

struct NerBatch {
  int64_t batch;
  std::vector<int64_t> ids;     // [batch, kWindow]
  std::vector<int64_t> labels;  // [batch]
};

inline std::vector<NerBatch> ner_batches(int64_t batch, uint64_t seed = 1, int n = kNerBatches) {
  Rng rng(seed * 1000003 + (uint64_t)batch);
  std::vector<NerBatch> out(n);
  for (NerBatch& b : out) {
    b.batch = batch;
    b.ids.resize(batch * kWindow);
    for (int64_t& v : b.ids) v = rng.below(kVocab);
    b.labels.resize(batch);
    for (int64_t& v : b.labels) v = rng.below(kClasses);
  }
  return out;
}

// The first-steps check: losses of steps 1..3 at batch 8 from the shared init.
// One batch, repeated, so that the later losses depend on the sparse update of
// the embedding rows it looks up as well as on the dense parameters.
constexpr int kCheckSteps = 3;
constexpr int64_t kCheckBatch = 8;

inline std::vector<NerBatch> check_batches() { return ner_batches(kCheckBatch, 99, 1); }

inline void report_check(const char* library, const std::vector<double>& losses) {
  JsonLine()
      .str("workload", "w2")
      .str("library", library)
      .str("config", "check")
      .num("batch", (double)kCheckBatch)
      .list("losses", losses)
      .print();
}

}  // namespace bench
