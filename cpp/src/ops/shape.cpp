// Shapes, views and indexing: reshape/view, permute, expand, slice,
// contiguous, cat, index_select, gather, embedding, and the composites built
// on them (transpose, squeeze, select, stack, split, ...).
#include <cstring>

#include "op_common.h"
#include "tapegrad/sparse.h"

namespace tg {

// Note [Views]
// reshape (when the strides allow it), permute, expand and slice return views:
// a new TensorImpl sharing the input's Storage (and so its version counter)
// with its own offset, shape and strides. No data moves. Their backward is a
// view of the gradient (reshape, permute), the gradient itself (expand: the
// engine sums it back to the input's shape), or a scatter into zeros (slice).
// An in-place write through any view bumps the shared version, so a saved
// tensor that aliases it is caught by the engine's version check.

// ---------------------------------------------------------------- helpers
static Tensor make_view(const Tensor& a, const Shape& shape, const Strides& strides,
                        int64_t offset) {
  Ref<TensorImpl> t = Ref<TensorImpl>::adopt(new TensorImpl);
  t->storage = a.impl()->storage;
  t->offset = offset;
  t->shape = shape;
  t->strides = strides;
  t->dtype = a.dtype();
  return Tensor(std::move(t));
}

static std::string vec_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) {
    if (i) s += ", ";
    s += std::to_string(v[i]);
  }
  return s + "]";
}

static Tensor contiguous_nograd(const Tensor& t) {
  return t.is_contiguous() ? t : contiguous_copy(t);
}

// dst = src elementwise: same shape, any strides, cast to dst's dtype.
static void copy_into(const Tensor& dst, const Tensor& src) {
  dispatch_all(src.dtype(), [&](auto stag) {
    using S = decltype(stag);
    dispatch_all(dst.dtype(), [&](auto dtag) {
      using D = decltype(dtag);
      Strides st[2] = {dst.strides(), src.strides()};
      StridedLoop loop(dst.shape(), 2, st);
      char* base[2] = {(char*)dst.data<D>(), (char*)src.data<S>()};
      int64_t es[2] = {sizeof(D), sizeof(S)};
      loop.run(base, es, [&](char** p, const int64_t* s, int64_t n) {
        D* o = (D*)p[0];
        const S* x = (const S*)p[1];
        if (s[0] == 1 && s[1] == 1) {
          for (int64_t i = 0; i < n; i++) o[i] = (D)x[i];
        } else {
          for (int64_t i = 0; i < n; i++) o[i * s[0]] = (D)x[i * s[1]];
        }
      });
    });
  });
}

// The shape `req` (one -1 allowed) for a tensor of a.numel() elements.
static Shape infer_shape(const Tensor& a, const std::vector<int64_t>& req, const char* op) {
  TG_CHECK(req.size() <= (size_t)kMaxDims, ValueError, op, ": shape ", vec_str(req), " has ",
           req.size(), " dimensions; tapegrad supports at most ", kMaxDims);
  Shape s = Shape::from(req);
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.ndim; i++) {
    if (s[i] == -1) {
      TG_CHECK(infer < 0, ValueError, op, ": only one dimension can be inferred (-1), got shape ",
               vec_str(req));
      infer = i;
    } else {
      TG_CHECK(s[i] >= 0, ValueError, op, ": invalid size ", s[i], " in shape ", vec_str(req));
    }
  }
  if (infer >= 0) {
    Shape k = s;
    k[infer] = 1;
    known = numel(k);
  }
  int64_t n = a.numel();
  if (infer >= 0) {
    TG_CHECK(known != 0, ValueError, op, ": cannot reshape ", a.describe(), " into shape ",
             vec_str(req), " because the size of the -1 dimension could be anything");
    TG_CHECK(n % known == 0, ValueError, op, ": shape ", vec_str(req), " is invalid for input ",
             a.describe(), " of ", n, " elements");
    s[infer] = n / known;
  }
  TG_CHECK(numel(s) == n, ValueError, op, ": shape ", vec_str(req), " is invalid for input ",
           a.describe(), " of ", n, " elements");
  return s;
}

// Strides that let a tensor (old shape, old strides) be viewed as `shape`
// without copying, or false when no such strides exist (PyTorch's
// computeStride: each run of dims that is contiguous in memory can be
// re-split freely).
static bool view_strides(const Shape& old, const Strides& old_st, const Shape& shape,
                         Strides& out) {
  out = contiguous_strides(shape);
  if (numel(old) == 0) return true;
  if (old.ndim == 0) return true;  // one element: numel(shape) == 1, any strides do
  int view_d = shape.ndim - 1;
  int64_t chunk_base = old_st[old.ndim - 1];
  int64_t tensor_numel = 1, view_numel = 1;
  for (int td = old.ndim - 1; td >= 0; td--) {
    tensor_numel *= old[td];
    if (td == 0 || (old[td - 1] != 1 && old_st[td - 1] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base = old_st[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

// ================================================================ reshape / view
// y = x with a new shape       dx = reshape(g, x.shape)
static Tensor reshape_impl(const Tensor& a, const std::vector<int64_t>& req, const char* op,
                           bool allow_copy) {
  check_defined(a, op, "input");
  Shape s = infer_shape(a, req, op);
  Strides st;
  Tensor out;
  if (a.is_contiguous()) {
    out = make_view(a, s, contiguous_strides(s), a.impl()->offset);
  } else if (view_strides(a.shape(), a.strides(), s, st)) {
    out = make_view(a, s, st, a.impl()->offset);
  } else {
    TG_CHECK(allow_copy, RuntimeError, op, ": ", a.describe(), " with strides ",
             to_string(a.strides()), " is not contiguous and cannot be viewed as shape ",
             to_string(s), " without a copy; use reshape(...) instead (or contiguous() first)");
    out = contiguous_copy(a);
    out.impl()->shape = s;
    out.impl()->strides = contiguous_strides(s);
  }
  if (auto r = record(OpId::Reshape, a)) finish(r, out);
  return out;
}
Tensor reshape(const Tensor& a, const std::vector<int64_t>& shape) {
  TG_TRACE(reshape, a, shape);
  return reshape_impl(a, shape, "reshape", true);
}
Tensor view(const Tensor& a, const std::vector<int64_t>& shape) {
  TG_TRACE(view, a, shape);
  return reshape_impl(a, shape, "view", false);
}
void Reshape_backward(const Record& r, Tensor& g, Tensor* gin) {
  const Shape& in = r.inputs[0].shape;
  if (g.is_contiguous()) {  // the usual case, without building a size list
    gin[0] = make_view(g, in, contiguous_strides(in), g.impl()->offset);
    return;
  }
  gin[0] = reshape(g, in.vec());
}

// ================================================================ permute
// y = x with dims reordered    dx = permute(g, inverse(dims))
static Tensor permute_impl(const Tensor& a, const int64_t* dims, int ndims) {
  check_defined(a, "permute", "input");
  int nd = a.ndim();
  auto listed = [&] { return vec_str(std::vector<int64_t>(dims, dims + ndims)); };
  TG_CHECK(ndims == nd, ValueError, "permute: dims ", listed(), " must list each of the ", nd,
           " dimensions of ", a.describe(), " exactly once");
  Shape s;
  Strides st;
  Dims wrapped;
  s.ndim = st.ndim = wrapped.ndim = nd;
  bool seen[kMaxDims] = {};
  for (int i = 0; i < nd; i++) {
    int d = wrap_dim(dims[i], nd, "permute");
    TG_CHECK(!seen[d], ValueError, "permute: dimension ", d, " appears twice in dims ",
             listed(), " for ", a.describe());
    seen[d] = true;
    wrapped[i] = d;
    s[i] = a.shape()[d];
    st[i] = a.strides()[d];
  }
  Tensor out = make_view(a, s, st, a.impl()->offset);
  if (auto r = record(OpId::Permute, a)) {
    r->ints.assign(wrapped.begin(), wrapped.end());
    finish(r, out);
  }
  return out;
}
Tensor permute(const Tensor& a, const std::vector<int64_t>& dims) {
  TG_TRACE(permute, a, dims);
  return permute_impl(a, dims.data(), (int)dims.size());
}
void Permute_backward(const Record& r, Tensor& g, Tensor* gin) {
  int64_t inv[kMaxDims];
  for (size_t i = 0; i < r.ints.size(); i++) inv[(size_t)r.ints[i]] = (int64_t)i;
  gin[0] = permute_impl(g, inv, (int)r.ints.size());
}

Tensor transpose(const Tensor& a, int64_t d0, int64_t d1) {
  TG_TRACE(transpose, a, d0, d1);
  check_defined(a, "transpose", "input");
  int nd = a.ndim();
  int x = wrap_dim(d0, nd, "transpose"), y = wrap_dim(d1, nd, "transpose");
  int64_t perm[kMaxDims];
  for (int i = 0; i < nd; i++) perm[i] = i;
  if (nd > 0) std::swap(perm[x], perm[y]);
  return permute_impl(a, perm, nd);
}

Tensor t(const Tensor& a) {
  TG_TRACE(t, a);
  check_defined(a, "t", "input");
  TG_CHECK(a.ndim() <= 2, ValueError, "t: expects a tensor with <= 2 dimensions, got ",
           a.describe(), "; use transpose(a, d0, d1) or permute for more dimensions");
  if (a.ndim() < 2) return a;
  return transpose(a, 0, 1);
}

// ================================================================ expand
// y = x broadcast to `shape`   dx = g (the engine sums it back to x.shape)
Tensor expand(const Tensor& a, const std::vector<int64_t>& shape) {
  TG_TRACE(expand, a, shape);
  check_defined(a, "expand", "input");
  int nd = a.ndim(), n = (int)shape.size();
  TG_CHECK(n <= kMaxDims, ValueError, "expand: shape ", vec_str(shape), " has more than ", kMaxDims,
           " dimensions");
  TG_CHECK(n >= nd, ValueError, "expand: the target shape ", vec_str(shape),
           " has fewer dimensions than the input ", a.describe());
  Shape s;
  Strides st;
  s.ndim = st.ndim = n;
  for (int i = 0; i < n; i++) {
    int j = i - (n - nd);
    int64_t want = shape[i];
    if (j < 0) {
      TG_CHECK(want >= 0, ValueError, "expand: size ", want, " at new leading dimension ", i,
               " of target shape ", vec_str(shape), " must be non-negative (-1 is only allowed "
               "for existing dimensions)");
      s[i] = want;
      st[i] = 0;
      continue;
    }
    int64_t have = a.shape()[j];
    if (want == -1 || want == have) {
      s[i] = have;
      st[i] = a.strides()[j];
    } else {
      TG_CHECK(have == 1, ValueError, "expand: the size of ", a.describe(), " at dimension ", j,
               " (", have, ") must be 1 to expand it to ", want, " (target shape ",
               vec_str(shape), ")");
      TG_CHECK(want >= 0, ValueError, "expand: invalid size ", want, " in target shape ",
               vec_str(shape));
      s[i] = want;
      st[i] = 0;
    }
  }
  tg::numel(s);  // a view of 2^80 elements is refused now, not when first materialised
  Tensor out = make_view(a, s, st, a.impl()->offset);
  if (auto r = record(OpId::Expand, a)) finish(r, out);
  return out;
}
void Expand_backward(const Record& r, Tensor& g, Tensor* gin) { gin[0] = std::move(g); }

// ================================================================ squeeze / unsqueeze / flatten
Tensor squeeze(const Tensor& a, std::optional<int64_t> dim) {
  TG_TRACE(squeeze, a, dim);
  check_defined(a, "squeeze", "input");
  std::vector<int64_t> s;
  if (dim) {
    int d = wrap_dim(*dim, a.ndim(), "squeeze");
    for (int i = 0; i < a.ndim(); i++)
      if (i != d || a.shape()[i] != 1) s.push_back(a.shape()[i]);
  } else {
    for (int i = 0; i < a.ndim(); i++)
      if (a.shape()[i] != 1) s.push_back(a.shape()[i]);
  }
  return reshape(a, s);
}

Tensor unsqueeze(const Tensor& a, int64_t dim) {
  TG_TRACE(unsqueeze, a, dim);
  check_defined(a, "unsqueeze", "input");
  TG_CHECK(a.ndim() < kMaxDims, ValueError, "unsqueeze: ", a.describe(), " already has ",
           kMaxDims, " dimensions, the most tapegrad supports");
  int d = wrap_dim(dim, a.ndim() + 1, "unsqueeze");
  std::vector<int64_t> s = a.shape().vec();
  s.insert(s.begin() + d, 1);
  return reshape(a, s);
}

Tensor flatten(const Tensor& a, int64_t start_dim, int64_t end_dim) {
  TG_TRACE(flatten, a, start_dim, end_dim);
  check_defined(a, "flatten", "input");
  if (a.ndim() == 0) return reshape(a, {1});
  int s0 = wrap_dim(start_dim, a.ndim(), "flatten"), s1 = wrap_dim(end_dim, a.ndim(), "flatten");
  TG_CHECK(s0 <= s1, ValueError, "flatten: start_dim (", start_dim, ") cannot come after end_dim (",
           end_dim, ") for ", a.describe());
  std::vector<int64_t> s;
  int64_t merged = 1;
  for (int i = 0; i < a.ndim(); i++) {
    if (i < s0 || i > s1) {
      s.push_back(a.shape()[i]);
    } else {
      merged *= a.shape()[i];
      if (i == s1) s.push_back(merged);
    }
  }
  return reshape(a, s);
}

// ================================================================ slice
// y = x[..., start:stop:step, ...] (a view)
//                              dx = zeros(x.shape) with g scattered into the slice
Tensor slice(const Tensor& a, int64_t dim, std::optional<int64_t> start,
             std::optional<int64_t> stop, int64_t step) {
  TG_TRACE(slice, a, dim, start, stop, step);
  check_defined(a, "slice", "input");
  TG_CHECK(a.ndim() > 0, IndexError, "slice: cannot slice a 0-d tensor (", a.describe(), ")");
  int d = wrap_dim(dim, a.ndim(), "slice");
  TG_CHECK(step > 0, ValueError, "slice: step must be positive, got ", step);
  int64_t n = a.shape()[d];
  auto clampi = [n](int64_t v) {  // Python's slice.indices for step > 0
    if (v < 0) {
      v += n;
      return v < 0 ? int64_t(0) : v;
    }
    return v > n ? n : v;
  };
  int64_t lo = start ? clampi(*start) : 0;
  int64_t hi = stop ? clampi(*stop) : n;
  int64_t len = hi > lo ? (hi - lo - 1) / step + 1 : 0;
  Shape s = a.shape();
  Strides st = a.strides();
  s[d] = len;
  if (len > 1) st[d] *= step;
  Tensor out = make_view(a, s, st, a.impl()->offset + lo * a.strides()[d]);
  if (auto r = record(OpId::Slice, a)) {
    r->ints = {d, lo, step};
    finish(r, out);
  }
  return out;
}
void Slice_backward(const Record& r, Tensor& g, Tensor* gin) {
  int d = (int)r.ints[0];
  int64_t lo = r.ints[1], step = r.ints[2];
  Tensor z = Tensor::zeros(r.inputs[0].shape, g.dtype());
  Shape s = z.shape();
  Strides st = z.strides();
  int64_t off = lo * st[d];
  s[d] = g.shape()[d];
  if (s[d] > 1) st[d] *= step;
  copy_into(make_view(z, s, st, off), g);
  gin[0] = z;
}

Tensor select(const Tensor& a, int64_t dim, int64_t index) {
  TG_TRACE(select, a, dim, index);
  check_defined(a, "select", "input");
  TG_CHECK(a.ndim() > 0, IndexError, "select: cannot select from a 0-d tensor (", a.describe(),
           ")");
  int d = wrap_dim(dim, a.ndim(), "select");
  int64_t n = a.shape()[d];
  TG_CHECK(index >= -n && index < n, IndexError, "select: index ", index,
           " is out of range for dimension ", d, " with size ", n, " (", a.describe(), ")");
  if (index < 0) index += n;
  std::vector<int64_t> s = a.shape().vec();
  s.erase(s.begin() + d);
  return reshape(slice(a, d, index, index + 1, 1), s);
}

Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length) {
  TG_TRACE(narrow, a, dim, start, length);
  check_defined(a, "narrow", "input");
  TG_CHECK(a.ndim() > 0, IndexError, "narrow: cannot narrow a 0-d tensor (", a.describe(), ")");
  int d = wrap_dim(dim, a.ndim(), "narrow");
  int64_t n = a.shape()[d];
  TG_CHECK(start >= -n && start <= n, IndexError, "narrow: start ", start,
           " is out of range for dimension ", d, " with size ", n, " (", a.describe(), ")");
  if (start < 0) start += n;
  TG_CHECK(length >= 0, ValueError, "narrow: length must be non-negative, got ", length);
  TG_CHECK(length <= n - start, ValueError, "narrow: start (", start, ") + length (", length,
           ") exceeds the size ", n, " of dimension ", d, " of ", a.describe());
  return slice(a, d, start, start + length, 1);
}

// ================================================================ contiguous / clone
// y = x (a dense copy)         dx = g
Tensor contiguous(const Tensor& a) {
  TG_TRACE(contiguous, a);
  check_defined(a, "contiguous", "input");
  if (a.is_contiguous()) return a;
  return clone(a);
}
Tensor clone(const Tensor& a) {
  TG_TRACE(clone, a);
  check_defined(a, "clone", "input");
  Tensor out = contiguous_copy(a);
  if (auto r = record(OpId::Contiguous, a)) finish(r, out);
  return out;
}
void Contiguous_backward(const Record& r, Tensor& g, Tensor* gin) { gin[0] = std::move(g); }

// ================================================================ cat
// y = [x0, x1, ...] along dim  dxi = g[..., off_i : off_i + n_i, ...]
//
// Note [cat of 1-D empty tensors]
// As PyTorch (legacy behaviour kept for old code), a tensor of shape [0] is
// skipped when the others have a different number of dimensions.
static bool legacy_empty(const Tensor& t) { return t.ndim() == 1 && t.shape()[0] == 0; }

Tensor cat(const std::vector<Tensor>& ts, int64_t dim) {
  TG_TRACE(cat, ts, dim);
  TG_CHECK(!ts.empty(), ValueError, "cat: expected a non-empty list of tensors");
  for (size_t i = 0; i < ts.size(); i++)
    TG_CHECK(ts[i].defined(), ValueError, "cat: tensor ", i, " is undefined (None)");
  size_t ref = 0;
  while (ref < ts.size() && legacy_empty(ts[ref])) ref++;
  if (ref == ts.size()) ref = 0;
  const Tensor& R = ts[ref];
  TG_CHECK(R.ndim() > 0, ValueError, "cat: zero-dimensional tensor ", ref,
           " cannot be concatenated; use stack");
  int d = wrap_dim(dim, R.ndim(), "cat");
  DType dt = R.dtype();
  int64_t total = 0;
  for (size_t i = 0; i < ts.size(); i++) {
    const Tensor& x = ts[i];
    dt = promote(dt, x.dtype());
    if (legacy_empty(x) && R.ndim() != 1) continue;
    TG_CHECK(x.ndim() > 0, ValueError, "cat: zero-dimensional tensor ", i,
             " cannot be concatenated; use stack");
    TG_CHECK(x.ndim() == R.ndim(), ValueError, "cat: tensor ", i, " has shape ",
             to_string(x.shape()), " but tensor ", ref, " has shape ", to_string(R.shape()),
             "; expected the same number of dimensions");
    for (int k = 0; k < R.ndim(); k++)
      TG_CHECK(k == d || x.shape()[k] == R.shape()[k], ValueError, "cat: tensor ", i,
               " has shape ", to_string(x.shape()), " but tensor ", ref, " has shape ",
               to_string(R.shape()), "; sizes must match except in dimension ", d,
               " (mismatch in dimension ", k, ")");
    total += x.shape()[d];
  }
  Shape os = R.shape();
  os[d] = total;
  Tensor out = Tensor::empty(os, dt);
  DimSplit sp(os, d);
  const size_t es = itemsize(dt);
  int64_t off = 0;
  for (const Tensor& x : ts) {
    if (legacy_empty(x) && R.ndim() != 1) continue;
    int64_t ni = x.shape()[d];
    if (ni > 0 && out.numel() > 0) {
      if (x.is_contiguous() && x.dtype() == dt) {
        const char* src = (const char*)x.raw_data();
        char* dst = (char*)out.raw_data() + (size_t)(off * sp.inner) * es;
        size_t chunk = (size_t)(ni * sp.inner) * es, row = (size_t)(total * sp.inner) * es;
        for (int64_t o = 0; o < sp.outer; o++) std::memcpy(dst + o * row, src + o * chunk, chunk);
      } else {
        Shape s = os;
        s[d] = ni;
        copy_into(make_view(out, s, out.strides(), off * out.strides()[d]), x);
      }
    }
    off += ni;
  }
  if (auto r = Tape::current().begin(OpId::Cat, ts)) {
    r->ints = {d};
    finish(r, out);
  }
  return out;
}
void Cat_backward(const Record& r, Tensor& g, Tensor* gin) {
  int d = (int)r.ints[0];
  int64_t off = 0;
  for (size_t i = 0; i < r.inputs.size(); i++) {
    const Shape& s = r.inputs[i].shape;
    if (s.ndim == 1 && s[0] == 0 && g.ndim() != 1) continue;  // skipped in the forward
    int64_t ni = s[d];
    if (r.needs_input_grad(i)) gin[i] = slice(g, d, off, off + ni, 1);
    off += ni;
  }
}

Tensor stack(const std::vector<Tensor>& ts, int64_t dim) {
  TG_TRACE(stack, ts, dim);
  TG_CHECK(!ts.empty(), ValueError, "stack: expected a non-empty list of tensors");
  for (size_t i = 0; i < ts.size(); i++) {
    TG_CHECK(ts[i].defined(), ValueError, "stack: tensor ", i, " is undefined (None)");
    TG_CHECK(ts[i].shape() == ts[0].shape(), ValueError, "stack: expects tensors of equal shape, "
             "but tensor 0 has shape ", to_string(ts[0].shape()), " and tensor ", i,
             " has shape ", to_string(ts[i].shape()));
  }
  int d = wrap_dim(dim, ts[0].ndim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(ts.size());
  for (const Tensor& x : ts) parts.push_back(unsqueeze(x, d));
  return cat(parts, d);
}

// ================================================================ split / chunk
std::vector<Tensor> split(const Tensor& a, int64_t split_size, int64_t dim) {
  TG_TRACE(split, a, split_size, dim);
  check_defined(a, "split", "input");
  TG_CHECK(a.ndim() > 0, ValueError, "split: expects at least a 1-D tensor, got ", a.describe());
  int d = wrap_dim(dim, a.ndim(), "split");
  int64_t n = a.shape()[d];
  TG_CHECK(split_size >= 0, ValueError, "split: split_size must be non-negative, got ",
           split_size);
  TG_CHECK(split_size > 0 || n == 0, ValueError, "split: split_size can only be 0 if dimension ",
           d, " has size 0, but ", a.describe(), " has size ", n);
  std::vector<Tensor> out;
  if (n == 0) {
    out.push_back(slice(a, d, 0, 0, 1));
    return out;
  }
  for (int64_t start = 0; start < n;) {
    int64_t len = split_size < n - start ? split_size : n - start;
    out.push_back(slice(a, d, start, start + len, 1));
    start += len;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& sizes, int64_t dim) {
  TG_TRACE(split, a, sizes, dim);
  check_defined(a, "split", "input");
  TG_CHECK(a.ndim() > 0, ValueError, "split: expects at least a 1-D tensor, got ", a.describe());
  int d = wrap_dim(dim, a.ndim(), "split");
  int64_t n = a.shape()[d], sum = 0;
  for (int64_t s : sizes) {
    TG_CHECK(s >= 0, ValueError, "split: split sizes ", vec_str(sizes),
             " must be non-negative");
    TG_CHECK(s <= n - sum, ValueError, "split: split sizes ", vec_str(sizes),
             " add up to more than the size ", n, " of dimension ", d, " of ", a.describe());
    sum += s;
  }
  TG_CHECK(sum == n, ValueError, "split: split sizes ", vec_str(sizes), " add up to ", sum,
           ", but dimension ", d, " of ", a.describe(), " has size ", n);
  std::vector<Tensor> out;
  out.reserve(sizes.size());
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(a, d, start, start + s, 1));
    start += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& a, int64_t chunks, int64_t dim) {
  TG_TRACE(chunk, a, chunks, dim);
  check_defined(a, "chunk", "input");
  TG_CHECK(a.ndim() > 0, ValueError, "chunk: expects at least a 1-D tensor, got ", a.describe());
  TG_CHECK(chunks > 0, ValueError, "chunk: chunks must be greater than 0, got ", chunks);
  int d = wrap_dim(dim, a.ndim(), "chunk");
  int64_t n = a.shape()[d];
  if (n == 0) return split(a, std::vector<int64_t>((size_t)chunks, 0), d);  // as PyTorch
  return split(a, (n - 1) / chunks + 1, d);
}

// ================================================================ index_select
// y[.., j, ..] = x[.., index[j], ..]
//                              dx = zeros; dx[.., index[j], ..] += g[.., j, ..]
static Tensor index_tensor(const Tensor& index, const char* op, const char* what) {
  check_defined(index, op, what);
  TG_CHECK(index.dtype() == DType::Int64, TypeError, op, ": ", what, " must be an int64 tensor, "
           "got ", index.describe());
  return contiguous_nograd(index);
}

Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index) {
  TG_TRACE(index_select, a, dim, index);
  check_defined(a, "index_select", "input");
  Tensor idx = index_tensor(index, "index_select", "index");
  TG_CHECK(index.ndim() <= 1, ValueError, "index_select: index must be 1-D (or 0-d), got ",
           index.describe());
  int d = wrap_dim(dim, a.ndim(), "index_select");
  int64_t size = a.ndim() ? a.shape()[d] : 1, m = idx.numel();
  const int64_t* ip = idx.data<int64_t>();
  for (int64_t j = 0; j < m; j++)
    TG_CHECK(ip[j] >= 0 && ip[j] < size, IndexError, "index_select: index ", ip[j],
             " is out of range for dimension ", d, " with size ", size, " (", a.describe(), ")");
  Shape os = a.shape();
  if (a.ndim()) os[d] = m;
  else TG_CHECK(m == 1, ValueError, "index_select: the index into a 0-d tensor must have one "
                "element, got ", index.describe());
  Tensor x = contiguous_nograd(a);
  Tensor out = Tensor::empty(os, a.dtype());
  DimSplit sp(a.shape(), d);
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = x.data<T>();
    T* dst = out.data<T>();
    const int64_t inner = sp.inner;
    for (int64_t o = 0; o < sp.outer; o++)
      for (int64_t j = 0; j < m; j++) {
        const T* s = src + (o * sp.n + ip[j]) * inner;
        T* t = dst + (o * m + j) * inner;
        for (int64_t k = 0; k < inner; k++) t[k] = s[k];
      }
  });
  if (auto r = record(OpId::IndexSelect, a, index)) {
    r->ints = {d};
    r->save(idx);
    finish(r, out);
  }
  return out;
}
void IndexSelect_backward(const Record& r, Tensor& g, Tensor* gin) {
  if (!r.needs_input_grad(0)) return;
  int d = (int)r.ints[0];
  const Tensor& idx = r.saved_tensor(0);
  const Shape& in = r.inputs[0].shape;
  Tensor gx = Tensor::zeros(in, g.dtype());
  Tensor gc = contiguous_nograd(g);
  DimSplit sp(in, d);
  int64_t m = idx.numel();
  const int64_t* ip = idx.data<int64_t>();
  dispatch_float(g.dtype(), "index_select", [&](auto tag) {
    using T = decltype(tag);
    T* dst = gx.data<T>();
    const T* src = gc.data<T>();
    const int64_t inner = sp.inner;
    for (int64_t o = 0; o < sp.outer; o++)
      for (int64_t j = 0; j < m; j++) {
        T* t = dst + (o * sp.n + ip[j]) * inner;
        const T* s = src + (o * m + j) * inner;
        for (int64_t k = 0; k < inner; k++) t[k] += s[k];
      }
  });
  gin[0] = gx;
}

// ================================================================ gather
// y[i] = x[i with i_dim replaced by index[i]]   (y.shape = index.shape)
//                              dx = zeros; dx[i with i_dim = index[i]] += g[i]
Tensor gather(const Tensor& a, int64_t dim, const Tensor& index) {
  TG_TRACE(gather, a, dim, index);
  check_defined(a, "gather", "input");
  check_defined(index, "gather", "index");
  TG_CHECK(index.dtype() == DType::Int64, TypeError, "gather: index must be an int64 tensor, got ",
           index.describe());
  int nd = a.ndim();
  TG_CHECK(index.ndim() == nd, ValueError, "gather: index ", index.describe(),
           " must have the same number of dimensions as the input ", a.describe());
  int d = wrap_dim(dim, nd, "gather");
  for (int k = 0; k < nd; k++)
    TG_CHECK(k == d || index.shape()[k] <= a.shape()[k], ValueError, "gather: index ",
             index.describe(), " is larger than the input ", a.describe(), " in dimension ", k,
             "; only dimension ", d, " may be larger");
  int64_t size = nd ? a.shape()[d] : 1, dstride = nd ? a.strides()[d] : 0;
  Strides as = a.strides();
  if (nd) as[d] = 0;
  Tensor out = Tensor::empty(index.shape(), a.dtype());
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Strides st[3] = {out.strides(), index.strides(), as};
    StridedLoop loop(index.shape(), 3, st);
    char* base[3] = {(char*)out.data<T>(), (char*)index.data<int64_t>(), (char*)a.data<T>()};
    int64_t es[3] = {sizeof(T), sizeof(int64_t), sizeof(T)};
    loop.run(base, es, [&](char** p, const int64_t* s, int64_t n) {
      T* o = (T*)p[0];
      const int64_t* ix = (const int64_t*)p[1];
      const T* x = (const T*)p[2];
      for (int64_t i = 0; i < n; i++) {
        int64_t v = ix[i * s[1]];
        TG_CHECK(v >= 0 && v < size, IndexError, "gather: index ", v,
                 " is out of range for dimension ", d, " with size ", size, " (", a.describe(),
                 ")");
        o[i * s[0]] = x[i * s[2] + v * dstride];
      }
    });
  });
  if (auto r = record(OpId::Gather, a, index)) {
    r->ints = {d};
    r->save(index);
    finish(r, out);
  }
  return out;
}
void Gather_backward(const Record& r, Tensor& g, Tensor* gin) {
  if (!r.needs_input_grad(0)) return;
  int d = (int)r.ints[0];
  const Tensor& index = r.saved_tensor(0);
  const Shape& in = r.inputs[0].shape;
  Tensor gx = Tensor::zeros(in, g.dtype());
  Strides zs = gx.strides();
  int64_t dstride = in.ndim ? zs[d] : 0;
  if (in.ndim) zs[d] = 0;
  dispatch_float(g.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    Strides st[3] = {zs, g.strides(), index.strides()};
    StridedLoop loop(index.shape(), 3, st);
    char* base[3] = {(char*)gx.data<T>(), (char*)g.data<T>(), (char*)index.data<int64_t>()};
    int64_t es[3] = {sizeof(T), sizeof(T), sizeof(int64_t)};
    loop.run(base, es, [&](char** p, const int64_t* s, int64_t n) {
      T* o = (T*)p[0];
      const T* gv = (const T*)p[1];
      const int64_t* ix = (const int64_t*)p[2];
      for (int64_t i = 0; i < n; i++) o[i * s[0] + ix[i * s[2]] * dstride] += gv[i * s[1]];
    });
  });
  gin[0] = gx;
}

// ================================================================ embedding
// y[i, :] = W[indices[i], :]   dW = zeros; dW[indices[i], :] += g[i, :]
// (indices are integers and never get a gradient). Rows equal to padding_idx
// get no gradient. With sparse=true and a leaf weight, dW is delivered as a
// RowSparse of the looked-up rows (see Note [Row-sparse gradients]).
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx,
                 bool sparse) {
  TG_TRACE(embedding, indices, weight, padding_idx, sparse);
  check_defined(weight, "embedding", "weight");
  Tensor idx = index_tensor(indices, "embedding", "indices");
  TG_CHECK(weight.ndim() == 2, ValueError, "embedding: weight must be 2-D (num_embeddings, "
           "embedding_dim), got ", weight.describe());
  TG_CHECK(is_floating(weight.dtype()), TypeError, "embedding: weight must be float32 or "
           "float64, got ", weight.describe());
  int64_t V = weight.shape()[0], D = weight.shape()[1], N = idx.numel();
  int64_t pad = -1;
  if (padding_idx) {
    TG_CHECK(*padding_idx >= -V && *padding_idx < V, IndexError, "embedding: padding_idx ",
             *padding_idx, " is out of range for ", V, " embeddings");
    pad = *padding_idx < 0 ? *padding_idx + V : *padding_idx;
  }
  Shape os = indices.shape();
  TG_CHECK(os.ndim < kMaxDims, ValueError, "embedding: indices ", indices.describe(),
           " have too many dimensions for the result (at most ", kMaxDims, ")");
  os.push_back(D);
  const int64_t* ip = idx.data<int64_t>();
  // One branch-free pass (it vectorises; a check per index did not), then the
  // first bad index is looked for only when there is one.
  bool any_bad = false;
  for (int64_t i = 0; i < N; i++) any_bad |= (uint64_t)ip[i] >= (uint64_t)V;
  for (int64_t i = 0; any_bad && i < N; i++)
    TG_CHECK(ip[i] >= 0 && ip[i] < V, IndexError, "embedding: index ", ip[i],
             " is out of range for a weight with ", V, " rows (num_embeddings = ", V, ")");
  // Rows are read in place when the columns are unit-stride.
  Tensor w = (D <= 1 || weight.strides()[1] == 1) ? weight : contiguous_copy(weight);
  int64_t row = w.strides()[0];
  Tensor out = Tensor::empty(os, weight.dtype());
  dispatch_float(weight.dtype(), "embedding", [&](auto tag) {
    using T = decltype(tag);
    const T* src = w.data<T>();
    T* dst = out.data<T>();
    if (D == 0) return;
    parallel_for(N, row_grain(D), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) {
        if (i + kRowsAhead < hi) prefetch_row<false>(src + ip[i + kRowsAhead] * row, D * sizeof(T));
        copy_row(dst + i * D, src + ip[i] * row, (size_t)D * sizeof(T));
      }
    });
  });
  if (auto r = record(OpId::Embedding, indices, weight)) {
    r->save(idx);
    r->ints.push_back(pad);
    r->ints.push_back(sparse ? 1 : 0);
    finish(r, out);
  }
  return out;
}
void Embedding_backward(const Record& r, Tensor& g, Tensor* gin) {
  if (!r.needs_input_grad(1)) return;
  const Tensor& idx = r.saved_tensor(0);
  const Shape& ws = r.inputs[1].shape;
  int64_t pad = r.ints[0];
  bool sparse = r.ints[1] && r.inputs[1].leaf;
  int64_t D = ws[1], N = idx.numel();
  const bool own_g = sole_owner(g);  // before gc below takes a second reference
  Tensor gc = contiguous_nograd(g);
  const int64_t* ip = idx.data<int64_t>();
  int64_t kept = N;
  if (pad >= 0) {
    kept = 0;
    for (int64_t i = 0; i < N; i++) kept += ip[i] != pad;
  }
  if (sparse) {
    Tensor rows = Tensor::empty({kept}, DType::Int64);
    if (kept == N && own_g) {
      // The incoming gradient, laid out as (N, D), already is the values, and
      // nothing else can see it: keep it instead of copying N rows.
      int64_t* ri = rows.data<int64_t>();
      std::memcpy(ri, ip, (size_t)N * sizeof(int64_t));
      Shape vs{N, D};
      r.sparse_grad_out = RowSparse::make(rows, make_view(g, vs, contiguous_strides(vs), 0), ws);
      r.sparse_input = 1;
      return;
    }
    // Otherwise copies, never views: the gradient outlives this backward.
    Tensor vals = Tensor::empty({kept, D}, g.dtype());
    dispatch_float(g.dtype(), "embedding", [&](auto tag) {
      using T = decltype(tag);
      const T* src = gc.data<T>();
      T* dst = vals.data<T>();
      int64_t* ri = rows.data<int64_t>();
      for (int64_t i = 0, k = 0; i < N; i++) {
        if (ip[i] == pad) continue;
        ri[k] = ip[i];
        if (D) std::memcpy(dst + k * D, src + i * D, (size_t)D * sizeof(T));
        k++;
      }
    });
    r.sparse_grad_out = RowSparse::make(rows, vals, ws);
    r.sparse_input = 1;
    return;
  }
  Tensor gw = Tensor::zeros(ws, g.dtype());
  dispatch_float(g.dtype(), "embedding", [&](auto tag) {
    using T = decltype(tag);
    T* dst = gw.data<T>();
    const T* src = gc.data<T>();
    for (int64_t i = 0; i < N; i++) {
      if (ip[i] == pad) continue;
      T* o = dst + ip[i] * D;
      const T* s = src + i * D;
      for (int64_t k = 0; k < D; k++) o[k] += s[k];
    }
  });
  gin[1] = gw;
}

}  // namespace tg
