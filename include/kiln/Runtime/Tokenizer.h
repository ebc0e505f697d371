//===- Tokenizer.h - GPT-2 byte-level BPE ---------------------------------===//
//
// MLIR-free. Encodes exactly as OpenAI's GPT-2 encoder (tiktoken r50k_base):
// the GPT-2 pre-tokenizer pattern with Unicode letter/number/white-space
// classes (from ICU), byte-level symbols, then BPE by merge rank.
// `<|endoftext|>` in input text is ordinary text; the id 50256 decodes to it.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_TOKENIZER_H
#define KILN_RUNTIME_TOKENIZER_H

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kiln {

class Tokenizer {
public:
  /// Loads vocab.json and merges.txt; throws kiln::Error naming the bad file.
  static std::unique_ptr<Tokenizer> load(const std::string &vocabPath, const std::string &mergesPath);
  /// Loads `dir`/vocab.json and `dir`/merges.txt.
  static std::unique_ptr<Tokenizer> fromDir(const std::string &dir);

  std::vector<int32_t> encode(std::string_view text) const;
  /// The bytes of the tokens, concatenated (may end inside a UTF-8 sequence).
  std::string decode(const std::vector<int32_t> &ids) const;
  const std::string &tokenBytes(int32_t id) const;
  size_t vocabSize() const { return idToBytes_.size(); }

  /// Splits text into pre-tokens as GPT-2's pattern does (exposed for tests).
  std::vector<std::string> preTokenize(std::string_view text) const;

private:
  void bpe(const std::string &piece, std::vector<int32_t> &out) const;

  struct PairHash {
    size_t operator()(const std::pair<std::string, std::string> &p) const {
      return std::hash<std::string>()(p.first) * 31 + std::hash<std::string>()(p.second);
    }
  };
  std::vector<std::string> idToBytes_;
  std::unordered_map<std::string, int32_t> bytesToId_;
  std::unordered_map<std::pair<std::string, std::string>, int, PairHash> mergeRank_;
  /// Encoded pre-tokens; the mutex makes encode() safe from several threads at once.
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
  mutable std::mutex cacheMutex_;
};

/// Streams decoded text: holds back an incomplete UTF-8 sequence at the end
/// so partial characters are never printed.
class TextStreamer {
public:
  explicit TextStreamer(const Tokenizer &tokenizer) : tokenizer_(tokenizer) {}
  /// The text that became complete with this token.
  std::string push(int32_t id);
  /// Whatever is still held back.
  std::string flush();

private:
  const Tokenizer &tokenizer_;
  std::string pending_;
};

} // namespace kiln

#endif
