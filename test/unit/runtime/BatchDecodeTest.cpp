//===- BatchDecodeTest.cpp - batched decode against solo decode ------------===//
//
// The contract of kiln_batch_decode: each sequence's logits in a batched
// step are bit-identical to decoding it alone. Compiles the shipped model
// with --decode-batch 1,2,4,8 for every weight format, KV cache format and
// pruning the cpu backend has, and for every kernel variant this CPU runs,
// decodes nine prompts of different lengths alone, then in one batch where
// slot i joins at step i (1, 2, 3 = 4 padded, 4, 5..7 = 8 padded, 8, 9 =
// 8 + 1 rows per step), and compares the logits bit for bit. Runs under ASan+UBSan in CI.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "kiln/runtime.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace kiln::test;

namespace {

struct Format {
  const char *name, *passes;
};
// The formats of each kernel family (KernelABI.h), through --passes (no calibration needed).
const Format kFormats[] = {
    {"f32", "kiln-fuse-linear-gelu,kiln-fuse-residual-layer-norm"},
    {"f16", "kiln-quantize-weights{format=f16 include-lm-head=true}"},
    {"bf16", "kiln-quantize-weights{format=bf16 include-lm-head=true}"},
    {"int8", "kiln-quantize-weights{format=int8 include-lm-head=true}"},
    {"int4", "kiln-quantize-weights{format=int4 group-size=32 include-lm-head=true}"},
    {"w8a8", "kiln-quantize-weights{format=int8 include-lm-head=true},kiln-quantize-activations{mode=dynamic}"},
    {"w4a8", "kiln-quantize-weights{format=int4 group-size=32 include-lm-head=true},kiln-quantize-activations{mode=dynamic}"},
    {"sparse24", "kiln-prune{pattern=2:4}"},
    {"kv-int8-heads", "kiln-quantize-kv-cache,kiln-prune-heads{fraction=0.25 score=magnitude refit=false}"},
};

class BatchDecode : public ::testing::TestWithParam<Format> {
protected:
  static void SetUpTestSuite() { dir = new TempDir("batch"); }
  static void TearDownTestSuite() { delete dir; }
  static TempDir *dir;
};
TempDir *BatchDecode::dir;

constexpr int kSlots = 9, kSteps = 7;

std::vector<std::vector<int32_t>> prompts() {
  std::vector<std::vector<int32_t>> p;
  for (int i = 0; i < kSlots; ++i) {
    std::vector<int32_t> ids;
    for (int j = 0; j < 2 + 2 * i; ++j)
      ids.push_back(int32_t((1000 + 7919 * (i + 1) * (j + 3)) % 50257));
    p.push_back(ids);
  }
  return p;
}

int32_t argmax(const float *l, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (l[i] > l[best])
      best = i;
  return int32_t(best);
}

TEST_P(BatchDecode, EachSequenceGetsTheBitsItGetsAlone) {
  const Format &f = GetParam();
  std::string art = dir->file(f.name);
  std::string cmd = binDir() + "/kiln compile " + modelDir() + " --prompt-len 4 --ctx-len 32 --decode-batch 1,2,4,8" +
                    " --passes '" + f.passes + "' -o " + art + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<std::string> variants = {"generic"};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    variants.push_back("avx2");
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq")) {
    variants.push_back("avx512");
    if (__builtin_cpu_supports("avx512vnni"))
      variants.push_back("avx512vnni");
  }
  for (const std::string &variant : variants) {
    SCOPED_TRACE(std::string(f.name) + " on " + variant + " kernels");
    kiln_open_options options = {variant.c_str(), 0};
    kiln_artifact *a = nullptr;
    ASSERT_EQ(kiln_artifact_open(art.c_str(), &options, &a), nullptr);
    ASSERT_EQ(kiln_artifact_decode_batch_count(a), 4);
    EXPECT_EQ(kiln_artifact_decode_batch_size(a, 2), 4);
    EXPECT_EQ(kiln_artifact_decode_batch_size(a, 4), 0);
    const int64_t V = kiln_artifact_vocab_size(a);
    auto ps = prompts();

    // Alone: each prompt, then kSteps greedy decode steps; the logits of every step.
    std::vector<std::vector<std::vector<float>>> solo(kSlots);
    for (int i = 0; i < kSlots; ++i) {
      kiln_session *s = nullptr;
      kiln_session_options so = {2};
      ASSERT_EQ(kiln_session_create(a, &so, &s), nullptr);
      const float *l = nullptr;
      ASSERT_EQ(kiln_session_prefill(s, ps[i].data(), ps[i].size(), &l), nullptr);
      for (int t = 0; t < kSteps; ++t) {
        ASSERT_EQ(kiln_session_decode(s, argmax(l, V), &l), nullptr);
        solo[i].emplace_back(l, l + V);
      }
      kiln_session_destroy(s);
    }

    // Together: slot i is prefilled and joins at step i, while the others decode.
    kiln_batch *b = nullptr;
    kiln_batch_options bo = {2, kSlots};
    ASSERT_EQ(kiln_batch_create(a, &bo, &b), nullptr);
    ASSERT_EQ(kiln_batch_slot_count(b), kSlots);
    std::vector<int32_t> next(kSlots, 0);
    std::vector<int> done(kSlots, 0);
    for (int step = 0; step < kSteps + kSlots; ++step) {
      if (step < kSlots) {
        const float *l = nullptr;
        ASSERT_EQ(kiln_session_prefill(kiln_batch_slot(b, step), ps[step].data(), ps[step].size(), &l), nullptr);
        next[step] = argmax(l, V);
      }
      std::vector<int32_t> slots, ids;
      for (int i = 0; i < kSlots && i <= step; ++i)
        if (done[i] < kSteps) {
          slots.push_back(i);
          ids.push_back(next[i]);
        }
      if (slots.empty())
        break;
      const float *rows = nullptr;
      ASSERT_EQ(kiln_batch_decode(b, slots.data(), ids.data(), slots.size(), &rows), nullptr);
      for (size_t r = 0; r < slots.size(); ++r) {
        int i = slots[r];
        const std::vector<float> &want = solo[size_t(i)][size_t(done[i])];
        ASSERT_EQ(std::memcmp(rows + r * size_t(V), want.data(), size_t(V) * sizeof(float)), 0)
            << "slot " << i << ", decode step " << done[i] << ", in a step of " << slots.size() << " sequences";
        int32_t sampled = -1;
        kiln_sampling greedy = {0.0f, 0, 1.0f, 0};
        ASSERT_EQ(kiln_session_sample(kiln_batch_slot(b, i), &greedy, &sampled), nullptr);
        EXPECT_EQ(sampled, argmax(want.data(), V)) << "a slot's own logits are its row";
        next[size_t(i)] = sampled;
        ++done[size_t(i)];
      }
    }
    for (int i = 0; i < kSlots; ++i)
      EXPECT_EQ(kiln_session_position(kiln_batch_slot(b, i)), int64_t(ps[i].size()) + kSteps);
    kiln_batch_destroy(b);
    kiln_artifact_close(a);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, BatchDecode, ::testing::ValuesIn(kFormats),
                         [](const ::testing::TestParamInfo<Format> &info) {
                           std::string n = info.param.name;
                           for (char &c : n)
                             if (c == '-')
                               c = '_';
                           return n;
                         });

// Misuse returns a status naming the problem, and a failed step changes nothing.
TEST(BatchDecodeErrors, BadStepsAreStatusesAndLeaveTheSlotsAlone) {
  TempDir dir("batcherr");
  std::string art = dir.file("art");
  std::string cmd = binDir() + "/kiln compile " + modelDir() + " --prompt-len 4 --ctx-len 8 --decode-batch 1,2 -o " +
                    art + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  kiln_artifact *a = nullptr;
  ASSERT_EQ(kiln_artifact_open(art.c_str(), nullptr, &a), nullptr);
  kiln_batch *b = nullptr;
  kiln_batch_options bo = {1, 2};
  ASSERT_EQ(kiln_batch_create(a, &bo, &b), nullptr);
  auto msg = [](kiln_status st) {
    std::string m = kiln_status_message(st);
    kiln_status_free(st);
    return m;
  };
  int32_t ids[2] = {11, 12}, twice[2] = {0, 0}, bad[2] = {0, 2}, neg[2] = {-1, 0}, oov[2] = {11, 50257};
  int32_t slots[2] = {0, 1};
  EXPECT_NE(msg(kiln_batch_decode(b, twice, ids, 2, nullptr)).find("slot 0 appears twice"), std::string::npos);
  EXPECT_NE(msg(kiln_batch_decode(b, bad, ids, 2, nullptr)).find("slot 2 does not exist"), std::string::npos);
  EXPECT_NE(msg(kiln_batch_decode(b, neg, ids, 2, nullptr)).find("slot -1 does not exist"), std::string::npos);
  EXPECT_NE(msg(kiln_batch_decode(b, slots, oov, 2, nullptr)).find("slot 1: token id 50257"), std::string::npos);
  EXPECT_NE(msg(kiln_batch_decode(nullptr, slots, ids, 2, nullptr)).find("must not be null"), std::string::npos);
  EXPECT_NE(msg(kiln_batch_decode(b, nullptr, ids, 2, nullptr)).find("must not be null"), std::string::npos);
  EXPECT_NE(msg(kiln_batch_decode(b, slots, ids, 0, nullptr)).find("at least one"), std::string::npos);
  EXPECT_EQ(kiln_session_position(kiln_batch_slot(b, 0)), 0) << "a refused step feeds nothing";
  EXPECT_EQ(kiln_batch_slot(b, 2), nullptr);
  EXPECT_EQ(kiln_batch_slot(b, -1), nullptr);
  // Fill slot 1's context (8): the step that would overflow it is refused whole.
  int32_t prompt[7] = {1, 2, 3, 4, 5, 6, 7};
  ASSERT_EQ(kiln_session_prefill(kiln_batch_slot(b, 1), prompt, 7, nullptr), nullptr);
  ASSERT_EQ(kiln_batch_decode(b, slots, ids, 2, nullptr), nullptr);
  std::string full = msg(kiln_batch_decode(b, slots, ids, 2, nullptr));
  EXPECT_NE(full.find("slot 1: the context of 8 tokens is full"), std::string::npos) << full;
  EXPECT_EQ(kiln_session_position(kiln_batch_slot(b, 0)), 1);
  kiln_session_destroy(kiln_batch_slot(b, 0)); // ignored: the batch owns its slots
  EXPECT_EQ(kiln_session_position(kiln_batch_slot(b, 0)), 1);
  kiln_batch_options zero = {1, -3};
  kiln_batch *none = nullptr;
  EXPECT_NE(msg(kiln_batch_create(a, &zero, &none)).find("1..4096 slots"), std::string::npos);
  kiln_batch_destroy(b);
  kiln_artifact_close(a);
}

} // namespace
