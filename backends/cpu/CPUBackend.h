//===- CPUBackend.h - internals of the cpu backend ------------------------===//
#ifndef KILN_BACKENDS_CPU_CPUBACKEND_H
#define KILN_BACKENDS_CPU_CPUBACKEND_H

#include "kiln/Backend/Artifact.h"
#include "kiln/Frontend/Checkpoint.h"

#include "mlir/IR/BuiltinOps.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kiln {
class Checkpoint;

namespace cpu {

/// Packs weights on first request and returns their byte offset in
/// weights.bin. Layouts: "rowmajor" (as stored), "panel16" (a [K, N]
/// matrix for x @ W; see kernels/KernelABI.h) and "panel16t" (a [N, K]
/// matrix used as its transpose: the LM head reads the [V, E] embedding).
class WeightPacker {
public:
  explicit WeightPacker(ArtifactWriter &writer) : writer_(writer) {}
  ~WeightPacker();
  /// Byte offset of the global in `layout` in weights.bin.
  uint64_t offset(mlir::Operation *global, const std::string &layout);
  /// The global's storage format ("f32", "int8-sym", ...).
  std::string format(mlir::Operation *global);

  /// Switchable adapter slots (kiln/IR/Adapters.h) live in one block of
  /// weights.bin per adapter, all of one layout; this is the slot's byte
  /// offset inside a block (panel16 only: the low-rank branch is f32).
  uint64_t adapterOffset(mlir::Operation *slot, const std::string &layout);
  /// Writes the blocks, "none" (zeros) first, then each adapter of the
  /// module, and returns the manifest's `adapters` section (empty without slots).
  std::string writeAdapterBlocks(mlir::ModuleOp module);

private:
  ArtifactWriter &writer_;
  std::vector<mlir::Operation *> slots_; ///< In block order.
  std::map<mlir::Operation *, uint64_t> slotOffsets_;
  uint64_t blockBytes_ = 0;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::map<std::pair<mlir::Operation *, std::string>, uint64_t> offsets_;
};

/// One lowered graph function.
struct GraphInfo {
  std::string name, symbol;
  int64_t batch = 1; ///< sequences per call (decode_b<B>: B)
  int64_t tokens = 0;
  uint64_t arenaBytes = 0;
};

/// How the lowering computes. bf16Math (--cpu-math=bf16): linears and the LM
/// head with f32 or bf16 weights round their inputs and weights to bf16 and
/// sum the exact products in f32 (vdpbf16ps where the CPU has it).
struct LoweringOptions {
  bool bf16Math = false;
};

/// Lowers every func.func of the kiln module (after kiln-fuse-attention)
/// into an LLVM-dialect function `kiln_graph_<name>(ptr buffers, ptr rt)` in
/// `out`, planning the arena and packing weights through `packer`. Throws
/// kiln::Error on IR the backend cannot lower.
std::vector<GraphInfo> lowerGraphs(mlir::ModuleOp kilnModule, mlir::ModuleOp out, WeightPacker &packer,
                                   const LoweringOptions &options = {});

struct CodeGenOptions {
  std::string triple;   ///< e.g. x86_64-linux-gnu, aarch64-linux-gnu
  std::string cpu;      ///< LLVM CPU name ("x86-64", "generic", a named CPU, or resolved "native")
  std::string features; ///< LLVM feature string for that CPU
  std::string kernelBitcodeDir;
};

/// Converts the LLVM-dialect module to LLVM IR, links the kernel bitcode,
/// optimises (O3) and returns the requested stage: "llvm" (IR text), "obj"
/// (object bytes) or "so" (a shared object linked with ld.lld).
std::string generateCode(mlir::ModuleOp llvmDialectModule, const CodeGenOptions &options, const std::string &stage);

} // namespace cpu
} // namespace kiln

#endif
