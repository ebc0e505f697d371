//===- WeightEncoding.h - kiln weight formats as ONNX tensors -------------===//
//
// MLIR-free, unit-tested byte by byte (test/unit/backends/ONNXEncodingTest.cpp). The
// integer formats of include/kiln/Quant/Quant.h become ONNX Runtime's
// com.microsoft::MatMulNBits layout:
//
//   B            uint8 [N, k_blocks, block_size * bits / 8], the stored value
//                u of element (n, k) in block k / block_size, 4-bit values
//                two to a byte, the even k in the low nibble
//   scales       float [N, k_blocks]
//   zero_points  uint8 [N, ceil(k_blocks * bits / 8)] (asymmetric only;
//                4-bit: two blocks to a byte, low nibble first); without it
//                MatMulNBits uses 2^(bits-1)
//
// with Y = A @ ((u - zero_point) * scale)^T. Kiln's symmetric q is stored
// as u = q + 2^(bits-1), so the default zero point restores it exactly;
// asymmetric int4 stores q and its zero as they are. A per-channel format
// (one group over the whole reduction axis) repeats the channel's scale in
// every block. The padding of a partial last block holds the zero point
// (a dequantized 0).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKENDS_ONNX_WEIGHTENCODING_H
#define KILN_BACKENDS_ONNX_WEIGHTENCODING_H

#include "kiln/Quant/Quant.h"

#include <cstdint>
#include <vector>

namespace kiln::onnxb {

struct NBitsWeight {
  int64_t K = 0, N = 0, bits = 0, blockSize = 0, kBlocks = 0;
  std::vector<uint8_t> B;          ///< [N, kBlocks, blockSize * bits / 8]
  std::vector<float> scales;       ///< [N, kBlocks]
  std::vector<uint8_t> zeroPoints; ///< [N, zeroPointBytes()] when asymmetric, else empty
  int64_t blobBytes() const { return blockSize * bits / 8; }
  int64_t zeroPointBytes() const { return (kBlocks * bits + 7) / 8; }
};

/// The block size a format's groups map to: the group size itself (which
/// MatMulNBits needs to be a power of two >= 16), or for a per-channel
/// format 32. Throws kiln::Error naming the group size otherwise.
int64_t nbitsBlockSize(const QuantSpec &spec);

/// Packs a quantized matrix (its reduction axis is spec.axis: K is the
/// rows for axis 0, the columns for axis 1) for MatMulNBits.
NBitsWeight packMatMulNBits(const QuantizedMatrix &m, const QuantSpec &spec);

/// An int8 per-channel matrix for DequantizeLinear (W8A8): q as stored
/// ([K, N] for axis 0, [N, K] for axis 1) and one scale per channel.
struct Int8Weight {
  std::vector<int8_t> q;
  std::vector<float> scales;
};
Int8Weight int8PerChannel(const QuantizedMatrix &m, const QuantSpec &spec);

} // namespace kiln::onnxb

#endif
