//===- Sampler.h - next-token selection -----------------------------------===//
#ifndef KILN_RUNTIME_SAMPLER_H
#define KILN_RUNTIME_SAMPLER_H

#include <cstddef>
#include <cstdint>

namespace kiln {

struct SamplingOptions {
  double temperature = 0.0; ///< 0 means greedy (argmax).
  int topK = 0;             ///< 0 keeps every token.
  double topP = 1.0;        ///< Nucleus mass to keep; 1 keeps every token.
  uint64_t seed = 0;
};

/// Greedy argmax or temperature / top-k / top-p sampling. The random stream
/// is a fixed generator (splitmix64), so a seed gives the same text anywhere.
class Sampler {
public:
  /// Throws kiln::Error on out-of-range options.
  explicit Sampler(const SamplingOptions &options);
  int32_t sample(const float *logits, size_t vocab);
  /// The first index of the largest logit.
  static int32_t argmax(const float *logits, size_t vocab);

private:
  double uniform();
  SamplingOptions options_;
  uint64_t state_;
};

} // namespace kiln

#endif
