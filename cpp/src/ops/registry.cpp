// The backward dispatch table, generated from op_table.h: a missing backward
// is a link error, not a runtime surprise.
#include "op_common.h"

namespace tg {

static const BackwardFn kBackward[] = {
#define TG_OP_BACKWARD_ENTRY(Name, py, family) &Name##_backward,
    TG_OP_TABLE(TG_OP_BACKWARD_ENTRY)
#undef TG_OP_BACKWARD_ENTRY
};
static_assert(sizeof(kBackward) / sizeof(kBackward[0]) == (size_t)OpId::kCount,
              "every op in the table has a backward");

BackwardFn backward_fn(OpId op) { return kBackward[(size_t)op]; }

Reduction parse_reduction(const std::string& s, const char* op) {
  if (s == "mean") return Reduction::Mean;
  if (s == "sum") return Reduction::Sum;
  if (s == "none") return Reduction::None;
  throw ValueError(str(op, ": reduction must be 'mean', 'sum' or 'none', got '", s, "'"));
}

}  // namespace tg
