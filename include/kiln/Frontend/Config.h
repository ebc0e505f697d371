//===- Config.h - Hugging Face GPT-2 configuration ------------------------===//
#ifndef KILN_FRONTEND_CONFIG_H
#define KILN_FRONTEND_CONFIG_H

#include <cstdint>
#include <string>

namespace kiln {

/// The fields of a Hugging Face GPT2Config that change the computation.
/// Options Kiln does not implement are refused by name when loading.
struct GPT2Config {
  int64_t vocabSize = 50257;
  int64_t nPositions = 1024;
  int64_t nEmbd = 768;
  int64_t nLayer = 12;
  int64_t nHead = 12;
  int64_t nInner = 0; ///< 0 in the file (null) means 4 * nEmbd; resolved on load.
  double layerNormEpsilon = 1e-5;
  std::string activation = "gelu_new";
  bool scaleAttnWeights = true;
  bool scaleAttnByInverseLayerIdx = false;
  bool reorderAndUpcastAttn = false;
  bool tieWordEmbeddings = true;
  int64_t bosTokenId = 50256;
  int64_t eosTokenId = 50256;

  int64_t headDim() const { return nEmbd / nHead; }
  int64_t innerDim() const { return nInner > 0 ? nInner : 4 * nEmbd; }
  /// The attention score scale of layer `layer` (0-based), as HF computes it.
  double attentionScale(int64_t layer) const;

  /// Parses and validates config.json text; `file` names it in errors.
  static GPT2Config parse(const std::string &text, const std::string &file);
  static GPT2Config load(const std::string &path);
  /// A config.json that Hugging Face transformers loads as this config.
  std::string toJson() const;
};

} // namespace kiln

#endif
