// Tape replay: record the calls of one training step once, then run them again
// from C++ on new input data, with no Python in between.
//
// Note [Tape replay]
// A Program is recorded by running the step eagerly with the thread's
// recorder on. Every public entry point of the core (the ops, creation,
// backward, the optimizer updates, .grad reads and writes, grad mode) starts
// with TG_TRACE(...): while recording, the outermost such call appends one
// instruction to the program (the function and its arguments, tensors by slot)
// and then runs as usual; calls it makes internally are not recorded. A tensor
// argument the program has not seen before (a parameter, an optimizer state
// buffer, a constant made from Python data) becomes a constant slot: the
// program holds it by reference and later replays read and write the very same
// tensor. Declared inputs are slots that each replay rebinds.
//
// Replay runs the instructions in order with the recorded grad mode: forward
// ops record on the tape exactly as in eager mode, backward runs the same
// engine, the optimizer updates the same buffers, so results are bit-identical
// to eager execution of the same calls. What a replay cannot repeat is Python:
// a value the step read (item(), numpy()) or a branch taken on it. Reading a
// tensor's values while recording therefore raises, and callers (tg.compile)
// guard on everything else Python decides (input shapes and dtypes, the
// optimizers' hyperparameters) and record again when a guard fails.
//
// Memory: a replay allocates each result as eager mode does, from the thread's
// caching allocator (see memory.h), so once warm it does not touch the heap;
// intermediates are dropped at the end of each replay.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tapegrad/sparse.h"
#include "tapegrad/tensor.h"

namespace tg {

class Program;

namespace trace {
// The program the calling thread records into, null when not recording or
// inside a call that is already being recorded.
extern thread_local Program* t_active;
// How many threads are recording a program right now. Every op's TG_TRACE
// reads this global before the thread-local: in the Python module a
// thread-local costs a call to __tls_get_addr, and no thread records in the
// usual case. A thread's own increment precedes its t_active in program order,
// so a relaxed load can miss only other threads' recordings, never its own.
extern std::atomic<int> g_recording_threads;
inline Program* active() {
  if (g_recording_threads.load(std::memory_order_relaxed) == 0) return nullptr;
  return t_active;
}

// Suspends recording on this thread for its lifetime.
class Suspend {
 public:
  Suspend() : prev_(t_active) { t_active = nullptr; }
  ~Suspend() { t_active = prev_; }
  Suspend(const Suspend&) = delete;
  Suspend& operator=(const Suspend&) = delete;

 private:
  Program* prev_;
};

// Raises RuntimeError when `t`'s values are read into the host language while
// a program is being recorded (the replay could not repeat what follows).
void check_read(const Tensor& t, const char* what);
// True while a program records on this thread (also inside recorded calls):
// lets a kernel refuse what a replay could not repeat.
bool recording();
}  // namespace trace

// Put first in a core entry point: records the call when a program is being
// recorded on this thread. `fn` names the function (overloads are resolved by
// the argument types), the rest are its parameters.
#define TG_TRACE(fn, ...)                                                            \
  do {                                                                               \
    if (::tg::Program* tg_trace_program_ = ::tg::trace::active())                    \
      return tg_trace_program_->call(                                                \
          #fn, [](auto&&... tg_a_) -> decltype(auto) { return fn(tg_a_...); },          \
          __VA_ARGS__);                                                              \
  } while (0)

class Program {
 public:
  Program() = default;
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  // ---- recording
  // Starts recording this thread's calls into the program (which must be
  // empty); end() stops. Not reentrant: one program records at a time.
  void begin();
  void end();
  bool recording() const { return recording_; }
  // Declares `t` as the next input: a slot that replay() rebinds via set_input.
  void add_input(const Tensor& t);
  // The slot holding `t` (a constant slot when the program did not compute
  // it); what replay leaves in it is then read with output(slot).
  int output_slot(const Tensor& t);
  int sparse_output_slot(const Ref<RowSparse>& s);

  // ---- replay
  size_t num_inputs() const { return inputs_.size(); }
  size_t size() const { return code_.size(); }
  // Whether `t` has the shape, dtype and requires_grad input k was recorded with.
  bool input_matches(size_t k, const Tensor& t) const;
  // Binds input k; ValueError unless input_matches(k, t).
  void set_input(size_t k, const Tensor& t);
  // Runs every instruction once. On an error the intermediates are dropped and
  // the exception propagates (the parameters may have been partly updated, as
  // they would be in eager mode).
  void replay();
  const Tensor& output(int slot) const { return slots_[slot]; }
  const Ref<RowSparse>& sparse_output(int slot) const { return sparse_[slot]; }
  // Drops the intermediates of the last replay (keeps inputs and constants).
  void clear();
  // Held by whoever binds inputs, replays and reads outputs: a program's slots
  // are one set, so two threads must take turns.
  std::mutex& mutex() { return mutex_; }

  // What each instruction calls ("mul", "backward", "optim::sgd", ...).
  const std::vector<const char*>& instructions() const { return names_; }
  // Replays with a clock around each instruction; returns nanoseconds per
  // instruction (for finding where a replay spends its time).
  std::vector<double> profile();

  // ---- used by TG_TRACE
  template <class F, class... A>
  decltype(auto) call(const char* name, F f, A&&... args);

 private:
  struct TensorArg { int slot; };            // slots_[slot]; -1: undefined tensor
  struct TensorListArg { std::vector<int> slots; int scratch; };  // scratch_[scratch]
  struct SparseArg { int slot; };            // sparse_[slot]; -1: null
  using Instruction = std::function<void(Program&)>;

  int slot_of(const Tensor& t);              // adds a constant slot if unseen
  int sparse_slot_of(const RowSparse* s);
  int new_slot(const Tensor& t);             // a slot the program writes
  int new_sparse_slot(const Ref<RowSparse>& s);

  // Arguments: tensors by slot, everything else by value.
  TensorArg bind(const Tensor& t) { return {t.defined() ? slot_of(t) : -1}; }
  TensorListArg bind(const std::vector<Tensor>& v);
  SparseArg bind(const RowSparse& s) { return {sparse_slot_of(&s)}; }
  SparseArg bind(const Ref<RowSparse>& s) { return {s ? sparse_slot_of(s.get()) : -1}; }
  template <class T>
  std::decay_t<T> bind(const T& v) { return v; }

  Tensor& resolve(TensorArg& a) { return a.slot < 0 ? (undefined_ = Tensor()) : slots_[a.slot]; }
  const std::vector<Tensor>& resolve(TensorListArg& a);
  struct SparseRef {  // converts to what the callee takes
    Ref<RowSparse>& ref;
    operator const RowSparse&() const { return *ref; }
    operator const Ref<RowSparse>&() const { return ref; }
  };
  SparseRef resolve(SparseArg& a) {
    return {a.slot < 0 ? (undefined_sparse_ = Ref<RowSparse>()) : sparse_[a.slot]};
  }
  template <class T>
  T& resolve(T& v) { return v; }

  // Results: which slots they go to, recorded once and stored on each replay.
  struct Outputs { std::vector<int> slots; };
  Outputs bind_out(const Tensor& t) { return {{t.defined() ? new_slot(t) : -1}}; }
  Outputs bind_out(const std::pair<Tensor, Tensor>& p) {
    return {{new_slot(p.first), new_slot(p.second)}};
  }
  Outputs bind_out(const std::vector<Tensor>& v);
  Outputs bind_out(const Ref<RowSparse>& s) { return {{s ? new_sparse_slot(s) : -1}}; }
  template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  Outputs bind_out(const T&) { return {}; }  // host values (a step count): not kept

  void store(const Outputs& o, Tensor t) { if (o.slots[0] >= 0) slots_[o.slots[0]] = std::move(t); }
  void store(const Outputs& o, std::pair<Tensor, Tensor> p) {
    slots_[o.slots[0]] = std::move(p.first);
    slots_[o.slots[1]] = std::move(p.second);
  }
  void store(const Outputs& o, std::vector<Tensor> v);
  void store(const Outputs& o, Ref<RowSparse> s) {
    if (o.slots[0] >= 0) sparse_[o.slots[0]] = std::move(s);
  }
  template <class T, std::enable_if_t<std::is_arithmetic_v<std::decay_t<T>>, int> = 0>
  void store(const Outputs&, T&&) {}

  std::vector<Tensor> slots_;
  std::vector<bool> written_;  // slots an instruction writes (cleared after a replay)
  std::vector<Ref<RowSparse>> sparse_;
  std::vector<bool> sparse_written_;
  std::vector<int> inputs_;
  std::vector<Tensor> input_specs_;  // what each input looked like when recorded
  std::vector<Instruction> code_;
  std::vector<const char*> names_;
  std::unordered_map<const void*, int> slot_index_;  // TensorImpl* / RowSparse* -> slot
  std::vector<Tensor> keep_alive_;  // recording only: keeps addresses unique
  std::vector<std::vector<Tensor>> scratch_;  // tensor lists handed to calls
  Tensor undefined_;
  Ref<RowSparse> undefined_sparse_;
  bool recording_ = false;
  bool grad_mode_ = true;  // grad mode when recording began
  std::mutex mutex_;
};

template <class F, class... A>
decltype(auto) Program::call(const char* name, F f, A&&... args) {
  using R = decltype(f(std::forward<A>(args)...));
  trace::Suspend nested;  // what f calls internally is part of this instruction
  auto bound = std::make_tuple(bind(args)...);
  names_.push_back(name);
  if constexpr (std::is_void_v<R>) {
    f(std::forward<A>(args)...);
    code_.emplace_back([f, bound](Program& p) mutable {
      std::apply([&](auto&... b) { f(p.resolve(b)...); }, bound);
    });
  } else {
    R out = f(std::forward<A>(args)...);
    Outputs outs = bind_out(out);
    code_.emplace_back([f, bound, outs](Program& p) mutable {
      std::apply([&](auto&... b) { p.store(outs, f(p.resolve(b)...)); }, bound);
    });
    return out;
  }
}

}  // namespace tg
