//===- RuntimeThreadTest.cpp - the runtime used from many threads ---------===//
//
// The thread-safety contract of docs/runtime.md: many sessions of one open
// artifact on several threads at once (each its own KV cache), sessions created
// and freed concurrently, one artifact opened twice, the artifact's tokenizer
// and a standalone tokenizer shared by threads. Every thread's greedy ids equal
// the same work done alone. CI runs it in a ThreadSanitizer build of the runtime
// (-DKILN_SANITIZE=thread, scripts/test.sh), where a data race fails it.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "kiln/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace kiln::test;

namespace {

class RuntimeThreads : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir = new TempDir("rtthreads");
    std::string cmd = binDir() + "/kiln compile " + modelDir() + " --prompt-len 4 --ctx-len 24 -o " +
                      dir->file("art") + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() { delete dir; }
  static TempDir *dir;

  static std::vector<int32_t> prompt(int i) { return {int32_t(464 + 31 * i), 3290, int32_t(11 + i), 262, 1110}; }

  /// Greedy ids after `prompt(i)`, `n` of them, on a new session of `a` with `threads` threads.
  static std::vector<int32_t> greedy(kiln_artifact *a, int i, int n, int threads) {
    kiln_session *s = nullptr;
    kiln_session_options so = {threads};
    std::vector<int32_t> out;
    if (kiln_session_create(a, &so, &s))
      return {-1};
    std::vector<int32_t> p = prompt(i);
    kiln_sampling g = {0.0f, 0, 1.0f, 0};
    const float *logits = nullptr;
    if (kiln_session_prefill(s, p.data(), p.size(), &logits) == nullptr)
      for (int t = 0; t < n; ++t) {
        int32_t next = -1;
        if (kiln_session_sample(s, &g, &next) || (t + 1 < n && kiln_session_decode(s, next, &logits))) {
          out.push_back(-2);
          break;
        }
        out.push_back(next);
      }
    kiln_session_destroy(s);
    return out;
  }
};
TempDir *RuntimeThreads::dir;

constexpr int kThreads = 4, kTokens = 6;

TEST_F(RuntimeThreads, ManySessionsOfOneArtifactAtOnce) {
  kiln_artifact *a = nullptr;
  ASSERT_EQ(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a), nullptr);
  std::vector<std::vector<int32_t>> alone(kThreads), together(kThreads);
  for (int i = 0; i < kThreads; ++i)
    alone[i] = greedy(a, i, kTokens, 1);
  // Each thread's session has a pool of 2 workers: the pools' own threads run too.
  std::vector<std::thread> pool;
  for (int i = 0; i < kThreads; ++i)
    pool.emplace_back([&, i] { together[i] = greedy(a, i, kTokens, 2); });
  for (auto &t : pool)
    t.join();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(together[i], alone[i]) << "sequence " << i;
    EXPECT_EQ(alone[i].size(), size_t(kTokens));
  }
  kiln_artifact_close(a);
}

TEST_F(RuntimeThreads, SessionsCreatedAndFreedConcurrently) {
  kiln_artifact *a = nullptr;
  ASSERT_EQ(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a), nullptr);
  std::vector<int32_t> want = greedy(a, 0, 2, 1);
  std::atomic<int> wrong{0};
  std::vector<std::thread> pool;
  for (int i = 0; i < kThreads; ++i)
    pool.emplace_back([&] {
      for (int round = 0; round < 6; ++round)
        if (greedy(a, 0, 2, round % 2 + 1) != want)
          ++wrong;
    });
  for (auto &t : pool)
    t.join();
  EXPECT_EQ(wrong.load(), 0);
  kiln_artifact_close(a);
}

TEST_F(RuntimeThreads, OneArtifactOpenedTwiceAndUsedAtOnce) {
  std::vector<int32_t> want;
  {
    kiln_artifact *a = nullptr;
    ASSERT_EQ(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a), nullptr);
    want = greedy(a, 1, kTokens, 1);
    kiln_artifact_close(a);
  }
  std::vector<std::vector<int32_t>> got(2);
  std::vector<std::thread> pool;
  for (int k = 0; k < 2; ++k)
    pool.emplace_back([&, k] {
      kiln_artifact *a = nullptr;
      if (kiln_status st = kiln_artifact_open(dir->file("art").c_str(), nullptr, &a)) {
        kiln_status_free(st);
        return;
      }
      got[k] = greedy(a, 1, kTokens, 2);
      kiln_artifact_close(a);
    });
  for (auto &t : pool)
    t.join();
  EXPECT_EQ(got[0], want);
  EXPECT_EQ(got[1], want);
}

TEST_F(RuntimeThreads, TokenizersSharedByThreads) {
  kiln_artifact *a = nullptr;
  ASSERT_EQ(kiln_artifact_open(dir->file("art").c_str(), nullptr, &a), nullptr);
  kiln_tokenizer *tok = nullptr;
  ASSERT_EQ(kiln_tokenizer_open(modelDir().c_str(), &tok), nullptr);
  const std::string texts[] = {"In the beginning God created", "And the LORD spake unto Moses, saying,",
                               "Blessed are the meek: for they shall", "caf\xc3\xa9 \xe2\x82\xac 42"};
  std::atomic<int> wrong{0}, ready{0};
  std::vector<std::thread> pool;
  for (int i = 0; i < kThreads; ++i)
    pool.emplace_back([&, i] {
      // All start together: the first kiln_tokenize loads the artifact's tokenizer, and a
      // load raced by the other threads crashed (CI, before a once-flag guarded it).
      ++ready;
      while (ready.load() < kThreads)
        std::this_thread::yield();
      for (int round = 0; round < 20; ++round) {
        const std::string &t = texts[(i + round) % 4];
        int32_t *ids = nullptr, *ids2 = nullptr;
        size_t n = 0, n2 = 0;
        char *back = nullptr;
        size_t length = 0;
        if (kiln_tokenize(a, t.data(), t.size(), &ids, &n) ||
            kiln_tokenizer_encode(tok, t.data(), t.size(), &ids2, &n2) ||
            kiln_tokenizer_decode(tok, ids, n, &back, &length)) {
          ++wrong;
          continue;
        }
        if (n != n2 || !std::equal(ids, ids + n, ids2) || std::string(back, length) != t)
          ++wrong;
        kiln_free(ids), kiln_free(ids2), kiln_free(back);
      }
    });
  for (auto &t : pool)
    t.join();
  EXPECT_EQ(wrong.load(), 0);
  kiln_tokenizer_close(tok);
  kiln_artifact_close(a);
}

} // namespace
