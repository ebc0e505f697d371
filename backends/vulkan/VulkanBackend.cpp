//===- VulkanBackend.cpp - the vulkan backend plugin ----------------------===//
//
// kiln IR -> (kiln-fuse-attention) -> the shared GPU schedule
// (backends/gpu/Schedule.h: buffers, kernel instances, dispatch lists) ->
// the kernel templates instantiated for a capability profile -> SPIR-V
// (convert-gpu-to-spirv, spirv::serialize). The artifact holds kernels.spv,
// program.json and weights.bin; runtime/drivers/vulkan runs it.
//
//===----------------------------------------------------------------------===//
#include "../gpu/KernelLibrary.h"
#include "../gpu/Schedule.h"

#include "kiln/IR/Adapters.h"
#include "kiln/Backend/Backend.h"
#include "kiln/Backend/ModelSection.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Support/Error.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <sstream>

using namespace mlir;

namespace kiln::vulkan {
namespace {

class VulkanBackend : public TargetBackend {
public:
  std::string name() const override { return "vulkan"; }
  std::string description() const override {
    return "SPIR-V compute kernels for Vulkan 1.3 devices (any GPU; Mesa's lavapipe on CPUs), one GPU lowering "
           "shared with the other GPU targets";
  }
  std::vector<BackendOption> options() const override {
    return {{"vulkan-profile", "capability profile: lavapipe (subgroup 8, no shuffles, 128 MiB buffers) or desktop "
                               "(subgroup 32, shuffles, f16)",
             "lavapipe"},
            {"vulkan-max-buffer-bytes",
             "the largest storage buffer range a kernel binds (default: the profile's); larger embedding tables are "
             "split",
             "profile"}};
  }

  void buildLoweringPipeline(OpPassManager &pm, const BackendOptions &) override {
    pm.addNestedPass<func::FuncOp>(createFuseAttention());
  }

  void emit(ModuleOp module, ArtifactWriter &writer, const BackendOptions &options, const std::string &stage,
            std::string &stageOut) override {
    refuseSwitchableAdapters(module, "vulkan backend");
    for (const auto &[key, value] : options)
      if (key != "vulkan-profile" && key != "vulkan-max-buffer-bytes")
        throw Error("vulkan backend: unknown option '--" + key + "' (options: --vulkan-profile, --vulkan-max-buffer-bytes)");
    if (stage != "lowered" && stage != "artifact")
      throw Error("vulkan backend: --emit " + stage + " is a cpu backend stage; the vulkan backend emits lowered (the "
                  "instantiated gpu kernels) or artifact");
    auto get = [&](const char *k, const char *d) {
      auto it = options.find(k);
      return it == options.end() ? std::string(d) : it->second;
    };
    const gpu::Profile &profile = gpu::profile(get("vulkan-profile", "lavapipe"));
    if (profile.api != "vulkan")
      throw Error("vulkan backend: --vulkan-profile=" + profile.name + " is not a Vulkan profile (lavapipe, desktop)");
    uint64_t maxBinding = uint64_t(profile.maxStorageBufferRange);
    std::string limit = get("vulkan-max-buffer-bytes", "profile");
    if (limit != "profile") {
      char *end = nullptr;
      unsigned long long v = std::strtoull(limit.c_str(), &end, 10);
      if (limit.empty() || *end || v < 65536 || v > maxBinding || v % 4)
        throw Error("vulkan backend: --vulkan-max-buffer-bytes=" + limit + " must be a multiple of 4 from 65536 to " +
                    std::to_string(maxBinding) + " (the " + profile.name + " profile's)");
      maxBinding = v;
    }
    gpu::Program program = gpu::schedule(module, profile, maxBinding, writer, "vulkan backend");
    std::string kernels = gpu::kernelModule(program.kernels, profile);
    if (stage == "lowered") {
      stageOut = kernels;
      return;
    }
    std::vector<uint32_t> spirv = gpu::compileToSPIRV(kernels);
    writer.addFile("kernels.spv", std::string(reinterpret_cast<const char *>(spirv.data()), spirv.size() * 4));
    writer.addFile("program.json", gpu::programJson(program));
    for (const auto &g : program.graphs)
      writer.addSpecialization({g.name, g.name, g.tokens, g.arenaBytes});
    std::ostringstream target;
    target << "{name: vulkan, profile: " << profile.name << ", subgroup_size: " << profile.subgroupSize
           << ", workgroup_size: " << profile.workgroupSize << ", max_binding_bytes: " << program.maxBindingBytes
           << ", required_features: [], kernels: " << program.kernels.size() << ", program_version: 1}";
    writer.setSection("target", target.str());
    writer.setSection("model", modelSectionYaml(module, "vulkan backend"));
  }
};

} // namespace
} // namespace kiln::vulkan

extern "C" kiln::BackendPluginInfo kilnGetBackendPluginInfo() {
  return {kiln::kBackendPluginABIVersion, "vulkan",
          []() -> kiln::TargetBackend * { return new kiln::vulkan::VulkanBackend(); }};
}
