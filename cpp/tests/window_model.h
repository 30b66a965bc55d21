// The lectures' window NER model (20k-word table cut to 2,000 rows), shared by
// the C++ tests that train it: each test writes its own forward and step.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/ops.h"

namespace tg::test_model {

constexpr int64_t kVocab = 2000, kDim = 50, kWindow = 5, kHidden = 100, kTags = 5;

struct Model {
  Tensor E, W1, b1, W2, b2;
  std::vector<Tensor*> dense() { return {&W1, &b1, &W2, &b2}; }
};

// Small random weights from `seed`; every parameter requires grad.
inline Model make_model(uint64_t seed) {
  manual_seed(seed);
  Model m;
  NoGradGuard ng;
  m.E = mul(randn({kVocab, kDim}), 0.1);
  m.W1 = mul(randn({kHidden, kWindow * kDim}), 0.05);
  m.b1 = Tensor::zeros({kHidden});
  m.W2 = mul(randn({kTags, kHidden}), 0.1);
  m.b2 = Tensor::zeros({kTags});
  m.E.set_requires_grad(true);
  for (Tensor* p : m.dense()) p->set_requires_grad(true);
  return m;
}

}  // namespace tg::test_model
