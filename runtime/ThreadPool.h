//===- ThreadPool.h - persistent workers for the kernels ------------------===//
#ifndef KILN_RUNTIME_THREADPOOL_H
#define KILN_RUNTIME_THREADPOOL_H

#include "../backends/cpu/kernels/KernelABI.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::rt {

class Profiler;

/// Workers wait spinning, then yielding, then sleeping for the next parallel_for;
/// the caller works too, and waits for the others spinning then yielding. A decode
/// step issues ~60 of these, so a wake-up must cost microseconds, not a futex round
/// trip each; yielding keeps a waiting thread from holding a core that a preempted
/// one needs (two 2-thread decodes on 2 cores: 69 ms/token each when only spinning,
/// 15.5 with the yield, against 7.7 alone, GPT-2 124M int8). The range is cut into a
/// few chunks per thread, claimed dynamically, so a thread the hypervisor
/// preempts does not hold up the others.
class ThreadPool {
public:
  explicit ThreadPool(int threads); ///< threads <= 0: one per core
  ~ThreadPool();
  int threads() const { return threads_; }
  void parallelFor(int64_t n, KilnTaskFn fn, void *arg);
  /// The C entry the kernels call (KilnRuntimeContext::parallel_for).
  static void parallelForC(void *pool, int64_t n, KilnTaskFn fn, void *arg);
  const KilnRuntimeContext &context() const { return context_; }
  /// While set, each parallel region adds its threads' waiting to the profiler's current
  /// kind (Profile.h). Set and cleared by the calling thread between regions.
  void setProfiler(Profiler *profiler) { profiler_ = profiler; }

private:
  void work(int index);
  void runChunks();

  int threads_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  KilnTaskFn fn_ = nullptr;
  void *arg_ = nullptr;
  int64_t n_ = 0;
  int64_t chunks_ = 0;
  std::atomic<int64_t> nextChunk_{0};
  KilnRuntimeContext context_{};
  Profiler *profiler_ = nullptr;
  bool profiling_ = false;                  ///< this region is timed (read by the workers)
  int64_t regionStart_ = 0;                 ///< ns
  std::vector<int64_t> started_, finished_; ///< ns, per thread, this region
};

} // namespace kiln::rt

#endif
