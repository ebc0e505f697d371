//===- Passes.h - every kiln pass -----------------------------------------===//
#ifndef KILN_PASSES_PASSES_H
#define KILN_PASSES_PASSES_H

#include "kiln/IR/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace kiln {

#define GEN_PASS_DECL
#include "kiln/Passes/FusionPasses.h.inc"

#define GEN_PASS_DECL
#include "kiln/Passes/QuantPasses.h.inc"

#define GEN_PASS_REGISTRATION
#include "kiln/Passes/FusionPasses.h.inc"
#define GEN_PASS_REGISTRATION
#include "kiln/Passes/QuantPasses.h.inc"

#define GEN_PASS_DECL
#include "kiln/Passes/PrunePasses.h.inc"
#define GEN_PASS_REGISTRATION
#include "kiln/Passes/PrunePasses.h.inc"

#define GEN_PASS_DECL
#include "kiln/Passes/SpecializePasses.h.inc"
#define GEN_PASS_REGISTRATION
#include "kiln/Passes/SpecializePasses.h.inc"

/// The largest decode batch kiln-batch-decode adds: the cpu kernels run up to
/// this many rows with decode's per-row arithmetic (bit-identical to one row).
inline constexpr int64_t kMaxDecodeBatch = 16;

/// Registers every kiln pass with MLIR's pass registry (for pipelines by name).
inline void registerKilnPasses() {
  registerKilnFusionPasses();
  registerKilnQuantPasses();
  registerKilnPrunePasses();
  registerKilnSpecializePasses();
}

} // namespace kiln

#endif
