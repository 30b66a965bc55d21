// The tape: a flat, ordered, thread-local list of op records, and the reverse
// walk over it that is backward.
//
// Note [Tape design]
// Every op whose inputs require grad appends one Record to the recording
// thread's tape. A record names its inputs by Edge: either a leaf that wants a
// .grad, or the index of an earlier record on the same tape. Records are
// therefore in topological order by construction, and backward is one loop from
// the root's index down to 0: no recursion, no hash lookups, no sorting.
//
// Lifetime: each record is reference counted by (its output tensor, if alive)
// + (live records that consume it). When the count reaches zero the record
// drops its saved tensors and releases its inputs, so memory is freed exactly
// when PyTorch would free a graph node. The tape resets to empty when no record
// is live (the usual state between training steps), and compacts itself when
// dead records pile up under a few long-lived ones, so a loop of steps never
// grows the tape. Record slots are reused in place, keeping their vectors'
// capacity: once warm, recording does not touch the heap for bookkeeping.
//
// Threads: a tape belongs to the thread that records on it. Using a non-leaf
// tensor recorded in another thread as an op input, or calling backward on it,
// raises RuntimeError. All bookkeeping happens under the caller's control (the
// GIL, from Python); only kernels run unlocked. A tensor of this tape may still
// die in another thread (the last Python reference dropped there, or the
// cyclic GC running there) while the owner records or runs backward without
// the GIL: every change to the records, and the tape's own reference count,
// therefore happens under the tape's lock (Note [Tape lock]).
//
// Anomaly mode (tg.autograd.detect_anomaly) is a thread-local flag. Off, it
// costs one thread-local bool test per record. On, each record remembers the
// user's source line (through a hook the bindings install, so the core knows
// nothing of Python), a recorded op whose inputs are finite but whose output is
// not raises, and backward raises at the first backward function that returns
// a non-finite gradient, naming the op and the line that recorded it.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "tapegrad/op_table.h"
#include "tapegrad/sparse.h"
#include "tapegrad/tensor.h"

namespace tg {

// Where the gradient of one input of a record goes.
struct Edge {
  Ref<TensorImpl> leaf;  // a leaf that requires grad
  int32_t record = -1;   // or an earlier record on the same tape
  Shape shape;           // the input's shape: gradients are summed back to it
  DType dtype = DType::Float32;
  Edge() = default;
  // Copies the shape straight in (a default Shape would be zero-filled first).
  Edge(const Shape& s, DType dt) : dtype(dt) { shape.assign(s); }
  bool needs_grad() const { return leaf || record >= 0; }
};

struct SavedTensor {
  Tensor tensor;
  uint32_t version = 0;
};

struct Record {
  Tape* tape = nullptr;  // the tape this record lives on (saves finish() a thread-local lookup)
  OpId op = OpId::kCount;
  bool had_saved = false;  // saved tensors were recorded
  bool freed = false;      // ... and released by a backward without retain_graph
  int32_t refcount = 0;
  TensorImpl* output = nullptr;  // weak: cleared when the output tensor dies
  Shape out_shape;
  DType out_dtype = DType::Float32;
  std::vector<Edge> inputs;
  std::vector<SavedTensor> saved;
  std::vector<int64_t> ints;  // op attributes: dims, sizes, flags
  double scalars[4] = {0, 0, 0, 0};
  Tensor grad;  // gradient of the output, accumulated during backward
  // A backward that produces a row-sparse gradient for input `sparse_input`
  // leaves it here instead of in grad_in (only embedding does).
  mutable Ref<RowSparse> sparse_grad_out;
  mutable int sparse_input = -1;
  // Anomaly mode only: where the op was recorded ("file.py:12"), and whether
  // all its floating inputs were finite.
  std::string location;
  bool inputs_finite = true;

  void save(const Tensor& t) { saved.push_back({t, t.impl()->storage->version}); }
  const Tensor& saved_tensor(size_t i) const { return saved[i].tensor; }
  bool needs_input_grad(size_t i) const { return inputs[i].needs_grad(); }
};

// Computes the gradient of each input from the gradient of the output. Fills
// grad_in[i] only where r.needs_input_grad(i); may leave it undefined when the
// gradient is zero. Gradients may have the broadcast (output) shape: the engine
// sums them back to the input shape. grad_out is the engine's own reference,
// dropped right after the call: a backward that passes the gradient through
// may move it into grad_in (two atomic refcount updates fewer per node than a
// copy, which the C++ per-node cost measures).
using BackwardFn = void (*)(const Record& r, Tensor& grad_out, Tensor* grad_in);

// Anomaly mode (thread-local; see the note at the top).
bool anomaly_enabled();
void set_anomaly_enabled(bool on);
// Writes the caller's source location into *out; installed by the bindings,
// called only in anomaly mode, may be called with or without the GIL held.
using LocationHook = void (*)(std::string* out);
void set_location_hook(LocationHook hook);
// False iff t is floating and holds a NaN or an Inf.
bool all_finite(const Tensor& t);
// Whether nothing but this handle can observe t's buffer, so a backward may
// write into it or keep it (Note [Owned gradient buffers] in tape.cpp).
bool sole_owner(const Tensor& t);

// Note [Tape lock]
// Recursive (a backward that drops saved tensors releases records of its own
// tape) and almost never contended: only the owner records, and other threads
// come in just to release a dying tensor. So instead of a recursive mutex (a
// call, an owner check and two locked instructions per lock and unlock), the
// lock is one word naming the holding thread: the holder re-enters by
// comparing it with its own token, a first acquisition is one compare-exchange
// and a release one plain store. A waiting thread spins briefly, then yields:
// the owner may hold the lock for a whole backward. Recording an op takes it
// once, from Tape::begin to Recording::finish. (Deferring other threads'
// releases to the owner, with no lock at all, measured no faster.)
class TapeLock {
 public:
  void lock() {
    const void* me = token();
    if (holder_.load(std::memory_order_relaxed) == me) {
      depth_++;
      return;
    }
    const void* expected = nullptr;
    if (!holder_.compare_exchange_strong(expected, me, std::memory_order_acquire,
                                         std::memory_order_relaxed))
      lock_slow(me);
    depth_ = 1;
  }
  void unlock() {
    if (--depth_ == 0) holder_.store(nullptr, std::memory_order_release);
  }

 private:
  // Names the calling thread: the thread pointer (the TCB address on Linux),
  // one register read where the compiler exposes it. The address of a
  // thread-local, the fallback, costs a __tls_get_addr call in the Python
  // module, and a lock is taken for every record and every dying output.
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)) && defined(__has_builtin)
#if __has_builtin(__builtin_thread_pointer)
#define TG_TAPE_LOCK_THREAD_POINTER 1
#endif
#endif
#ifdef TG_TAPE_LOCK_THREAD_POINTER
  static const void* token() { return __builtin_thread_pointer(); }
#else
  static const void* token();
#endif
  void lock_slow(const void* me);
  std::atomic<const void*> holder_{nullptr};
  int depth_ = 0;  // only the holder touches it
};

class Tape;

// An open record: the tape's lock is held from Tape::begin() to finish(), so
// recording an op takes the lock once. Destroyed unfinished (an exception
// between the two), it gives the record up and unlocks.
class Recording {
 public:
  Recording() = default;
  Recording(Tape* tape, Record* r) : tape_(tape), r_(r) {}
  Recording(Recording&& o) noexcept : tape_(o.tape_), r_(o.r_) { o.r_ = nullptr; }
  Recording(const Recording&) = delete;
  Recording& operator=(const Recording&) = delete;
  Recording& operator=(Recording&&) = delete;
  ~Recording() {
    if (r_) abandon();
  }
  explicit operator bool() const { return r_ != nullptr; }
  Record* operator->() const { return r_; }
  // Links the record to its output and unlocks the tape.
  void finish(Tensor& output);

 private:
  void abandon() noexcept;
  Tape* tape_ = nullptr;
  Record* r_ = nullptr;
};

class Tape {
 public:
  // The calling thread's tape.
  static Tape& current();

  // Starts a record for `op` if grad mode is on and any input requires grad;
  // returns an empty Recording otherwise. The caller fills attributes and
  // saved tensors, then calls finish(output); nothing else may be recorded on
  // this thread in between.
  Recording begin(OpId op, std::initializer_list<const Tensor*> inputs);
  Recording begin(OpId op, const std::vector<Tensor>& inputs);

  // Called when a tensor with history dies: releases its record and the
  // tensor's reference to the tape (which may delete the tape).
  void release_output_and_unretain(int32_t index);

  // The references of tensors with history and of the owning thread.
  void unretain();

  // An in-place op's last step (Note [In-place ops with autograd] in
  // elementwise.cpp): `self` takes over the history of `result`, a fresh
  // tensor of this tape holding the op's value, and drops its own. A result
  // without history leaves self a plain tensor. Raises RuntimeError when self
  // belongs to another thread's tape.
  void move_history(TensorImpl* self, TensorImpl* result);

  size_t size() const { return size_; }
  size_t live() const { return live_; }
  Record& at(int32_t i) { return records_[i]; }

 private:
  friend struct Engine;
  friend class Recording;
  friend void set_anomaly_enabled(bool on);

  Tape() = default;
  Record* push(OpId op);
  void finish_locked(Record* r, Tensor& output);
  void undo_edges(Record* r);
  void add_edge(Record* r, const Tensor& t);
  void release(int32_t index);
  void compact();

  std::vector<Record> records_;  // slots [0, size_) are in use
  size_t size_ = 0;
  size_t live_ = 0;
  size_t compact_at_ = 4096;
  int64_t refs_ = 0;  // tensors with history + the owning thread; under mu_
  std::vector<int32_t> worklist_;
  // This thread's anomaly flag, mirrored here so recording reads a member
  // instead of a thread-local (set_anomaly_enabled keeps the two in step).
  bool anomaly_ = false;
  // Scratch for Engine::run, kept so that a warm backward allocates no
  // bookkeeping (see Note [Backward without allocation] in tape.cpp).
  std::vector<std::pair<int32_t, Tensor>> seeds_;
  std::vector<Tensor> grad_in_;
  // Guards the records against releases from other threads.
  TapeLock mu_;
};

// backward(): seeds each root with its gradient and walks the tape once in
// reverse, accumulating into leaves' .grad.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph);

// autograd.grad(): the gradients of `outputs` with respect to `inputs` (leaves
// or not), without touching any .grad. Undefined tensors for unused inputs
// when allow_unused, else RuntimeError.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs,
                         const std::vector<Tensor>& grad_outputs,
                         const std::vector<Tensor>& inputs, bool retain_graph,
                         bool allow_unused);

// The backward of every op, indexed by OpId (defined next to each forward).
BackwardFn backward_fn(OpId op);

// Names of all ops in the table, in OpId order.
std::vector<std::string> op_names();

}  // namespace tg
