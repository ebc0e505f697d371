//===- KilnOps.h - kiln dialect operations --------------------------------===//
#ifndef KILN_IR_KILNOPS_H
#define KILN_IR_KILNOPS_H

#include "kiln/IR/KilnDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "kiln/IR/KilnEnums.h.inc"

#define GET_OP_CLASSES
#include "kiln/IR/KilnOps.h.inc"

namespace kiln {
/// The kiln.global a value reads through kiln.weight; null for any other value.
GlobalOp globalOf(mlir::Value weight);
} // namespace kiln

#endif
