//===- PackingTest.cpp - integer weight layouts and their kernels ----------===//
//
// Model-level checks cannot tell which byte a weight went to, so each
// layout is pinned down here: chosen elements land in the byte and nibble
// the layout's definition (kernels/KernelABI.h) says, and the portable
// kernels reading the packed bytes give the product of the hand-dequantized
// matrix exactly (integer dot products) or to float rounding.
//
//===----------------------------------------------------------------------===//
#include "Packing.h"
#include "QuantSpecUtil.h"

#include "KernelABI.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/Float16.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

extern "C" {
void kiln_linear_q8_native(const KilnRuntimeContext *, const float *, const int8_t *, const float *, const float *,
                           float *, int64_t, int64_t, int64_t);
void kiln_linear_q4_native(const KilnRuntimeContext *, const float *, const uint8_t *, const float *, const float *,
                           float *, int64_t, int64_t, int64_t, int64_t);
void kiln_quantize_rows_native(const KilnRuntimeContext *, const float *, int64_t, int64_t, float, int8_t *, float *,
                               int32_t *);
void kiln_linear_w8a8_native(const KilnRuntimeContext *, const int8_t *, const float *, const int8_t *, const float *,
                             const int32_t *, const float *, float *, int64_t, int64_t, int64_t);
void kiln_linear_s24_native(const KilnRuntimeContext *, const float *, const float *, const float *, float *, int64_t,
                            int64_t, int64_t);
void kiln_round_rows_bf16_native(const KilnRuntimeContext *, const float *, int64_t, int64_t, uint16_t *);
void kiln_linear_bf16x2_native(const KilnRuntimeContext *, const uint16_t *, const uint16_t *, const float *, float *,
                               int64_t, int64_t, int64_t);
#ifdef KILN_TEST_DPBF16
void kiln_round_rows_bf16_native_dp(const KilnRuntimeContext *, const float *, int64_t, int64_t, uint16_t *);
void kiln_linear_bf16x2_native_dp(const KilnRuntimeContext *, const uint16_t *, const uint16_t *, const float *,
                                  float *, int64_t, int64_t, int64_t);
#endif
void kiln_linear_w4a8_native(const KilnRuntimeContext *, const int8_t *, const float *, const int32_t *,
                             const uint8_t *, const float *, const int32_t *, const float *, float *, int64_t, int64_t,
                             int64_t, int64_t);
}

using namespace kiln;
using namespace kiln::cpu;

namespace {

using test::spec;

/// A [rows, cols] matrix of distinct-ish values in [-1, 1].
std::vector<float> matrix(int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> w(size_t(rows * cols));
  for (float &v : w)
    v = dist(rng);
  return w;
}

/// x[M, K] @ dequant(W) with the reduction axis of `s`, in double.
std::vector<double> reference(const std::vector<float> &x, const QuantizedMatrix &m, const QuantSpec &s, int64_t M,
                              int64_t K, int64_t N) {
  std::vector<double> y(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        y[size_t(i * N + n)] += double(x[size_t(i * K + k)]) *
                                double(s.axis == 0 ? dequantizedAt(m, s, k, n) : dequantizedAt(m, s, n, k));
  return y;
}

void expectClose(const std::vector<float> &got, const std::vector<double> &want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << "at " << i;
}

TEST(Packing, Q8PanelsAndKernel) {
  const int64_t K = 5, N = 18, M = 3;
  std::vector<float> w = matrix(K, N, 1), x = matrix(M, K, 2);
  QuantSpec s = spec(WeightFormat::Int8, 0, true, 0);
  QuantizedMatrix m = quantizeMatrix(w.data(), K, N, s);
  PackedQ8 p = packQ8Panels(m, s);
  // Element (k = 3, n = 17): panel 1, row 3, lane 1.
  EXPECT_EQ(p.data[size_t((1 * K + 3) * 16 + 1)], m.q[size_t(3 * N + 17)]);
  EXPECT_EQ(p.data.size(), size_t(2 * K * 16));
  EXPECT_EQ(p.data[size_t((1 * K + 3) * 16 + 2)], 0) << "padding lanes are zero";
  std::vector<float> y(size_t(M * N));
  kiln_linear_q8_native(nullptr, x.data(), p.data.data(), p.scales.data(), nullptr, y.data(), M, K, N);
  expectClose(y, reference(x, m, s, M, K, N), 1e-5);
}

TEST(Packing, Q4RowsNibblesAndKernel) {
  for (bool symmetric : {true, false})
    for (int64_t axis : {0, 1}) {
      const int64_t K = 96, N = 5, M = 2, G = 64; // a short last group
      std::vector<float> w = axis == 0 ? matrix(K, N, 3) : matrix(N, K, 3), x = matrix(M, K, 4);
      QuantSpec s = spec(WeightFormat::Int4, G, symmetric, axis);
      QuantizedMatrix m = axis == 0 ? quantizeMatrix(w.data(), K, N, s) : quantizeMatrix(w.data(), N, K, s);
      PackedQ4 p = packQ4Rows(m, s);
      auto q = [&](int64_t k, int64_t n) { return int(m.q[size_t(axis == 0 ? k * N + n : n * K + k)]); };
      int offset = symmetric ? 8 : 0;
      // k = 37 of channel 4: chunk 1, byte 5, low nibble; k = 53: same byte, high nibble.
      uint8_t byte = p.data[size_t(4 * K / 2 + 16 + 5)];
      EXPECT_EQ(byte & 15, q(37, 4) + offset);
      EXPECT_EQ(byte >> 4, q(53, 4) + offset);
      // Group 1 of channel 4: its scale and zero point.
      EXPECT_EQ(p.params[size_t((4 * 2 + 1) * 2)], m.scale[size_t(4 * 2 + 1)]);
      EXPECT_EQ(p.params[size_t((4 * 2 + 1) * 2 + 1)], symmetric ? 8.0f : float(m.zero[size_t(4 * 2 + 1)]));
      std::vector<float> y(size_t(M * N));
      kiln_linear_q4_native(nullptr, x.data(), p.data.data(), p.params.data(), nullptr, y.data(), M, K, N, G);
      expectClose(y, reference(x, m, s, M, K, N), 1e-5);
    }
}

TEST(Packing, Q4RefusesGroupsNotOf32) {
  std::vector<float> w = matrix(48, 2, 5);
  QuantSpec s = spec(WeightFormat::Int4, 16, true, 0);
  EXPECT_THROW(packQ4Rows(quantizeMatrix(w.data(), 48, 2, s), s), Error);
  EXPECT_THROW(packQ4x4(quantizeMatrix(w.data(), 48, 2, s), s), Error);
}

/// The activations the integer kernels see: rows quantized as Quant.h defines.
std::vector<float> quantizedRows(const std::vector<float> &x, int64_t M, int64_t K) {
  std::vector<float> out(x.size());
  std::vector<int8_t> q(static_cast<size_t>(K));
  for (int64_t i = 0; i < M; ++i) {
    float scale = quantizeActivationRow(&x[size_t(i * K)], K, 0, q.data());
    for (int64_t k = 0; k < K; ++k)
      out[size_t(i * K + k)] = float(q[size_t(k)]) * scale;
  }
  return out;
}

TEST(Packing, Q8x4QuadsAndW8A8Kernel) {
  const int64_t K = 10, N = 17, M = 3; // K pads to 12
  std::vector<float> w = matrix(K, N, 6), x = matrix(M, K, 7);
  QuantSpec s = spec(WeightFormat::Int8, 0, true, 0);
  QuantizedMatrix m = quantizeMatrix(w.data(), K, N, s);
  PackedQ8x4 p = packQ8x4(m, s);
  // Element (k = 6, n = 16): panel 1, quad 1, lane 0, byte 2.
  EXPECT_EQ(p.data[size_t((1 * 12 + 4) * 16 + 0 * 4 + 2)], m.q[size_t(6 * N + 16)]);
  int32_t sum = 0;
  for (int64_t k = 0; k < K; ++k)
    sum += m.q[size_t(k * N + 16)];
  EXPECT_EQ(p.sums[16], 128 * sum);
  std::vector<int8_t> xq(size_t(M * 12));
  std::vector<float> xs(static_cast<size_t>(M)), y(static_cast<size_t>(M * N));
  kiln_quantize_rows_native(nullptr, x.data(), M, K, 0, xq.data(), xs.data(), nullptr);
  kiln_linear_w8a8_native(nullptr, xq.data(), xs.data(), p.data.data(), p.scales.data(), p.sums.data(), nullptr,
                          y.data(), M, K, N);
  expectClose(y, reference(quantizedRows(x, M, K), m, s, M, K, N), 1e-5);
}

TEST(Packing, Q4x4NibblesAndW4A8Kernel) {
  for (bool symmetric : {true, false}) {
    const int64_t K = 128, N = 20, M = 2, G = 32;
    std::vector<float> w = matrix(N, K, 8), x = matrix(M, K, 9); // an LM head: E[N, K]
    QuantSpec s = spec(WeightFormat::Int4, G, symmetric, 1);
    QuantizedMatrix m = quantizeMatrix(w.data(), N, K, s);
    PackedQ4x4 p = packQ4x4(m, s);
    int offset = symmetric ? 8 : 0;
    // k = 45 of channel 18: panel 1, chunk 1, i = 13: block 1, t = 1, high nibble (13 % 8 >= 4), lane 2.
    uint8_t byte = p.data[size_t((1 * 4 + 1) * 256 + 1 * 64 + 2 * 4 + 1)];
    EXPECT_EQ(byte >> 4, m.q[size_t(18 * K + 45)] + offset);
    // k = 41 (i = 9: block 1, t = 1, low nibble) shares the byte.
    EXPECT_EQ(byte & 15, m.q[size_t(18 * K + 41)] + offset);
    EXPECT_EQ(p.scales[size_t((1 * 4 + 2) * 16 + 2)], m.scale[size_t(18 * 4 + 2)]);
    EXPECT_EQ(p.zeros.empty(), symmetric);
    std::vector<int8_t> xq(size_t(M * K));
    std::vector<float> xs(static_cast<size_t>(M)), y(static_cast<size_t>(M * N));
    std::vector<int32_t> sums(size_t(M * K / 32));
    kiln_quantize_rows_native(nullptr, x.data(), M, K, 0, xq.data(), xs.data(), sums.data());
    kiln_linear_w4a8_native(nullptr, xq.data(), xs.data(), sums.data(), p.data.data(), p.scales.data(),
                            symmetric ? nullptr : p.zeros.data(), nullptr, y.data(), M, K, N, G);
    expectClose(y, reference(quantizedRows(x, M, K), m, s, M, K, N), 1e-5);
  }
}

TEST(Packing, Sparse24ValuesPositionsAndKernel) {
  const int64_t K = 10, N = 17, M = 3; // a short last group (inputs 8, 9)
  std::vector<float> w = matrix(K, N, 10), x = matrix(M, K, 11);
  // Keep 2 of every 4 inputs per output: positions 1 and 3 of full groups, input 9 of the short one.
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      if (k < 8 ? k % 2 == 0 : k == 8)
        w[size_t(k * N + n)] = 0;
  std::vector<uint8_t> p = packSparse24(w, K, N);
  EXPECT_EQ(p.size(), size_t(2 * 3 * KILN_S24_GROUP_BYTES));
  // Output 16 (panel 1, lane 0), group 1 (inputs 4..7): values of inputs 5 and 7, positions 1 | 3 << 2.
  const uint8_t *grp = &p[size_t((1 * 3 + 1) * KILN_S24_GROUP_BYTES)];
  float v0, v1;
  std::memcpy(&v0, grp + 0 * 4, 4);
  std::memcpy(&v1, grp + (16 + 0) * 4, 4);
  EXPECT_EQ(v0, w[size_t(5 * N + 16)]);
  EXPECT_EQ(v1, w[size_t(7 * N + 16)]);
  EXPECT_EQ(grp[128 + 0], 1 | 3 << 2);
  std::vector<double> want(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        want[size_t(i * N + n)] += double(x[size_t(i * K + k)]) * double(w[size_t(k * N + n)]);
  std::vector<float> y(size_t(M * N));
  kiln_linear_s24_native(nullptr, x.data(), reinterpret_cast<const float *>(p.data()), nullptr, y.data(), M, K, N);
  expectClose(y, want, 1e-5);
  // A group with 3 nonzeros is refused, by name.
  w[size_t(0 * N + 2)] = 1;
  EXPECT_THROW(packSparse24(w, K, N), Error);
}

/// bf16x2: element (k, n) at panel n / 16, pair k / 2, lane n % 16, half k % 2; odd K and a
/// partial last panel padded with 0; the [N, K] transposed read packs the same bytes.
TEST(Packing, BF16x2PairsAndKernels) {
  const int64_t K = 37, N = 35, Kh = 19;
  std::vector<float> w = matrix(K, N, 12), wt(size_t(N * K));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      wt[size_t(n * K + k)] = w[size_t(k * N + n)];
  w[size_t(3 * N + 4)] = 1e-40f; // a denormal: flushed, as vdpbf16ps reads it
  wt[size_t(4 * K + 3)] = 1e-40f;
  std::vector<uint16_t> p = packBF16x2(w.data(), K, N, false);
  ASSERT_EQ(p.size(), size_t(3 * Kh * 16 * 2));
  EXPECT_EQ(p, packBF16x2(wt.data(), K, N, true));
  auto at = [&](int64_t k, int64_t n) { return p[size_t(((n / 16 * Kh + k / 2) * 16 + n % 16) * 2 + k % 2)]; };
  EXPECT_EQ(at(5, 17), floatToBf16(w[size_t(5 * N + 17)]));
  EXPECT_EQ(at(36, 34), floatToBf16(w[size_t(36 * N + 34)]));
  EXPECT_EQ(at(3, 4), 0);
  EXPECT_EQ(p[size_t(((2 * Kh + 18) * 16 + 2) * 2 + 1)], 0); // pad input 37 of output 34
  EXPECT_EQ(p[size_t(((2 * Kh + 0) * 16 + 3) * 2 + 0)], 0);  // pad output 35

  // Activations: nearest even, denormals to zero, the pad 0.
  const float odd[3] = {1.00390625f, 1.01171875f, -1e-40f}; // halfway: down to even, up to even; denormal
  uint16_t xb[4];
  kiln_round_rows_bf16_native(nullptr, odd, 1, 3, xb);
  EXPECT_EQ(xb[0], 0x3f80);
  EXPECT_EQ(xb[1], 0x3f82);
  EXPECT_EQ(xb[2], 0x8000);
  EXPECT_EQ(xb[3], 0);

  // The product of the rounded values: exact products summed in float (1e-5 of double).
  for (int64_t M : {1, 5, 16, 17, 30}) {
    std::vector<float> x = matrix(M, K, 13), bias = matrix(1, N, 14);
    std::vector<uint16_t> xr(size_t(M * (Kh * 2)));
    kiln_round_rows_bf16_native(nullptr, x.data(), M, K, xr.data());
    std::vector<double> want(size_t(M * N));
    for (int64_t i = 0; i < M; ++i)
      for (int64_t n = 0; n < N; ++n) {
        double acc = bias[size_t(n)];
        for (int64_t k = 0; k < K; ++k)
          acc += double(bf16ToFloat(floatToBf16(x[size_t(i * K + k)]))) * double(bf16ToFloat(at(k, n)));
        want[size_t(i * N + n)] = acc;
      }
    std::vector<float> y(size_t(M * N));
    kiln_linear_bf16x2_native(nullptr, xr.data(), p.data(), bias.data(), y.data(), M, K, N);
    expectClose(y, want, 1e-5);
#ifdef KILN_TEST_DPBF16
    if (__builtin_cpu_supports("avx512bf16")) {
      std::vector<uint16_t> xd(xr.size());
      kiln_round_rows_bf16_native_dp(nullptr, x.data(), M, K, xd.data());
      EXPECT_EQ(xd, xr) << "vcvtne2ps2bf16 rounds as the portable code does";
      std::fill(y.begin(), y.end(), 0.0f);
      kiln_linear_bf16x2_native_dp(nullptr, xd.data(), p.data(), bias.data(), y.data(), M, K, N);
      expectClose(y, want, 1e-5);
    }
#endif
  }
#ifdef KILN_TEST_DPBF16
  if (!__builtin_cpu_supports("avx512bf16"))
    std::printf("note: this CPU lacks AVX512-BF16; the vdpbf16ps kernels were not run\n");
#else
  std::printf("note: the compiler lacks -mavx512bf16; the vdpbf16ps kernels were not built\n");
#endif
}

} // namespace
