//===- ReferenceApiTest.cpp - the C API of kiln/reference.h ---------------===//
//
// The reference interpreter through its C API (libkiln-compiler.so): the same
// greedy ids as a compiled f32 artifact on the runtime's C API, independent
// sessions, the sampler, and misuse returning statuses. Runs under ASan+UBSan.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "kiln/reference.h"
#include "kiln/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

using namespace kiln::test;

namespace {

std::string message(kiln_status st) {
  std::string m = kiln_status_message(st);
  kiln_status_free(st);
  return m;
}

int32_t argmax(const float *logits, int64_t n) { return int32_t(std::max_element(logits, logits + n) - logits); }

std::vector<int32_t> greedyReference(kiln_reference_session *s, std::vector<int32_t> prompt, int steps) {
  const float *logits = nullptr;
  EXPECT_EQ(kiln_reference_session_prefill(s, prompt.data(), prompt.size(), &logits), nullptr);
  std::vector<int32_t> out;
  for (int i = 0; i < steps; ++i) {
    out.push_back(argmax(logits, 50257));
    EXPECT_EQ(kiln_reference_session_decode(s, out.back(), &logits), nullptr);
  }
  return out;
}

TEST(ReferenceApi, MatchesTheRuntimeAndSessionsAreIndependent) {
  TempDir dir("refapi");
  std::string cmd = binDir() + "/kiln compile " + modelDir() + " --prompt-len 4 --ctx-len 32 -o " + dir.file("art") +
                    " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  kiln_reference *r = nullptr;
  kiln_reference_options options = {32, 4, nullptr};
  ASSERT_EQ(kiln_reference_open(modelDir().c_str(), &options, &r), nullptr);
  EXPECT_EQ(kiln_reference_vocab_size(r), 50257);
  EXPECT_EQ(kiln_reference_context_length(r), 32);
  EXPECT_EQ(kiln_reference_prompt_length(r), 4);
  EXPECT_EQ(kiln_reference_eos_token_id(r), 50256);
  EXPECT_EQ(std::string(kiln_reference_checkpoint_dir(r)), modelDir());
  kiln_reference_session *s1 = nullptr, *s2 = nullptr;
  ASSERT_EQ(kiln_reference_session_create(r, 1, &s1), nullptr);
  ASSERT_EQ(kiln_reference_session_create(r, 0, &s2), nullptr);
  std::vector<int32_t> prompt = {818, 262, 3726, 1793, 2727}; // 5 tokens: two prefill chunks of 4
  std::vector<int32_t> ref = greedyReference(s1, prompt, 8);
  EXPECT_EQ(kiln_reference_session_position(s1), 13);
  EXPECT_EQ(greedyReference(s2, {15496}, 3).size(), 3u); // another sequence between
  ASSERT_EQ(kiln_reference_session_reset(s1), nullptr);
  EXPECT_EQ(greedyReference(s1, prompt, 8), ref);

  kiln_artifact *a = nullptr;
  kiln_session *rs = nullptr;
  ASSERT_EQ(kiln_artifact_open(dir.file("art").c_str(), nullptr, &a), nullptr);
  ASSERT_EQ(kiln_session_create(a, nullptr, &rs), nullptr);
  const float *logits = nullptr;
  ASSERT_EQ(kiln_session_prefill(rs, prompt.data(), prompt.size(), &logits), nullptr);
  std::vector<int32_t> runtime;
  for (int i = 0; i < 8; ++i) {
    runtime.push_back(argmax(logits, 50257));
    ASSERT_EQ(kiln_session_decode(rs, runtime.back(), &logits), nullptr);
  }
  EXPECT_EQ(runtime, ref);

  // The same sampler: the same sampled ids from the same logits, seed and options.
  kiln_sampling sampling = {0.9f, 40, 0.95f, 11};
  ASSERT_EQ(kiln_reference_session_reset(s1), nullptr);
  ASSERT_EQ(kiln_session_reset(rs), nullptr);
  ASSERT_EQ(kiln_reference_session_prefill(s1, prompt.data(), prompt.size(), nullptr), nullptr);
  ASSERT_EQ(kiln_session_prefill(rs, prompt.data(), prompt.size(), nullptr), nullptr);
  for (int i = 0; i < 6; ++i) {
    int32_t x = -1, y = -2;
    ASSERT_EQ(kiln_reference_session_sample(s1, &sampling, &x), nullptr);
    ASSERT_EQ(kiln_session_sample(rs, &sampling, &y), nullptr);
    ASSERT_EQ(x, y) << "step " << i;
    ASSERT_EQ(kiln_reference_session_decode(s1, x, nullptr), nullptr);
    ASSERT_EQ(kiln_session_decode(rs, y, nullptr), nullptr);
  }
  kiln_session_destroy(rs);
  kiln_artifact_close(a);
  kiln_reference_session_destroy(s1);
  kiln_reference_session_destroy(s2);
  kiln_reference_close(r);
}

TEST(ReferenceApi, MisuseReturnsStatuses) {
  kiln_reference *r = nullptr;
  EXPECT_NE(message(kiln_reference_open("/nonexistent", nullptr, &r)).find("/nonexistent"), std::string::npos);
  EXPECT_NE(message(kiln_reference_open(nullptr, nullptr, &r)).find("must not be null"), std::string::npos);
  kiln_reference_options negative = {-1, 0, nullptr};
  EXPECT_NE(message(kiln_reference_open(modelDir().c_str(), &negative, &r)).find(">= 0"), std::string::npos);
  kiln_reference_options badAdapter = {16, 4, "/nonexistent-adapter"};
  EXPECT_NE(message(kiln_reference_open(modelDir().c_str(), &badAdapter, &r)).find("/nonexistent-adapter"),
            std::string::npos);
  EXPECT_EQ(r, nullptr);
  kiln_reference_options options = {8, 4, nullptr};
  ASSERT_EQ(kiln_reference_open(modelDir().c_str(), &options, &r), nullptr);
  kiln_reference_session *s = nullptr;
  EXPECT_NE(message(kiln_reference_session_create(r, -1, &s)).find("threads"), std::string::npos);
  ASSERT_EQ(kiln_reference_session_create(r, 1, &s), nullptr);
  int32_t id = -1;
  EXPECT_NE(message(kiln_reference_session_sample(s, nullptr, &id)).find("prefill first"), std::string::npos);
  int32_t outside[] = {50257};
  EXPECT_NE(message(kiln_reference_session_prefill(s, outside, 1, nullptr)).find("outside"), std::string::npos);
  EXPECT_NE(message(kiln_reference_session_decode(s, -3, nullptr)).find("outside"), std::string::npos);
  EXPECT_NE(message(kiln_reference_session_prefill(s, nullptr, 0, nullptr)).find("at least one token"),
            std::string::npos);
  std::vector<int32_t> nine(9, 11);
  EXPECT_NE(message(kiln_reference_session_prefill(s, nine.data(), nine.size(), nullptr)).find("context of 8"),
            std::string::npos);
  EXPECT_EQ(kiln_reference_session_position(s), 0);
  kiln_sampling bad = {-1.0f, 0, 1.0f, 0};
  ASSERT_EQ(kiln_reference_session_prefill(s, nine.data(), 8, nullptr), nullptr);
  EXPECT_NE(message(kiln_reference_session_sample(s, &bad, &id)).find("temperature"), std::string::npos);
  EXPECT_NE(message(kiln_reference_session_decode(s, 11, nullptr)).find("context of 8"), std::string::npos);
  EXPECT_NE(message(kiln_reference_session_decode(nullptr, 11, nullptr)).find("must not be null"), std::string::npos);
  EXPECT_EQ(kiln_reference_session_position(nullptr), 0);
  EXPECT_EQ(kiln_reference_vocab_size(nullptr), 0);
  kiln_reference_session_destroy(s);
  kiln_reference_close(r);
  kiln_reference_close(nullptr);
}

} // namespace
