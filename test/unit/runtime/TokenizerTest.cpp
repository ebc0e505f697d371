//===- TokenizerTest.cpp - GPT-2 BPE against an independent encoder -------===//
#include "TestUtil.h"

#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace kiln;
using namespace kiln::test;

namespace {

const Tokenizer &gpt2() {
  static auto tok = Tokenizer::fromDir(modelDir());
  return *tok;
}

// test/data/tokenizer_cases.json holds ids produced by two independent GPT-2
// encoders (npm gpt-tokenizer r50k_base and gpt-3-encoder, which agree); see
// tokenizer_cases.gen.js beside it.
TEST(Tokenizer, MatchesTheReferenceEncoderOnEveryCase) {
  auto cases = nlohmann::json::parse(readBytes(sourceDir() + "/test/data/tokenizer_cases.json"));
  ASSERT_GE(cases.size(), 60u);
  for (const auto &c : cases) {
    std::string text = c["text"].get<std::string>();
    std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(gpt2().encode(text), want) << "text: " << nlohmann::json(text).dump();
    EXPECT_EQ(gpt2().decode(want), text) << "decode of: " << nlohmann::json(text).dump();
  }
}

TEST(Tokenizer, MatchesTheGoldenPrompts) {
  auto golden = nlohmann::json::parse(readBytes(modelDir() + "/golden.json"));
  for (const auto &p : golden["prompts"])
    EXPECT_EQ(gpt2().encode(p["prompt"].get<std::string>()), p["input_ids"].get<std::vector<int32_t>>());
}

TEST(Tokenizer, PreTokenizesLikeTheGpt2Pattern) {
  using V = std::vector<std::string>;
  EXPECT_EQ(gpt2().preTokenize("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(gpt2().preTokenize("don't  stop\n\nnow"), (V{"don", "'t", " ", " stop", "\n", "\n", "now"}));
  EXPECT_EQ(gpt2().preTokenize("x   "), (V{"x", "   "}));
  EXPECT_EQ(gpt2().preTokenize("abc123!?"), (V{"abc", "123", "!?"}));
  EXPECT_EQ(gpt2().preTokenize(" 42 ?"), (V{" 42", " ?"}));
}

TEST(Tokenizer, InvalidUtf8SurvivesTheRoundTrip) {
  std::string bad = "ok\xff\xfe then";
  EXPECT_EQ(gpt2().decode(gpt2().encode(bad)), bad);
}

TEST(Tokenizer, EndOfTextIdDecodes) { EXPECT_EQ(gpt2().tokenBytes(50256), "<|endoftext|>"); }

TEST(Tokenizer, RejectsIdsOutsideTheVocabulary) {
  EXPECT_THROW(gpt2().tokenBytes(50257), Error);
  EXPECT_THROW(gpt2().tokenBytes(-1), Error);
}

TEST(Tokenizer, StreamerHoldsBackPartialCharacters) {
  std::vector<int32_t> ids = gpt2().encode("日本語 and é");
  TextStreamer s(gpt2());
  std::string out;
  for (int32_t id : ids) {
    std::string piece = s.push(id);
    // Every piece handed out must be complete UTF-8 on its own.
    for (size_t i = 0; i < piece.size();) {
      unsigned char c = static_cast<unsigned char>(piece[i]);
      size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      ASSERT_LE(i + len, piece.size()) << "partial character streamed";
      i += len;
    }
    out += piece;
  }
  out += s.flush();
  EXPECT_EQ(out, "日本語 and é");
}

TEST(Tokenizer, BadFilesAreNamed) {
  TempDir dir("tok");
  writeBytes(dir.file("vocab.json"), "{not json");
  writeBytes(dir.file("merges.txt"), "#version: 0.2\n");
  try {
    Tokenizer::fromDir(dir.path().string());
    FAIL();
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("vocab.json: vocab is not valid JSON"), std::string::npos) << e.what();
  }
  try {
    Tokenizer::fromDir("/nonexistent");
    FAIL();
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/vocab.json: cannot open"), std::string::npos);
  }
}

} // namespace
