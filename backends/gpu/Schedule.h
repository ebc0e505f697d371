//===- Schedule.h - kiln graph functions as GPU dispatch lists ------------===//
//
// The target-independent half of the GPU backends: each kiln function
// (prefill, decode) becomes a list of kernel dispatches over a fixed set of
// device buffers, placed by the shared memory plan (MemoryPlan.h). The
// buffer table, the kernel instances and the dispatch lists are the same
// for every GPU target; only how the kernels are compiled (SPIR-V, PTX) and
// run differs.
//
//  - weights: one buffer each, written to weights.bin once; an embedding
//    table larger than the largest binding is split by rows into chunks,
//    and its gathers and the LM head run once per chunk;
//  - arena, input_ids, position_ids, logits, the KV caches and the argmax
//    scratch: shared by both graphs, each sized for the larger;
//  - the step's ids and positions live in their buffers, never in kernel
//    arguments, so one recorded command stream serves every decode step;
//  - each graph ends with the greedy argmax into `next_id`.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKENDS_GPU_SCHEDULE_H
#define KILN_BACKENDS_GPU_SCHEDULE_H

#include "KernelLibrary.h"

#include "kiln/Backend/Artifact.h"

#include "mlir/IR/BuiltinOps.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::gpu {

/// Binding offsets are multiples of this: the largest
/// minStorageBufferOffsetAlignment Vulkan allows (CUDA needs less).
inline constexpr uint64_t kBindingAlignment = 256;

struct BufferSpec {
  std::string name; ///< "arena", "logits", "key_cache.3", "weight:h.0.mlp.c_fc.weight[0]", ...
  /// weight, arena, input_ids, position_ids, logits, key_cache, value_cache,
  /// argmax_values, argmax_ids, next_id.
  std::string role;
  uint64_t bytes = 0;
  uint64_t fileOffset = 0; ///< weights: where the bytes start in weights.bin
  int64_t layer = -1;      ///< caches
};

struct Binding {
  int buffer = 0;
  uint64_t offset = 0, bytes = 0; ///< a multiple of kBindingAlignment; the bound range
};

struct Dispatch {
  int kernel = 0; ///< index into Program::kernels
  std::vector<Binding> bindings;
  std::array<uint32_t, 3> groups{1, 1, 1};
  std::string op; ///< the kiln op it computes, for diagnostics
};

struct GraphSchedule {
  std::string name; ///< prefill or decode
  int64_t tokens = 0;
  uint64_t arenaBytes = 0;
  std::vector<Dispatch> dispatches;
};

struct Program {
  std::vector<BufferSpec> buffers;
  std::vector<KernelInstance> kernels; ///< distinct instances, one entry point each
  std::vector<std::string> entries;    ///< kernels[i]'s entry point name
  std::vector<GraphSchedule> graphs;
  uint64_t maxBindingBytes = 0; ///< the largest range any dispatch binds
};

/// Schedules every function of `module` for `profile`, with no binding
/// larger than `maxBinding` bytes; weights go into `writer`. Throws
/// kiln::Error as "<who>: cannot lower '<op>': <why>" for what the GPU
/// kernels do not cover.
Program schedule(mlir::ModuleOp module, const Profile &profile, uint64_t maxBinding, ArtifactWriter &writer,
                 const std::string &who);

/// program.json: the buffer table, the entry points and both dispatch lists.
std::string programJson(const Program &program);

} // namespace kiln::gpu

#endif
