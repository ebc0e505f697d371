//===- WeightEncoding.cpp - kiln weight formats as ONNX tensors -----------===//
#include "WeightEncoding.h"

#include "kiln/Support/Error.h"

namespace kiln::onnxb {

int64_t nbitsBlockSize(const QuantSpec &spec) {
  if (spec.groupSize == 0)
    return 32;
  int64_t g = spec.groupSize;
  if (g < 16 || (g & (g - 1)) != 0)
    throw Error("group size " + std::to_string(g) + " of " + spec.name() +
                " has no MatMulNBits block size (a power of two >= 16)");
  return g;
}

NBitsWeight packMatMulNBits(const QuantizedMatrix &m, const QuantSpec &spec) {
  if (!spec.isInteger())
    throw Error(spec.name() + " is not an integer format");
  NBitsWeight w;
  w.bits = spec.format == WeightFormat::Int8 ? 8 : 4;
  w.blockSize = nbitsBlockSize(spec);
  w.K = spec.axis == 0 ? m.rows : m.cols;
  w.N = m.channels;
  w.kBlocks = (w.K + w.blockSize - 1) / w.blockSize;
  const int64_t offset = spec.symmetric ? (int64_t(1) << (w.bits - 1)) : 0;
  const int64_t groupLen = spec.groupSize > 0 ? spec.groupSize : w.K;
  auto qAt = [&](int64_t n, int64_t k) { return m.q[size_t(spec.axis == 0 ? k * m.cols + n : n * m.cols + k)]; };
  w.B.assign(size_t(w.N * w.kBlocks * w.blobBytes()), 0);
  w.scales.assign(size_t(w.N * w.kBlocks), 0.0f);
  if (!spec.symmetric)
    w.zeroPoints.assign(size_t(w.N * w.zeroPointBytes()), 0);
  for (int64_t n = 0; n < w.N; ++n)
    for (int64_t b = 0; b < w.kBlocks; ++b) {
      // Blocks never straddle groups: a group is one block, or (per
      // channel) every block lies in the one group.
      int64_t group = (b * w.blockSize) / groupLen;
      size_t s = size_t(n * m.groups + group);
      w.scales[size_t(n * w.kBlocks + b)] = m.scale[s];
      int64_t zero = spec.symmetric ? offset : m.zero[s];
      if (!spec.symmetric) {
        uint8_t &byte = w.zeroPoints[size_t(n * w.zeroPointBytes() + b * w.bits / 8)];
        byte |= w.bits == 8 ? uint8_t(zero) : uint8_t(zero << (4 * (b % 2)));
      }
      uint8_t *blob = &w.B[size_t((n * w.kBlocks + b) * w.blobBytes())];
      for (int64_t j = 0; j < w.blockSize; ++j) {
        int64_t k = b * w.blockSize + j;
        int64_t u = k < w.K ? qAt(n, k) + offset : zero;
        if (w.bits == 8)
          blob[j] = uint8_t(u);
        else
          blob[j / 2] |= uint8_t(u << (4 * (j % 2)));
      }
    }
  return w;
}

Int8Weight int8PerChannel(const QuantizedMatrix &m, const QuantSpec &spec) {
  if (spec.format != WeightFormat::Int8 || m.groups != 1)
    throw Error(spec.name() + " is not int8 per channel");
  return {m.q, m.scale};
}

} // namespace kiln::onnxb
