//===- ONNXEncodingTest.cpp - the onnx backend's weight and sidecar formats -===//
//
// MatMulNBits' layout is read back here the way ONNX Runtime's contrib-op
// spec defines it (docs/ContribOperators.md: B [N, k_blocks, blob], low
// bits first; scales [N, k_blocks]; packed zero points or 2^(bits-1)), and
// every element must dequantize to the reference's value
// (include/kiln/Quant/Quant.h). The sidecar files are pinned to
// QEfficient's formats.
//
//===----------------------------------------------------------------------===//
#include "QuantSpecUtil.h"
#include "SidecarFiles.h"
#include "WeightEncoding.h"

#include "kiln/Support/Error.h"

#include <gtest/gtest.h>

#include <random>

using namespace kiln;
using namespace kiln::onnxb;
using kiln::test::spec;

namespace {

std::vector<float> randomMatrix(int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> w(size_t(rows * cols));
  for (float &v : w)
    v = d(rng);
  return w;
}

/// Element (n, k) of a MatMulNBits weight, dequantized per the ORT spec.
float nbitsAt(const NBitsWeight &w, int64_t n, int64_t k) {
  int64_t b = k / w.blockSize, j = k % w.blockSize;
  uint8_t byte = w.B[size_t((n * w.kBlocks + b) * w.blobBytes() + j * w.bits / 8)];
  int64_t u = w.bits == 8 ? byte : (j % 2 ? byte >> 4 : byte & 15);
  int64_t zero = int64_t(1) << (w.bits - 1);
  if (!w.zeroPoints.empty()) {
    uint8_t z = w.zeroPoints[size_t(n * w.zeroPointBytes() + b * w.bits / 8)];
    zero = w.bits == 8 ? z : (b % 2 ? z >> 4 : z & 15);
  }
  return float(u - zero) * w.scales[size_t(n * w.kBlocks + b)];
}

void expectDequantizesLikeReference(const QuantSpec &s, int64_t rows, int64_t cols) {
  std::vector<float> f = randomMatrix(rows, cols, unsigned(rows * 31 + cols));
  QuantizedMatrix m = quantizeMatrix(f.data(), rows, cols, s);
  NBitsWeight w = packMatMulNBits(m, s);
  int64_t K = s.axis == 0 ? rows : cols, N = s.axis == 0 ? cols : rows;
  ASSERT_EQ(w.K, K);
  ASSERT_EQ(w.N, N);
  ASSERT_EQ(int64_t(w.B.size()), N * w.kBlocks * w.blobBytes());
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      int64_t r = s.axis == 0 ? k : n, c = s.axis == 0 ? n : k;
      ASSERT_EQ(nbitsAt(w, n, k), dequantizedAt(m, s, r, c)) << s.name() << " n=" << n << " k=" << k;
    }
    // A partial last block's padding dequantizes to 0.
    for (int64_t k = K; k < w.kBlocks * w.blockSize; ++k)
      ASSERT_EQ(nbitsAt(w, n, k), 0.0f) << s.name() << " padding n=" << n << " k=" << k;
  }
}

} // namespace

TEST(ONNXEncoding, Int8PerChannelAsMatMulNBits) {
  // 40 inputs: one full 32-block and a partial one; the channel's scale in both.
  expectDequantizesLikeReference(spec(WeightFormat::Int8, 0, true, 0), 40, 5);
  expectDequantizesLikeReference(spec(WeightFormat::Int8, 0, true, 1), 7, 64); // a [V, E] table
}

TEST(ONNXEncoding, Int4GroupsAsMatMulNBits) {
  expectDequantizesLikeReference(spec(WeightFormat::Int4, 32, true, 0), 96, 6);
  expectDequantizesLikeReference(spec(WeightFormat::Int4, 16, false, 0), 48, 3); // 3 blocks: odd zero-point nibbles
  expectDequantizesLikeReference(spec(WeightFormat::Int4, 64, false, 1), 5, 128);
  expectDequantizesLikeReference(spec(WeightFormat::Int4, 0, true, 0), 50, 4); // per channel, partial block
}

TEST(ONNXEncoding, NibbleOrderAndZeroPoints) {
  // w[k] = k - 8 for k < 16 (int4 symmetric, scale max|w|/7 = 8/7): u = q + 8, even k low.
  std::vector<float> f(16);
  for (int k = 0; k < 16; ++k)
    f[size_t(k)] = float(k - 8);
  QuantSpec s = spec(WeightFormat::Int4, 16, true, 0);
  NBitsWeight w = packMatMulNBits(quantizeMatrix(f.data(), 16, 1, s), s);
  ASSERT_EQ(w.B.size(), 8u);
  EXPECT_TRUE(w.zeroPoints.empty());
  QuantizedMatrix m = quantizeMatrix(f.data(), 16, 1, s);
  EXPECT_EQ(w.B[0], uint8_t((m.q[0] + 8) | ((m.q[1] + 8) << 4)));
  EXPECT_EQ(w.B[7], uint8_t((m.q[14] + 8) | ((m.q[15] + 8) << 4)));
  // Asymmetric: three blocks' zero points in two bytes, low nibble first.
  std::vector<float> g = randomMatrix(48, 1, 3);
  QuantSpec a = spec(WeightFormat::Int4, 16, false, 0);
  QuantizedMatrix q = quantizeMatrix(g.data(), 48, 1, a);
  NBitsWeight z = packMatMulNBits(q, a);
  ASSERT_EQ(z.zeroPoints.size(), 2u);
  EXPECT_EQ(z.zeroPoints[0], uint8_t(q.zero[0] | (q.zero[1] << 4)));
  EXPECT_EQ(z.zeroPoints[1], uint8_t(q.zero[2]));
}

TEST(ONNXEncoding, BlockSizes) {
  EXPECT_EQ(nbitsBlockSize(spec(WeightFormat::Int8, 0, true, 0)), 32);
  EXPECT_EQ(nbitsBlockSize(spec(WeightFormat::Int4, 128, true, 0)), 128);
  EXPECT_THROW(nbitsBlockSize(spec(WeightFormat::Int4, 8, true, 0)), Error);
  EXPECT_THROW(nbitsBlockSize(spec(WeightFormat::Int4, 48, true, 0)), Error);
}

TEST(ONNXEncoding, Int8ForDequantizeLinear) {
  std::vector<float> f = randomMatrix(8, 3, 1);
  QuantSpec s = spec(WeightFormat::Int8, 0, true, 0);
  QuantizedMatrix m = quantizeMatrix(f.data(), 8, 3, s);
  Int8Weight w = int8PerChannel(m, s);
  ASSERT_EQ(w.scales.size(), 3u);
  for (int64_t k = 0; k < 8; ++k)
    for (int64_t n = 0; n < 3; ++n)
      EXPECT_EQ(float(w.q[size_t(k * 3 + n)]) * w.scales[size_t(n)], dequantizedAt(m, s, k, n));
  EXPECT_THROW(int8PerChannel(quantizeMatrix(f.data(), 8, 3, spec(WeightFormat::Int4, 16, true, 0)),
                              spec(WeightFormat::Int4, 16, true, 0)),
               Error);
}

TEST(ONNXSidecar, QEfficientFormats) {
  GraphInterface g;
  g.promptLen = 32;
  g.ctxLen = 128;
  g.cacheHeads = {12, 12};
  SidecarOptions o;
  o.batch = 1;
  EXPECT_EQ(specializationsJson(g, o), R"({
    "specializations": [
        {
            "name": "Prefill",
            "symbols": {
                "batch_size": "1",
                "ctx_len": "128",
                "seq_len": "32"
            }
        },
        {
            "name": "Decode",
            "symbols": {
                "batch_size": "1",
                "ctx_len": "128",
                "seq_len": "1"
            }
        }
    ]
}
)");
  o.namedSpecializations = false;
  g.promptLen = 1;
  EXPECT_EQ(specializationsJson(g, o),
            "{\n    \"specializations\": [\n        {\n            \"batch_size\": \"1\",\n            \"ctx_len\": \"128\",\n"
            "            \"seq_len\": \"1\"\n        }\n    ]\n}\n");
  std::string io = customIoYaml(g);
  EXPECT_EQ(io.substr(0, 103), " - IOName: past_key.0\n   Precision: float16\n\n - IOName: past_key.0_RetainedState\n   Precision: float16\n");
  EXPECT_NE(io.find(" - IOName: past_value.1_RetainedState\n   Precision: float16\n\n"), std::string::npos);
  g.kvInt8 = true;
  EXPECT_EQ(kvPrecision(g), "mxint8");
  g.kvInt8 = false;
  g.weightType = "bf16";
  EXPECT_EQ(kvPrecision(g), "bfloat16");
  EXPECT_EQ(qaicCompileArgs(g, o).find("-convert-to-fp16"), std::string::npos);
  g.weightType = "f32";
  o.mxfp6 = true;
  o.numCores = 14;
  EXPECT_EQ(qaicCompileArgs(g, o),
            "/opt/qti-aic/exec/qaic-compile -aic-hw -aic-hw-version=ai100 -m=model.onnx -retained-state "
            "-convert-to-fp16 -mxfp6-matmul -aic-num-cores=14 -network-specialization-config=specializations.json "
            "-custom-IO-list-file=custom_io.yaml -aic-binary-dir=qpc");
}
