// Tensors: dtype, shape/strides, reference-counted storage, and the handle
// type `Tensor` that every op takes and returns.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/errors.h"
#include "tapegrad/memory.h"

namespace tg {

// ---------------------------------------------------------------- dtype
enum class DType : uint8_t { Float32, Float64, Int64, Bool };

inline size_t itemsize(DType dt) {
  switch (dt) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
    case DType::Bool: return 1;
  }
  return 0;
}
const char* dtype_name(DType dt);  // "float32", ...
inline bool is_floating(DType dt) { return dt == DType::Float32 || dt == DType::Float64; }
// NumPy/PyTorch promotion: bool < int64 < float32 < float64.
DType promote(DType a, DType b);

// ---------------------------------------------------------------- shape
constexpr int kMaxDims = 8;

// A small fixed-capacity dims array: shapes and strides never allocate.
struct Dims {
  int ndim = 0;
  int64_t d[kMaxDims] = {};

  Dims() = default;
  Dims(std::initializer_list<int64_t> v);
  static Dims from(const int64_t* p, int n);
  static Dims from(const std::vector<int64_t>& v) { return from(v.data(), (int)v.size()); }
  int size() const { return ndim; }
  int64_t operator[](int i) const { return d[i]; }
  int64_t& operator[](int i) { return d[i]; }
  void push_back(int64_t v);
  // Copies only the used dims, element by element: a whole-struct copy of
  // dims written a moment ago stalls on store forwarding. Unrolled by hand:
  // GCC turns the plain loop into a call to memcpy, which costs more than
  // copying the one or two dims of a typical tensor (~2% of the C++ per-node
  // cost, from recording every input's shape).
  void assign(const Dims& o) {
    static_assert(kMaxDims == 8, "assign() copies up to 8 dims");
    ndim = o.ndim;
    switch (o.ndim) {
      case 8: d[7] = o.d[7]; [[fallthrough]];
      case 7: d[6] = o.d[6]; [[fallthrough]];
      case 6: d[5] = o.d[5]; [[fallthrough]];
      case 5: d[4] = o.d[4]; [[fallthrough]];
      case 4: d[3] = o.d[3]; [[fallthrough]];
      case 3: d[2] = o.d[2]; [[fallthrough]];
      case 2: d[1] = o.d[1]; [[fallthrough]];
      case 1: d[0] = o.d[0]; [[fallthrough]];
      default: break;
    }
  }
  const int64_t* begin() const { return d; }
  const int64_t* end() const { return d + ndim; }
  std::vector<int64_t> vec() const { return {d, d + ndim}; }
  bool operator==(const Dims& o) const {
    if (ndim != o.ndim) return false;
    for (int i = 0; i < ndim; i++)
      if (d[i] != o.d[i]) return false;
    return true;
  }
  bool operator!=(const Dims& o) const { return !(*this == o); }
};
using Shape = Dims;
using Strides = Dims;

// The element count; throws ValueError on a negative dimension or 64-bit
// overflow. Inline: it is on every op's path.
[[noreturn]] void throw_bad_numel(const Shape& s);
inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  bool bad = false;
  for (int i = 0; i < s.ndim; i++) bad |= (s.d[i] < 0) | __builtin_mul_overflow(n, s.d[i], &n);
  if (__builtin_expect(bad, 0)) throw_bad_numel(s);
  return n;
}
std::string to_string(const Dims& s);  // "[2, 3]"
Strides contiguous_strides(const Shape& s);
// NumPy broadcasting of two shapes; throws ValueError naming `op` on mismatch.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Wraps a possibly negative dim into [0, ndim); IndexError naming `op` if out of range.
int wrap_dim(int64_t dim, int ndim, const char* op);

// ---------------------------------------------------------------- refcount
// Intrusive reference counting: one allocation per object, no control block.
struct TensorImpl;
struct Storage;
// What the last reference does: `delete`, except for the tensors and storages
// that share one block (Note [One block per small tensor] in tensor.cpp).
void ref_destroy(TensorImpl* p) noexcept;
void ref_destroy(Storage* p) noexcept;
template <class T>
inline void ref_destroy(T* p) noexcept { delete p; }

struct RefCounted {
  mutable std::atomic<int32_t> refcount_{0};
  RefCounted() = default;
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;
};

template <class T>
class Ref {
 public:
  Ref() = default;
  Ref(T* p) : p_(p) { if (p_) p_->refcount_.fetch_add(1, std::memory_order_relaxed); }
  // Takes the first reference to an object nobody else can see yet: a plain
  // store instead of a locked add.
  static Ref adopt(T* p) {
    p->refcount_.store(1, std::memory_order_relaxed);
    Ref r;
    r.p_ = p;
    return r;
  }
  Ref(const Ref& o) : Ref(o.p_) {}
  Ref(Ref&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  ~Ref() { reset(); }
  Ref& operator=(const Ref& o) { Ref(o).swap(*this); return *this; }
  Ref& operator=(Ref&& o) noexcept { Ref(std::move(o)).swap(*this); return *this; }
  void swap(Ref& o) noexcept { std::swap(p_, o.p_); }
  void reset() {
    if (p_ && p_->refcount_.fetch_sub(1, std::memory_order_acq_rel) == 1) ref_destroy(p_);
    p_ = nullptr;
  }
  T* get() const { return p_; }
  // Forgets the pointer without counting down: for a caller that has seen
  // itself as the sole owner and destroys the object itself.
  void release_sole() { p_ = nullptr; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  bool operator==(const Ref& o) const { return p_ == o.p_; }

 private:
  T* p_ = nullptr;
};

// ---------------------------------------------------------------- storage
// A flat buffer. Either owned (aligned allocation) or borrowed from elsewhere
// (a NumPy array) with a deleter that releases the owner.
struct Storage : RefCounted, memory::Pooled {
  void* data = nullptr;
  size_t nbytes = 0;
  void (*deleter)(void* ctx, void* data) = nullptr;
  void* ctx = nullptr;
  // Note [Version counter]: bumped by every in-place write. A record that
  // saves a tensor for backward remembers the version it saw; backward refuses
  // to use a saved tensor whose storage has been written since. Views share
  // the storage, so they share the counter.
  uint32_t version = 0;
  // Set when this storage, its data and a TensorImpl share one block: the
  // block's start and size, given back when the storage dies.
  void* block = nullptr;
  size_t block_bytes = 0;

  static Ref<Storage> allocate(size_t nbytes);
  ~Storage();
};

class Tape;
struct RowSparse;

// ---------------------------------------------------------------- tensor impl
struct TensorImpl : RefCounted, memory::Pooled {
  Ref<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Strides strides;
  DType dtype = DType::Float32;

  // Autograd state. A leaf has record < 0; `requires_grad` is the user's flag.
  // A non-leaf has history: (tape, record) names the tape record that made it.
  bool requires_grad = false;
  bool retains_grad = false;
  int32_t record = -1;
  Tape* tape = nullptr;     // strong reference (see Tape::retain), set iff record >= 0
  Ref<TensorImpl> grad;     // .grad of a leaf (or of a non-leaf after retain_grad)
  Ref<RowSparse> sparse_grad;  // .grad when it is row-sparse (see sparse.h); never both
  void* pyobj = nullptr;    // owned by the bindings; the core never touches it
  // Lives in its first storage's block (Note [One block per small tensor]);
  // home_ref keeps that block alive once `storage` is pointed elsewhere.
  bool embedded = false;
  Ref<Storage> home_ref;
  // Points `storage` at s (what `t.data = v` does), keeping an embedded
  // impl's block alive.
  void set_storage(Ref<Storage> s);

  ~TensorImpl();
};

// ---------------------------------------------------------------- Tensor
// A cheap handle (one pointer). Copying shares the tensor, like Python refs.
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Ref<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Creation.
  static Tensor empty(const Shape& shape, DType dt = DType::Float32);
  static Tensor zeros(const Shape& shape, DType dt = DType::Float32);
  static Tensor full(const Shape& shape, double value, DType dt = DType::Float32);
  static Tensor scalar(double value, DType dt = DType::Float32);
  // Wraps external memory; `deleter(ctx, data)` runs when the last view dies.
  static Tensor from_blob(void* data, const Shape& shape, const Strides& strides, DType dt,
                          void (*deleter)(void*, void*), void* ctx, size_t nbytes);
  static Tensor from_vector(const std::vector<double>& v, const Shape& shape,
                            DType dt = DType::Float32);

  bool defined() const { return (bool)impl_; }
  TensorImpl* impl() const { return impl_.get(); }
  const Ref<TensorImpl>& ref() const { return impl_; }

  const Shape& shape() const { return impl_->shape; }
  const Strides& strides() const { return impl_->strides; }
  int ndim() const { return impl_->shape.ndim; }
  int64_t size(int dim) const;
  int64_t numel() const { return tg::numel(impl_->shape); }
  DType dtype() const { return impl_->dtype; }
  bool is_contiguous() const {
    const TensorImpl* t = impl_.get();
    int64_t expected = 1;
    for (int i = t->shape.ndim - 1; i >= 0; i--) {
      if (t->shape.d[i] == 1) continue;
      if (t->strides.d[i] != expected) return false;
      expected *= t->shape.d[i];
    }
    return true;
  }
  std::string describe() const;  // "float32[2, 3]" for error messages

  template <class T> T* data() const {
    return static_cast<T*>(impl_->storage->data) + impl_->offset;
  }
  void* raw_data() const {
    return static_cast<char*>(impl_->storage->data) + impl_->offset * itemsize(impl_->dtype);
  }

  // Autograd.
  bool requires_grad() const { return impl_->requires_grad; }
  bool is_leaf() const { return impl_->record < 0; }
  Tensor& set_requires_grad(bool r);
  Tensor grad() const;  // the dense .grad (undefined when none, or when it is row-sparse)
  void set_grad(const Tensor& g);
  Ref<RowSparse> sparse_grad() const;  // the row-sparse .grad, if that is what it is
  void set_sparse_grad(const Ref<RowSparse>& g);
  void retain_grad();
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // shares storage, no history

  // Values.
  double item() const;
  std::vector<double> to_vector() const;  // any dtype, row-major
  Tensor contiguous() const;              // recorded (differentiable)
  Tensor clone() const;                   // a fresh copy, recorded
  void bump_version() const { impl_->storage->version++; }

 private:
  Ref<TensorImpl> impl_;
};

// RAII switch for the thread-local grad mode (tg.no_grad / tg.enable_grad).
bool grad_enabled();
void set_grad_enabled(bool on);
class GradMode {
 public:
  explicit GradMode(bool enabled) : prev_(grad_enabled()) { set_grad_enabled(enabled); }
  ~GradMode() { set_grad_enabled(prev_); }

 private:
  bool prev_;
};
struct NoGradGuard : GradMode { NoGradGuard() : GradMode(false) {} };

}  // namespace tg
