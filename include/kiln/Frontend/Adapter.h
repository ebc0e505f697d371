//===- Adapter.h - a Hugging Face PEFT LoRA adapter folder ----------------===//
//
// MLIR-free. Opens adapter_config.json and adapter_model.safetensors, checks
// every field and tensor against the base model's config, and returns the
// low-rank factors per adapted linear. What Kiln does not implement (DoRA,
// modules_to_save, trained biases, rank or alpha patterns, pickled weights)
// is refused with one line naming the file and the field.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_ADAPTER_H
#define KILN_FRONTEND_ADAPTER_H

#include "kiln/Frontend/Config.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

/// The factors of one adapted GPT-2 linear, in PEFT's layout:
/// delta(x) = scale * (x A^T) B^T, A [r, in], B [out, r].
struct LoraFactors {
  std::string module; ///< "h.3.attn.c_attn", "h.3.attn.c_proj", "h.3.mlp.c_fc", "h.3.mlp.c_proj".
  int64_t in = 0, out = 0;
  std::vector<float> a, b; ///< row-major [r, in] and [out, r]
};

struct LoraAdapter {
  std::string dir;
  int64_t rank = 0;
  double alpha = 0;
  bool rslora = false;
  double scale = 0; ///< alpha / r, or alpha / sqrt(r) with use_rslora.
  std::string baseModel; ///< base_model_name_or_path (informative only).
  std::vector<LoraFactors> modules; ///< In model order (layer, then c_attn, attn.c_proj, c_fc, mlp.c_proj).

  /// Opens and validates `dir` against the base model `config`; throws
  /// kiln::Error naming the file and field.
  static LoraAdapter open(const std::string &dir, const GPT2Config &config);

  /// The module's Conv1D weight delta, scale * (B A)^T as a row-major
  /// [in, out] matrix, summed in double.
  std::vector<double> convDelta(const LoraFactors &m) const;
};

/// The GPT-2 linears an adapter may target, as "h.L.<suffix>" suffixes.
const std::vector<std::string> &loraModuleSuffixes();

} // namespace kiln

#endif
