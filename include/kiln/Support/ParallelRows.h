//===- ParallelRows.h - run a loop body over rows on a few threads --------===//
#ifndef KILN_SUPPORT_PARALLELROWS_H
#define KILN_SUPPORT_PARALLELROWS_H

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace kiln {

/// Runs fn(i) for every i in [0, n), in contiguous chunks on up to `threads`
/// threads (the caller's among them). Callers that sum per-row results do so
/// afterwards in row order, so their results do not depend on the thread count.
template <typename Fn> void parallelRows(size_t n, unsigned threads, Fn fn) {
  size_t chunks = std::max<size_t>(1, std::min<size_t>(threads, n));
  size_t step = (n + chunks - 1) / chunks;
  std::vector<std::thread> pool;
  for (size_t begin = step; begin < n; begin += step)
    pool.emplace_back([&fn, begin, end = std::min(n, begin + step)] {
      for (size_t i = begin; i < end; ++i)
        fn(i);
    });
  for (size_t i = 0; i < std::min(n, step); ++i)
    fn(i);
  for (auto &t : pool)
    t.join();
}

} // namespace kiln

#endif
