//===- WeightValues.h - inline values computed for weights ----------------===//
#ifndef KILN_PASSES_WEIGHTVALUES_H
#define KILN_PASSES_WEIGHTVALUES_H

#include "kiln/IR/KilnOps.h"

#include "llvm/ADT/ArrayRef.h"

namespace kiln {

/// Attaches `values` (row-major, `shape`) to `global` as its inline value.
/// A global of another float type (an f16 or bf16 checkpoint) keeps it when
/// every value is exact in it; otherwise the global and the kiln.weight ops
/// reading it become f32, so no computed value is rounded away.
void setInlineValues(GlobalOp global, llvm::ArrayRef<int64_t> shape, llvm::ArrayRef<float> values);

/// setInlineValues with the record of how they were pruned:
/// `sparsity = {axis, pattern, sparsity}`, the fraction of zeros counted.
void setPrunedValues(GlobalOp global, llvm::StringRef pattern, int64_t axis, llvm::ArrayRef<float> values);

} // namespace kiln

#endif
