//===- GraphInterface.h - what an onnx artifact's graph looks like --------===//
//
// MLIR-free and ONNX-free: the lowering fills it, the sidecar files read it.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKENDS_ONNX_GRAPHINTERFACE_H
#define KILN_BACKENDS_ONNX_GRAPHINTERFACE_H

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::onnxb {

/// What the sidecar files need to know about the lowered graph.
struct GraphInterface {
  int64_t promptLen = 0, ctxLen = 0, batch = 1;
  std::vector<int64_t> cacheHeads; ///< per layer
  bool kvInt8 = false;
  /// The weights' float type: "f32", "f16" or "bf16" (the most bytes).
  std::string weightType = "f32";
  /// Switchable adapter slots (kiln/IR/Adapters.h): graph inputs with
  /// `<name>_RetainedState` outputs, as QEfficient exports LoRA weights.
  std::vector<std::string> adapterInputs;
};

} // namespace kiln::onnxb

#endif
