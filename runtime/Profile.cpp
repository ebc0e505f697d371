//===- Profile.cpp - kiln bench --profile's accounting ---------------------===//
#include "kiln/Runtime/Profile.h"

#include "../backends/cpu/kernels/KernelABI.h"

#include <algorithm>
#include <chrono>

namespace kiln::rt {

namespace {
const char *const kNames[] = {"other",        "embedding",  "layer-norm",  "elementwise", "linear-f32",
                              "linear-f16",   "linear-bf16", "linear-int8", "linear-int4", "linear-w8a8",
                              "linear-w4a8",  "linear-2:4", "quantize-activations", "attention", "cache-write",
                              "lm-head",      "select-last", "sampling"};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == KILN_PROFILE_KINDS + 1, "a name for every profile kind");
} // namespace

int64_t Profiler::nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int Profiler::kinds() { return KILN_PROFILE_KINDS + 1; }
int Profiler::samplingKind() { return KILN_PROFILE_KINDS; }
const char *Profiler::kindName(int kind) { return kind >= 0 && kind < kinds() ? kNames[kind] : "?"; }

void Profiler::clear() {
  for (auto &s : stats_)
    s.clear();
  runs_[0] = runs_[1] = 0;
}

Profiler::Stat &Profiler::at(Phase phase, int kind, int layer) {
  size_t index = size_t(layer + 1) * size_t(kinds()) + size_t(kind);
  if (stats_[phase].size() <= index)
    stats_[phase].resize((size_t(layer + 2)) * size_t(kinds()));
  return stats_[phase][index];
}

Profiler::Stat Profiler::stat(Phase phase, int kind, int layer) const {
  Stat sum;
  const auto &all = stats_[phase];
  for (size_t i = 0; i < all.size(); ++i)
    if (int(i % size_t(kinds())) == kind && (layer == -2 || int(i / size_t(kinds())) - 1 == layer)) {
      sum.ns += all[i].ns;
      sum.waitNs += all[i].waitNs;
      sum.calls += all[i].calls;
    }
  return sum;
}

int Profiler::layers() const {
  size_t rows = std::max(stats_[0].size(), stats_[1].size()) / size_t(kinds());
  return rows > 1 ? int(rows) - 1 : 0;
}

double Profiler::totalNs(Phase phase) const {
  double t = 0;
  for (const Stat &s : stats_[phase])
    t += s.ns;
  return t;
}

void Profiler::charge(int64_t now) {
  at(phase_, kind_, layer_).ns += double(now - since_);
  since_ = now;
}

void Profiler::beginGraph(Phase phase) {
  phase_ = phase;
  ++runs_[phase];
  kind_ = KILN_PROFILE_OTHER;
  layer_ = -1;
  since_ = nowNs();
}

void Profiler::endGraph() {
  charge(nowNs());
}

void Profiler::mark(int32_t event) {
  int64_t now = nowNs();
  charge(now);
  kind_ = std::clamp(int(event & 0xff), 0, KILN_PROFILE_KINDS - 1);
  layer_ = std::max(-1, int(event >> 8) - 1);
  ++at(phase_, kind_, layer_).calls;
}

void Profiler::addWait(double ns) { at(phase_, kind_, layer_).waitNs += ns; }

void Profiler::addSampling(double ns) {
  Stat &s = at(phase_, samplingKind(), -1);
  s.ns += ns;
  ++s.calls;
}

} // namespace kiln::rt
