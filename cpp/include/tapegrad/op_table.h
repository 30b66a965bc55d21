#pragma once

// The one table of recorded (differentiable) primitive ops.
//
// Every op that can appear on the tape is listed here exactly once. The OpId
// enum, the backward dispatch table, the Python-visible op list
// (tapegrad._C.op_names()) and the generated test suite all read from it: a
// new op is a line here, its forward+backward in cpp/src/ops/<family>.cpp and a
// spec in tests/op_specs.py (tests fail if a listed op has no spec).
//
// Composite ops (sub via add/neg is *not* used: sub is cheap enough to be its
// own primitive; but dot, outer, stack, split, squeeze, var, ... are
// composites) need no entry: their gradient comes from the primitives.
//
// TG_OP(Name, "python_name", family)
#include <cstdint>

#define TG_OP_TABLE(TG_OP)                          \
  /* elementwise binary, NumPy broadcasting */      \
  TG_OP(Add, "add", elementwise)                    \
  TG_OP(Sub, "sub", elementwise)                    \
  TG_OP(Mul, "mul", elementwise)                    \
  TG_OP(Div, "div", elementwise)                    \
  TG_OP(Pow, "pow", elementwise)                    \
  TG_OP(Maximum, "maximum", elementwise)            \
  TG_OP(Minimum, "minimum", elementwise)            \
  TG_OP(Where, "where", elementwise)                \
  /* tensor (op) python scalar */                   \
  TG_OP(AddScalar, "add_scalar", elementwise)       \
  TG_OP(MulScalar, "mul_scalar", elementwise)       \
  TG_OP(RDivScalar, "rdiv_scalar", elementwise)     \
  TG_OP(PowScalar, "pow_scalar", elementwise)       \
  TG_OP(RPowScalar, "rpow_scalar", elementwise)     \
  /* elementwise unary */                           \
  TG_OP(Neg, "neg", elementwise)                    \
  TG_OP(Exp, "exp", elementwise)                    \
  TG_OP(Log, "log", elementwise)                    \
  TG_OP(Sqrt, "sqrt", elementwise)                  \
  TG_OP(Abs, "abs", elementwise)                    \
  TG_OP(Sin, "sin", elementwise)                    \
  TG_OP(Cos, "cos", elementwise)                    \
  TG_OP(Log1p, "log1p", elementwise)                \
  TG_OP(Expm1, "expm1", elementwise)                \
  TG_OP(Erf, "erf", elementwise)                    \
  TG_OP(Square, "square", elementwise)              \
  TG_OP(Clamp, "clamp", elementwise)                \
  TG_OP(Cast, "to", elementwise)                    \
  /* activations */                                 \
  TG_OP(Sigmoid, "sigmoid", activations)            \
  TG_OP(Tanh, "tanh", activations)                  \
  TG_OP(Relu, "relu", activations)                  \
  TG_OP(LeakyRelu, "leaky_relu", activations)       \
  TG_OP(Hardtanh, "hardtanh", activations)          \
  TG_OP(Prelu, "prelu", activations)                \
  TG_OP(Softmax, "softmax", activations)            \
  TG_OP(LogSoftmax, "log_softmax", activations)     \
  /* reductions over dims */                        \
  TG_OP(Sum, "sum", reduce)                         \
  TG_OP(Mean, "mean", reduce)                       \
  TG_OP(MaxDim, "max", reduce)                      \
  TG_OP(MinDim, "min", reduce)                      \
  TG_OP(LogSumExp, "logsumexp", reduce)             \
  TG_OP(Cumsum, "cumsum", reduce)                   \
  TG_OP(Cumprod, "cumprod", reduce)                 \
  /* linear algebra */                              \
  TG_OP(Matmul, "matmul", matmul)                   \
  TG_OP(Linear, "linear", matmul)                   \
  /* shape, views and indexing */                   \
  TG_OP(Reshape, "reshape", shape)                  \
  TG_OP(Permute, "permute", shape)                  \
  TG_OP(Expand, "expand", shape)                    \
  TG_OP(Slice, "slice", shape)                      \
  TG_OP(Contiguous, "contiguous", shape)            \
  TG_OP(Cat, "cat", shape)                          \
  TG_OP(IndexSelect, "index_select", shape)         \
  TG_OP(Gather, "gather", shape)                    \
  TG_OP(Embedding, "embedding", shape)              \
  /* losses (fused forward + backward) */           \
  TG_OP(CrossEntropy, "cross_entropy", loss)        \
  TG_OP(NllLoss, "nll_loss", loss)                  \
  TG_OP(BceWithLogits, "binary_cross_entropy_with_logits", loss) \
  TG_OP(MseLoss, "mse_loss", loss)

namespace tg {

enum class OpId : uint8_t {
#define TG_OP_ENUM(Name, py, family) Name,
  TG_OP_TABLE(TG_OP_ENUM)
#undef TG_OP_ENUM
      kCount
};

const char* op_name(OpId op);

}  // namespace tg
