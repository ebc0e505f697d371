//===- CheckpointTest.cpp - config.json and checkpoint folders ------------===//
#include "TestUtil.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/Support/Error.h"

#include <cmath>
#include <gtest/gtest.h>

using namespace kiln;
using namespace kiln::test;

namespace {

std::string parseError(const std::string &text) {
  try {
    GPT2Config::parse(text, "config.json");
  } catch (const Error &e) {
    return e.what();
  }
  return "";
}

TEST(Config, ParsesTheShippedModel) {
  GPT2Config c = GPT2Config::load(modelDir() + "/config.json");
  EXPECT_EQ(c.nLayer, 4);
  EXPECT_EQ(c.nEmbd, 128);
  EXPECT_EQ(c.nHead, 4);
  EXPECT_EQ(c.headDim(), 32);
  EXPECT_EQ(c.innerDim(), 512) << "n_inner null means 4 * n_embd";
  EXPECT_EQ(c.vocabSize, 50257);
  EXPECT_EQ(c.nPositions, 256);
  EXPECT_DOUBLE_EQ(c.layerNormEpsilon, 1e-5);
  EXPECT_TRUE(c.tieWordEmbeddings);
  EXPECT_DOUBLE_EQ(c.attentionScale(0), 1.0 / std::sqrt(32.0));
}

TEST(Config, AttentionScaleOptions) {
  GPT2Config c = GPT2Config::parse(R"({"n_embd":64,"n_head":4,"scale_attn_by_inverse_layer_idx":true})", "c");
  EXPECT_DOUBLE_EQ(c.attentionScale(2), 0.25 / 3.0);
  c = GPT2Config::parse(R"({"n_embd":64,"n_head":4,"scale_attn_weights":false})", "c");
  EXPECT_DOUBLE_EQ(c.attentionScale(5), 1.0);
}

TEST(Config, RoundTripsThroughJson) {
  GPT2Config c = presetConfig("gpt2-medium");
  c.nInner = 3000;
  c.activation = "gelu";
  GPT2Config d = GPT2Config::parse(c.toJson(), "c");
  EXPECT_EQ(d.nLayer, 24);
  EXPECT_EQ(d.nEmbd, 1024);
  EXPECT_EQ(d.nHead, 16);
  EXPECT_EQ(d.nInner, 3000);
  EXPECT_EQ(d.activation, "gelu");
}

TEST(Config, RefusesWhatItCannotRun) {
  EXPECT_NE(parseError(R"({"n_embd":100,"n_head":3})").find("n_embd (100) is not divisible by n_head (3)"),
            std::string::npos);
  EXPECT_NE(parseError(R"({"activation_function":"relu"})").find("activation_function 'relu' is not supported"),
            std::string::npos);
  EXPECT_NE(parseError("{oops").find("config.json: config is not valid JSON"), std::string::npos);
  EXPECT_NE(parseError(R"({"n_layer":"4"})").find("field 'n_layer' must be an integer"), std::string::npos);
  EXPECT_NE(parseError(R"({"n_head":0})").find("field 'n_head' must be in 1..1048576, got 0"), std::string::npos);
  // Sizes whose products would overflow int64 (a fuzz finding: 4 * n_embd for the default n_inner).
  EXPECT_NE(parseError(R"({"n_embd":8877777777777777768})").find("field 'n_embd' must be in 1..1048576"),
            std::string::npos);
  EXPECT_NE(parseError(R"({"vocab_size":99999999999})").find("field 'vocab_size' must be in 1..16777216"),
            std::string::npos);
  EXPECT_NE(parseError(R"({"n_inner":9999999999})").find("field 'n_inner' must be in 1..4194304 or null"),
            std::string::npos);
  EXPECT_NE(parseError(R"({"model_type":"llama"})").find("is not supported (only gpt2)"), std::string::npos);
  EXPECT_NE(parseError(R"({"add_cross_attention":true})").find("add_cross_attention is not supported"),
            std::string::npos);
  EXPECT_EQ(parseError(R"({"reorder_and_upcast_attn":true,"activation_function":"gelu_pytorch_tanh"})"), "");
}

TEST(Checkpoint, OpensTheShippedModel) {
  auto ckpt = Checkpoint::open(modelDir());
  EXPECT_TRUE(ckpt->tiedLMHead());
  EXPECT_EQ(ckpt->tensor("wte.weight").shape, (std::vector<int64_t>{50257, 128}));
  EXPECT_EQ(ckpt->tensor("h.3.mlp.c_proj.weight").shape, (std::vector<int64_t>{512, 128}));
  EXPECT_EQ(expectedTensors(ckpt->config()).size(), 2u + 4 * 12 + 2);
}

struct Variant {
  const char *name;
  DType dtype;
  bool prefixed, untied;
  int shards;
};

class CheckpointVariants : public ::testing::TestWithParam<Variant> {};

TEST_P(CheckpointVariants, WrittenFoldersOpenWithTheRightTensors) {
  const Variant &v = GetParam();
  TempDir dir(std::string("ckpt-") + v.name);
  CheckpointSpec spec;
  spec.config = presetConfig("tiny");
  spec.config.nHead = 2;
  spec.config.vocabSize = 333;
  spec.config.tieWordEmbeddings = !v.untied;
  spec.dtype = v.dtype;
  spec.prefixed = v.prefixed;
  spec.shards = v.shards;
  spec.seed = 5;
  writeRandomCheckpoint(spec, dir.path().string());
  auto ckpt = Checkpoint::open(dir.path().string());
  EXPECT_EQ(ckpt->tiedLMHead(), !v.untied);
  EXPECT_EQ(ckpt->tensor("wte.weight").dtype, v.dtype);
  EXPECT_EQ(ckpt->tensor("wte.weight").shape, (std::vector<int64_t>{333, 64}));
  EXPECT_EQ(ckpt->has("lm_head.weight"), v.untied);
  // Layer-norm weights are drawn around 1, everything else around 0.
  EXPECT_NEAR(ckpt->tensor("h.1.ln_2.weight").at(0), 1.0, 0.5);
  EXPECT_NEAR(ckpt->tensor("h.1.ln_2.bias").at(0), 0.0, 0.2);
}

INSTANTIATE_TEST_SUITE_P(All, CheckpointVariants,
                         ::testing::Values(Variant{"f32", DType::F32, false, false, 1},
                                           Variant{"f16", DType::F16, false, false, 1},
                                           Variant{"bf16", DType::BF16, true, false, 1},
                                           Variant{"untied", DType::F32, false, true, 1},
                                           Variant{"sharded", DType::F32, true, true, 3}),
                         [](const auto &info) { return std::string(info.param.name); });

TEST(Checkpoint, SameSeedSameBytes) {
  TempDir a("seed-a"), b("seed-b");
  CheckpointSpec spec;
  spec.config = presetConfig("tiny");
  spec.seed = 42;
  writeRandomCheckpoint(spec, a.path().string());
  writeRandomCheckpoint(spec, b.path().string());
  EXPECT_EQ(readBytes(a.file("model.safetensors")), readBytes(b.file("model.safetensors")));
  spec.seed = 43;
  writeRandomCheckpoint(spec, b.path().string());
  EXPECT_NE(readBytes(a.file("model.safetensors")), readBytes(b.file("model.safetensors")));
}

TEST(Checkpoint, ReportsMissingAndMisshapedTensors) {
  TempDir dir("ckpt-bad");
  CheckpointSpec spec;
  spec.config = presetConfig("tiny");
  writeRandomCheckpoint(spec, dir.path().string());
  // The config now claims a wider MLP than the tensors have.
  GPT2Config wider = spec.config;
  wider.nInner = 300;
  writeBytes(dir.file("config.json"), wider.toJson());
  try {
    Checkpoint::open(dir.path().string());
    FAIL();
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'h.0.mlp.c_fc.weight' has shape [64, 256] but the config implies [64, 300]"),
              std::string::npos)
        << e.what();
  }
  GPT2Config untied = spec.config;
  untied.tieWordEmbeddings = false;
  writeBytes(dir.file("config.json"), untied.toJson());
  try {
    Checkpoint::open(dir.path().string());
    FAIL();
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'lm_head.weight'"), std::string::npos) << e.what();
  }
}

} // namespace
