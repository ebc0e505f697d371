//===- Checkpoint.h - a Hugging Face GPT-2 checkpoint folder --------------===//
//
// MLIR-free. Opens config.json and model.safetensors (or the shards listed in
// model.safetensors.index.json), accepts tensor names with or without the
// `transformer.` prefix, resolves a tied or separate LM head, and checks that
// every tensor the config implies is present, floating point and well shaped.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_CHECKPOINT_H
#define KILN_FRONTEND_CHECKPOINT_H

#include "kiln/Frontend/Config.h"
#include "kiln/Frontend/SafeTensors.h"

#include <memory>
#include <string>
#include <vector>

namespace kiln {

/// A tensor the model needs: its canonical name (no `transformer.` prefix) and shape.
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};

/// Every tensor a GPT-2 with `config` reads, in checkpoint order. The LM head
/// (`lm_head.weight`) is listed only when the embeddings are not tied.
std::vector<ExpectedTensor> expectedTensors(const GPT2Config &config);

class Checkpoint {
public:
  /// Opens and validates the folder; throws kiln::Error naming file and problem.
  static std::unique_ptr<Checkpoint> open(const std::string &dir);

  const std::string &dir() const { return dir_; }
  const GPT2Config &config() const { return config_; }
  /// True when the LM head reads `wte.weight`.
  bool tiedLMHead() const { return tied_; }

  /// The tensor by canonical name; throws kiln::Error if absent.
  const TensorView &tensor(const std::string &name) const;
  bool has(const std::string &name) const;

private:
  std::string dir_;
  GPT2Config config_;
  bool tied_ = true;
  std::vector<std::unique_ptr<SafeTensorsFile>> files_;
  std::map<std::string, const TensorView *> byName_;
};

/// Options of `kiln make-checkpoint`.
struct CheckpointSpec {
  GPT2Config config;
  DType dtype = DType::F32;
  uint64_t seed = 0;
  bool prefixed = false; ///< Write names with the `transformer.` prefix.
  int shards = 1;        ///< >1 writes model-0000i-of-0000n.safetensors + index.
  std::string tokenizerDir; ///< Copies vocab.json/merges.txt from here if set.
};

/// The config of a named preset: tiny, gpt2, gpt2-medium (throws on others).
GPT2Config presetConfig(const std::string &preset);

/// Writes a random-weight Hugging Face GPT-2 checkpoint folder.
void writeRandomCheckpoint(const CheckpointSpec &spec, const std::string &dir);

} // namespace kiln

#endif
