//===- Quant.h - weight quantization formats and their exact math ---------===//
//
// MLIR-free. The one definition of every weight format: the interpreter,
// the passes and the backends all quantize through these functions, so the
// reference and the kernels agree on every scale, zero point and rounding.
//
// A weight is a [rows, cols] matrix whose reduction axis (`axis`) is the one
// a matrix product sums over: axis 0 for a linear weight W[in, out] (y = x W),
// axis 1 for an embedding table E[vocab, dim] read as the LM head (y = x E^T).
// The other axis holds the output channels. Integer formats keep one scale
// (and for asymmetric, one zero point) per output channel per group of
// `groupSize` consecutive elements along the reduction axis (0: one group).
//
//  int8 symmetric:  scale = max|w| / 127, q = clamp(rne(w / scale), -127, 127)
//  int4 symmetric:  scale = max|w| / 7,   q = clamp(rne(w / scale), -8, 7)
//  int4 asymmetric: scale = (max - min) / 15, zero = clamp(rne(-min / scale), 0, 15),
//                   q = clamp(rne(w / scale) + zero, 0, 15)
//  explicit scales (spec.scales, from kiln-distill): q = clamp(rne(w / scale), qmin, qmax)
//  dequantized value: float(q - zero) * scale (all in float32); f16 and bf16
//  round to nearest even. rne = round half to even. A group of zeros has
//  scale 0; an asymmetric group of one value c stores q = 1, zero = 0, scale = c.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_QUANT_QUANT_H
#define KILN_QUANT_QUANT_H

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

enum class WeightFormat { F32, F16, BF16, Int8, Int4 };

struct QuantSpec {
  WeightFormat format = WeightFormat::F32;
  int64_t groupSize = 0; ///< 0: the whole reduction axis is one group.
  bool symmetric = true;
  int64_t axis = 0; ///< The reduction axis: 0 or 1.
  /// Symmetric integer formats: scales to use instead of max|w| / qmax, one
  /// per channel per group (channel-major); empty: round-to-nearest's own.
  std::vector<float> scales;

  /// "int4-g32-sym", "int8", "f16", ...
  std::string name() const;
  bool isInteger() const { return format == WeightFormat::Int8 || format == WeightFormat::Int4; }
};

/// Parses "f32", "f16", "bf16", "int8", "int4"; false if unknown.
bool parseWeightFormat(const std::string &name, WeightFormat &format);

/// The integer form of a matrix: q in the matrix's own layout, scales and
/// zero points indexed [channel][group].
struct QuantizedMatrix {
  int64_t rows = 0, cols = 0, groups = 0, channels = 0;
  std::vector<int8_t> q;      ///< rows * cols values (int4: -8..7 symmetric, 0..15 asymmetric)
  std::vector<float> scale;   ///< channels * groups
  std::vector<int8_t> zero;   ///< channels * groups (0 when symmetric)
};

/// Quantizes a row-major [rows, cols] matrix; throws kiln::Error on a bad spec.
QuantizedMatrix quantizeMatrix(const float *w, int64_t rows, int64_t cols, const QuantSpec &spec);
/// The float value element (r, c) of a quantized matrix stands for.
float dequantizedAt(const QuantizedMatrix &m, const QuantSpec &spec, int64_t r, int64_t c);
/// What the model computes with: every element quantized and dequantized
/// (for f16/bf16, rounded to that type), as float32 values.
std::vector<float> quantizeDequantize(const float *w, int64_t rows, int64_t cols, const QuantSpec &spec);

/// Activation quantization (W8A8): one row of a linear's input, symmetric
/// int8. The scale is `staticScale` when > 0 (calibrated), otherwise
/// max|x| / 127 of the row (dynamic, per token); in float32:
///   q = clamp(rne(x / scale), -127, 127), 0 for a scale of 0.
/// The row then stands for q * scale. Returns the scale; writes K values to q.
float quantizeActivationRow(const float *x, int64_t K, float staticScale, int8_t *q);

} // namespace kiln

#endif
