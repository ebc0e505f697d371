//===- ReferenceModelTest.cpp - the trained model against golden.json -----===//
//
// golden.json comes from an independent implementation (PyTorch float32 and
// a numpy float64 forward). The reference interpreter must reproduce its
// prompt ids and greedy ids exactly and its logits to 1e-4 relative; the KV
// cache must not change a single id, and logits by no more than 1e-5.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "kiln/Frontend/Importer.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Runtime/Sampler.h"
#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"

#include <cmath>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace kiln;
using namespace kiln::test;

namespace {

class TrainedModel : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    checkpoint = Checkpoint::open(modelDir()).release();
    tokenizer = Tokenizer::fromDir(modelDir()).release();
    golden = new nlohmann::json(nlohmann::json::parse(readBytes(modelDir() + "/golden.json")));
  }
  static void TearDownTestSuite() {
    delete checkpoint;
    delete tokenizer;
    delete golden;
  }

  mlir::OwningOpRef<mlir::ModuleOp> import(int64_t promptLen, bool allLogits = false, int64_t ctxLen = 0) {
    ImportOptions o;
    o.promptLen = promptLen;
    o.allLogits = allLogits;
    o.ctxLen = ctxLen;
    auto module = importGPT2(ctx, *checkpoint, o);
    EXPECT_TRUE(mlir::succeeded(mlir::verify(*module)));
    return module;
  }

  /// Greedy generation through prefill + decode; returns ids and every step's logits.
  static std::vector<int32_t> generate(ReferenceModel &m, const std::vector<int32_t> &prompt, int n,
                                       std::vector<std::vector<float>> *steps = nullptr) {
    std::vector<int32_t> ids;
    std::vector<float> logits = m.prefill(prompt);
    for (int i = 0; i < n; ++i) {
      if (steps)
        steps->push_back(logits);
      ids.push_back(Sampler::argmax(logits.data(), logits.size()));
      if (i + 1 < n)
        logits = m.decode(ids.back());
    }
    return ids;
  }

  mlir::MLIRContext ctx;
  static Checkpoint *checkpoint;
  static Tokenizer *tokenizer;
  static nlohmann::json *golden;
};
Checkpoint *TrainedModel::checkpoint;
Tokenizer *TrainedModel::tokenizer;
nlohmann::json *TrainedModel::golden;

TEST_F(TrainedModel, ReproducesGoldenIdsAndLogits) {
  for (const auto &p : (*golden)["prompts"]) {
    SCOPED_TRACE(p["prompt"].get<std::string>());
    std::vector<int32_t> prompt = tokenizer->encode(p["prompt"].get<std::string>());
    ASSERT_EQ(prompt, p["input_ids"].get<std::vector<int32_t>>());
    auto module = import(int64_t(prompt.size()));
    ReferenceModel model(*module);
    std::vector<std::vector<float>> steps;
    EXPECT_EQ(generate(model, prompt, 32, &steps), p["greedy_ids"].get<std::vector<int32_t>>());
    const auto &top5 = p["top5_per_step"];
    for (size_t s = 0; s < top5.size(); ++s)
      for (const auto &pair : top5[s]) {
        int32_t id = pair[0].get<int32_t>();
        double want = pair[1].get<double>();
        EXPECT_NEAR(steps[s][size_t(id)], want, 1e-4 * std::abs(want)) << "step " << s << " id " << id;
      }
  }
}

TEST_F(TrainedModel, KVCacheMatchesFullRecompute) {
  std::vector<int32_t> prompt = (*golden)["prompts"][1]["input_ids"].get<std::vector<int32_t>>();
  auto cachedModule = import(int64_t(prompt.size()));
  ReferenceModel cached(*cachedModule);
  std::vector<std::vector<float>> steps;
  std::vector<int32_t> ids = generate(cached, prompt, 10, &steps);

  // Recompute: every step prefills the whole sequence from an empty cache.
  auto fullModule = import(64, /*allLogits=*/false, /*ctxLen=*/64);
  ReferenceModel full(*fullModule);
  std::vector<int32_t> seq = prompt;
  for (size_t s = 0; s < steps.size(); ++s) {
    full.reset();
    std::vector<float> logits = full.prefill(seq);
    double maxAbs = 0, maxDiff = 0;
    for (size_t v = 0; v < logits.size(); ++v) {
      maxAbs = std::max(maxAbs, double(std::abs(logits[v])));
      maxDiff = std::max(maxDiff, double(std::abs(logits[v] - steps[s][v])));
    }
    EXPECT_LE(maxDiff, 1e-5 * maxAbs) << "step " << s;
    EXPECT_EQ(Sampler::argmax(logits.data(), logits.size()), ids[s]) << "step " << s;
    seq.push_back(ids[s]);
  }
}

TEST_F(TrainedModel, ChunkedAndPaddedPrefillAgree) {
  std::vector<int32_t> prompt = tokenizer->encode("And the LORD spake unto Moses, saying, Speak unto the children");
  ASSERT_GT(prompt.size(), 10u);
  std::vector<std::vector<float>> exactSteps, chunkSteps, padSteps, oneSteps;
  auto exact = import(int64_t(prompt.size()));
  auto chunked = import(3);
  auto padded = import(40);
  auto single = import(1);
  ReferenceModel a(*exact), b(*chunked), c(*padded), d(*single);
  auto ids = generate(a, prompt, 8, &exactSteps);
  EXPECT_EQ(generate(b, prompt, 8, &chunkSteps), ids);
  EXPECT_EQ(generate(c, prompt, 8, &padSteps), ids);
  EXPECT_EQ(generate(d, prompt, 8, &oneSteps), ids);
  for (size_t v = 0; v < exactSteps[0].size(); v += 97) {
    EXPECT_NEAR(chunkSteps[0][v], exactSteps[0][v], 1e-5);
    EXPECT_NEAR(padSteps[0][v], exactSteps[0][v], 1e-5);
    EXPECT_NEAR(oneSteps[0][v], exactSteps[0][v], 1e-5);
  }
}

TEST_F(TrainedModel, ContextOverflowIsAnError) {
  auto module = import(4, false, 8);
  ReferenceModel m(*module);
  EXPECT_THROW(m.prefill(std::vector<int32_t>(9, 11)), kiln::Error);
  m.prefill(std::vector<int32_t>(8, 11));
  EXPECT_THROW(m.decode(11), kiln::Error);
}

} // namespace
