// Recording and replaying programs (see Note [Tape replay]).
#include "tapegrad/trace.h"

#include <chrono>

#include "tapegrad/errors.h"

namespace tg {

namespace trace {
thread_local Program* t_active = nullptr;
std::atomic<int> g_recording_threads{0};

namespace {
// The program recording on this thread, also while a call is being recorded
// (t_active is null then): reads inside ops are the op's own business, reads
// from outside (Python) are what check_read is for.
thread_local Program* t_recording = nullptr;
}  // namespace

bool recording() { return t_recording != nullptr; }

void check_read(const Tensor& t, const char* what) {
  if (!t_active) return;  // not recording, or inside a recorded call
  throw RuntimeError(str(
      what, ": the step reads the values of a tensor ", t.describe(),
      " while tg.compile records it; a replay runs no Python, so it could not repeat what the "
      "step does with them. Return the tensor from the step and read it after the call (or "
      "read it outside the compiled function)"));
}
}  // namespace trace

void Program::begin() {
  TG_CHECK(!trace::t_recording, RuntimeError,
           "compile: a step is already being recorded on this thread (recording is not "
           "reentrant: call the compiled function from outside the step)");
  TG_CHECK(code_.empty() && slots_.empty(), RuntimeError,
           "compile: this program was recorded already");
  recording_ = true;
  grad_mode_ = grad_enabled();
  trace::g_recording_threads.fetch_add(1, std::memory_order_relaxed);
  trace::t_recording = this;
  trace::t_active = this;
}

void Program::end() {
  if (trace::t_recording == this) {
    trace::t_recording = nullptr;
    trace::t_active = nullptr;
    trace::g_recording_threads.fetch_sub(1, std::memory_order_relaxed);
  }
  recording_ = false;
  keep_alive_.clear();
  slot_index_.clear();
  clear();
}

void Program::add_input(const Tensor& t) {
  TG_CHECK(recording_, RuntimeError, "compile: inputs are declared while recording");
  TG_CHECK(t.defined(), ValueError, "compile: input ", inputs_.size(), " is undefined");
  TG_CHECK(!slot_index_.count(t.impl()), ValueError, "compile: input ", inputs_.size(),
           " is the same tensor as an earlier input or constant");
  trace::Suspend untraced;  // detach() below is bookkeeping, not part of the step
  int s = new_slot(t);
  inputs_.push_back(s);
  input_specs_.push_back(t.detach());
  input_specs_.back().impl()->requires_grad = t.requires_grad();
}

int Program::output_slot(const Tensor& t) {
  TG_CHECK(t.defined(), ValueError, "compile: an output is undefined");
  return slot_of(t);
}

int Program::sparse_output_slot(const Ref<RowSparse>& s) {
  TG_CHECK(s, ValueError, "compile: an output is undefined");
  return sparse_slot_of(s.get());
}

int Program::slot_of(const Tensor& t) {
  auto it = slot_index_.find(t.impl());
  if (it != slot_index_.end()) return it->second;
  int s = (int)slots_.size();
  slots_.push_back(t);
  written_.push_back(false);
  slot_index_[t.impl()] = s;
  keep_alive_.push_back(t);
  return s;
}

int Program::new_slot(const Tensor& t) {
  int s = (int)slots_.size();
  slots_.push_back(t);
  written_.push_back(true);
  slot_index_[t.impl()] = s;  // an address reused by this result now means it
  keep_alive_.push_back(t);
  return s;
}

int Program::sparse_slot_of(const RowSparse* s) {
  auto it = slot_index_.find(s);
  if (it != slot_index_.end()) return it->second;
  int k = (int)sparse_.size();
  sparse_.push_back(Ref<RowSparse>(const_cast<RowSparse*>(s)));
  sparse_written_.push_back(false);
  slot_index_[s] = k;
  return k;
}

int Program::new_sparse_slot(const Ref<RowSparse>& s) {
  int k = (int)sparse_.size();
  sparse_.push_back(s);
  sparse_written_.push_back(true);
  slot_index_[s.get()] = k;
  return k;
}

Program::TensorListArg Program::bind(const std::vector<Tensor>& v) {
  TensorListArg a;
  for (const Tensor& t : v) a.slots.push_back(t.defined() ? slot_of(t) : -1);
  a.scratch = (int)scratch_.size();
  scratch_.emplace_back(v.size());
  return a;
}

const std::vector<Tensor>& Program::resolve(TensorListArg& a) {
  std::vector<Tensor>& list = scratch_[a.scratch];
  for (size_t i = 0; i < a.slots.size(); i++)
    list[i] = a.slots[i] < 0 ? Tensor() : slots_[a.slots[i]];
  return list;
}

Program::Outputs Program::bind_out(const std::vector<Tensor>& v) {
  Outputs o;
  for (const Tensor& t : v) o.slots.push_back(new_slot(t));
  return o;
}

void Program::store(const Outputs& o, std::vector<Tensor> v) {
  TG_CHECK(v.size() == o.slots.size(), RuntimeError, "compile: replay produced ", v.size(),
           " tensors where the recording produced ", o.slots.size());
  for (size_t i = 0; i < v.size(); i++) slots_[o.slots[i]] = std::move(v[i]);
}

bool Program::input_matches(size_t k, const Tensor& t) const {
  if (k >= inputs_.size() || !t.defined()) return false;
  const Tensor& spec = input_specs_[k];
  return t.shape() == spec.shape() && t.dtype() == spec.dtype() &&
         t.requires_grad() == spec.requires_grad();
}

void Program::set_input(size_t k, const Tensor& t) {
  TG_CHECK(k < inputs_.size(), IndexError, "compile: input ", k, " out of range (",
           inputs_.size(), " inputs)");
  const Tensor& spec = input_specs_[k];
  TG_CHECK(input_matches(k, t), ValueError, "compile: input ", k, " is ", t.describe(),
           t.requires_grad() ? " (requires grad)" : "", " but the program was recorded with ",
           spec.describe(), spec.requires_grad() ? " (requires grad)" : "");
  slots_[inputs_[k]] = t;
}

void Program::replay() {
  TG_CHECK(!recording_, RuntimeError, "compile: replay() while the program is recording");
  TG_CHECK(!trace::t_recording, RuntimeError,
           "compile: a compiled step was called while another step is being recorded");
  bool grad_mode = grad_enabled();
  set_grad_enabled(grad_mode_);
  try {
    for (Instruction& ins : code_) ins(*this);
  } catch (...) {
    set_grad_enabled(grad_mode);
    clear();
    throw;
  }
  set_grad_enabled(grad_mode);
}

std::vector<double> Program::profile() {
  std::vector<double> ns(code_.size(), 0.0);
  bool grad_mode = grad_enabled();
  set_grad_enabled(grad_mode_);
  try {
    for (size_t i = 0; i < code_.size(); i++) {
      auto t0 = std::chrono::steady_clock::now();
      code_[i](*this);
      ns[i] = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    }
  } catch (...) {
    set_grad_enabled(grad_mode);
    clear();
    throw;
  }
  set_grad_enabled(grad_mode);
  return ns;
}

void Program::clear() {
  for (size_t i = 0; i < slots_.size(); i++)
    if (written_[i]) slots_[i] = Tensor();
  for (size_t i = 0; i < sparse_.size(); i++)
    if (sparse_written_[i]) sparse_[i].reset();
  for (int s : inputs_) slots_[s] = Tensor();
  for (std::vector<Tensor>& list : scratch_)  // they would keep the last step's graph alive
    for (Tensor& t : list) t = Tensor();
}

}  // namespace tg
