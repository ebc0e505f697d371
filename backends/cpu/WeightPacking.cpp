//===- WeightPacking.cpp - weights in the layouts the kernels read --------===//
#include "CPUBackend.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Support/Error.h"

#include "../cpu/kernels/KernelABI.h"

namespace kiln::cpu {

WeightPacker::~WeightPacker() = default;

uint64_t WeightPacker::offset(mlir::Operation *op, const std::string &layout) {
  auto key = std::make_pair(op, layout);
  if (auto it = offsets_.find(key); it != offsets_.end())
    return it->second;
  auto global = mlir::cast<GlobalOp>(op);
  if (auto quant = global.getQuantAttr())
    throw Error("cpu backend: weight @" + global.getSymName().str() + " has quantized format " +
                quant.getAs<mlir::StringAttr>("format").str() +
                "; the cpu backend's kernels for quantized weights are not implemented yet (compile without "
                "kiln-quantize-weights, or evaluate the quantized model with kiln eval)");
  auto shape = mlir::cast<mlir::RankedTensorType>(global.getType()).getShape();
  std::vector<double> values = readGlobalValues(op, checkpoint_);
  std::vector<float> packed;
  WeightEntry entry;
  entry.name = global.getSymName().str();
  entry.layout = layout;
  entry.dtype = "f32";
  entry.shape.assign(shape.begin(), shape.end());
  if (layout == "rowmajor") {
    packed.assign(values.begin(), values.end());
  } else if (layout == "panel16" || layout == "panel16t") {
    if (shape.size() != 2)
      throw Error("cpu backend: weight @" + entry.name + " must be 2-D for layout " + layout);
    bool transposed = layout == "panel16t";
    int64_t K = transposed ? shape[1] : shape[0], N = transposed ? shape[0] : shape[1];
    int64_t panels = (N + KILN_PANEL - 1) / KILN_PANEL;
    packed.assign(size_t(panels * K * KILN_PANEL), 0.0f);
    for (int64_t p = 0; p < panels; ++p)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < KILN_PANEL && p * KILN_PANEL + j < N; ++j) {
          int64_t n = p * KILN_PANEL + j;
          packed[size_t((p * K + k) * KILN_PANEL + j)] = float(values[size_t(transposed ? n * K + k : k * N + n)]);
        }
  } else {
    throw Error("cpu backend: unknown weight layout '" + layout + "'");
  }
  entry.bytes = packed.size() * sizeof(float);
  uint64_t bytes = writer_.addWeight(entry, packed.data());
  return offsets_[key] = bytes / sizeof(float);
}

} // namespace kiln::cpu
