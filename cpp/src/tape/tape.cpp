// Recording onto the tape, record lifetime, and the backward walk.
#include "tapegrad/tape.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <thread>

#include "tapegrad/ops.h"
#include "tapegrad/trace.h"

namespace tg {

// ---------------------------------------------------------------- op names
static const char* const kOpNames[] = {
#define TG_OP_NAME(Name, py, family) py,
    TG_OP_TABLE(TG_OP_NAME)
#undef TG_OP_NAME
};

const char* op_name(OpId op) {
  return (size_t)op < (size_t)OpId::kCount ? kOpNames[(size_t)op] : "?";
}

std::vector<std::string> op_names() { return {std::begin(kOpNames), std::end(kOpNames)}; }

// ---------------------------------------------------------------- thread tape
namespace {
// Holds the thread's reference to its tape. Tensors that outlive the thread
// keep the tape alive through their own references.
struct TapeHolder {
  Tape* tape = nullptr;
  ~TapeHolder() {
    if (tape) tape->unretain();
  }
};
thread_local TapeHolder t_tape;
#ifndef TG_TAPE_LOCK_THREAD_POINTER
thread_local char t_lock_token;  // its address names this thread where no thread pointer is exposed
#endif
}  // namespace

Tape& Tape::current() {
  if (!t_tape.tape) {
    t_tape.tape = new Tape();
    t_tape.tape->refs_ = 1;
  }
  return *t_tape.tape;
}

#ifndef TG_TAPE_LOCK_THREAD_POINTER
const void* TapeLock::token() { return &t_lock_token; }
#endif

void TapeLock::lock_slow(const void* me) {
  for (int spins = 0;; spins++) {
    const void* expected = nullptr;
    if (holder_.load(std::memory_order_relaxed) == nullptr &&
        holder_.compare_exchange_weak(expected, me, std::memory_order_acquire,
                                      std::memory_order_relaxed))
      return;
    if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
}

void Tape::unretain() {
  bool last;
  {
    std::lock_guard<TapeLock> lock(mu_);
    last = --refs_ == 0;
  }
  if (last) delete this;
}

// ---------------------------------------------------------------- anomaly mode
namespace {
thread_local bool t_anomaly = false;
std::atomic<LocationHook> g_location_hook{nullptr};

template <class T>
bool finite_span(const T* p, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!std::isfinite(p[i])) return false;
  return true;
}

template <class T>
bool has_nan_span(const T* p, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (std::isnan(p[i])) return true;
  return false;
}

// "nan" or "inf": what a non-finite tensor holds (nan wins).
const char* nonfinite_kind(const Tensor& t) {
  NoGradGuard no_grad;
  Tensor c = t.detach().contiguous();
  bool nan = c.dtype() == DType::Float32 ? has_nan_span(c.data<float>(), c.numel())
                                         : has_nan_span(c.data<double>(), c.numel());
  return nan ? "nan" : "inf";
}

std::string recorded_at(const Record& r) {
  if (r.location.empty()) return "";
  return str("; the op was recorded at ", r.location);
}

const char* ordinal_suffix(size_t k) {
  if (k % 100 >= 11 && k % 100 <= 13) return "th";
  switch (k % 10) {
    case 1: return "st";
    case 2: return "nd";
    case 3: return "rd";
    default: return "th";
  }
}
}  // namespace

bool anomaly_enabled() { return t_anomaly; }
void set_anomaly_enabled(bool on) {
  t_anomaly = on;
  Tape::current().anomaly_ = on;
}
void set_location_hook(LocationHook hook) { g_location_hook.store(hook); }

bool all_finite(const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype()) || t.numel() == 0) return true;
  NoGradGuard no_grad;
  Tensor c = t.detach().contiguous();
  return c.dtype() == DType::Float32 ? finite_span(c.data<float>(), c.numel())
                                     : finite_span(c.data<double>(), c.numel());
}

// ---------------------------------------------------------------- recording
Record* Tape::push(OpId op) {
  if (live_ == 0) size_ = 0;  // nothing alive: start over at the bottom
  if (size_ >= compact_at_) compact();
  if (size_ == records_.size()) records_.emplace_back();
  Record* r = &records_[size_];
  r->tape = this;
  r->op = op;
  r->had_saved = false;
  r->freed = false;
  r->refcount = 0;
  r->output = nullptr;
  r->inputs.clear();
  r->saved.clear();
  r->ints.clear();
  r->grad = Tensor();
  r->location.clear();
  r->inputs_finite = true;
  return r;
}

void Tape::add_edge(Record* r, const Tensor& t) {
  Edge& e = r->inputs.emplace_back(t.shape(), t.dtype());
  if (!t.requires_grad()) return;
  if (t.is_leaf()) {
    e.leaf = t.ref();
    return;
  }
  TensorImpl* impl = t.impl();
  TG_CHECK(impl->tape == this, RuntimeError, op_name(r->op),
           ": an input tensor ", t.describe(),
           " was recorded by another thread; each thread records its own graph (use detach() "
           "to pass values between threads)");
  e.record = impl->record;
  records_[impl->record].refcount++;
}

static bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

// A refused edge (another thread's tensor) must not leak the references the
// earlier edges of the same record took.
void Tape::undo_edges(Record* r) {
  for (Edge& e : r->inputs)
    if (e.record >= 0) release(e.record);
  r->inputs.clear();
}

Recording Tape::begin(OpId op, std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled() || !any_requires_grad(inputs)) return Recording();
  mu_.lock();  // held until Recording::finish (or its destructor)
  Record* r = push(op);
  try {
    for (const Tensor* t : inputs) add_edge(r, *t);
    if (anomaly_)
      for (const Tensor* t : inputs) r->inputs_finite = r->inputs_finite && all_finite(*t);
  } catch (...) {
    undo_edges(r);
    mu_.unlock();
    throw;
  }
  return Recording(this, r);
}

Recording Tape::begin(OpId op, const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return Recording();
  bool any = false;
  for (const Tensor& t : inputs) any |= t.requires_grad();
  if (!any) return Recording();
  mu_.lock();
  Record* r = push(op);
  try {
    for (const Tensor& t : inputs) add_edge(r, t);
    if (anomaly_)
      for (const Tensor& t : inputs) r->inputs_finite = r->inputs_finite && all_finite(t);
  } catch (...) {
    undo_edges(r);
    mu_.unlock();
    throw;
  }
  return Recording(this, r);
}

void Recording::finish(Tensor& output) {
  Record* r = r_;
  Tape* tape = tape_;
  r_ = nullptr;
  tape->finish_locked(r, output);
  tape->mu_.unlock();
  if (!tape->anomaly_) return;
  // Anomaly mode, after the bookkeeping (so that an exception here releases
  // the record through the output's destructor like any other error), and
  // outside the lock (the hook takes the GIL).
  if (LocationHook hook = g_location_hook.load()) hook(&r->location);
  if (r->inputs_finite && !all_finite(output))
    throw RuntimeError(str("detect_anomaly: function '", op_name(r->op), "' returned ",
                           nonfinite_kind(output), " values in its output ", output.describe(),
                           " from finite inputs", recorded_at(*r)));
}

// An exception between begin and finish: the slot was never counted in
// size_, so dropping the edges' references is all there is to undo.
void Recording::abandon() noexcept {
  tape_->undo_edges(r_);
  r_->saved.clear();
  r_ = nullptr;
  tape_->mu_.unlock();
}

void Tape::finish_locked(Record* r, Tensor& output) {
  int32_t index = (int32_t)(r - records_.data());
  // Note [Saved outputs]
  // An op that saves its own output (exp, sigmoid, softmax...) must not hold
  // the output's TensorImpl: that impl keeps this record alive, a cycle that
  // would never be freed. Save an alias without history instead; it shares
  // the storage, so in-place writes are still caught by the version counter.
  for (SavedTensor& s : r->saved)
    if (s.tensor.impl() == output.impl()) s.tensor = output.detach();
  r->had_saved = !r->saved.empty();
  r->out_shape.assign(output.shape());
  r->out_dtype = output.dtype();
  r->refcount = 1;
  r->output = output.impl();
  TensorImpl* impl = output.impl();
  impl->requires_grad = true;
  impl->record = index;
  impl->tape = this;
  refs_++;  // the output's reference, under the lock
  size_++;
  live_++;
}

void Tape::move_history(TensorImpl* self, TensorImpl* result) {
  TG_CHECK(!self->tape || self->tape == this, RuntimeError,
           "in-place op: the tensor was recorded by another thread; each thread records its own "
           "graph (use detach() to pass values between threads)");
  std::lock_guard<TapeLock> lock(mu_);
  if (self->tape) {  // self's old value stays reachable only through the records that used it
    records_[self->record].output = nullptr;
    release(self->record);
    refs_--;
    self->tape = nullptr;
    self->record = -1;
    self->requires_grad = false;
  }
  if (result->tape != this) return;
  records_[result->record].output = self;
  self->record = result->record;
  self->tape = this;
  self->requires_grad = true;
  result->record = -1;  // its reference to this tape moves to self: refs_ is unchanged
  result->tape = nullptr;
  result->requires_grad = false;
}

// ---------------------------------------------------------------- lifetime
void Tape::release_output_and_unretain(int32_t index) {
  bool last;
  {
    std::lock_guard<TapeLock> lock(mu_);
    records_[index].output = nullptr;
    release(index);
    last = --refs_ == 0;
  }
  if (last) delete this;
}

// Iterative, so that dropping a long chain cannot overflow the C++ stack.
// Dropping a saved tensor may release records of this tape again (nested):
// each call works only on the part of the worklist it pushed.
void Tape::release(int32_t index) {
  if (--records_[index].refcount > 0) return;  // the usual case: still consumed
  const size_t base = worklist_.size();
  worklist_.push_back(index);
  while (worklist_.size() > base) {
    int32_t i = worklist_.back();
    worklist_.pop_back();
    Record& r = records_[i];
    for (Edge& e : r.inputs) {
      if (e.record >= 0 && --records_[e.record].refcount == 0) worklist_.push_back(e.record);
      e.leaf.reset();
    }
    r.inputs.clear();
    r.saved.clear();
    r.grad = Tensor();
    live_--;
  }
  // Pop dead records off the top so the next push reuses their slots.
  while (size_ > 0 && records_[size_ - 1].refcount == 0) size_--;
}

// Slides live records down over dead ones, renumbering edges and outputs.
void Tape::compact() {
  std::vector<int32_t> remap(size_, -1);
  size_t n = 0;
  for (size_t i = 0; i < size_; i++) {
    if (records_[i].refcount == 0) continue;
    remap[i] = (int32_t)n;
    if (n != i) std::swap(records_[n], records_[i]);
    n++;
  }
  for (size_t i = 0; i < n; i++) {
    Record& r = records_[i];
    for (Edge& e : r.inputs)
      if (e.record >= 0) e.record = remap[e.record];
    if (r.output) r.output->record = (int32_t)i;
  }
  size_ = n;
  compact_at_ = std::max<size_t>(4096, 2 * n);
}

// ---------------------------------------------------------------- backward
// Note [Owned gradient buffers]
// A gradient may alias a tensor that something else owns: a user's
// gradient, a saved output, a view of either, NumPy memory. Accumulation
// never writes into such a buffer. It may write into one that nothing else can
// observe: this handle is the only reference to the TensorImpl, the impl the
// only user of its storage, the storage tapegrad's own allocation with the
// tensor laid over it contiguously from offset 0, and no history. (Raw
// pointers never keep a gradient alive: Record::output points at outputs of
// recorded ops, and gradients are computed under no_grad.)
bool sole_owner(const Tensor& t) {
  const TensorImpl* impl = t.impl();
  return impl->refcount_.load(std::memory_order_acquire) == 1 &&
         impl->storage->refcount_.load(std::memory_order_acquire) == 1 &&
         !impl->storage->deleter && impl->offset == 0 && impl->record < 0 &&
         !impl->requires_grad && t.is_contiguous();
}

namespace {

// Sums a broadcast gradient back to the input's shape (a no-op, no copy,
// when it already has it).
Tensor reduce_to_shape(Tensor&& g, const Shape& shape) {
  if (g.shape() == shape) return std::move(g);
  return sum_to(g, shape);
}

// slot += g. Callers pass g by value (moved in where they can), so a fresh
// gradient nobody else holds can take the sum in place.
void accumulate(Tensor& slot, Tensor g) {
  if (!slot.defined()) {
    slot = std::move(g);
    return;
  }
  if (slot.shape() == g.shape() && slot.dtype() == g.dtype()) {
    if (sole_owner(slot)) {
      add_(slot, g, 1.0);
      return;
    }
    if (sole_owner(g)) {
      add_(g, slot, 1.0);  // g + slot == slot + g, exactly
      slot = std::move(g);
      return;
    }
  }
  slot = add(slot, g);
}

// Note [Leaf gradients and threads]
// Backward runs without the GIL, and threads training on a shared parameter
// accumulate into the same .grad. Tapes are per thread, leaves are not: the
// one shared write is serialised here.
std::mutex g_leaf_grad_mutex;

// A leaf's first .grad never aliases an intermediate: it is either a copy or
// a fresh gradient that nothing else holds (Note [Owned gradient buffers]).
void accumulate_leaf(TensorImpl* leaf, Tensor g) {
  std::lock_guard<std::mutex> lock(g_leaf_grad_mutex);
  if (leaf->sparse_grad) {  // a dense gradient meets a sparse one: densify
    leaf->grad = leaf->sparse_grad->to_dense().ref();
    leaf->sparse_grad.reset();
  }
  if (!leaf->grad) {
    leaf->grad = sole_owner(g) ? g.ref() : clone(g).ref();
  } else {
    Tensor existing(leaf->grad);
    add_(existing, g);
  }
}

void accumulate_leaf_sparse(TensorImpl* leaf, const Ref<RowSparse>& g) {
  std::lock_guard<std::mutex> lock(g_leaf_grad_mutex);
  if (leaf->grad) {
    Tensor dense(leaf->grad);
    g->add_to(dense);
  } else if (leaf->sparse_grad) {
    leaf->sparse_grad = leaf->sparse_grad->concat(*g);
  } else {
    leaf->sparse_grad = g;
  }
}

}  // namespace

struct Engine {
  // Capture targets for autograd.grad(): leaf impl or record index -> slot.
  struct Target {
    TensorImpl* impl;
    int32_t record;
    Tensor value;
  };

  static void run(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                  bool retain_graph, std::vector<Target>* targets) {
    TG_CHECK(roots.size() == grads.size(), ValueError, "backward: got ", roots.size(),
             " outputs but ", grads.size(), " gradients");
    Tape& tape = Tape::current();
    std::lock_guard<TapeLock> lock(tape.mu_);
    const bool anomaly = t_anomaly;
    int32_t top = -1;
    // Note [Backward without allocation]
    // The seeds and the per-record gradient array are the tape's scratch
    // vectors, swapped in (and back out on every exit) so that a warm backward
    // allocates no bookkeeping; a nested run would just find them empty.
    Scratch scratch(tape);
    auto& seeds = scratch.seeds;
    std::vector<Tensor>& grad_in = scratch.grad_in;
    for (size_t k = 0; k < roots.size(); k++) {
      const Tensor& root = roots[k];
      TG_CHECK(root.defined(), ValueError, "backward: output ", k, " is undefined");
      TG_CHECK(root.requires_grad(), RuntimeError, "backward: output ", k, " (",
               root.describe(),
               ") does not require grad and has no history; did you call it under no_grad, "
               "or forget requires_grad=True on the inputs?");
      Tensor g = grads[k];
      if (!g.defined()) {
        TG_CHECK(root.numel() == 1, RuntimeError, "backward: grad can be implicitly created only "
                 "for scalar outputs, but output ", k, " is ", root.describe(),
                 "; pass a gradient of the same shape");
        g = Tensor::full(root.shape(), 1.0, root.dtype());
      } else {
        TG_CHECK(g.shape() == root.shape(), ValueError, "backward: gradient ", g.describe(),
                 " does not match output ", root.describe());
        if (g.dtype() != root.dtype()) g = to(g, root.dtype());
      }
      if (root.is_leaf()) {
        deliver_leaf(root.impl(), std::move(g), targets);
        continue;
      }
      TG_CHECK(root.impl()->tape == &tape, RuntimeError,
               "backward: output ", k, " was recorded by another thread");
      seeds.emplace_back(root.impl()->record, std::move(g));
      top = std::max(top, root.impl()->record);
    }
    for (auto& [idx, g] : seeds) accumulate(tape.records_[idx].grad, std::move(g));
    seeds.clear();

    try {
      for (int32_t i = top; i >= 0; i--) {
        Record& r = tape.records_[i];
        if (!r.grad.defined()) continue;
        Tensor gout = std::move(r.grad);
        if (targets) capture_record(i, gout, *targets);
        if (r.output && r.output->retains_grad && !targets) accumulate_leaf(r.output, gout);
        if (r.freed)
          throw RuntimeError(str(
              "backward: trying to backward through the graph a second time (op '",
              op_name(r.op), "'); its saved tensors were freed by the first backward. Pass "
              "retain_graph=True to the first backward if you need to call it twice"));
        for (size_t s = 0; s < r.saved.size(); s++) {
          const SavedTensor& st = r.saved[s];
          uint32_t now = st.tensor.impl()->storage->version;
          if (now != st.version)
            throw RuntimeError(str(
                "backward: one of the tensors needed for the gradient of '", op_name(r.op),
                "' (", st.tensor.describe(), ") has been modified by an in-place operation: "
                "it was at version ", st.version, " when saved and is now at version ", now));
        }
        grad_in.resize(r.inputs.size());  // every entry is empty here (see below)
        backward_fn(r.op)(r, gout, grad_in.data());
        gout = Tensor();  // drop our reference: a pass-through gradient stays sole-owned
        if (anomaly) check_backward(r, grad_in);
        if (r.sparse_grad_out) {
          Ref<RowSparse> sg = std::move(r.sparse_grad_out);
          const Edge& e = r.inputs[r.sparse_input];
          r.sparse_input = -1;
          if (e.leaf && !targets) accumulate_leaf_sparse(e.leaf.get(), sg);
          else if (e.leaf) deliver_leaf(e.leaf.get(), sg->to_dense(), targets);
          else accumulate(tape.records_[e.record].grad, sg->to_dense());
        }
        for (size_t k = 0; k < r.inputs.size(); k++) {
          const Edge& e = r.inputs[k];
          if (!grad_in[k].defined()) continue;
          Tensor g = std::move(grad_in[k]);  // leaves the entry empty for the next record
          if (!e.needs_grad()) continue;
          g = reduce_to_shape(std::move(g), e.shape);
          if (!(g.shape() == e.shape))
            throw RuntimeError(str("backward of '", op_name(r.op), "' returned a gradient ",
                                   g.describe(), " for input ", k, " of shape ",
                                   to_string(e.shape)));
          if (g.dtype() != e.dtype) g = to(g, e.dtype);
          if (e.record >= 0) accumulate(tape.records_[e.record].grad, std::move(g));
          else deliver_leaf(e.leaf.get(), std::move(g), targets);
        }
        if (!retain_graph && r.had_saved) {
          r.saved.clear();
          r.freed = true;
        }
      }
    } catch (...) {
      for (int32_t i = top; i >= 0; i--) tape.records_[i].grad = Tensor();
      for (Tensor& g : grad_in) g = Tensor();
      throw;
    }
  }

  // The tape's scratch vectors for one run (see Note [Backward without
  // allocation]); handed back empty, with their capacity, on every exit.
  struct Scratch {
    Tape& tape;
    std::vector<std::pair<int32_t, Tensor>> seeds;
    std::vector<Tensor> grad_in;
    explicit Scratch(Tape& t) : tape(t) {
      seeds.swap(tape.seeds_);
      grad_in.swap(tape.grad_in_);
    }
    ~Scratch() {
      seeds.clear();
      for (Tensor& g : grad_in) g = Tensor();
      seeds.swap(tape.seeds_);
      grad_in.swap(tape.grad_in_);
    }
  };

  // Anomaly mode: PyTorch's wording, with the line that recorded the op.
  static void check_backward(const Record& r, const std::vector<Tensor>& grad_in) {
    for (size_t k = 0; k < grad_in.size(); k++) {
      if (all_finite(grad_in[k])) continue;
      throw RuntimeError(str("Function '", op_name(r.op), "_backward' returned ",
                             nonfinite_kind(grad_in[k]), " values in its ", k,
                             ordinal_suffix(k), " output", recorded_at(r)));
    }
  }

  static void deliver_leaf(TensorImpl* leaf, Tensor g, std::vector<Target>* targets) {
    if (!targets) {
      accumulate_leaf(leaf, std::move(g));
      return;
    }
    for (Target& t : *targets)
      if (t.impl == leaf && t.record < 0) accumulate(t.value, g);
  }

  static void capture_record(int32_t i, const Tensor& g, std::vector<Target>& targets) {
    for (Target& t : targets)
      if (t.record == i) accumulate(t.value, g);
  }
};

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph) {
  TG_TRACE(backward, roots, grads, retain_graph);
  NoGradGuard no_grad;  // gradients themselves are never recorded
  Engine::run(roots, grads, retain_graph, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs,
                         const std::vector<Tensor>& grad_outputs,
                         const std::vector<Tensor>& inputs, bool retain_graph,
                         bool allow_unused) {
  TG_TRACE(grad, outputs, grad_outputs, inputs, retain_graph, allow_unused);
  NoGradGuard no_grad;
  std::vector<Engine::Target> targets;
  for (size_t k = 0; k < inputs.size(); k++) {
    const Tensor& t = inputs[k];
    TG_CHECK(t.defined() && t.requires_grad(), RuntimeError, "autograd.grad: input ", k,
             " does not require grad");
    targets.push_back({t.impl(), t.is_leaf() ? -1 : t.impl()->record, Tensor()});
  }
  std::vector<Tensor> gos = grad_outputs;
  gos.resize(outputs.size());
  Engine::run(outputs, gos, retain_graph, &targets);
  std::vector<Tensor> result;
  for (size_t k = 0; k < targets.size(); k++) {
    Tensor v = targets[k].value;
    if (!v.defined() && !allow_unused)
      throw RuntimeError(str("autograd.grad: input ", k, " (", inputs[k].describe(),
                             ") was not used in the graph of the outputs; pass "
                             "allow_unused=True if this is expected"));
    // Callers own what they get back: never hand out an alias of a buffer
    // that is still part of another computation.
    if (v.defined()) v = clone(v);
    result.push_back(v);
  }
  return result;
}

}  // namespace tg
