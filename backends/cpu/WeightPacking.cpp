//===- WeightPacking.cpp - weights in the layouts the kernels read --------===//
#include "CPUBackend.h"
#include "Packing.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/IR/Adapters.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Quant/Quant.h"
#include "kiln/Support/Float16.h"
#include "kiln/Support/Error.h"

#include "../cpu/kernels/KernelABI.h"

namespace kiln::cpu {

WeightPacker::~WeightPacker() = default;

namespace {
int64_t panels(int64_t n) { return (n + KILN_PANEL - 1) / KILN_PANEL; }

/// A [K, N] matrix in panel16 order (see kernels/KernelABI.h), zero padded;
/// valueAt(k, n) gives element (k, n).
template <typename T, typename ValueAt> std::vector<T> packPanels(int64_t K, int64_t N, ValueAt valueAt) {
  std::vector<T> packed(size_t(panels(N) * K * KILN_PANEL), T(0));
  for (int64_t p = 0; p < panels(N); ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < KILN_PANEL && p * KILN_PANEL + j < N; ++j)
        packed[size_t((p * K + k) * KILN_PANEL + j)] = valueAt(k, p * KILN_PANEL + j);
  return packed;
}
/// Runs a packer, naming the weight in its error.
template <typename T, typename Fn> T packOrExplain(const std::string &name, Fn pack) {
  try {
    return pack();
  } catch (const Error &e) {
    throw Error("cpu backend: weight @" + name + " (" + e.what() + ")");
  }
}
} // namespace

std::string WeightPacker::format(mlir::Operation *op) { return quantSpecOf(op).name(); }

uint64_t WeightPacker::adapterOffset(mlir::Operation *op, const std::string &layout) {
  if (layout != "panel16")
    throw Error("cpu backend: adapter slot @" + mlir::cast<GlobalOp>(op).getSymName().str() +
                " is read as " + layout + "; the low-rank branch runs the f32 kernel");
  if (auto it = slotOffsets_.find(op); it != slotOffsets_.end())
    return it->second;
  auto shape = mlir::cast<mlir::RankedTensorType>(mlir::cast<GlobalOp>(op).getType()).getShape();
  blockBytes_ = (blockBytes_ + 63) / 64 * 64;
  slotOffsets_[op] = blockBytes_;
  slots_.push_back(op);
  blockBytes_ += uint64_t(panels(shape[1]) * shape[0] * KILN_PANEL) * sizeof(float);
  return slotOffsets_[op];
}

std::string WeightPacker::writeAdapterBlocks(mlir::ModuleOp module) {
  if (slots_.empty())
    return "";
  std::vector<std::string> names = {"none"};
  for (const auto &n : adapterNames(module))
    names.push_back(n);
  std::string yaml = "[";
  for (const auto &name : names) {
    uint64_t base = 0;
    for (size_t i = 0; i < slots_.size(); ++i) {
      auto global = mlir::cast<GlobalOp>(slots_[i]);
      auto shape = mlir::cast<mlir::RankedTensorType>(global.getType()).getShape();
      std::vector<float> v = adapterSlotValues(module, global, name);
      std::vector<float> packed =
          packPanels<float>(shape[0], shape[1], [&](int64_t k, int64_t n) { return v[size_t(k * shape[1] + n)]; });
      WeightEntry entry{"adapter." + name + "/" + global.getSymName().str(), "panel16", "f32",
                        {shape[0], shape[1]}, 0, packed.size() * sizeof(float)};
      uint64_t at = writer_.addWeight(entry, packed.data());
      if (i == 0)
        base = at;
      if (at - base != slotOffsets_.at(slots_[i])) // addWeight aligns as adapterOffset planned
        throw Error("cpu backend: adapter block layout mismatch at @" + global.getSymName().str());
    }
    yaml += std::string(yaml.size() > 1 ? ", " : "") + "{name: " + name + ", offset: " + std::to_string(base) +
            ", bytes: " + std::to_string(blockBytes_) + "}";
  }
  return yaml + "]";
}

uint64_t WeightPacker::offset(mlir::Operation *op, const std::string &layout) {
  if (mlir::cast<GlobalOp>(op).getAdapter())
    throw Error("cpu backend: adapter slot @" + mlir::cast<GlobalOp>(op).getSymName().str() +
                " is not in the weight table (it is read from the adapter block)");
  auto key = std::make_pair(op, layout);
  if (auto it = offsets_.find(key); it != offsets_.end())
    return it->second;
  auto global = mlir::cast<GlobalOp>(op);
  auto shape = mlir::cast<mlir::RankedTensorType>(global.getType()).getShape();
  QuantSpec spec = quantSpecOf(op);
  std::vector<double> values = readGlobalValues(op, checkpoint_);
  WeightEntry entry;
  entry.name = global.getSymName().str();
  entry.shape.assign(shape.begin(), shape.end());
  // Layouts ending in "t" of a panel read an [N, K] table as its transpose.
  // (Newer layouts mark the transposed read with a ".t" suffix.)
  bool dotT = layout.size() > 2 && layout.compare(layout.size() - 2, 2, ".t") == 0;
  bool transposed = layout.rfind("panel16t", 0) == 0 || layout == "q8t_scales" || layout.rfind("q4t", 0) == 0 || dotT;
  const std::string base = dotT ? layout.substr(0, layout.size() - 2) : layout, suffix = dotT ? ".t" : "";
  if (layout != "rowmajor" && shape.size() != 2)
    throw Error("cpu backend: weight @" + entry.name + " must be 2-D for layout " + layout);
  int64_t K = shape.size() == 2 ? (transposed ? shape[1] : shape[0]) : 0;
  int64_t N = shape.size() == 2 ? (transposed ? shape[0] : shape[1]) : 0;
  auto at = [&](int64_t k, int64_t n) { return size_t(transposed ? n * K + k : k * N + n); };
  // Writes one piece of this weight's layout (data, scales, ...) as a
  // manifest entry of `dtype` (and `pieceShape`, else the weight's shape)
  // and records its offset; returns the offset of the piece asked for.
  auto write = [&](const std::string &piece, const char *dtype, const auto &data,
                   std::vector<int64_t> pieceShape = {}) {
    entry.layout = piece;
    entry.dtype = dtype;
    if (!pieceShape.empty())
      entry.shape = std::move(pieceShape);
    entry.bytes = data.size() * sizeof(data[0]);
    offsets_[{op, piece}] = writer_.addWeight(entry, data.data());
  };
  if (layout == "rowmajor" || layout == "panel16" || layout == "panel16t") {
    if (spec.format != WeightFormat::F32)
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + " but is read as f32 (" + layout + ")");
    std::vector<float> packed =
        layout == "rowmajor" ? std::vector<float>(values.begin(), values.end())
                             : packPanels<float>(K, N, [&](int64_t k, int64_t n) { return float(values[at(k, n)]); });
    write(layout, "f32", packed);
    return offsets_.at(key);
  }
  if (layout == "panel16_f16" || layout == "panel16t_f16" || layout == "panel16_bf16" || layout == "panel16t_bf16") {
    // 16-bit panels; the values are the reference's (round to nearest even).
    bool f16 = layout.find("bf16") == std::string::npos;
    if (spec.format != (f16 ? WeightFormat::F16 : WeightFormat::BF16) || spec.axis != (transposed ? 1 : 0))
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not " + (f16 ? "f16" : "bf16") +
                  " along axis " + (transposed ? "1" : "0"));
    std::vector<uint16_t> packed = packPanels<uint16_t>(K, N, [&](int64_t k, int64_t n) {
      float v = float(values[at(k, n)]);
      return f16 ? floatToHalf(v) : floatToBf16(v);
    });
    write(layout, f16 ? "f16" : "bf16", packed);
    return offsets_.at(key);
  }
  if (base == "bf16x2") {
    // --cpu-math=bf16: f32 weights rounded to bf16 here; bf16 ones are exact.
    if ((spec.format != WeightFormat::F32 && spec.format != WeightFormat::BF16) ||
        (spec.format == WeightFormat::BF16 && spec.axis != (transposed ? 1 : 0)))
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not f32 or bf16 (computed in bf16)");
    std::vector<float> v(values.begin(), values.end());
    write(layout, "bf16", packBF16x2(v.data(), K, N, transposed));
    return offsets_.at(key);
  }
  if (layout == "panel16_q8" || layout == "q8_scales" || layout == "panel16t_q8" || layout == "q8t_scales") {
    // int8 per output channel, the exact quantization the reference uses
    // (include/kiln/Quant/Quant.h). The data and its scales come from one
    // quantization and are written together.
    if (spec.format != WeightFormat::Int8 || spec.axis != (transposed ? 1 : 0) || spec.groupSize != 0)
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not int8 per output channel along axis " +
                  (transposed ? "1" : "0"));
    std::vector<float> f(values.begin(), values.end());
    PackedQ8 p = packQ8Panels(quantizeMatrix(f.data(), shape[0], shape[1], spec), spec);
    write(transposed ? "panel16t_q8" : "panel16_q8", "i8", p.data);
    write(transposed ? "q8t_scales" : "q8_scales", "f32", p.scales, {N});
    return offsets_.at(key);
  }
  if (base == "q8x4" || base == "q8x4.sums" || base == "q8x4.scales") {
    // W8A8: int8 per output channel as for panel16_q8, in quads of inputs
    // (kernels/KernelABI.h), with 128 * each column's sum of values.
    if (spec.format != WeightFormat::Int8 || spec.axis != (transposed ? 1 : 0) || spec.groupSize != 0)
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() +
                  ", integer inputs need int8 per output channel along axis " + (transposed ? "1" : "0"));
    std::vector<float> f(values.begin(), values.end());
    PackedQ8x4 p = packQ8x4(quantizeMatrix(f.data(), shape[0], shape[1], spec), spec);
    write("q8x4" + suffix, "i8", p.data);
    write("q8x4.sums" + suffix, "i32", p.sums, {N});
    write("q8x4.scales" + suffix, "f32", p.scales);
    return offsets_.at(key);
  }
  if (base == "q4x4" || base == "q4x4.scales" || base == "q4x4.zeros") {
    // W4A8: int4 nibbles in quads of inputs per 16 outputs (kernels/LinearW4A8.c),
    // per-group scales and (asymmetric only) zero points per panel.
    if (spec.format != WeightFormat::Int4 || spec.axis != (transposed ? 1 : 0))
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not int4 along axis " +
                  (transposed ? "1" : "0"));
    std::vector<float> f(values.begin(), values.end());
    QuantizedMatrix m = quantizeMatrix(f.data(), shape[0], shape[1], spec);
    PackedQ4x4 p = packOrExplain<PackedQ4x4>(entry.name, [&] { return packQ4x4(m, spec); });
    write("q4x4" + suffix, "u4", p.data);
    write("q4x4.scales" + suffix, "f32", p.scales, {panels(N), m.groups, KILN_PANEL});
    if (!spec.symmetric)
      write("q4x4.zeros" + suffix, "i32", p.zeros);
    else if (base == "q4x4.zeros")
      throw Error("cpu backend: weight @" + entry.name + " is symmetric: it has no zero points");
    return offsets_.at(key);
  }
  if (layout == "s24") {
    // 2:4 sparse f32 (kiln-prune{pattern=2:4}): only the kept values and their positions.
    if (spec.format != WeightFormat::F32)
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", the 2:4 kernels read f32");
    std::vector<float> f(values.begin(), values.end());
    std::vector<uint8_t> packed = packOrExplain<std::vector<uint8_t>>(entry.name, [&] { return packSparse24(f, K, N); });
    write(layout, "s24", packed);
    return offsets_.at(key);
  }
  if (layout == "q4" || layout == "q4_params" || layout == "q4t" || layout == "q4t_params") {
    // int4 in groups along the reduction axis, one row of nibbles per output
    // channel (kernels/KernelABI.h), from the reference's quantization.
    if (spec.format != WeightFormat::Int4 || spec.axis != (transposed ? 1 : 0))
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not int4 along axis " +
                  (transposed ? "1" : "0"));
    std::vector<float> f(values.begin(), values.end());
    QuantizedMatrix m = quantizeMatrix(f.data(), shape[0], shape[1], spec);
    PackedQ4 p = packOrExplain<PackedQ4>(entry.name, [&] { return packQ4Rows(m, spec); });
    write(transposed ? "q4t" : "q4", "u4", p.data);
    write(transposed ? "q4t_params" : "q4_params", "f32", p.params, {N, m.groups, 2});
    return offsets_.at(key);
  }
  throw Error("cpu backend: unknown weight layout '" + layout + "'");
}

} // namespace kiln::cpu
