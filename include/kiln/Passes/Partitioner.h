//===- Partitioner.h - fusion groups on the dataflow graph -----------------===//
//
// The fusion passes ask the partitioner which ops to fuse. It finds candidate
// groups by pattern (linear + GELU, residual add + layer norm, the attention
// chain) and accepts each only if contracting it, together with the groups
// accepted before it, leaves the function's dataflow graph acyclic
// (Boost.Graph topological sort of the quotient graph): a fused op can then
// always be scheduled.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_PARTITIONER_H
#define KILN_PASSES_PARTITIONER_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <ostream>
#include <string>
#include <vector>

namespace kiln {

enum class FusionKind { LinearGelu, ResidualLayerNorm, Attention };
const char *fusionKindName(FusionKind kind); ///< The pass that fuses it, e.g. "kiln-fuse-linear-gelu".

struct FusionGroup {
  FusionKind kind;
  /// Members in dataflow order; for Attention: qk matmul, scale, causal mask, softmax, pv matmul.
  std::vector<mlir::Operation *> ops;
};

/// Accepted groups of the given kinds in `func`, in block order of their first op.
std::vector<FusionGroup> partitionFusionGroups(mlir::func::FuncOp func, const std::vector<FusionKind> &kinds);

/// Writes every function's dataflow graph in Graphviz dot (Boost's
/// write_graphviz): one cluster per function, and inside it one cluster per
/// fusion group the partitioner forms (all kinds).
void writeDataflowGraph(mlir::ModuleOp module, std::ostream &os);

} // namespace kiln

#endif
