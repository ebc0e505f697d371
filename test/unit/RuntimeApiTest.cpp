//===- RuntimeApiTest.cpp - the C API of kiln/runtime.h -------------------===//
//
// Compiles the shipped model once (kiln compile) and drives the artifact
// through the C API only: open, sessions, prefill/decode, sampling, reset,
// tokenizer, and every misuse returning a status instead of crashing.
// Runs under ASan+UBSan in CI.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "kiln/runtime.h"

#include <cmath>
#include <cstdlib>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using namespace kiln::test;

namespace {

class RuntimeApi : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir = new TempDir("rtapi");
    std::string kiln = binDir() + "/kiln";
    std::string cmd = kiln + " compile " + modelDir() + " --prompt-len 4 --ctx-len 48 -o " + dir->file("art") +
                      " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() { delete dir; }

  static std::string message(kiln_status st) {
    std::string m = kiln_status_message(st);
    kiln_status_free(st);
    return m;
  }
  static TempDir *dir;
};
TempDir *RuntimeApi::dir;

TEST_F(RuntimeApi, GeneratesTheGoldenIds) {
  kiln_artifact *a = nullptr;
  ASSERT_EQ(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a), nullptr);
  EXPECT_EQ(kiln_artifact_vocab_size(a), 50257);
  EXPECT_EQ(kiln_artifact_context_length(a), 48);
  EXPECT_EQ(kiln_artifact_prompt_length(a), 4);
  EXPECT_GT(kiln_artifact_weight_bytes(a), 7000000u * 4);
  EXPECT_STREQ(kiln_artifact_target(a), "cpu");
  EXPECT_STREQ(kiln_artifact_device(a), ""); // a GPU artifact names its device
  kiln_session *s = nullptr;
  kiln_session_options so = {2};
  ASSERT_EQ(kiln_session_create(a, &so, &s), nullptr);

  auto golden = nlohmann::json::parse(readBytes(modelDir() + "/golden.json"));
  const auto &p = golden["prompts"][1]; // 6 tokens: two prefill chunks of 4
  std::string text = p["prompt"].get<std::string>();
  int32_t *ids = nullptr;
  size_t count = 0;
  ASSERT_EQ(kiln_tokenize(a, text.data(), text.size(), &ids, &count), nullptr);
  std::vector<int32_t> prompt(ids, ids + count);
  kiln_free(ids);
  EXPECT_EQ(prompt, p["input_ids"].get<std::vector<int32_t>>());

  for (int round = 0; round < 2; ++round) { // the second round checks reset
    const float *logits = nullptr;
    ASSERT_EQ(kiln_session_prefill(s, prompt.data(), prompt.size(), &logits), nullptr);
    std::vector<int32_t> out;
    kiln_sampling greedy = {0.0f, 0, 1.0f, 0};
    for (int i = 0; i < 16; ++i) {
      int32_t next;
      ASSERT_EQ(kiln_session_sample(s, &greedy, &next), nullptr);
      out.push_back(next);
      if (i < 15)
        ASSERT_EQ(kiln_session_decode(s, next, &logits), nullptr);
    }
    std::vector<int32_t> want = p["greedy_ids"].get<std::vector<int32_t>>();
    want.resize(16);
    EXPECT_EQ(out, want) << "round " << round;
    EXPECT_EQ(kiln_session_position(s), int64_t(prompt.size()) + 15);
    ASSERT_EQ(kiln_session_reset(s), nullptr);
    EXPECT_EQ(kiln_session_position(s), 0);
  }
  char *decoded = nullptr;
  size_t length = 0;
  ASSERT_EQ(kiln_detokenize(a, prompt.data(), prompt.size(), &decoded, &length), nullptr);
  EXPECT_EQ(std::string(decoded, length), text);
  kiln_free(decoded);
  kiln_session_destroy(s);
  kiln_artifact_close(a);
}

TEST_F(RuntimeApi, SessionsAreIndependentAndSamplingIsSeeded) {
  kiln_artifact *a = nullptr;
  ASSERT_EQ(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a), nullptr);
  kiln_session *s1 = nullptr, *s2 = nullptr;
  ASSERT_EQ(kiln_session_create(a, nullptr, &s1), nullptr);
  ASSERT_EQ(kiln_session_create(a, nullptr, &s2), nullptr);
  int32_t prompt[] = {818, 262, 3726};
  kiln_sampling warm = {0.9f, 40, 0.95f, 1234};
  std::vector<int32_t> seq[2];
  kiln_session *ss[2] = {s1, s2};
  for (int k = 0; k < 2; ++k) {
    ASSERT_EQ(kiln_session_prefill(ss[k], prompt, 3, nullptr), nullptr);
    for (int i = 0; i < 10; ++i) {
      int32_t next;
      ASSERT_EQ(kiln_session_sample(ss[k], &warm, &next), nullptr);
      seq[k].push_back(next);
      ASSERT_EQ(kiln_session_decode(ss[k], next, nullptr), nullptr);
    }
  }
  EXPECT_EQ(seq[0], seq[1]) << "same seed, same artifact, same text";
  kiln_session_destroy(s1);
  kiln_session_destroy(s2);
  kiln_artifact_close(a);
}

// KILN_DEVICE picks a GPU artifact's device; a value that is no index is refused for any artifact.
// Greedy sampling still validates its options (a GPU picks the id on the device, but the request
// is checked first).
TEST_F(RuntimeApi, DeviceVariableAndGreedyOptionsAreChecked) {
  kiln_artifact *a = nullptr;
  setenv("KILN_DEVICE", "first", 1);
  std::string refused = message(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a));
  unsetenv("KILN_DEVICE");
  EXPECT_NE(refused.find("KILN_DEVICE='first' is not a device index"), std::string::npos) << refused;
  ASSERT_EQ(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a), nullptr);
  kiln_session *s = nullptr;
  ASSERT_EQ(kiln_session_create(a, nullptr, &s), nullptr);
  int32_t ids[] = {818, 262}, next = -1;
  const float *logits = nullptr;
  ASSERT_EQ(kiln_session_prefill(s, ids, 2, &logits), nullptr);
  int32_t best = int32_t(std::max_element(logits, logits + kiln_artifact_vocab_size(a)) - logits);
  kiln_sampling badTopP = {0.0f, 0, 5.0f, 0};
  EXPECT_NE(message(kiln_session_sample(s, &badTopP, &next)).find("--top-p must be in (0, 1]"), std::string::npos);
  kiln_sampling greedy = {0.0f, 0, 1.0f, 0};
  EXPECT_EQ(kiln_session_sample(s, &greedy, &next), nullptr);
  EXPECT_EQ(next, best); // the largest logit (the first of equals, as max_element picks)
  kiln_session_destroy(s);
  kiln_artifact_close(a);
}

TEST_F(RuntimeApi, MisuseReturnsStatuses) {
  kiln_artifact *a = nullptr;
  EXPECT_NE(message(kiln_artifact_open("/nonexistent", nullptr, &a)).find("not an artifact directory"),
            std::string::npos);
  EXPECT_NE(message(kiln_artifact_open(nullptr, nullptr, &a)).find("must not be null"), std::string::npos);
  kiln_open_options bad = {"sse9", 0};
  EXPECT_NE(message(kiln_artifact_open(dir->file("art").c_str(), &bad, &a)).find("unknown kernel variant"),
            std::string::npos);
  ASSERT_EQ(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a), nullptr);
  kiln_session *s = nullptr;
  ASSERT_EQ(kiln_session_create(a, nullptr, &s), nullptr);
  int32_t next;
  EXPECT_NE(message(kiln_session_sample(s, nullptr, &next)).find("prefill first"), std::string::npos);
  int32_t outside[] = {50257};
  EXPECT_NE(message(kiln_session_prefill(s, outside, 1, nullptr)).find("outside the model's vocabulary"),
            std::string::npos);
  std::vector<int32_t> tooLong(49, 11);
  EXPECT_NE(message(kiln_session_prefill(s, tooLong.data(), tooLong.size(), nullptr)).find("context holds 48"),
            std::string::npos);
  EXPECT_NE(message(kiln_session_prefill(s, nullptr, 0, nullptr)).find("at least one token"), std::string::npos);
  std::vector<int32_t> full(48, 11);
  ASSERT_EQ(kiln_session_prefill(s, full.data(), full.size(), nullptr), nullptr);
  EXPECT_NE(message(kiln_session_decode(s, 11, nullptr)).find("is full"), std::string::npos);
  EXPECT_NE(message(kiln_session_decode(nullptr, 11, nullptr)).find("must not be null"), std::string::npos);
  kiln_session_destroy(s);
  kiln_artifact_close(a);
}

// C API 1.4: the end-of-text id, and a tokenizer without an artifact that agrees with the artifact's.
TEST_F(RuntimeApi, StandaloneTokenizerAndEndOfText) {
  kiln_artifact *a = nullptr;
  ASSERT_EQ(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a), nullptr);
  EXPECT_EQ(kiln_artifact_eos_token_id(a), 50256);
  EXPECT_EQ(kiln_artifact_eos_token_id(nullptr), -1);
  kiln_tokenizer *t = nullptr;
  ASSERT_EQ(kiln_tokenizer_open(modelDir().c_str(), &t), nullptr);
  EXPECT_EQ(kiln_tokenizer_vocab_size(t), 50257);
  std::string text = "In the beginning \xc3\xa9t\xc3\xa9 <|endoftext|>";
  int32_t *ids = nullptr, *artifactIds = nullptr;
  size_t count = 0, artifactCount = 0;
  ASSERT_EQ(kiln_tokenizer_encode(t, text.data(), text.size(), &ids, &count), nullptr);
  ASSERT_EQ(kiln_tokenize(a, text.data(), text.size(), &artifactIds, &artifactCount), nullptr);
  ASSERT_EQ(std::vector<int32_t>(ids, ids + count), std::vector<int32_t>(artifactIds, artifactIds + artifactCount));
  char *decoded = nullptr;
  size_t length = 0;
  ASSERT_EQ(kiln_tokenizer_decode(t, ids, count, &decoded, &length), nullptr);
  EXPECT_EQ(std::string(decoded, length), text);
  kiln_free(decoded);
  // The bytes of one token of a split character: the end is inside a UTF-8 sequence, returned as is.
  int32_t lead = -1;
  for (int32_t id = 0; id < 256 && lead < 0; ++id) {
    ASSERT_EQ(kiln_tokenizer_decode(t, &id, 1, &decoded, &length), nullptr);
    if (length == 1 && static_cast<unsigned char>(decoded[0]) == 0xc3)
      lead = id;
    kiln_free(decoded);
  }
  ASSERT_GE(lead, 0);
  kiln_free(ids);
  kiln_free(artifactIds);
  int32_t outside[] = {50257};
  EXPECT_NE(message(kiln_tokenizer_decode(t, outside, 1, &decoded, &length)).find("outside the vocabulary"),
            std::string::npos);
  EXPECT_NE(message(kiln_tokenizer_encode(nullptr, "x", 1, &ids, &count)).find("null argument"), std::string::npos);
  EXPECT_NE(message(kiln_tokenizer_encode(t, nullptr, 1, &ids, &count)).find("null argument"), std::string::npos);
  kiln_tokenizer_close(t);
  kiln_tokenizer *missing = nullptr;
  EXPECT_NE(message(kiln_tokenizer_open("/nonexistent", &missing)).find("/nonexistent"), std::string::npos);
  EXPECT_EQ(missing, nullptr);
  EXPECT_NE(message(kiln_tokenizer_open(nullptr, &missing)).find("must not be null"), std::string::npos);
  kiln_tokenizer_close(nullptr);
  kiln_artifact_close(a);
}

} // namespace
