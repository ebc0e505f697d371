//===- Generate.h - the generation loop shared by both engines ------------===//
//
// MLIR-free. `kiln run ARTIFACT` (runtime) and `kiln run --reference`
// (interpreter, in the compiler library) parse the same options and drive
// the same loop; only the engine differs.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_GENERATE_H
#define KILN_TOOLS_GENERATE_H

#include "Args.h"

#include "kiln/Runtime/Sampler.h"
#include "kiln/Runtime/Tokenizer.h"

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace kiln {

/// `kiln run`'s options (both engines accept all; each refuses what does not apply).
extern const std::set<std::string> kRunValuedOptions, kRunFlagOptions;
extern const char *const kRunHelp;

struct RunSettings {
  SamplingOptions sampling;
  int64_t newTokens = 32;
  int64_t topLogits = 0;
  int64_t threads = 0;
  bool json = false, printIds = false, stats = false;
};
RunSettings parseRunSettings(const Args &args);

struct Engine {
  std::function<void(const std::vector<int32_t> &)> prefill; ///< the prompt
  std::function<void(int32_t)> decode;                        ///< one more token
  std::function<std::vector<float>()> logits;                 ///< after the last step
  /// Optional: the greedy id where the logits are (a GPU picks it on the device and reads
  /// back one id instead of the vocabulary's logits).
  std::function<int32_t()> greedy;
  std::function<int64_t()> position;
  int64_t contextLen = 0, vocabSize = 0;
};

/// Checks the prompt against the engine, generates, prints; returns the exit code.
int generate(const Args &args, const RunSettings &settings, Engine &engine, const std::vector<int32_t> &prompt,
             const Tokenizer *tokenizer);

} // namespace kiln

#endif
