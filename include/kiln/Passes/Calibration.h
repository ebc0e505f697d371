//===- Calibration.h - running a module over calibration text --------------===//
//
// For passes that measure activations (static activation scales, GPTQ /
// SparseGPT, refits): tokenize the text with the model's tokenizer and run
// the prefill function on the reference interpreter over it, in full
// chunks (no padding rows), windows of the context length.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_CALIBRATION_H
#define KILN_PASSES_CALIBRATION_H

#include "kiln/Interpreter/Interpreter.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace kiln {

/// `option` if set, else the module's `kiln.calibration` (kiln compile
/// --calibration FILE); throws kiln::Error naming both if neither is.
std::string calibrationPath(mlir::ModuleOp module, const std::string &option);

/// Runs `module`'s prefill over the first `maxTokens` tokens of the text at
/// `path` (all if <= 0), calling `observer` before each op. Returns the
/// number of tokens run. Throws kiln::Error on a missing tokenizer or text.
int64_t runCalibration(mlir::ModuleOp module, const std::string &path, int64_t maxTokens,
                       const Interpreter::Observer &observer);

} // namespace kiln

#endif
