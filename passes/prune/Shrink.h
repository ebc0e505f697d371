//===- Shrink.h - shared by the structured pruning passes ------------------===//
//
// kiln-prune-mlp and kiln-prune-heads remove rows and columns of weights:
// they rewrite the globals, then let the ops' types follow.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_PRUNE_SHRINK_H
#define KILN_PASSES_PRUNE_SHRINK_H

#include "kiln/IR/KilnOps.h"

#include "mlir/IR/BuiltinOps.h"

#include <memory>
#include <string>
#include <vector>

namespace kiln {
class Checkpoint;

/// Checks the options kiln-prune-mlp and kiln-prune-heads share; `unit`
/// names what they remove ("neurons", "heads"). Throws kiln::Error.
void checkStructuredOptions(double fraction, const std::string &score, bool refit, const std::string &unit);

/// Adds `delta` to the bias of the kiln.linear whose weight is the global
/// `weightName` (a refit's intercept); without a bias the intercept is dropped.
void addToLinearBias(mlir::ModuleOp module, llvm::StringRef weightName, const std::vector<double> &delta,
                     std::unique_ptr<Checkpoint> &checkpoint);

/// After globals shrank: recomputes, in order, the result types of the ops
/// that carry a width or head count (weights, linears, GELU, split,
/// split_heads, cache_update, matmul, scale, causal_mask, softmax,
/// attention, merge_heads), gives a KV cache argument its update's head
/// count, and updates each function's signature.
void propagateShrunkTypes(mlir::ModuleOp module);

} // namespace kiln

#endif
