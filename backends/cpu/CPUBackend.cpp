//===- CPUBackend.cpp - the cpu backend plugin ----------------------------===//
//
// kiln IR -> (kiln-fuse-attention) -> LLVM-dialect graph functions with a
// static memory plan -> LLVM IR -> O3 -> object -> model.so (ld.lld, with the
// micro-kernels' object prebuilt per architecture), with weights repacked into weights.bin.
//
//===----------------------------------------------------------------------===//
#include "CPUBackend.h"
#include "kernels/KernelABI.h"
#include "kiln/Backend/Timing.h"

#include "kiln/Backend/Backend.h"
#include "kiln/Backend/ModelSection.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Support/Error.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/Support/TargetSelect.h"

#include <dlfcn.h>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;
using namespace mlir;

namespace kiln::cpu {
namespace {

// kiln-batch-decode's largest batch must be within the rows the kernels compute as one row each.
static_assert(kMaxDecodeBatch <= KILN_DECODE_MAX_ROWS, "batched decode would lose bit-identity with decode");

/// Features the runtime checks before running an artifact built for a CPU.
const char *const kCheckedFeatures[] = {"sse4.2",   "avx",      "avx2",       "fma",        "f16c",
                                        "bmi2",     "avx512f",  "avx512bw",   "avx512vl",   "avx512dq",
                                        "avx512cd", "avx512vnni", "avx512bf16", "avx512fp16", "avxvnni"};

std::string pluginDir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&kilnGetBackendPluginInfo), &info) && info.dli_fname)
    return fs::path(info.dli_fname).parent_path().string();
  return ".";
}

class CPUBackend : public TargetBackend {
public:
  std::string name() const override { return "cpu"; }
  std::string description() const override {
    return "native code for x86-64 (generic, AVX2, AVX-512 kernels chosen at load) and AArch64 (NEON)";
  }
  std::vector<BackendOption> options() const override {
    return {{"cpu", "CPU the generated code may assume: generic, native, or an LLVM CPU name (e.g. skylake-avx512)",
             "generic"},
            {"target-triple", "target triple: x86_64-linux-gnu or aarch64-linux-gnu", "host"},
            {"cpu-math", "f32 (exact), or bf16: linears and the LM head with f32 or bf16 weights computed in bf16 "
                         "(vdpbf16ps on AVX512-BF16; lossy, see docs/backends/cpu.md)",
             "f32"}};
  }

  void buildLoweringPipeline(OpPassManager &pm, const BackendOptions &) override {
    pm.addNestedPass<func::FuncOp>(createFuseAttention());
  }

  void emit(ModuleOp module, ArtifactWriter &writer, const BackendOptions &options, const std::string &stage,
            std::string &stageOut) override {
    if (stage == "ptx")
      throw Error("cpu backend: --emit ptx is a cuda backend stage; the cpu backend emits lowered, llvm, obj or artifact");
    CodeGenOptions cg = resolveTarget(options);
    MLIRContext *ctx = module.getContext();
    ctx->loadDialect<LLVM::LLVMDialect, arith::ArithDialect, scf::SCFDialect, math::MathDialect>();
    OwningOpRef<ModuleOp> lowered = ModuleOp::create(module.getLoc());
    WeightPacker packer(writer);
    mlir::TimingScope timer = compileTiming().nest("lower graphs, pack weights");
    std::vector<GraphInfo> graphs = lowerGraphs(module, *lowered, packer, lowering_);
    timer.stop();
    if (stage == "lowered") {
      llvm::raw_string_ostream os(stageOut);
      lowered->print(os);
      return;
    }
    std::string code = generateCode(*lowered, cg, stage == "artifact" ? "so" : stage);
    if (stage != "artifact") {
      stageOut = std::move(code);
      return;
    }
    writer.addFile("model.so", std::move(code));
    for (const auto &g : graphs)
      writer.addSpecialization({g.name, g.symbol, g.tokens, g.arenaBytes, g.batch});
    writer.setSection("target", targetYaml(cg));
    writer.setSection("model", modelSectionYaml(module, "cpu backend"));
    if (std::string adapters = packer.writeAdapterBlocks(module); !adapters.empty())
      writer.setSection("adapters", adapters);
  }

private:
  CodeGenOptions resolveTarget(const BackendOptions &options) {
    for (const auto &[key, value] : options)
      if (key != "cpu" && key != "target-triple" && key != "cpu-math")
        throw Error("cpu backend: unknown option '--" + key + "' (options: --cpu, --target-triple, --cpu-math)");
    lowering_ = {};
    if (auto it = options.find("cpu-math"); it != options.end()) {
      if (it->second != "f32" && it->second != "bf16")
        throw Error("cpu backend: --cpu-math=" + it->second + " is not f32 or bf16");
      lowering_.bf16Math = it->second == "bf16";
    }
    CodeGenOptions cg;
    auto get = [&](const char *k, const char *d) {
      auto it = options.find(k);
      return it == options.end() ? std::string(d) : it->second;
    };
    cg.triple = get("target-triple", "host");
    if (cg.triple == "host")
      cg.triple = llvm::sys::getDefaultTargetTriple();
    std::string cpu = get("cpu", "generic");
    bool x86 = cg.triple.rfind("x86_64", 0) == 0;
    if (cpu == "native") {
      if (cg.triple != llvm::sys::getDefaultTargetTriple() && llvm::Triple(cg.triple).getArch() != llvm::Triple(llvm::sys::getDefaultTargetTriple()).getArch())
        throw Error("cpu backend: --cpu=native needs the host's target triple");
      cg.cpu = llvm::sys::getHostCPUName().str();
      std::string features;
      for (const auto &[name, enabled] : llvm::sys::getHostCPUFeatures())
        features += std::string(features.empty() ? "" : ",") + (enabled ? "+" : "-") + name.str();
      cg.features = features;
    } else if (cpu == "generic") {
      cg.cpu = x86 ? "x86-64" : "generic";
    } else {
      cg.cpu = cpu;
    }
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargets();
    llvm::InitializeAllTargetMCs();
    std::string error;
    const llvm::Target *target = llvm::TargetRegistry::lookupTarget(cg.triple, error);
    if (!target)
      throw Error("cpu backend: unknown target triple '" + cg.triple + "'");
    // Validate the name first: LLVM would only warn and fall back to generic.
    std::unique_ptr<llvm::MCSubtargetInfo> probe(target->createMCSubtargetInfo(cg.triple, "", ""));
    if (!probe || !probe->isCPUStringValid(cg.cpu))
      throw Error("cpu backend: unknown CPU '" + cpu + "' for " + cg.triple);
    std::unique_ptr<llvm::MCSubtargetInfo> sti(target->createMCSubtargetInfo(cg.triple, cg.cpu, cg.features));
    cg.kernelBitcodeDir = (fs::path(pluginDir()).parent_path()).string();
    if (x86)
      for (const char *f : kCheckedFeatures)
        if (sti->checkFeatures(std::string("+") + f))
          required_.push_back(f);
    return cg;
  }

  std::string targetYaml(const CodeGenOptions &cg) {
    std::ostringstream os;
    os << "{name: cpu, triple: " << cg.triple << ", cpu: " << cg.cpu << ", required_features: [";
    for (size_t i = 0; i < required_.size(); ++i)
      os << (i ? ", " : "") << required_[i];
    os << "], kernel_abi: " << KILN_MODEL_ABI_VERSION;
    if (lowering_.bf16Math)
      os << ", math: bf16";
    os << "}";
    return os.str();
  }

  std::vector<std::string> required_;
  LoweringOptions lowering_;
};

} // namespace
} // namespace kiln::cpu

extern "C" kiln::BackendPluginInfo kilnGetBackendPluginInfo() {
  return {kiln::kBackendPluginABIVersion, "cpu", []() -> kiln::TargetBackend * { return new kiln::cpu::CPUBackend(); }};
}
