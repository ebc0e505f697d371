//===- Lowering.h - kiln IR to an ONNX graph ------------------------------===//
#ifndef KILN_BACKENDS_ONNX_LOWERING_H
#define KILN_BACKENDS_ONNX_LOWERING_H

#include "GraphBuilder.h"
#include "GraphInterface.h"

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::onnxb {

/// Lowers the module's @prefill (its graph serves every specialization:
/// batch, sequence and context lengths are symbolic) into `builder`,
/// QEfficient's KV-retained-state interface name for name. Throws
/// kiln::Error naming the op and format for IR it cannot lower.
GraphInterface lowerToONNX(mlir::ModuleOp module, GraphBuilder &builder);

} // namespace kiln::onnxb

#endif
