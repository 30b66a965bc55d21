#include "tapegrad/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "tapegrad/memory.h"
#include "tapegrad/ops.h"
#include "tapegrad/sparse.h"
#include "tapegrad/tape.h"
#include "tapegrad/trace.h"

namespace tg {

// ---------------------------------------------------------------- dtype
const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
    case DType::Bool: return "bool";
  }
  return "?";
}

DType promote(DType a, DType b) {
  auto rank = [](DType d) {
    switch (d) {
      case DType::Bool: return 0;
      case DType::Int64: return 1;
      case DType::Float32: return 2;
      case DType::Float64: return 3;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

// ---------------------------------------------------------------- Dims
Dims::Dims(std::initializer_list<int64_t> v) {
  TG_CHECK(v.size() <= (size_t)kMaxDims, ValueError, "tapegrad supports at most ", kMaxDims,
           " dimensions, got ", v.size());
  for (int64_t x : v) d[ndim++] = x;
}

Dims Dims::from(const int64_t* p, int n) {
  TG_CHECK(n >= 0 && n <= kMaxDims, ValueError, "tapegrad supports at most ", kMaxDims,
           " dimensions, got ", n);
  Dims s;
  s.ndim = n;
  for (int i = 0; i < n; i++) s.d[i] = p[i];
  return s;
}

void Dims::push_back(int64_t v) {
  TG_CHECK(ndim < kMaxDims, ValueError, "tapegrad supports at most ", kMaxDims, " dimensions");
  d[ndim++] = v;
}

void throw_bad_numel(const Shape& s) {
  for (int i = 0; i < s.ndim; i++)
    TG_CHECK(s.d[i] >= 0, ValueError, "negative dimension ", s.d[i], " in shape ", to_string(s));
  throw ValueError(str("shape ", to_string(s), " has more elements than fit in 64 bits"));
}

std::string to_string(const Dims& s) {
  std::string out = "[";
  for (int i = 0; i < s.ndim; i++) {
    if (i) out += ", ";
    out += std::to_string(s.d[i]);
  }
  return out + "]";
}

Strides contiguous_strides(const Shape& s) {
  Strides st;
  st.ndim = s.ndim;
  int64_t acc = 1;
  for (int i = s.ndim - 1; i >= 0; i--) {
    st.d[i] = acc;
    acc *= s.d[i] > 0 ? s.d[i] : 1;
  }
  return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  Shape out;
  out.ndim = a.ndim > b.ndim ? a.ndim : b.ndim;
  for (int i = 0; i < out.ndim; i++) {
    int ia = a.ndim - out.ndim + i, ib = b.ndim - out.ndim + i;
    int64_t da = ia >= 0 ? a.d[ia] : 1, db = ib >= 0 ? b.d[ib] : 1;
    if (da == db || db == 1) out.d[i] = da;
    else if (da == 1) out.d[i] = db;
    else
      throw ValueError(str(op, ": shapes ", to_string(a), " and ", to_string(b),
                           " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db,
                           ")"));
  }
  return out;
}

int wrap_dim(int64_t dim, int ndim, const char* op) {
  int64_t n = ndim == 0 ? 1 : ndim;  // a 0-d tensor accepts dim 0 / -1, like PyTorch
  if (dim < -n || dim >= n)
    throw IndexError(str(op, ": dimension ", dim, " is out of range for a tensor with ", ndim,
                         " dimensions (expected in [", -n, ", ", n - 1, "])"));
  return (int)(dim < 0 ? dim + n : dim);
}

// ---------------------------------------------------------------- storage
Ref<Storage> Storage::allocate(size_t nbytes) {
  Ref<Storage> s = Ref<Storage>::adopt(new Storage);
  s->data = memory::allocate(nbytes);
  s->nbytes = nbytes;
  return s;
}

Storage::~Storage() {
  if (deleter) deleter(ctx, data);
  else if (!block) memory::deallocate(data, nbytes);
}

TensorImpl::~TensorImpl() {
  if (tape) tape->release_output_and_unretain(record);
}

void TensorImpl::set_storage(Ref<Storage> s) {
  if (embedded && !home_ref) home_ref = storage;
  storage = std::move(s);
}

// Note [One block per small tensor]
// A small tensor's TensorImpl, its Storage and its data are one allocation
// (impl, then storage, then data, each on a 64-byte boundary) instead of
// three: on workload 1's 16-element ops the two extra allocations and frees
// were a third of an op's cost. The block belongs to the storage, which
// outlives the impl in the usual case (views and NumPy arrays hold the
// storage, never the impl). The impl is destroyed in place; its reference to
// the storage is dropped last, and that may free the block. Should the impl's
// `storage` be pointed elsewhere (`t.data = v`), home_ref keeps its own block.
namespace {
constexpr size_t kBlockAlign = 64;
constexpr size_t round_up(size_t n) { return (n + kBlockAlign - 1) / kBlockAlign * kBlockAlign; }
constexpr size_t kImplBytes = round_up(sizeof(TensorImpl));
constexpr size_t kStorageBytes = round_up(sizeof(Storage));
// Larger buffers keep their own allocation: their size classes are coarser,
// and a header in front of a big buffer would waste a class's slack.
constexpr size_t kMaxEmbeddedData = 1024;
}  // namespace

void ref_destroy(TensorImpl* p) noexcept {
  if (!p->embedded) {
    delete p;
    return;
  }
  Ref<Storage> home = p->home_ref ? std::move(p->home_ref) : std::move(p->storage);
  p->~TensorImpl();
  // `home` dies here: the last reference to the storage frees the block p is in.
  // Usually it is the only one (no views), and then no other thread can reach
  // the storage to count it up: free it without the locked decrement.
  Storage* s = home.get();
  if (s && s->refcount_.load(std::memory_order_acquire) == 1) {
    home.release_sole();
    ref_destroy(s);
  }
}

void ref_destroy(Storage* p) noexcept {
  if (!p->block) {
    delete p;
    return;
  }
  void* block = p->block;
  size_t bytes = p->block_bytes;
  p->~Storage();
  memory::deallocate(block, bytes);
}

// ---------------------------------------------------------------- Tensor
Tensor Tensor::empty(const Shape& shape, DType dt) {
  int64_t n = tg::numel(shape), nbytes;
  if (__builtin_mul_overflow(n, (int64_t)itemsize(dt), &nbytes))
    throw ValueError(str("empty: ", to_string(shape), " is too large to allocate"));
  Ref<TensorImpl> t;
  if ((size_t)nbytes <= kMaxEmbeddedData) {
    size_t bytes = kImplBytes + kStorageBytes + (size_t)nbytes;
    char* block = static_cast<char*>(memory::allocate(bytes));
    auto* s = ::new (block + kImplBytes) Storage;
    s->block = block;
    s->block_bytes = bytes;
    s->data = block + kImplBytes + kStorageBytes;
    s->nbytes = (size_t)nbytes;
    t = Ref<TensorImpl>::adopt(::new (block) TensorImpl);
    t->embedded = true;
    t->storage = Ref<Storage>::adopt(s);
  } else {
    t = Ref<TensorImpl>::adopt(new TensorImpl);
    t->storage = Storage::allocate((size_t)nbytes);
  }
  // Shape and strides written element by element: copying a freshly computed
  // Dims whole (16-byte loads over 8-byte stores still in flight) stalls on
  // store forwarding, which cost more than the rest of this function.
  t->shape.ndim = t->strides.ndim = shape.ndim;
  int64_t stride = 1;
  for (int i = shape.ndim - 1; i >= 0; i--) {
    int64_t d = shape.d[i];
    t->shape.d[i] = d;
    t->strides.d[i] = stride;
    stride *= d > 0 ? d : 1;
  }
  t->dtype = dt;
  return Tensor(std::move(t));
}

Tensor Tensor::zeros(const Shape& shape, DType dt) {
  TG_TRACE(Tensor::zeros, shape, dt);
  Tensor t = empty(shape, dt);
  std::memset(t.raw_data(), 0, (size_t)t.numel() * itemsize(dt));
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dt) {
  TG_TRACE(Tensor::full, shape, value, dt);
  Tensor t = empty(shape, dt);
  fill_(t, value);
  return t;
}

Tensor Tensor::scalar(double value, DType dt) { return full(Shape{}, value, dt); }

Tensor Tensor::from_blob(void* data, const Shape& shape, const Strides& strides, DType dt,
                         void (*deleter)(void*, void*), void* ctx, size_t nbytes) {
  Ref<TensorImpl> t = Ref<TensorImpl>::adopt(new TensorImpl);
  Ref<Storage> s = Ref<Storage>::adopt(new Storage);
  s->data = data;
  s->nbytes = nbytes;
  s->deleter = deleter;
  s->ctx = ctx;
  t->storage = std::move(s);
  t->shape = shape;
  t->strides = strides;
  t->dtype = dt;
  return Tensor(std::move(t));
}

Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& shape, DType dt) {
  TG_CHECK((int64_t)v.size() == tg::numel(shape), ValueError, "from_vector: ", v.size(),
           " values do not fill shape ", to_string(shape));
  Tensor t = empty(shape, dt);
  for (size_t i = 0; i < v.size(); i++) {
    switch (dt) {
      case DType::Float32: t.data<float>()[i] = (float)v[i]; break;
      case DType::Float64: t.data<double>()[i] = v[i]; break;
      case DType::Int64: t.data<int64_t>()[i] = (int64_t)v[i]; break;
      case DType::Bool: t.data<bool>()[i] = v[i] != 0; break;
    }
  }
  return t;
}

int64_t Tensor::size(int dim) const { return shape()[wrap_dim(dim, ndim(), "size")]; }
std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return str(dtype_name(dtype()), to_string(shape()));
}

namespace {
// Member functions as free functions, for TG_TRACE.
Tensor grad_of(const Tensor& t) { return t.grad(); }
Ref<RowSparse> sparse_grad_of(const Tensor& t) { return t.sparse_grad(); }
void set_grad_of(Tensor& t, const Tensor& g) { t.set_grad(g); }
void set_sparse_grad_of(Tensor& t, const Ref<RowSparse>& g) { t.set_sparse_grad(g); }
void set_requires_grad_of(Tensor& t, bool r) { t.set_requires_grad(r); }
void retain_grad_of(Tensor& t) { t.retain_grad(); }
Tensor detach_of(const Tensor& t) { return t.detach(); }
}  // namespace

Tensor& Tensor::set_requires_grad(bool r) {
  if (Program* p = trace::active()) {
    p->call("set_requires_grad", [](Tensor& t, bool on) { set_requires_grad_of(t, on); }, *this,
            r);
    return *this;
  }
  if (!is_leaf() && !r)
    throw RuntimeError(
        "requires_grad_: you can only change requires_grad flags of leaf tensors; use "
        "detach() to get a tensor without history");
  TG_CHECK(!r || is_floating(dtype()), RuntimeError,
           "requires_grad_: only floating point tensors can require gradients, got ",
           describe());
  impl_->requires_grad = r;
  return *this;
}

Tensor Tensor::grad() const {
  TG_TRACE(grad_of, *this);
  return Tensor(impl_->grad);
}

Ref<RowSparse> Tensor::sparse_grad() const {
  TG_TRACE(sparse_grad_of, *this);
  return impl_->sparse_grad;
}

void Tensor::set_sparse_grad(const Ref<RowSparse>& g) {
  Tensor self = *this;
  TG_TRACE(set_sparse_grad_of, self, g);
  if (g)
    TG_CHECK(g->dense_shape == shape(), ValueError, "assigning .grad: sparse gradient of shape ",
             to_string(g->dense_shape), " does not match tensor ", describe());
  impl_->grad.reset();
  impl_->sparse_grad = g;
}

void Tensor::set_grad(const Tensor& g) {
  Tensor self = *this;
  TG_TRACE(set_grad_of, self, g);
  if (g.defined()) {
    TG_CHECK(g.shape() == shape(), ValueError, "assigning .grad: gradient ", g.describe(),
             " does not match tensor ", describe());
    TG_CHECK(g.dtype() == dtype(), TypeError, "assigning .grad: gradient ", g.describe(),
             " has a different dtype than tensor ", describe());
  }
  impl_->grad = g.ref();
  impl_->sparse_grad.reset();
}

void Tensor::retain_grad() {
  Tensor self = *this;
  TG_TRACE(retain_grad_of, self);
  TG_CHECK(requires_grad(), RuntimeError,
           "retain_grad: can't retain_grad on a tensor that has requires_grad=False");
  impl_->retains_grad = true;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  // One root: the thread's pair of one-element vectors is reused, so a warm
  // training step allocates nothing (cpp/tests/test_no_heap.cpp); a backward
  // nested in another on the same thread makes its own.
  thread_local std::vector<Tensor> roots(1), grads(1);
  thread_local bool busy = false;
  if (busy) {
    tg::backward({*this}, {gradient}, retain_graph);
    return;
  }
  struct Release {  // the root and its gradient are not kept alive past the call
    ~Release() {
      roots[0] = Tensor();
      grads[0] = Tensor();
      busy = false;
    }
  } release;
  busy = true;
  roots[0] = *this;
  grads[0] = gradient;
  tg::backward(roots, grads, retain_graph);
}

Tensor Tensor::detach() const {
  TG_TRACE(detach_of, *this);
  Ref<TensorImpl> t = Ref<TensorImpl>::adopt(new TensorImpl);
  t->storage = impl_->storage;
  t->offset = impl_->offset;
  t->shape = impl_->shape;
  t->strides = impl_->strides;
  t->dtype = impl_->dtype;
  return Tensor(std::move(t));
}

double Tensor::item() const {
  trace::check_read(*this, "item");
  TG_CHECK(numel() == 1, ValueError, "item: only a tensor with one element can be converted to a "
           "Python number, got ", describe());
  switch (dtype()) {
    case DType::Float32: return *data<float>();
    case DType::Float64: return *data<double>();
    case DType::Int64: return (double)*data<int64_t>();
    case DType::Bool: return *data<bool>() ? 1.0 : 0.0;
  }
  return 0;
}

std::vector<double> Tensor::to_vector() const {
  trace::check_read(*this, "to_vector");
  Tensor c = contiguous_copy(*this);
  std::vector<double> v((size_t)c.numel());
  for (size_t i = 0; i < v.size(); i++) {
    switch (dtype()) {
      case DType::Float32: v[i] = c.data<float>()[i]; break;
      case DType::Float64: v[i] = c.data<double>()[i]; break;
      case DType::Int64: v[i] = (double)c.data<int64_t>()[i]; break;
      case DType::Bool: v[i] = c.data<bool>()[i]; break;
    }
  }
  return v;
}

Tensor Tensor::contiguous() const { return tg::contiguous(*this); }
Tensor Tensor::clone() const { return tg::clone(*this); }

// ---------------------------------------------------------------- grad mode
static thread_local bool t_grad_enabled = true;
bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) {
  TG_TRACE(set_grad_enabled, on);
  t_grad_enabled = on;
}

}  // namespace tg
