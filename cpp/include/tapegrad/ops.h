// The C++ op API. Every function records itself on the tape when grad mode is
// on and an input requires grad; see op_table.h for the recorded primitives.
// Composite ops (those without an OpId) are built from primitives and need no
// backward of their own.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "tapegrad/tape.h"
#include "tapegrad/tensor.h"

namespace tg {

enum class Reduction { None, Mean, Sum };
Reduction parse_reduction(const std::string& s, const char* op);

// ---- elementwise binary (NumPy broadcasting, PyTorch dtype promotion)
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties split the gradient, as PyTorch
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// ---- with a Python scalar (the scalar does not promote a float tensor)
Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor rsub(double s, const Tensor& a);  // s - a
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor rdiv(double s, const Tensor& a);  // s / a
Tensor pow(const Tensor& a, double s);
Tensor pow(double s, const Tensor& a);

// ---- elementwise unary
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor sin(const Tensor& a);
Tensor cos(const Tensor& a);
Tensor log1p(const Tensor& a);  // log(1 + x), accurate for tiny x
Tensor expm1(const Tensor& a);  // exp(x) - 1, accurate for tiny x
Tensor erf(const Tensor& a);
Tensor square(const Tensor& a);
Tensor clamp(const Tensor& a, std::optional<double> min, std::optional<double> max);
Tensor to(const Tensor& a, DType dt);  // differentiable cast (copy only if needed)

// ---- comparisons and other ops without gradients (bool / int64 results)
enum class CmpOp { Eq, Ne, Lt, Le, Gt, Ge };
Tensor compare(const Tensor& a, const Tensor& b, CmpOp op);
Tensor compare(const Tensor& a, double s, CmpOp op);
Tensor logical_not(const Tensor& a);
Tensor isnan(const Tensor& a);
Tensor sign(const Tensor& a);

// ---- activations
Tensor sigmoid(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor relu(const Tensor& a);
Tensor leaky_relu(const Tensor& a, double negative_slope = 0.01);
Tensor hardtanh(const Tensor& a, double min_val = -1.0, double max_val = 1.0);
Tensor prelu(const Tensor& a, const Tensor& weight);  // weight: (1) or (C) over dim 1
Tensor softmax(const Tensor& a, int64_t dim);
Tensor log_softmax(const Tensor& a, int64_t dim);

// ---- reductions (empty `dims` = all dims)
Tensor sum(const Tensor& a, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& a, const std::vector<int64_t>& dims = {}, bool keepdim = false);
std::pair<Tensor, Tensor> max(const Tensor& a, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& a, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& a);  // over all elements
Tensor min(const Tensor& a);
Tensor argmax(const Tensor& a, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& a, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor logsumexp(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor var(const Tensor& a, const std::vector<int64_t>& dims = {}, double correction = 1,
           bool keepdim = false);
// Running sum / product along `dim` (bool and int64 inputs give int64).
Tensor cumsum(const Tensor& a, int64_t dim);
Tensor cumprod(const Tensor& a, int64_t dim);
// Sums a tensor down to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& a, const Shape& shape);

// ---- linear algebra
Tensor matmul(const Tensor& a, const Tensor& b);  // 1-D, 2-D, batched N-D, as torch.matmul
Tensor dot(const Tensor& a, const Tensor& b);
Tensor outer(const Tensor& a, const Tensor& b);
// Fused linear layer: act(input @ weight^T + bias), one recorded op (see Note
// [Fused linear] in cpp/src/ops/matmul.cpp). input (..., K), weight (N, K),
// bias (N) or undefined for none -> (..., N). Activation is in kernels.h.
enum class Activation : uint8_t;
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias, Activation act);
// "none", "relu", "tanh", "sigmoid" -> Activation; ValueError naming `op` otherwise.
Activation parse_activation(const std::string& s, const char* op);

// ---- shapes, views and indexing
Tensor reshape(const Tensor& a, const std::vector<int64_t>& shape);  // one -1 allowed
Tensor view(const Tensor& a, const std::vector<int64_t>& shape);     // never copies
Tensor permute(const Tensor& a, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& a, int64_t d0, int64_t d1);
Tensor t(const Tensor& a);  // 2-D transpose (as Tensor.T for <= 2-D)
Tensor expand(const Tensor& a, const std::vector<int64_t>& shape);  // -1 keeps a size
Tensor squeeze(const Tensor& a, std::optional<int64_t> dim = std::nullopt);
Tensor unsqueeze(const Tensor& a, int64_t dim);
Tensor flatten(const Tensor& a, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor slice(const Tensor& a, int64_t dim, std::optional<int64_t> start,
             std::optional<int64_t> stop, int64_t step = 1);  // Python slice rules
Tensor select(const Tensor& a, int64_t dim, int64_t index);    // negative index wraps
Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length);
Tensor contiguous(const Tensor& a);
Tensor clone(const Tensor& a);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& a, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& a, int64_t chunks, int64_t dim = 0);
Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index);  // index: int64 1-D
Tensor gather(const Tensor& a, int64_t dim, const Tensor& index);
// Rows of `weight` (V, D) for int64 `indices` of any shape -> indices.shape + (D).
// Backward scatter-adds into the looked-up rows only; rows equal to
// padding_idx get no gradient; sparse=true delivers a RowSparse gradient to a
// leaf weight (see sparse.h).
Tensor embedding(const Tensor& indices, const Tensor& weight,
                 std::optional<int64_t> padding_idx = std::nullopt, bool sparse = false);

// ---- losses
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     Reduction reduction = Reduction::Mean, int64_t ignore_index = -100);
Tensor nll_loss(const Tensor& log_probs, const Tensor& target,
                Reduction reduction = Reduction::Mean, int64_t ignore_index = -100);
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::Mean);
Tensor mse_loss(const Tensor& input, const Tensor& target,
                Reduction reduction = Reduction::Mean);

// ---- in place (recorded when self or other requires grad: Note [In-place ops with
// autograd] in elementwise.cpp)
void fill_(Tensor& a, double value);
void zero_(Tensor& a);
void add_(Tensor& a, const Tensor& b, double alpha = 1.0);  // a += alpha * b
void mul_(Tensor& a, double s);
void mul_(Tensor& a, const Tensor& b);                     // a *= b (broadcast to a)
void copy_(Tensor& dst, const Tensor& src);                // broadcasting, casting
// In-place forms of unary ops (x.relu_(), ...): the op's result written over a.
#define TG_INPLACE_UNARY_OPS(X) \
  X(neg) X(exp) X(log) X(sqrt) X(abs) X(sin) X(cos) X(square) X(sigmoid) X(tanh) X(relu)
#define TG_DECLARE_INPLACE(name) void name##_(Tensor& a);
TG_INPLACE_UNARY_OPS(TG_DECLARE_INPLACE)
#undef TG_DECLARE_INPLACE
void clamp_(Tensor& a, std::optional<double> min, std::optional<double> max);
void leaky_relu_(Tensor& a, double negative_slope = 0.01);
void hardtanh_(Tensor& a, double min_val = -1.0, double max_val = 1.0);
void masked_fill_(Tensor& a, const Tensor& mask, const Tensor& value);  // a[mask] = value (0-d)
// A contiguous copy made without recording (for kernels and conversions).
Tensor contiguous_copy(const Tensor& a);

// ---- creation
Tensor arange(double start, double end, double step, DType dt);
Tensor eye(int64_t n, int64_t m, DType dt);
void manual_seed(uint64_t seed);
Tensor rand(const Shape& shape, DType dt = DType::Float32);   // U[0, 1)
Tensor randn(const Shape& shape, DType dt = DType::Float32);  // N(0, 1)
Tensor randint(int64_t low, int64_t high, const Shape& shape);

}  // namespace tg
