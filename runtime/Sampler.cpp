//===- Sampler.cpp - next-token selection ---------------------------------===//
#include "kiln/Runtime/Sampler.h"

#include "kiln/Support/Error.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace kiln {

Sampler::Sampler(const SamplingOptions &options) : options_(options), state_(options.seed) {
  if (!(options.temperature >= 0) || !std::isfinite(options.temperature))
    throw Error("--temperature must be a finite number >= 0");
  if (options.topK < 0)
    throw Error("--top-k must be >= 0");
  if (!(options.topP > 0 && options.topP <= 1))
    throw Error("--top-p must be in (0, 1]");
}

double Sampler::uniform() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return double(z >> 11) / 9007199254740992.0; // [0, 1)
}

int32_t Sampler::argmax(const float *logits, size_t vocab) {
  size_t best = 0;
  for (size_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best])
      best = i;
  return int32_t(best);
}

int32_t Sampler::sample(const float *logits, size_t vocab) {
  if (options_.temperature == 0.0)
    return argmax(logits, vocab);
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto byLogit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  size_t keep = vocab;
  if (options_.topK > 0 && size_t(options_.topK) < vocab) {
    keep = size_t(options_.topK);
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), byLogit);
  } else {
    std::sort(order.begin(), order.end(), byLogit);
  }
  std::vector<double> probs(keep);
  double maxLogit = logits[order[0]], sum = 0;
  for (size_t i = 0; i < keep; ++i)
    sum += probs[i] = std::exp((double(logits[order[i]]) - maxLogit) / options_.temperature);
  // Nucleus: the smallest prefix (in descending probability) holding top_p of the mass.
  if (options_.topP < 1.0) {
    double cumulative = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += probs[i] / sum;
      if (cumulative >= options_.topP) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    sum = std::accumulate(probs.begin(), probs.begin() + keep, 0.0);
  }
  double r = uniform() * sum;
  for (size_t i = 0; i < keep; ++i) {
    r -= probs[i];
    if (r < 0)
      return order[i];
  }
  return order[keep - 1];
}

} // namespace kiln
