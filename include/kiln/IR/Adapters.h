//===- Adapters.h - switchable LoRA adapters in a kiln module -------------===//
//
// `kiln compile --adapters NAME=DIR,...` imports each adapted linear as
//   y = linear(x, W, b) + linear(linear(x, lora_A), lora_B)
// where lora_A / lora_B are adapter slots (kiln.global with `adapter`) whose
// value is zeros, the base model. The module attribute kiln.adapters lists
// the adapters in order, each with the slot values it brings:
//   [{name = "fr", source = "/dir", r = 8, alpha = 16.0, rslora = false,
//     values = {"h.0.attn.c_attn.lora_A" = dense<...>, ...}}, ...]
// A slot an adapter leaves alone is absent from its values (zeros).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_IR_ADAPTERS_H
#define KILN_IR_ADAPTERS_H

#include "kiln/IR/KilnOps.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace kiln {

inline constexpr llvm::StringLiteral kAdaptersAttr = "kiln.adapters";

/// The module's switchable adapters, in order (empty without any).
std::vector<std::string> adapterNames(mlir::ModuleOp module);

/// The adapter slots of the weight table, in table order.
std::vector<GlobalOp> adapterSlots(mlir::ModuleOp module);

/// Throws kiln::Error unless `name` is one of the module's adapters or "none".
void checkAdapterName(mlir::ModuleOp module, const std::string &name);

/// The values of `slot` under adapter `name` (zeros where it leaves the
/// slot alone); "none" gives the base model's zeros. Throws kiln::Error for
/// an adapter the module does not have.
std::vector<float> adapterSlotValues(mlir::ModuleOp module, GlobalOp slot, const std::string &name);

/// Throws kiln::Error ("<who>: ..." when `who` is given) when the module has
/// switchable adapters, for the passes and backends that do not handle them yet.
void refuseSwitchableAdapters(mlir::ModuleOp module, const std::string &who = "");

} // namespace kiln

#endif
