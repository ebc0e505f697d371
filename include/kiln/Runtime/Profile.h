//===- Profile.h - where a session's steps spend their time ---------------===//
//
// kiln bench --profile. A cpu model library (model ABI 3) calls a mark before
// each op it runs (KernelABI.h's profile_mark); the profiler charges the time
// between marks to the kind of op and the transformer block that ran, and the
// thread pool adds the time its threads wait at the end of each parallel region
// (wake-up and barrier) to the kind that issued it. Greedy and sampled picks are
// charged to "sampling". Attach one with Session::setProfiler; without one
// nothing is timed (the model tests one pointer per op).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_PROFILE_H
#define KILN_RUNTIME_PROFILE_H

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::rt {

class Profiler {
public:
  enum Phase { Prefill = 0, Decode = 1 };
  struct Stat {
    double ns = 0;     ///< wall time on the calling thread
    double waitNs = 0; ///< summed over the pool's threads: waiting for work to start or others to finish
    uint64_t calls = 0;
  };
  /// Op kinds: KernelABI.h's KILN_PROFILE_* in order, then sampling.
  static int kinds();
  static const char *kindName(int kind); ///< "linear-f32", "attention", ..., "sampling"
  static int samplingKind();

  void clear();
  /// Graph runs of a phase profiled so far (prefill chunks, decode steps).
  uint64_t runs(Phase phase) const { return runs_[phase]; }
  /// The phase's total over every block (layer = -2), or one block's (-1: outside the blocks).
  Stat stat(Phase phase, int kind, int layer = -2) const;
  int layers() const; ///< blocks seen (highest layer index + 1)
  double totalNs(Phase phase) const;

  // Called by Session and ThreadPool.
  void beginGraph(Phase phase);
  void endGraph();
  void mark(int32_t event);
  static void markC(void *profiler, int32_t event) { static_cast<Profiler *>(profiler)->mark(event); }
  void addWait(double ns);
  void addSampling(double ns);
  /// The profiler's clock (steady, ns), also the thread pool's.
  static int64_t nowNs();

private:
  Stat &at(Phase phase, int kind, int layer);
  void charge(int64_t now);

  std::vector<Stat> stats_[2]; ///< [(layer + 1) * kinds() + kind]
  uint64_t runs_[2] = {0, 0};
  Phase phase_ = Prefill;
  int kind_ = 0, layer_ = -1;
  int64_t since_ = 0; ///< ns, steady clock: when the current kind began
};

} // namespace kiln::rt

#endif
