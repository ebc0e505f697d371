//===- QuantTest.cpp - every weight format against hand-computed values ---===//
//
// Model-level KL cannot catch a layout bug (int4 grouped along the wrong
// axis still passes a KL bar), so each format is pinned down here exactly:
// scales, zero points, group axis and rounding (half to even).
//
//===----------------------------------------------------------------------===//
#include "kiln/Quant/Quant.h"
#include "QuantSpecUtil.h"
#include "kiln/Support/Error.h"

#include <gtest/gtest.h>

using namespace kiln;

namespace {

using test::spec;

TEST(Quant, Int8PerOutputChannelRoundsHalfToEven) {
  // W[in = 4, out = 2], reduction axis 0: column 0 has max |w| = 127, so scale 1.
  const float w[] = {127, 0, -63.5, 0, 31.5, 0, 2.5, 0};
  QuantSpec s = spec(WeightFormat::Int8, 0, true, 0);
  QuantizedMatrix m = quantizeMatrix(w, 4, 2, s);
  ASSERT_EQ(m.channels, 2);
  ASSERT_EQ(m.groups, 1);
  EXPECT_EQ(m.scale, (std::vector<float>{1.0f, 0.0f}));
  EXPECT_EQ(m.q, (std::vector<int8_t>{127, 0, -64, 0, 32, 0, 2, 0}));
  EXPECT_EQ(quantizeDequantize(w, 4, 2, s), (std::vector<float>{127, 0, -64, 0, 32, 0, 2, 0}));
  EXPECT_EQ(s.name(), "int8-sym");
}

TEST(Quant, Int4SymmetricGroupsRunAlongTheReductionAxis) {
  // E[2, 4] read as the LM head: reduction axis 1, groups of 2 within each row.
  const float e[] = {7, -3.5, 1, 0.5, -8, 8, 0, 0};
  QuantSpec s = spec(WeightFormat::Int4, 2, true, 1);
  QuantizedMatrix m = quantizeMatrix(e, 2, 4, s);
  ASSERT_EQ(m.groups, 2);
  EXPECT_EQ(m.scale, (std::vector<float>{1.0f, 1.0f / 7, 8.0f / 7, 0.0f}));
  // -3.5 / 1 is a tie (-> -4, even); 0.5 / float(1/7) = 3.49999994 is not (-> 3).
  EXPECT_EQ(m.q, (std::vector<int8_t>{7, -4, 7, 3, -7, 7, 0, 0}));
  std::vector<float> dq = quantizeDequantize(e, 2, 4, s);
  EXPECT_EQ(dq, (std::vector<float>{7, -4, 7 * (1.0f / 7), 3 * (1.0f / 7), -7 * (8.0f / 7), 7 * (8.0f / 7), 0, 0}));
  EXPECT_EQ(s.name(), "int4-g2-sym");

  // The same numbers grouped along the other axis give other scales: the axis matters.
  QuantSpec other = spec(WeightFormat::Int4, 2, true, 0);
  QuantizedMatrix t = quantizeMatrix(e, 2, 4, other);
  EXPECT_EQ(t.channels, 4);
  EXPECT_EQ(t.groups, 1);
  EXPECT_EQ(t.scale, (std::vector<float>{8.0f / 7, 8.0f / 7, 1.0f / 7, 0.5f / 7}));
}

TEST(Quant, Int4AsymmetricZeroPoints) {
  // One output channel, four inputs, one group: min -1, max 14 -> scale 1, zero 1.
  const float a[] = {-1, 0, 2, 14};
  QuantSpec s = spec(WeightFormat::Int4, 4, false, 0);
  QuantizedMatrix m = quantizeMatrix(a, 4, 1, s);
  EXPECT_EQ(m.scale, (std::vector<float>{1.0f}));
  EXPECT_EQ(m.zero, (std::vector<int8_t>{1}));
  EXPECT_EQ(m.q, (std::vector<int8_t>{0, 1, 3, 15}));
  EXPECT_EQ(quantizeDequantize(a, 4, 1, s), (std::vector<float>{-1, 0, 2, 14}));
  // Scale 0.5 and ties: 0.75 / 0.5 = 1.5 -> 2, 1.25 / 0.5 = 2.5 -> 2.
  const float b[] = {0, 0.75, 1.25, 7.5};
  QuantizedMatrix mb = quantizeMatrix(b, 4, 1, s);
  EXPECT_EQ(mb.scale, (std::vector<float>{0.5f}));
  EXPECT_EQ(mb.zero, (std::vector<int8_t>{0}));
  EXPECT_EQ(mb.q, (std::vector<int8_t>{0, 2, 2, 15}));
  EXPECT_EQ(quantizeDequantize(b, 4, 1, s), (std::vector<float>{0, 1, 1, 7.5}));
  // A constant group is kept exactly.
  const float c[] = {-3, -3};
  EXPECT_EQ(quantizeDequantize(c, 2, 1, spec(WeightFormat::Int4, 0, false, 0)), (std::vector<float>{-3, -3}));
  EXPECT_EQ(s.name(), "int4-g4-asym");
}

TEST(Quant, PartialLastGroup) {
  // Five inputs in groups of 2: groups {0,1}, {2,3}, {4}.
  const float w[] = {1, 7, -2, 14, 0.5};
  QuantizedMatrix m = quantizeMatrix(w, 5, 1, spec(WeightFormat::Int4, 2, true, 0));
  ASSERT_EQ(m.groups, 3);
  EXPECT_EQ(m.scale, (std::vector<float>{1.0f, 2.0f, 0.5f / 7}));
  EXPECT_EQ(m.q, (std::vector<int8_t>{1, 7, -1, 7, 7}));
}

TEST(Quant, HalfFormatsRoundToNearestEven) {
  const float w[] = {1.0f / 3, 65504.0f, 1.0f + 1.0f / 2048, 3.140625f};
  EXPECT_EQ(quantizeDequantize(w, 2, 2, spec(WeightFormat::F16, 0, true, 0)),
            (std::vector<float>{0.333251953125f, 65504.0f, 1.0f, 3.140625f}));
  std::vector<float> b = quantizeDequantize(w, 2, 2, spec(WeightFormat::BF16, 0, true, 0));
  EXPECT_EQ(b[3], 3.140625f);
  EXPECT_EQ(b[0], 0.333984375f);
}

TEST(Quant, ActivationRowsPerTokenOrStatic) {
  const float x[] = {-254, 100.5, 1, 0};
  int8_t q[4];
  // Dynamic: scale 254 / 127 = 2; 100.5 / 2 = 50.25 -> 50, 1 / 2 = 0.5 -> 0 (half to even).
  EXPECT_EQ(quantizeActivationRow(x, 4, 0, q), 2.0f);
  EXPECT_EQ(std::vector<int8_t>(q, q + 4), (std::vector<int8_t>{-127, 50, 0, 0}));
  // Static scale 0.5: values clamp to +-127; 1 / 0.5 = 2.
  EXPECT_EQ(quantizeActivationRow(x, 4, 0.5f, q), 0.5f);
  EXPECT_EQ(std::vector<int8_t>(q, q + 4), (std::vector<int8_t>{-127, 127, 2, 0}));
  // An all-zero row has scale 0 and quantizes to zeros.
  const float zeros[] = {0, 0};
  EXPECT_EQ(quantizeActivationRow(zeros, 2, 0, q), 0.0f);
  EXPECT_EQ(q[0], 0);
}

TEST(Quant, RejectsBadSpecs) {
  const float w[] = {1, 2};
  EXPECT_THROW(quantizeMatrix(w, 2, 1, spec(WeightFormat::Int8, 0, false, 0)), Error);
  EXPECT_THROW(quantizeMatrix(w, 2, 1, spec(WeightFormat::Int4, 0, true, 2)), Error);
  EXPECT_THROW(quantizeMatrix(w, 2, 1, spec(WeightFormat::F16, 0, true, 0)), Error);
  WeightFormat f;
  EXPECT_FALSE(parseWeightFormat("int3", f));
  EXPECT_TRUE(parseWeightFormat("bf16", f));
  EXPECT_EQ(f, WeightFormat::BF16);
}

} // namespace
