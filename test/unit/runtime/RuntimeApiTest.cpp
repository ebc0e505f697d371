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
#include <cstdio>
#include <cstdlib>
#include <sys/resource.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using namespace kiln::test;

#if defined(__has_feature)
#define KILN_CLANG_SANITIZED (__has_feature(address_sanitizer) || __has_feature(thread_sanitizer))
#else
#define KILN_CLANG_SANITIZED 0
#endif

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

// Every function of kiln/runtime.h with bad arguments: a status naming the problem (never an
// abort, a crash or a sanitizer report), or the documented neutral value for an accessor.
TEST_F(RuntimeApi, EveryFunctionRefusesBadArguments) {
  auto refused = [&](kiln_status st, const char *what) {
    ASSERT_NE(st, nullptr) << what << ": accepted";
    std::string m = message(st);
    EXPECT_FALSE(m.empty()) << what;
  };
  const std::string art = dir->file("art");
  kiln_artifact *a = nullptr;
  refused(kiln_artifact_open(art.c_str(), nullptr, nullptr), "open, out null");
  refused(kiln_artifact_open("", nullptr, &a), "open, empty path");
  refused(kiln_artifact_open(std::string(5000, 'x').c_str(), nullptr, &a), "open, path too long");
  EXPECT_EQ(a, nullptr) << "a failed open leaves *out alone";
  // Accessors on a null artifact, session, batch or tokenizer: neutral values.
  EXPECT_EQ(kiln_artifact_vocab_size(nullptr), 0);
  EXPECT_EQ(kiln_artifact_context_length(nullptr), 0);
  EXPECT_EQ(kiln_artifact_prompt_length(nullptr), 0);
  EXPECT_EQ(kiln_artifact_weight_bytes(nullptr), 0u);
  EXPECT_STREQ(kiln_artifact_kernels(nullptr), "");
  EXPECT_STREQ(kiln_artifact_target(nullptr), "");
  EXPECT_STREQ(kiln_artifact_device(nullptr), "");
  EXPECT_EQ(kiln_artifact_eos_token_id(nullptr), -1);
  EXPECT_EQ(kiln_artifact_adapter_count(nullptr), 0);
  EXPECT_EQ(kiln_artifact_adapter_name(nullptr, 0), nullptr);
  EXPECT_EQ(kiln_artifact_decode_batch_count(nullptr), 0);
  EXPECT_EQ(kiln_artifact_decode_batch_size(nullptr, 0), 0);
  EXPECT_EQ(kiln_session_position(nullptr), 0);
  EXPECT_STREQ(kiln_session_adapter(nullptr), "none");
  EXPECT_EQ(kiln_batch_slot_count(nullptr), 0);
  EXPECT_EQ(kiln_batch_slot(nullptr, 0), nullptr);
  EXPECT_EQ(kiln_tokenizer_vocab_size(nullptr), 0);
  EXPECT_STREQ(kiln_status_message(nullptr), "ok");
  // Freeing nothing is a no-op.
  kiln_status_free(nullptr);
  kiln_artifact_close(nullptr);
  kiln_session_destroy(nullptr);
  kiln_batch_destroy(nullptr);
  kiln_tokenizer_close(nullptr);
  kiln_free(nullptr);

  ASSERT_EQ(kiln_artifact_open(art.c_str(), nullptr, &a), nullptr);
  EXPECT_EQ(kiln_artifact_adapter_name(a, -1), nullptr);
  EXPECT_EQ(kiln_artifact_adapter_name(a, 1 << 20), nullptr);
  EXPECT_EQ(kiln_artifact_decode_batch_size(a, -1), 0);
  EXPECT_EQ(kiln_artifact_decode_batch_size(a, 1 << 20), 0);
  kiln_session *s = nullptr;
  refused(kiln_session_create(nullptr, nullptr, &s), "session_create, artifact null");
  refused(kiln_session_create(a, nullptr, nullptr), "session_create, out null");
  for (kiln_session_options bad : {kiln_session_options{-3}, kiln_session_options{1 << 20}})
    refused(kiln_session_create(a, &bad, &s), "session_create, threads out of range");
  ASSERT_EQ(kiln_session_create(a, nullptr, &s), nullptr);
  const float *logits = nullptr;
  int32_t one = 11, next = 0;
  refused(kiln_session_prefill(nullptr, &one, 1, &logits), "prefill, session null");
  refused(kiln_session_prefill(s, nullptr, 3, &logits), "prefill, ids null");
  int32_t negativeId = -1;
  refused(kiln_session_prefill(s, &negativeId, 1, &logits), "prefill, negative id");
  refused(kiln_session_decode(nullptr, 11, &logits), "decode, session null");
  refused(kiln_session_reset(nullptr), "reset, session null");
  refused(kiln_session_set_adapter(nullptr, "none"), "set_adapter, session null");
  refused(kiln_session_set_adapter(s, "no-such-adapter"), "set_adapter, unknown name");
  refused(kiln_session_sample(nullptr, nullptr, &next), "sample, session null");
  ASSERT_EQ(kiln_session_prefill(s, &one, 1, nullptr), nullptr) << "logits out may be null";
  EXPECT_EQ(kiln_session_position(s), 1);
  refused(kiln_session_decode(s, -5, &logits), "decode, negative id");
  refused(kiln_session_decode(s, int32_t(kiln_artifact_vocab_size(a)), &logits), "decode, id past the vocabulary");
  EXPECT_EQ(kiln_session_position(s), 1) << "a refused step changes nothing";
  refused(kiln_session_sample(s, nullptr, nullptr), "sample, out null");
  for (kiln_sampling bad : {kiln_sampling{-1.0f, 0, 1.0f, 0}, kiln_sampling{NAN, 0, 1.0f, 0},
                            kiln_sampling{INFINITY, 0, 1.0f, 0}, kiln_sampling{0.8f, -1, 1.0f, 0},
                            kiln_sampling{0.8f, 0, 0.0f, 0}, kiln_sampling{0.8f, 0, 1.5f, 0},
                            kiln_sampling{0.8f, 0, NAN, 0}})
    refused(kiln_session_sample(s, &bad, &next), "sample, bad sampling values");

  kiln_batch *b = nullptr;
  refused(kiln_batch_create(nullptr, nullptr, &b), "batch_create, artifact null");
  refused(kiln_batch_create(a, nullptr, nullptr), "batch_create, out null");
  for (kiln_batch_options bad : {kiln_batch_options{0, -1}, kiln_batch_options{0, 1 << 30},
                                 kiln_batch_options{-2, 2}})
    refused(kiln_batch_create(a, &bad, &b), "batch_create, bad slots or threads");
  kiln_batch_options two = {1, 2};
  ASSERT_EQ(kiln_batch_create(a, &two, &b), nullptr);
  EXPECT_EQ(kiln_batch_slot(b, -1), nullptr);
  EXPECT_EQ(kiln_batch_slot(b, 2), nullptr);
  int32_t slots[] = {0, 0}, ids[] = {11, 12}, badSlot[] = {5}, negSlot[] = {-1};
  ASSERT_EQ(kiln_session_prefill(kiln_batch_slot(b, 0), &one, 1, nullptr), nullptr);
  ASSERT_EQ(kiln_session_prefill(kiln_batch_slot(b, 1), &one, 1, nullptr), nullptr);
  refused(kiln_batch_decode(nullptr, slots, ids, 1, &logits), "batch_decode, batch null");
  refused(kiln_batch_decode(b, nullptr, ids, 1, &logits), "batch_decode, slots null");
  refused(kiln_batch_decode(b, slots, nullptr, 1, &logits), "batch_decode, ids null");
  refused(kiln_batch_decode(b, slots, ids, 2, &logits), "batch_decode, a slot twice");
  refused(kiln_batch_decode(b, badSlot, ids, 1, &logits), "batch_decode, slot past the batch");
  refused(kiln_batch_decode(b, negSlot, ids, 1, &logits), "batch_decode, negative slot");
  int32_t badIds[] = {int32_t(1 << 30)};
  refused(kiln_batch_decode(b, slots, badIds, 1, &logits), "batch_decode, id past the vocabulary");
  EXPECT_EQ(kiln_session_position(kiln_batch_slot(b, 0)), 1) << "a refused step changes nothing";
  kiln_session_destroy(kiln_batch_slot(b, 0)); // documented: ignored for a batch's slot
  EXPECT_EQ(kiln_batch_slot_count(b), 2);
  kiln_batch_destroy(b);

  int32_t *tokens = nullptr;
  size_t count = 0;
  char *text = nullptr;
  size_t length = 0;
  refused(kiln_tokenize(nullptr, "a", 1, &tokens, &count), "tokenize, artifact null");
  refused(kiln_tokenize(a, nullptr, 4, &tokens, &count), "tokenize, text null");
  refused(kiln_tokenize(a, "a", 1, nullptr, &count), "tokenize, ids out null");
  refused(kiln_tokenize(a, "a", 1, &tokens, nullptr), "tokenize, count out null");
  refused(kiln_detokenize(nullptr, &one, 1, &text, &length), "detokenize, artifact null");
  refused(kiln_detokenize(a, nullptr, 2, &text, &length), "detokenize, ids null");
  refused(kiln_detokenize(a, &negativeId, 1, &text, &length), "detokenize, negative id");
  refused(kiln_detokenize(a, badIds, 1, &text, &length), "detokenize, id past the vocabulary");
  refused(kiln_detokenize(a, &one, 1, nullptr, &length), "detokenize, text out null");
  kiln_tokenizer *t = nullptr;
  refused(kiln_tokenizer_open(nullptr, &t), "tokenizer_open, dir null");
  refused(kiln_tokenizer_open(art.c_str(), nullptr), "tokenizer_open, out null");
  refused(kiln_tokenizer_open("/nonexistent", &t), "tokenizer_open, no such folder");
  ASSERT_EQ(kiln_tokenizer_open(art.c_str(), &t), nullptr);
  refused(kiln_tokenizer_encode(nullptr, "a", 1, &tokens, &count), "tokenizer_encode, tokenizer null");
  refused(kiln_tokenizer_encode(t, nullptr, 3, &tokens, &count), "tokenizer_encode, text null");
  refused(kiln_tokenizer_encode(t, "a", 1, nullptr, nullptr), "tokenizer_encode, outs null");
  refused(kiln_tokenizer_decode(nullptr, &one, 1, &text, &length), "tokenizer_decode, tokenizer null");
  refused(kiln_tokenizer_decode(t, nullptr, 1, &text, &length), "tokenizer_decode, ids null");
  refused(kiln_tokenizer_decode(t, badIds, 1, &text, &length), "tokenizer_decode, id past the vocabulary");
  refused(kiln_tokenizer_decode(t, &one, 1, &text, nullptr), "tokenizer_decode, length out null");
  // Empty input is not an error.
  ASSERT_EQ(kiln_tokenizer_encode(t, nullptr, 0, &tokens, &count), nullptr);
  EXPECT_EQ(count, 0u);
  kiln_free(tokens);
  kiln_tokenizer_close(t);
  kiln_session_destroy(s);
  kiln_artifact_close(a);
}

// In a forked child: caps the address space 200 MB above what the process maps and asks for a
// batch of 4096 slots (4 layers x 2 x 48 positions x 128 floats each: about 800 MB of KV cache).
[[noreturn]] void batchPastTheAddressSpace(kiln_artifact *a) {
  std::FILE *statm = std::fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (!statm || std::fscanf(statm, "%lu", &pages) != 1)
    std::_Exit(3);
  std::fclose(statm);
  struct rlimit cap;
  cap.rlim_cur = cap.rlim_max = pages * 4096ul + (200ul << 20);
  if (setrlimit(RLIMIT_AS, &cap) != 0)
    std::_Exit(4);
  kiln_batch *b = nullptr;
  kiln_batch_options many = {1, 4096};
  kiln_status st = kiln_batch_create(a, &many, &b);
  if (!st)
    std::_Exit(5);
  std::fprintf(stderr, "status: %s\n", kiln_status_message(st));
  std::_Exit(std::string(kiln_status_message(st)).find("out of memory") != std::string::npos ? 0 : 6);
}

// A KV cache (or any buffer) the system will not give: a status, not an abort. The address
// space is capped in a child process; ASan reserves terabytes of it, so only plain builds run this.
TEST_F(RuntimeApi, AnAllocationThatFailsIsAStatus) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || KILN_CLANG_SANITIZED
  GTEST_SKIP() << "sanitizer builds reserve more address space than the cap this test sets";
#else
  kiln_artifact *a = nullptr;
  ASSERT_EQ(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a), nullptr);
  EXPECT_EXIT(batchPastTheAddressSpace(a), ::testing::ExitedWithCode(0), "status: .*out of memory");
  kiln_artifact_close(a);
#endif
}
