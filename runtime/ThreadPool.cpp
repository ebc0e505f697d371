//===- ThreadPool.cpp - persistent workers for the kernels ----------------===//
#include "ThreadPool.h"

#include "kiln/Runtime/Profile.h"
#include "kiln/Support/Error.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#define KILN_PAUSE() _mm_pause()
#else
#define KILN_PAUSE() std::this_thread::yield()
#endif

namespace kiln::rt {

namespace {
// Waiting is a short spin (the next parallel region usually follows within microseconds), then
// yielding the core, then (workers only) sleeping. Yielding matters when the machine has more
// busy threads than cores (another process, ctest -j): a spinning thread would otherwise hold the
// core the thread it waits for needs, for a whole scheduler time slice per parallel region.
constexpr int kSpinsBeforeYield = 1 << 10;
constexpr int kSpinsBeforeSleep = 1 << 12; // about 3 ms of yields after the spin
constexpr int64_t kChunksPerThread = 4;

inline void backOff(int spins) {
  if (spins < kSpinsBeforeYield)
    KILN_PAUSE();
  else
    std::this_thread::yield();
}
} // namespace

namespace {
int checkedThreads(int threads) {
  if (threads < 0 || threads > 1024)
    throw kiln::Error("threads must be 0 (all cores) to 1024, got " + std::to_string(threads));
  return threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
}
} // namespace

ThreadPool::ThreadPool(int threads) : threads_(checkedThreads(threads)) {
  context_.parallel_for = &ThreadPool::parallelForC;
  context_.pool = this;
  context_.threads = threads_;
  for (int i = 1; i < threads_; ++i)
    workers_.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto &t : workers_)
    t.join();
}

void ThreadPool::runChunks() {
  for (;;) {
    int64_t c = nextChunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= chunks_)
      return;
    int64_t begin = n_ * c / chunks_, end = n_ * (c + 1) / chunks_;
    if (begin < end)
      fn_(arg_, begin, end);
  }
}

void ThreadPool::work(int index) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      if (++spins < kSpinsBeforeSleep) {
        backOff(spins);
        continue;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load())
      return;
    if (profiling_) {
      started_[size_t(index)] = Profiler::nowNs();
      runChunks();
      finished_[size_t(index)] = Profiler::nowNs();
    } else {
      runChunks();
    }
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallelFor(int64_t n, KilnTaskFn fn, void *arg) {
  if (threads_ <= 1 || n <= 1) {
    if (n > 0)
      fn(arg, 0, n);
    return;
  }
  fn_ = fn;
  arg_ = arg;
  n_ = n;
  chunks_ = std::min<int64_t>(n, int64_t(threads_) * kChunksPerThread);
  nextChunk_.store(0, std::memory_order_relaxed);
  pending_.store(threads_ - 1, std::memory_order_relaxed);
  profiling_ = profiler_ != nullptr;
  if (profiling_) {
    started_.resize(size_t(threads_));
    finished_.resize(size_t(threads_));
    regionStart_ = Profiler::nowNs();
  }
  {
    // Under the lock, so a worker about to sleep cannot miss the bump.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load() > 0)
    wake_.notify_all();
  runChunks();
  int64_t callerDone = profiling_ ? Profiler::nowNs() : 0;
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0;)
    backOff(++spins);
  if (profiling_) {
    // Each thread's wait: from the region's start to its own, and from its last chunk to the end.
    int64_t end = Profiler::nowNs();
    double wait = double(end - callerDone);
    for (int i = 1; i < threads_; ++i)
      wait += double(started_[size_t(i)] - regionStart_) + double(end - finished_[size_t(i)]);
    profiler_->addWait(wait);
  }
}

void ThreadPool::parallelForC(void *pool, int64_t n, KilnTaskFn fn, void *arg) {
  static_cast<ThreadPool *>(pool)->parallelFor(n, fn, arg);
}

} // namespace kiln::rt
