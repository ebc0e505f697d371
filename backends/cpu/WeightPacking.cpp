//===- WeightPacking.cpp - weights in the layouts the kernels read --------===//
#include "CPUBackend.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Quant/Quant.h"
#include "kiln/Support/Float16.h"
#include "kiln/Support/Error.h"

#include "../cpu/kernels/KernelABI.h"

namespace kiln::cpu {

WeightPacker::~WeightPacker() = default;

namespace {
QuantSpec specOf(GlobalOp global) {
  QuantSpec spec;
  if (auto quant = global.getQuantAttr()) {
    parseWeightFormat(quant.getAs<mlir::StringAttr>("format").str(), spec.format);
    spec.groupSize = quant.getAs<mlir::IntegerAttr>("group_size").getInt();
    spec.symmetric = quant.getAs<mlir::BoolAttr>("symmetric").getValue();
    spec.axis = quant.getAs<mlir::IntegerAttr>("axis").getInt();
  }
  return spec;
}
} // namespace

std::string WeightPacker::format(mlir::Operation *op) { return specOf(mlir::cast<GlobalOp>(op)).name(); }

uint64_t WeightPacker::offset(mlir::Operation *op, const std::string &layout) {
  auto key = std::make_pair(op, layout);
  if (auto it = offsets_.find(key); it != offsets_.end())
    return it->second;
  auto global = mlir::cast<GlobalOp>(op);
  auto shape = mlir::cast<mlir::RankedTensorType>(global.getType()).getShape();
  QuantSpec spec = specOf(global);
  std::vector<double> values = readGlobalValues(op, checkpoint_);
  WeightEntry entry;
  entry.name = global.getSymName().str();
  entry.layout = layout;
  entry.dtype = "f32";
  entry.shape.assign(shape.begin(), shape.end());
  auto panels = [](int64_t n) { return (n + KILN_PANEL - 1) / KILN_PANEL; };
  uint64_t bytes;
  if (layout == "rowmajor" || layout == "panel16" || layout == "panel16t") {
    if (spec.format != WeightFormat::F32)
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + " but is read as f32 (" + layout + ")");
    std::vector<float> packed;
    if (layout == "rowmajor") {
      packed.assign(values.begin(), values.end());
    } else {
      if (shape.size() != 2)
        throw Error("cpu backend: weight @" + entry.name + " must be 2-D for layout " + layout);
      bool transposed = layout == "panel16t";
      int64_t K = transposed ? shape[1] : shape[0], N = transposed ? shape[0] : shape[1];
      packed.assign(size_t(panels(N) * K * KILN_PANEL), 0.0f);
      for (int64_t p = 0; p < panels(N); ++p)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t j = 0; j < KILN_PANEL && p * KILN_PANEL + j < N; ++j) {
            int64_t n = p * KILN_PANEL + j;
            packed[size_t((p * K + k) * KILN_PANEL + j)] = float(values[size_t(transposed ? n * K + k : k * N + n)]);
          }
    }
    entry.bytes = packed.size() * sizeof(float);
    bytes = writer_.addWeight(entry, packed.data());
  } else if (layout == "panel16_f16" || layout == "panel16t_f16" || layout == "panel16_bf16" ||
             layout == "panel16t_bf16") {
    // 16-bit panels; the values are the reference's (round to nearest even).
    bool f16 = layout.find("bf16") == std::string::npos, transposed = layout.rfind("panel16t", 0) == 0;
    WeightFormat want = f16 ? WeightFormat::F16 : WeightFormat::BF16;
    if (spec.format != want || spec.axis != (transposed ? 1 : 0))
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not " + (f16 ? "f16" : "bf16") +
                  " along axis " + (transposed ? "1" : "0"));
    int64_t K = transposed ? shape[1] : shape[0], N = transposed ? shape[0] : shape[1];
    entry.dtype = f16 ? "f16" : "bf16";
    std::vector<uint16_t> packed(size_t(panels(N) * K * KILN_PANEL), 0);
    for (int64_t p = 0; p < panels(N); ++p)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < KILN_PANEL && p * KILN_PANEL + j < N; ++j) {
          int64_t n = p * KILN_PANEL + j;
          float v = float(values[size_t(transposed ? n * K + k : k * N + n)]);
          packed[size_t((p * K + k) * KILN_PANEL + j)] = f16 ? floatToHalf(v) : floatToBf16(v);
        }
    entry.bytes = packed.size() * sizeof(uint16_t);
    bytes = writer_.addWeight(entry, packed.data());
  } else if (layout == "panel16_q8" || layout == "q8_scales" || layout == "panel16t_q8" || layout == "q8t_scales") {
    // int8 per output channel, the exact quantization the reference uses
    // (include/kiln/Quant/Quant.h): of a [K, N] linear weight (axis 0), or
    // of an [N, K] table read transposed by the LM head (axis 1).
    bool transposed = layout == "panel16t_q8" || layout == "q8t_scales";
    if (spec.format != WeightFormat::Int8 || spec.axis != (transposed ? 1 : 0) || spec.groupSize != 0)
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not int8 per output channel along axis " +
                  (transposed ? "1" : "0"));
    int64_t K = transposed ? shape[1] : shape[0], N = transposed ? shape[0] : shape[1];
    std::vector<float> f(values.begin(), values.end());
    QuantizedMatrix m = quantizeMatrix(f.data(), shape[0], shape[1], spec);
    if (layout == "panel16_q8" || layout == "panel16t_q8") {
      entry.dtype = "i8";
      std::vector<int8_t> packed(size_t(panels(N) * K * KILN_PANEL), 0);
      for (int64_t p = 0; p < panels(N); ++p)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t j = 0; j < KILN_PANEL && p * KILN_PANEL + j < N; ++j) {
            int64_t n = p * KILN_PANEL + j;
            packed[size_t((p * K + k) * KILN_PANEL + j)] = m.q[size_t(transposed ? n * K + k : k * N + n)];
          }
      entry.bytes = packed.size();
      bytes = writer_.addWeight(entry, packed.data());
    } else {
      entry.shape = {N};
      std::vector<float> scales(size_t(panels(N) * KILN_PANEL), 0.0f);
      std::copy(m.scale.begin(), m.scale.end(), scales.begin());
      entry.bytes = scales.size() * sizeof(float);
      bytes = writer_.addWeight(entry, scales.data());
    }
  } else {
    throw Error("cpu backend: unknown weight layout '" + layout + "'");
  }
  return offsets_[key] = bytes;
}

} // namespace kiln::cpu
