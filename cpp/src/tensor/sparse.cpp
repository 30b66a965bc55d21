#include "tapegrad/sparse.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "tapegrad/kernels.h"
#include "tapegrad/ops.h"

namespace tg {

Ref<RowSparse> RowSparse::make(Tensor indices, Tensor values, const Shape& dense_shape) {
  TG_CHECK(indices.dtype() == DType::Int64 && indices.ndim() == 1, TypeError,
           "sparse gradient: indices must be int64 1-D, got ", indices.describe());
  TG_CHECK(values.ndim() == dense_shape.ndim && values.shape()[0] == indices.numel(), ValueError,
           "sparse gradient: values ", values.describe(), " do not match ", indices.numel(),
           " indices of a ", to_string(dense_shape), " tensor");
  Ref<RowSparse> s(new RowSparse);
  s->indices = indices.is_contiguous() ? indices : contiguous_copy(indices);
  s->values = values.is_contiguous() ? values : contiguous_copy(values);
  s->dense_shape = dense_shape;
  return s;
}

int64_t RowSparse::row_size() const {
  int64_t n = 1;
  for (int i = 1; i < dense_shape.ndim; i++) n *= dense_shape[i];
  return n;
}

Ref<RowSparse> RowSparse::coalesce() const {
  const int64_t* idx = indices.data<int64_t>();
  int64_t n = nnz(), rs = row_size();
  // The rows by index, repeats in their order: std::sort with the position as
  // the tie-break (stable_sort would take a temporary buffer from the heap),
  // over a buffer from the caching allocator, so a warm step allocates nothing.
  Tensor order_buf = Tensor::empty({n}, DType::Int64);
  int64_t* order = order_buf.data<int64_t>();
  std::iota(order, order + n, 0);
  std::sort(order, order + n, [&](int64_t a, int64_t b) {
    return idx[a] < idx[b] || (idx[a] == idx[b] && a < b);
  });
  int64_t unique = 0;
  for (int64_t i = 0; i < n; i++)
    if (i == 0 || idx[order[i]] != idx[order[i - 1]]) unique++;
  Shape vs = values.shape();
  vs[0] = unique;
  Tensor out_idx = Tensor::empty({unique}, DType::Int64);
  Tensor out_val = Tensor::zeros(vs, values.dtype());
  dispatch_float(values.dtype(), "coalesce", [&](auto tag) {
    using T = decltype(tag);
    const T* v = values.data<T>();
    T* ov = out_val.data<T>();
    int64_t* oi = out_idx.data<int64_t>();
    int64_t u = -1;
    for (int64_t i = 0; i < n; i++) {
      int64_t row = order[i];
      if (i == 0 || idx[row] != idx[order[i - 1]]) oi[++u] = idx[row];
      T* dst = ov + u * rs;
      const T* src = v + row * rs;
      for (int64_t j = 0; j < rs; j++) dst[j] += src[j];
    }
  });
  return make(out_idx, out_val, dense_shape);
}

void RowSparse::add_to(Tensor& dense, double alpha) const {
  TG_CHECK(dense.shape() == dense_shape, ValueError, "sparse gradient: cannot add a ",
           to_string(dense_shape), " gradient into ", dense.describe());
  TG_CHECK(dense.is_contiguous(), RuntimeError, "sparse gradient: target must be contiguous");
  const int64_t* idx = indices.data<int64_t>();
  int64_t rs = row_size(), rows = dense_shape[0];
  Tensor v = values.dtype() == dense.dtype() ? values : to(values, dense.dtype());
  dispatch_float(dense.dtype(), "sparse add", [&](auto tag) {
    using T = decltype(tag);
    const T* src = v.data<T>();
    T* dst = dense.data<T>();
    T a = (T)alpha;
    for (int64_t i = 0, n = nnz(); i < n; i++) {
      TG_CHECK(idx[i] >= 0 && idx[i] < rows, IndexError, "sparse gradient: row ", idx[i],
               " is out of range for ", to_string(dense_shape));
      if (i + kRowsAhead < n && idx[i + kRowsAhead] >= 0 && idx[i + kRowsAhead] < rows)
        prefetch_row<true>(dst + idx[i + kRowsAhead] * rs, rs * sizeof(T));
      T* d = dst + idx[i] * rs;
      const T* s = src + i * rs;
      for (int64_t j = 0; j < rs; j++) d[j] += a * s[j];
    }
  });
  dense.bump_version();
}

Tensor RowSparse::to_dense() const {
  Tensor d = Tensor::zeros(dense_shape, values.dtype());
  add_to(d);
  return d;
}

Ref<RowSparse> RowSparse::concat(const RowSparse& other) const {
  TG_CHECK(other.dense_shape == dense_shape, ValueError, "sparse gradient: cannot add a ",
           to_string(other.dense_shape), " gradient to a ", to_string(dense_shape), " one");
  NoGradGuard no_grad;
  return make(cat({indices, other.indices}, 0), cat({values, to(other.values, values.dtype())}, 0),
              dense_shape);
}

}  // namespace tg
