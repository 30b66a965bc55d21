// Row-sparse gradients: the gradient of an embedding table touched at a few
// rows, as (row indices, row values), never materialised densely.
//
// Note [Row-sparse gradients]
// embedding(..., sparse=true) on a leaf weight delivers its gradient as a
// RowSparse instead of a dense tensor of the table's shape, so a training step
// costs O(rows looked up), not O(vocabulary). It is a separate type, not a
// Tensor: no dense op can be handed one by mistake. Like PyTorch's sparse
// gradients it accumulates uncoalesced (indices may repeat); coalesce() sums
// duplicates and sorts. Sparse-aware optimizers (SGD, Adagrad, SparseAdam)
// update only the rows present; the others refuse it with a clear error.
#pragma once

#include "tapegrad/tensor.h"

namespace tg {

struct RowSparse : RefCounted, memory::Pooled {
  Tensor indices;  // int64 [nnz]: rows of the dense tensor
  Tensor values;   // [nnz, row...]: contiguous, the dense tensor's dtype
  Shape dense_shape;

  static Ref<RowSparse> make(Tensor indices, Tensor values, const Shape& dense_shape);
  int64_t nnz() const { return indices.numel(); }
  int64_t row_size() const;  // elements per row
  // Sorted unique indices with the values of repeated rows summed.
  Ref<RowSparse> coalesce() const;
  Tensor to_dense() const;
  // dense[indices[i]] += alpha * values[i] for every i.
  void add_to(Tensor& dense, double alpha = 1.0) const;
  // This + other (same dense shape): concatenation, uncoalesced.
  Ref<RowSparse> concat(const RowSparse& other) const;
};

}  // namespace tg
