//===- KilnDialect.h - the kiln dialect -----------------------------------===//
#ifndef KILN_IR_KILNDIALECT_H
#define KILN_IR_KILNDIALECT_H

#include "mlir/IR/Dialect.h"

#include "kiln/IR/KilnDialect.h.inc"

namespace kiln {
/// Module attribute holding the checkpoint directory that backs kiln.global ops.
inline constexpr llvm::StringLiteral kCheckpointAttr = "kiln.checkpoint";
/// Module attribute holding the model configuration (a dictionary).
inline constexpr llvm::StringLiteral kConfigAttr = "kiln.config";
} // namespace kiln

#endif
