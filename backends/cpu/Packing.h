//===- Packing.h - integer weight layouts of the cpu kernels ---------------===//
//
// MLIR-free: the byte layouts the integer kernels read (kernels/KernelABI.h),
// built from the one quantization of include/kiln/Quant/Quant.h. A matrix
// with reduction axis 0 is W[K, N] (a linear), with axis 1 E[N, K] (an LM
// head); N counts output channels. Unit-tested byte by byte (PackingTest).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKENDS_CPU_PACKING_H
#define KILN_BACKENDS_CPU_PACKING_H

#include "kiln/Quant/Quant.h"

#include <cstdint>
#include <vector>

namespace kiln::cpu {

/// "panel16_q8": ceil(N/16) panels of [K][16] int8; scales padded to whole panels.
struct PackedQ8 {
  std::vector<int8_t> data;
  std::vector<float> scales;
};
PackedQ8 packQ8Panels(const QuantizedMatrix &m, const QuantSpec &spec);

/// "q8x4": panels of [ceil(K/4)][16][4] int8; sums = 128 * column sums; scales.
struct PackedQ8x4 {
  std::vector<int8_t> data;
  std::vector<int32_t> sums;
  std::vector<float> scales;
};
PackedQ8x4 packQ8x4(const QuantizedMatrix &m, const QuantSpec &spec);

/// "q4": one row of K/2 bytes per channel (byte i of each 32: k0+i low, k0+16+i
/// high nibble); params {scale, zero} per channel per group. Throws unless
/// K and the group size are multiples of 32.
struct PackedQ4 {
  std::vector<uint8_t> data;
  std::vector<float> params;
};
PackedQ4 packQ4Rows(const QuantizedMatrix &m, const QuantSpec &spec);

/// "q4x4": panels of K/32 chunks of 256 bytes (block v, byte j*4+t: k0+8v+t
/// low, k0+8v+4+t high nibble); scales and (asymmetric) zeros [panels][groups][16].
struct PackedQ4x4 {
  std::vector<uint8_t> data;
  std::vector<float> scales;
  std::vector<int32_t> zeros; ///< Empty when symmetric (zero point 8).
};
PackedQ4x4 packQ4x4(const QuantizedMatrix &m, const QuantSpec &spec);

/// "s24": a row-major f32 W[K, N] with at most 2 nonzeros in every 4
/// consecutive inputs of each output; per 16-output panel and group of 4
/// inputs, values v0[16], v1[16] then one byte per output, i0 | i1 << 2.
/// Throws naming the first group with more than 2 nonzeros.
std::vector<uint8_t> packSparse24(const std::vector<float> &w, int64_t K, int64_t N);

/// "bf16x2": per 16 outputs, [ceil(K/2)][16][2] bf16 (inputs 2h, 2h+1 of an
/// output side by side, the pads 0), rounded to nearest even with denormals
/// flushed to zero (as vdpbf16ps reads them). Element (k, n) of the matrix is
/// w[k * N + n], or w[n * K + k] when `transposed` (an [N, K] table).
std::vector<uint16_t> packBF16x2(const float *w, int64_t K, int64_t N, bool transposed);

} // namespace kiln::cpu

#endif
