#include "tapegrad/kernels.h"

namespace tg {

StridedLoop::StridedLoop(const Shape& s, int n_operands, const Strides* op_strides)
    : nops(n_operands) {
  // Drop size-1 dims, then merge dim i into i+1 wherever every operand is
  // contiguous across the pair, so dense operands become one long run.
  for (int i = 0; i < s.ndim; i++) {
    if (s[i] == 1) continue;
    if (ndim > 0) {
      bool mergeable = true;
      for (int k = 0; k < nops; k++)
        if (strides[k][ndim - 1] != op_strides[k][i] * s[i]) mergeable = false;
      if (mergeable) {
        shape[ndim - 1] *= s[i];
        for (int k = 0; k < nops; k++) strides[k][ndim - 1] = op_strides[k][i];
        continue;
      }
    }
    shape[ndim] = s[i];
    for (int k = 0; k < nops; k++) strides[k][ndim] = op_strides[k][i];
    ndim++;
  }
  if (ndim == 0) {  // a scalar, or all dims of size 1 (numel may still be 0)
    bool empty = false;
    for (int i = 0; i < s.ndim; i++) empty |= s[i] == 0;
    ndim = 1;
    shape[0] = empty ? 0 : 1;
    for (int k = 0; k < nops; k++) strides[k][0] = 0;
  }
}

Strides broadcast_strides(const Tensor& t, const Shape& out) {
  Strides s;
  s.ndim = out.ndim;
  int off = out.ndim - t.ndim();
  for (int i = 0; i < out.ndim; i++) {
    int j = i - off;
    s.d[i] = (j < 0 || t.shape()[j] == 1) ? 0 : t.strides()[j];
  }
  return s;
}

}  // namespace tg
