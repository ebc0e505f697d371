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
} // namespace

std::string WeightPacker::format(mlir::Operation *op) { return quantSpecOf(op).name(); }

uint64_t WeightPacker::offset(mlir::Operation *op, const std::string &layout) {
  auto key = std::make_pair(op, layout);
  if (auto it = offsets_.find(key); it != offsets_.end())
    return it->second;
  auto global = mlir::cast<GlobalOp>(op);
  auto shape = mlir::cast<mlir::RankedTensorType>(global.getType()).getShape();
  QuantSpec spec = quantSpecOf(op);
  std::vector<double> values = readGlobalValues(op, checkpoint_);
  WeightEntry entry;
  entry.name = global.getSymName().str();
  entry.layout = layout;
  entry.dtype = "f32";
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
  if (layout == "rowmajor" || layout == "panel16" || layout == "panel16t") {
    if (spec.format != WeightFormat::F32)
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + " but is read as f32 (" + layout + ")");
    std::vector<float> packed =
        layout == "rowmajor" ? std::vector<float>(values.begin(), values.end())
                             : packPanels<float>(K, N, [&](int64_t k, int64_t n) { return float(values[at(k, n)]); });
    entry.bytes = packed.size() * sizeof(float);
    return offsets_[key] = writer_.addWeight(entry, packed.data());
  }
  if (layout == "panel16_f16" || layout == "panel16t_f16" || layout == "panel16_bf16" || layout == "panel16t_bf16") {
    // 16-bit panels; the values are the reference's (round to nearest even).
    bool f16 = layout.find("bf16") == std::string::npos;
    if (spec.format != (f16 ? WeightFormat::F16 : WeightFormat::BF16) || spec.axis != (transposed ? 1 : 0))
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not " + (f16 ? "f16" : "bf16") +
                  " along axis " + (transposed ? "1" : "0"));
    entry.dtype = f16 ? "f16" : "bf16";
    std::vector<uint16_t> packed = packPanels<uint16_t>(K, N, [&](int64_t k, int64_t n) {
      float v = float(values[at(k, n)]);
      return f16 ? floatToHalf(v) : floatToBf16(v);
    });
    entry.bytes = packed.size() * sizeof(uint16_t);
    return offsets_[key] = writer_.addWeight(entry, packed.data());
  }
  if (layout == "panel16_q8" || layout == "q8_scales" || layout == "panel16t_q8" || layout == "q8t_scales") {
    // int8 per output channel, the exact quantization the reference uses
    // (include/kiln/Quant/Quant.h). The data and its scales come from one
    // quantization and are written together.
    if (spec.format != WeightFormat::Int8 || spec.axis != (transposed ? 1 : 0) || spec.groupSize != 0)
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not int8 per output channel along axis " +
                  (transposed ? "1" : "0"));
    std::vector<float> f(values.begin(), values.end());
    QuantizedMatrix m = quantizeMatrix(f.data(), shape[0], shape[1], spec);
    std::vector<int8_t> packed = packPanels<int8_t>(K, N, [&](int64_t k, int64_t n) { return m.q[at(k, n)]; });
    entry.layout = transposed ? "panel16t_q8" : "panel16_q8";
    entry.dtype = "i8";
    entry.bytes = packed.size();
    offsets_[{op, entry.layout}] = writer_.addWeight(entry, packed.data());
    std::vector<float> scales(size_t(panels(N) * KILN_PANEL), 0.0f);
    std::copy(m.scale.begin(), m.scale.end(), scales.begin());
    entry.layout = transposed ? "q8t_scales" : "q8_scales";
    entry.dtype = "f32";
    entry.shape = {N};
    entry.bytes = scales.size() * sizeof(float);
    offsets_[{op, entry.layout}] = writer_.addWeight(entry, scales.data());
    return offsets_.at(key);
  }
  if (base == "q8x4" || base == "q8x4.sums" || base == "q8x4.scales") {
    // W8A8: int8 per output channel as for panel16_q8, in quads of inputs
    // (kernels/KernelABI.h), with 128 * each column's sum of values.
    if (spec.format != WeightFormat::Int8 || spec.axis != (transposed ? 1 : 0) || spec.groupSize != 0)
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() +
                  ", integer inputs need int8 per output channel along axis " + (transposed ? "1" : "0"));
    std::vector<float> f(values.begin(), values.end());
    QuantizedMatrix m = quantizeMatrix(f.data(), shape[0], shape[1], spec);
    int64_t Kp = (K + 3) / 4 * 4;
    std::vector<int8_t> packed(size_t(panels(N) * Kp * KILN_PANEL), 0);
    std::vector<int32_t> sums(size_t(panels(N) * KILN_PANEL), 0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        int64_t p = n / KILN_PANEL, j = n % KILN_PANEL;
        int8_t q = m.q[at(k, n)];
        packed[size_t((p * Kp + k / 4 * 4) * KILN_PANEL + j * 4 + k % 4)] = q;
        sums[size_t(n)] += 128 * q;
      }
    entry.layout = "q8x4" + suffix;
    entry.dtype = "i8";
    entry.bytes = packed.size();
    offsets_[{op, entry.layout}] = writer_.addWeight(entry, packed.data());
    entry.layout = "q8x4.sums" + suffix;
    entry.dtype = "i32";
    entry.shape = {N};
    entry.bytes = sums.size() * sizeof(int32_t);
    offsets_[{op, entry.layout}] = writer_.addWeight(entry, sums.data());
    std::vector<float> scales(size_t(panels(N) * KILN_PANEL), 0.0f);
    std::copy(m.scale.begin(), m.scale.end(), scales.begin());
    entry.layout = "q8x4.scales" + suffix;
    entry.dtype = "f32";
    entry.bytes = scales.size() * sizeof(float);
    offsets_[{op, entry.layout}] = writer_.addWeight(entry, scales.data());
    return offsets_.at(key);
  }
  if (base == "q4x4" || base == "q4x4.scales" || base == "q4x4.zeros") {
    // W4A8: int4 nibbles in quads of inputs per 16 outputs (kernels/LinearW4A8.c),
    // per-group scales and (asymmetric only) zero points per panel.
    if (spec.format != WeightFormat::Int4 || spec.axis != (transposed ? 1 : 0))
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not int4 along axis " +
                  (transposed ? "1" : "0"));
    int64_t group = spec.groupSize > 0 ? spec.groupSize : K;
    if (K % 32 != 0 || group % 32 != 0)
      throw Error("cpu backend: weight @" + entry.name + " (" + spec.name() + ", " + std::to_string(K) +
                  " inputs): the int4 kernels need inputs and groups in multiples of 32");
    std::vector<float> f(values.begin(), values.end());
    QuantizedMatrix m = quantizeMatrix(f.data(), shape[0], shape[1], spec);
    int64_t chunks = K / 32;
    std::vector<uint8_t> packed(size_t(panels(N) * chunks * 256), 0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        uint8_t u = uint8_t(m.q[at(k, n)] + (spec.symmetric ? 8 : 0));
        int64_t p = n / KILN_PANEL, j = n % KILN_PANEL, c = k / 32, i = k % 32, v = i / 8, t = i % 4;
        bool high = (i % 8) >= 4;
        packed[size_t((p * chunks + c) * 256 + v * 64 + j * 4 + t)] |= uint8_t(high ? u << 4 : u);
      }
    entry.layout = "q4x4" + suffix;
    entry.dtype = "u4";
    entry.bytes = packed.size();
    offsets_[{op, entry.layout}] = writer_.addWeight(entry, packed.data());
    std::vector<float> scales(size_t(panels(N) * m.groups * KILN_PANEL), 0.0f);
    std::vector<int32_t> zeros(scales.size(), 0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < m.groups; ++g) {
        size_t dst = size_t(((n / KILN_PANEL) * m.groups + g) * KILN_PANEL + n % KILN_PANEL);
        scales[dst] = m.scale[size_t(n * m.groups + g)];
        zeros[dst] = m.zero[size_t(n * m.groups + g)];
      }
    entry.layout = "q4x4.scales" + suffix;
    entry.dtype = "f32";
    entry.shape = {panels(N), m.groups, KILN_PANEL};
    entry.bytes = scales.size() * sizeof(float);
    offsets_[{op, entry.layout}] = writer_.addWeight(entry, scales.data());
    if (!spec.symmetric) {
      entry.layout = "q4x4.zeros" + suffix;
      entry.dtype = "i32";
      entry.bytes = zeros.size() * sizeof(int32_t);
      offsets_[{op, entry.layout}] = writer_.addWeight(entry, zeros.data());
    } else if (base == "q4x4.zeros") {
      throw Error("cpu backend: weight @" + entry.name + " is symmetric: it has no zero points");
    }
    return offsets_.at(key);
  }
  if (layout == "q4" || layout == "q4_params" || layout == "q4t" || layout == "q4t_params") {
    // int4 in groups along the reduction axis, one row of nibbles per output
    // channel (kernels/KernelABI.h), from the reference's quantization.
    if (spec.format != WeightFormat::Int4 || spec.axis != (transposed ? 1 : 0))
      throw Error("cpu backend: weight @" + entry.name + " is " + spec.name() + ", not int4 along axis " +
                  (transposed ? "1" : "0"));
    int64_t group = spec.groupSize > 0 ? spec.groupSize : K;
    if (K % 32 != 0 || group % 32 != 0)
      throw Error("cpu backend: weight @" + entry.name + " (" + spec.name() + ", " + std::to_string(K) +
                  " inputs): the int4 kernels need inputs and groups in multiples of 32");
    std::vector<float> f(values.begin(), values.end());
    QuantizedMatrix m = quantizeMatrix(f.data(), shape[0], shape[1], spec);
    std::vector<uint8_t> packed(size_t(N * K / 2), 0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        // Symmetric values -8..7 are stored as u = q + 8 with zero point 8.
        uint8_t u = uint8_t(m.q[at(k, n)] + (spec.symmetric ? 8 : 0));
        int64_t chunk = k / 32, i = k % 32;
        packed[size_t(n * K / 2 + chunk * 16 + i % 16)] |= uint8_t(i < 16 ? u : u << 4);
      }
    entry.layout = transposed ? "q4t" : "q4";
    entry.dtype = "u4";
    entry.bytes = packed.size();
    offsets_[{op, entry.layout}] = writer_.addWeight(entry, packed.data());
    std::vector<float> params(size_t(N * m.groups * 2));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < m.groups; ++g) {
        size_t s = size_t(n * m.groups + g);
        params[2 * s] = m.scale[s];
        params[2 * s + 1] = spec.symmetric ? 8.0f : float(m.zero[s]);
      }
    entry.layout = transposed ? "q4t_params" : "q4_params";
    entry.dtype = "f32";
    entry.shape = {N, m.groups, 2};
    entry.bytes = params.size() * sizeof(float);
    offsets_[{op, entry.layout}] = writer_.addWeight(entry, params.data());
    return offsets_.at(key);
  }
  throw Error("cpu backend: unknown weight layout '" + layout + "'");
}

} // namespace kiln::cpu
