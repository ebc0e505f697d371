//===- Config.cpp - Hugging Face GPT-2 configuration ----------------------===//
#include "kiln/Frontend/Config.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>
#include <tuple>

namespace kiln {

using json = nlohmann::json;

double GPT2Config::attentionScale(int64_t layer) const {
  double scale = scaleAttnWeights ? 1.0 / std::sqrt(double(headDim())) : 1.0;
  if (scaleAttnByInverseLayerIdx)
    scale /= double(layer + 1);
  return scale;
}

namespace {
int64_t getInt(const json &j, const char *key, int64_t fallback, const std::string &file) {
  if (!j.contains(key) || j[key].is_null())
    return fallback;
  if (!j[key].is_number_integer())
    fail(file, std::string("field '") + key + "' must be an integer");
  return j[key].get<int64_t>();
}
bool getBool(const json &j, const char *key, bool fallback, const std::string &file) {
  if (!j.contains(key) || j[key].is_null())
    return fallback;
  if (!j[key].is_boolean())
    fail(file, std::string("field '") + key + "' must be true or false");
  return j[key].get<bool>();
}
} // namespace

GPT2Config GPT2Config::parse(const std::string &text, const std::string &file) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception &e) {
    fail(file, std::string("config is not valid JSON: ") + e.what());
  }
  if (!j.is_object())
    fail(file, "config is not a JSON object");
  if (j.contains("model_type") && j["model_type"] != "gpt2")
    fail(file, "model_type '" + j["model_type"].dump() + "' is not supported (only gpt2)");

  GPT2Config c;
  c.vocabSize = getInt(j, "vocab_size", c.vocabSize, file);
  c.nPositions = getInt(j, "n_positions", c.nPositions, file);
  c.nEmbd = getInt(j, "n_embd", c.nEmbd, file);
  c.nLayer = getInt(j, "n_layer", c.nLayer, file);
  c.nHead = getInt(j, "n_head", c.nHead, file);
  c.nInner = getInt(j, "n_inner", 0, file);
  c.bosTokenId = getInt(j, "bos_token_id", c.bosTokenId, file);
  c.eosTokenId = getInt(j, "eos_token_id", c.eosTokenId, file);
  if (j.contains("layer_norm_epsilon")) {
    if (!j["layer_norm_epsilon"].is_number())
      fail(file, "field 'layer_norm_epsilon' must be a number");
    c.layerNormEpsilon = j["layer_norm_epsilon"].get<double>();
  }
  if (j.contains("activation_function")) {
    if (!j["activation_function"].is_string())
      fail(file, "field 'activation_function' must be a string");
    c.activation = j["activation_function"].get<std::string>();
  }
  c.scaleAttnWeights = getBool(j, "scale_attn_weights", true, file);
  c.scaleAttnByInverseLayerIdx = getBool(j, "scale_attn_by_inverse_layer_idx", false, file);
  c.reorderAndUpcastAttn = getBool(j, "reorder_and_upcast_attn", false, file);
  c.tieWordEmbeddings = getBool(j, "tie_word_embeddings", true, file);
  if (getBool(j, "add_cross_attention", false, file))
    fail(file, "add_cross_attention is not supported (decoder-only GPT-2 only)");

  // Upper bounds far above any GPT-2 (XL: n_embd 1600, 48 layers, vocab 50257) keep every size
  // the importer and the backends multiply out (e.g. 4 * n_embd, vocab * n_embd) within int64
  // (found by the config fuzz target: n_embd 8.9e18 overflowed the default n_inner).
  constexpr int64_t kMaxDim = int64_t(1) << 20, kMaxVocab = int64_t(1) << 24, kMaxLayers = 4096;
  for (auto [name, value, most] : {std::tuple{"vocab_size", c.vocabSize, kMaxVocab},
                                   {"n_positions", c.nPositions, kMaxDim}, {"n_embd", c.nEmbd, kMaxDim},
                                   {"n_layer", c.nLayer, kMaxLayers}, {"n_head", c.nHead, kMaxDim}})
    if (value <= 0 || value > most)
      fail(file, std::string("field '") + name + "' must be in 1.." + std::to_string(most) + ", got " +
                     std::to_string(value));
  if (c.nInner < 0 || c.nInner > 4 * kMaxDim)
    fail(file, "field 'n_inner' must be in 1.." + std::to_string(4 * kMaxDim) + " or null, got " +
                   std::to_string(c.nInner));
  if (c.nEmbd % c.nHead != 0)
    fail(file, "n_embd (" + std::to_string(c.nEmbd) + ") is not divisible by n_head (" +
                   std::to_string(c.nHead) + ")");
  if (!(c.layerNormEpsilon > 0))
    fail(file, "layer_norm_epsilon must be positive");
  if (c.activation != "gelu_new" && c.activation != "gelu_pytorch_tanh" && c.activation != "gelu")
    fail(file, "activation_function '" + c.activation +
                   "' is not supported (supported: gelu_new, gelu_pytorch_tanh, gelu)");
  // reorder_and_upcast_attn only changes the precision of HF's f16 attention
  // path (it upcasts to f32); Kiln computes attention in f32 or better
  // anyway, so the option needs no separate implementation.
  return c;
}

GPT2Config GPT2Config::load(const std::string &path) {
  return parse(readFile(path, "cannot open config file"), path);
}

std::string GPT2Config::toJson() const {
  nlohmann::ordered_json j;
  j["activation_function"] = activation;
  j["architectures"] = {"GPT2LMHeadModel"};
  j["attn_pdrop"] = 0.0;
  j["bos_token_id"] = bosTokenId;
  j["embd_pdrop"] = 0.0;
  j["eos_token_id"] = eosTokenId;
  j["initializer_range"] = 0.02;
  j["layer_norm_epsilon"] = layerNormEpsilon;
  j["model_type"] = "gpt2";
  j["n_ctx"] = nPositions;
  j["n_embd"] = nEmbd;
  j["n_head"] = nHead;
  j["n_inner"] = nInner > 0 ? json(nInner) : json(nullptr);
  j["n_layer"] = nLayer;
  j["n_positions"] = nPositions;
  j["reorder_and_upcast_attn"] = reorderAndUpcastAttn;
  j["resid_pdrop"] = 0.0;
  j["scale_attn_by_inverse_layer_idx"] = scaleAttnByInverseLayerIdx;
  j["scale_attn_weights"] = scaleAttnWeights;
  j["tie_word_embeddings"] = tieWordEmbeddings;
  j["use_cache"] = true;
  j["vocab_size"] = vocabSize;
  return j.dump(2) + "\n";
}

} // namespace kiln
