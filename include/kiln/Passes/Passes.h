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

/// Registers every kiln pass with MLIR's pass registry (for pipelines by name).
inline void registerKilnPasses() {
  registerKilnFusionPasses();
  registerKilnQuantPasses();
  registerKilnPrunePasses();
}

} // namespace kiln

#endif
