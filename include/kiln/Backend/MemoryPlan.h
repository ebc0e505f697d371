//===- MemoryPlan.h - where each value of a graph function lives ----------===//
//
// Target-independent, shared by the backends that plan their own memory
// (cpu today; the GPU backends next). A kiln function's values live in the
// buffers its runtime passes, at offsets fixed at compile time:
//
//  - views cost nothing: split, split_heads and merge_heads alias their
//    input (with a row stride), and cache_update updates the cache in place;
//  - every other result gets arena space, reused once its value (and every
//    view of it) is dead: first fit by decreasing size over live intervals.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKEND_MEMORYPLAN_H
#define KILN_BACKEND_MEMORYPLAN_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"

#include <cstdint>
#include <string>

namespace kiln {

/// The buffers of a graph call, in the order runtimes pass them: weights,
/// the arena, input ids, position ids, logits, then the KV caches (key and
/// value per layer, the function's arguments 2, 3, ...).
enum PlanBuffer : int {
  kWeightsBuffer = 0,
  kArenaBuffer = 1,
  kInputIdsBuffer = 2,
  kPositionsBuffer = 3,
  kLogitsBuffer = 4,
  kFirstCacheBuffer = 5,
};

/// Where a value lives: buffer, element offset (4-byte elements), and (for
/// [rows, cols] activations) the distance between rows in elements.
struct Place {
  int buffer = kArenaBuffer;
  int64_t offset = 0;
  int64_t rowStride = 0;
  mlir::Value root; ///< The allocation this place belongs to (itself if not a view).
};

struct MemoryPlan {
  llvm::DenseMap<mlir::Value, Place> places;
  /// Arena bytes the values need (each allocation `alignment`-byte aligned).
  uint64_t arenaBytes = 0;
};

/// Plans `func` (batch 1; result 0 the logits, result i the in-place update
/// of cache argument i + 1), every allocation starting at a multiple of
/// `alignment` bytes (a power of two, at least 64). Throws kiln::Error as
/// "<who>: cannot lower '<op>': <why>" for a function outside that convention.
MemoryPlan planMemory(mlir::func::FuncOp func, const std::string &who, int64_t alignment = 64);

} // namespace kiln

#endif
