//===- SamplerTest.cpp - greedy, temperature, top-k, top-p ----------------===//
#include "kiln/Runtime/Sampler.h"
#include "kiln/Support/Error.h"

#include <cmath>
#include <gtest/gtest.h>
#include <map>
#include <vector>

using namespace kiln;

namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};

TEST(Sampler, GreedyTakesTheFirstLargest) {
  Sampler s(SamplingOptions{});
  EXPECT_EQ(s.sample(kLogits.data(), kLogits.size()), 1);
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplingOptions o;
  o.temperature = 5.0;
  o.topK = 1;
  Sampler s(o);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(s.sample(kLogits.data(), kLogits.size()), 1);
}

TEST(Sampler, TopKRestrictsTheSupport) {
  SamplingOptions o;
  o.temperature = 1.0;
  o.topK = 3; // ids 1, 3, 2
  o.seed = 9;
  Sampler s(o);
  for (int i = 0; i < 500; ++i) {
    int id = s.sample(kLogits.data(), kLogits.size());
    EXPECT_TRUE(id == 1 || id == 2 || id == 3) << id;
  }
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // Probabilities at T=1: ids 1 and 3 hold 2 * e^3 / (e^1 + 2e^3 + e^2 + e^-1) = 0.80.
  SamplingOptions o;
  o.temperature = 1.0;
  o.topP = 0.75;
  o.seed = 3;
  Sampler s(o);
  std::map<int, int> seen;
  for (int i = 0; i < 2000; ++i)
    ++seen[s.sample(kLogits.data(), kLogits.size())];
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_NEAR(seen[1] / 2000.0, 0.5, 0.05);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  SamplingOptions o;
  o.temperature = 2.0;
  o.seed = 11;
  Sampler s(o);
  const int n = 20000;
  std::vector<int> counts(kLogits.size());
  for (int i = 0; i < n; ++i)
    ++counts[size_t(s.sample(kLogits.data(), kLogits.size()))];
  double z = 0;
  for (float l : kLogits)
    z += std::exp(l / 2.0);
  for (size_t i = 0; i < kLogits.size(); ++i)
    EXPECT_NEAR(counts[i] / double(n), std::exp(kLogits[i] / 2.0) / z, 0.015) << "id " << i;
}

TEST(Sampler, SameSeedSameStream) {
  SamplingOptions o;
  o.temperature = 1.0;
  o.seed = 1234;
  Sampler a(o), b(o);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(a.sample(kLogits.data(), kLogits.size()), b.sample(kLogits.data(), kLogits.size()));
}

TEST(Sampler, RejectsBadOptions) {
  SamplingOptions o;
  o.temperature = -1;
  EXPECT_THROW(Sampler{o}, Error);
  o = {};
  o.topP = 0;
  EXPECT_THROW(Sampler{o}, Error);
  o = {};
  o.topK = -2;
  EXPECT_THROW(Sampler{o}, Error);
}

} // namespace
