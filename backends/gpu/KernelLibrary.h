//===- KernelLibrary.h - the GPU kernels, written once in MLIR ------------===//
//
// The kernels of the GPU backends are MLIR templates (backends/gpu/kernels:
// gpu.func over memrefs with arith/math/scf), instantiated for a model's
// shapes and a target's capability profile, then lowered per target (SPIR-V
// for Vulkan here; NVVM for CUDA). A profile says what the kernels may use.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKENDS_GPU_KERNELLIBRARY_H
#define KILN_BACKENDS_GPU_KERNELLIBRARY_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::gpu {

struct Profile {
  std::string name;
  std::string api = "vulkan"; ///< vulkan (SPIR-V) or cuda (PTX)
  int64_t subgroupSize = 32;
  bool shuffles = false, f16 = false;
  int64_t maxStorageBufferRange = 0; ///< bytes
  int64_t workgroupSize = 64;
  /// The module's #spirv.target_env (Vulkan 1.3 capabilities and limits).
  std::string spirvTargetEnv() const;
};

/// Vulkan: "lavapipe" (Mesa's CPU driver: subgroup 8, no shuffles, 128 MiB
/// storage buffers) or "desktop" (subgroup 32, shuffles, f16); CUDA: "cuda"
/// (warps of 32, blocks of 128 threads); throws kiln::Error.
const Profile &profile(const std::string &name);

/// One kernel template instantiated: `file` of backends/gpu/kernels, its
/// {{NAME}} parameters (WG comes from the profile), and a suffix appended to
/// each gpu.func's name so several instances share a module. `function`
/// names the one gpu.func of the file to take (empty: all of them).
struct KernelInstance {
  std::string file;
  std::map<std::string, std::string> params;
  std::string suffix;
  std::string function;
};

/// The module text: `gpu.container_module` with the profile's target env
/// and one gpu.module @kernels holding every instance.
std::string kernelModule(const std::vector<KernelInstance> &instances, const Profile &profile);

/// SPIR-V words of the module's kernels (one binary, an entry point per
/// gpu.func); throws kiln::Error with MLIR's diagnostics.
std::vector<uint32_t> compileToSPIRV(const std::string &moduleText);

/// PTX text of the module's kernels for `chip` (sm_80, sm_90, ...) through MLIR's NVVM path,
/// libdevice linked from the CUDA toolkit at `toolkit` (tanh, exp, rsqrt); throws
/// kiln::Error with MLIR's diagnostics.
std::string compileToPTX(const std::string &moduleText, const std::string &chip, const std::string &toolkit);

/// The CUDA toolkit to take libdevice (and ptxas) from: `preferred` if given, else
/// $CUDA_HOME, $CUDA_PATH, /usr/local/cuda; empty when none has nvvm/libdevice.
std::string findCudaToolkit(const std::string &preferred);

} // namespace kiln::gpu

#endif
