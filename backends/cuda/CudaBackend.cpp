//===- CudaBackend.cpp - the cuda backend plugin --------------------------===//
//
// kiln IR -> (kiln-fuse-attention) -> the shared GPU schedule
// (backends/gpu/Schedule.h) -> the kernel templates for the `cuda` profile ->
// PTX through MLIR's NVVM path (backends/gpu/NVVMCompiler.cpp), libdevice
// from the CUDA toolkit. The artifact carries the PTX of the lowest
// architecture asked for, which the driver JIT-compiles on that GPU and every
// newer one, and a cubin per architecture when the toolkit's ptxas is there.
//
//===----------------------------------------------------------------------===//
#include "../gpu/KernelLibrary.h"
#include "../gpu/Schedule.h"

#include "kiln/IR/Adapters.h"
#include "kiln/Backend/Backend.h"
#include "kiln/Backend/ModelSection.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace mlir;

namespace kiln::cuda {
namespace {

struct Ptxas {
  std::string cubin, report; ///< the cubin; ptxas -v's registers, spills and shared memory per kernel
};

/// Runs `ptxas -arch=<arch> -O3 -v` on `ptx`; throws kiln::Error with its messages.
Ptxas assemble(const std::string &ptxas, const std::string &ptx, const std::string &arch) {
  std::string dir = (fs::temp_directory_path() / ("kiln-ptxas-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  std::string in = dir + "/kernels.ptx", out = dir + "/kernels." + arch + ".cubin";
  std::ofstream(in, std::ios::binary) << ptx;
  std::string command = "'" + ptxas + "' -arch=" + arch + " -O3 -v '" + in + "' -o '" + out + "' 2>&1";
  FILE *p = popen(command.c_str(), "r");
  if (!p)
    throw Error("cuda backend: cannot run " + ptxas);
  std::string report;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;)
    report.append(buf.data(), n);
  int status = pclose(p);
  Ptxas result;
  if (status == 0)
    result.cubin = readFile(out);
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  if (status != 0) {
    std::string first = report.substr(0, report.find('\n'));
    throw Error("cuda backend: ptxas -arch=" + arch + " rejected the PTX: " + first);
  }
  result.report = report;
  return result;
}

std::vector<std::string> splitList(const std::string &s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty())
      out.push_back(item);
  return out;
}

class CudaBackend : public TargetBackend {
public:
  std::string name() const override { return "cuda"; }
  std::string description() const override {
    return "PTX for NVIDIA GPUs through MLIR's NVVM path (sm_80 and newer; cubins too where ptxas is installed), "
           "one GPU lowering shared with the other GPU targets";
  }
  std::vector<BackendOption> options() const override {
    return {{"cuda-arch", "comma-separated GPU architectures (sm_80, sm_90, ...): PTX for the first, a cubin for each "
                          "where ptxas is found",
             "sm_80,sm_90"},
            {"cuda-toolkit", "the CUDA toolkit holding nvvm/libdevice and bin/ptxas", "$CUDA_HOME or /usr/local/cuda"},
            {"cuda-cubin", "assemble cubins with the toolkit's ptxas: auto (when found), on (required) or off", "auto"}};
  }

  void buildLoweringPipeline(OpPassManager &pm, const BackendOptions &) override {
    pm.addNestedPass<func::FuncOp>(createFuseAttention());
  }

  void emit(ModuleOp module, ArtifactWriter &writer, const BackendOptions &options, const std::string &stage,
            std::string &stageOut) override {
    refuseSwitchableAdapters(module, "cuda backend");
    for (const auto &[key, value] : options)
      if (key != "cuda-arch" && key != "cuda-toolkit" && key != "cuda-cubin")
        throw Error("cuda backend: unknown option '--" + key + "' (options: --cuda-arch, --cuda-toolkit, --cuda-cubin)");
    if (stage != "lowered" && stage != "ptx" && stage != "artifact")
      throw Error("cuda backend: --emit " + stage + " is not a cuda stage; the cuda backend emits lowered (the "
                  "instantiated gpu kernels), ptx or artifact");
    auto get = [&](const char *k, const char *d) {
      auto it = options.find(k);
      return it == options.end() ? std::string(d) : it->second;
    };
    std::vector<std::string> archs = splitList(get("cuda-arch", "sm_80,sm_90"));
    if (archs.empty())
      throw Error("cuda backend: --cuda-arch lists no architecture");
    for (const auto &a : archs) {
      std::smatch m;
      if (!std::regex_match(a, m, std::regex("sm_([0-9]+)a?")) || std::stoi(m[1].str()) < 75)
        throw Error("cuda backend: --cuda-arch '" + a + "' is not a CUDA architecture from sm_75 on (CUDA 13's "
                    "ptxas rejects older ones)");
    }
    std::string cubins = get("cuda-cubin", "auto");
    if (cubins != "auto" && cubins != "on" && cubins != "off")
      throw Error("cuda backend: --cuda-cubin=" + cubins + " must be auto, on or off");
    const gpu::Profile &profile = gpu::profile("cuda");
    gpu::Program program =
        gpu::schedule(module, profile, uint64_t(profile.maxStorageBufferRange), writer, "cuda backend");
    std::string kernels = gpu::kernelModule(program.kernels, profile);
    if (stage == "lowered") {
      stageOut = kernels;
      return;
    }
    std::string given = get("cuda-toolkit", "");
    std::string toolkit = gpu::findCudaToolkit(given);
    if (toolkit.empty())
      throw Error("cuda backend: no CUDA toolkit with nvvm/libdevice/libdevice.10.bc " +
                  (given.empty() ? std::string("in $CUDA_HOME, $CUDA_PATH or /usr/local/cuda")
                                 : "at --cuda-toolkit=" + given) +
                  " (the kernels' tanh, exp and rsqrt come from libdevice; install the CUDA toolkit)");
    std::string ptx = gpu::compileToPTX(kernels, archs.front(), toolkit);
    if (stage == "ptx") {
      stageOut = ptx;
      return;
    }
    writer.addFile("kernels.ptx", ptx);
    std::string ptxas = (fs::path(toolkit) / "bin" / "ptxas").string();
    bool haveCubins = cubins != "off" && fs::exists(ptxas);
    if (cubins == "on" && !haveCubins)
      throw Error("cuda backend: --cuda-cubin=on needs ptxas, which is not at " + ptxas);
    std::string reports;
    std::vector<std::string> cubinFiles;
    if (haveCubins)
      for (const auto &arch : archs) {
        Ptxas r = assemble(ptxas, ptx, arch);
        writer.addFile("kernels." + arch + ".cubin", r.cubin);
        cubinFiles.push_back("kernels." + arch + ".cubin");
        reports += "# ptxas -arch=" + arch + " -O3 -v\n" + r.report;
      }
    if (haveCubins)
      writer.addFile("ptxas-report.txt", reports);
    writer.addFile("program.json", gpu::programJson(program));
    for (const auto &g : program.graphs)
      writer.addSpecialization({g.name, g.name, g.tokens, g.arenaBytes});
    std::ostringstream target;
    target << "{name: cuda, ptx: kernels.ptx, ptx_arch: " << archs.front() << ", archs: [";
    for (size_t i = 0; i < archs.size(); ++i)
      target << (i ? ", " : "") << archs[i];
    target << "], cubins: [";
    for (size_t i = 0; i < cubinFiles.size(); ++i)
      target << (i ? ", " : "") << cubinFiles[i];
    target << "], block_size: " << profile.workgroupSize << ", max_binding_bytes: " << program.maxBindingBytes
           << ", kernels: " << program.kernels.size() << ", program_version: 1}";
    writer.setSection("target", target.str());
    writer.setSection("model", modelSectionYaml(module, "cuda backend"));
  }
};

} // namespace
} // namespace kiln::cuda

extern "C" kiln::BackendPluginInfo kilnGetBackendPluginInfo() {
  return {kiln::kBackendPluginABIVersion, "cuda", []() -> kiln::TargetBackend * { return new kiln::cuda::CudaBackend(); }};
}
