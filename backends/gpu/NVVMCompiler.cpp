//===- NVVMCompiler.cpp - gpu kernels to PTX for CUDA ---------------------===//
//
// The same kernel module as for SPIR-V, lowered through MLIR's NVVM path:
//   workgroup scratch (memref.alloc in memory space 3) -> gpu.func workgroup
//   attributions -> nvvm-attach-target{chip, +ptx80, O3} -> gpu.module(
//   convert-scf-to-cf, convert-gpu-to-nvvm{bare pointers, 32-bit index},
//   convert-math-to-llvm, convert-index-to-llvm) -> gpu-module-to-binary{isa}.
// Kernel memrefs are bare pointers (the runtime passes device addresses), which
// MLIR allows for static shapes only: the NVVM copy of the text gives `?`
// dimensions a large static size (nothing indexes by it).
//
//===----------------------------------------------------------------------===//
#include "KernelLibrary.h"
#include "KernelParsing.h"

#include "kiln/Support/Error.h"

#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Index/IR/IndexDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SPIRV/IR/SPIRVDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <filesystem>
#include <regex>

using namespace mlir;
namespace fs = std::filesystem;

namespace kiln::gpu {

std::string findCudaToolkit(const std::string &preferred) {
  std::vector<std::string> candidates;
  if (!preferred.empty())
    candidates.push_back(preferred);
  else
    for (const char *env : {"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"})
      if (const char *v = std::getenv(env); v && *v)
        candidates.push_back(v);
  if (preferred.empty())
    candidates.push_back("/usr/local/cuda");
  for (const auto &dir : candidates)
    if (fs::exists(fs::path(dir) / "nvvm" / "libdevice" / "libdevice.10.bc"))
      return dir;
  return "";
}

namespace {
/// memref.alloc() in workgroup memory -> a workgroup attribution of its gpu.func (what
/// convert-gpu-to-nvvm lowers to a shared-memory global; the SPIR-V path takes the alloc).
void allocsToAttributions(ModuleOp module) {
  module.walk([](mlir::gpu::GPUFuncOp func) {
    SmallVector<memref::AllocOp> allocs;
    func.walk([&](memref::AllocOp a) {
      if (mlir::gpu::GPUDialect::isWorkgroupMemoryAddressSpace(a.getType().getMemorySpace()))
        allocs.push_back(a);
    });
    for (memref::AllocOp a : allocs) {
      BlockArgument buffer = func.addWorkgroupAttribution(a.getType(), a.getLoc());
      a.getResult().replaceAllUsesWith(buffer);
      a.erase();
    }
  });
}
} // namespace

std::string compileToPTX(const std::string &moduleText, const std::string &chip, const std::string &toolkit) {
  if (!std::regex_match(chip, std::regex("sm_[0-9]+a?")))
    throw Error("gpu: '" + chip + "' is not a CUDA architecture (sm_80, sm_90, ...)");
  // Static shapes for bare-pointer arguments; the gpu dialect's name for workgroup memory.
  std::string text = std::regex_replace(moduleText, std::regex(R"(memref<\?x)"), "memref<1073741824x");
  text = std::regex_replace(text, std::regex(R"(, 3>)"), ", #gpu.address_space<workgroup>>");

  DialectRegistry registry;
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  MLIRContext context(registry);
  context.loadDialect<arith::ArithDialect, cf::ControlFlowDialect, func::FuncDialect, mlir::gpu::GPUDialect,
                      index::IndexDialect, LLVM::LLVMDialect, math::MathDialect, memref::MemRefDialect,
                      NVVM::NVVMDialect, scf::SCFDialect, spirv::SPIRVDialect>();
  context.disableMultithreading();
  DiagnosticLine diagnostics(context);
  OwningOpRef<ModuleOp> module = parseKernelModule(text, context, diagnostics);
  allocsToAttributions(*module);

  PassManager pm = PassManager::on<ModuleOp>(&context);
  GpuNVVMAttachTargetOptions target;
  target.chip = chip;
  target.features = "+ptx80";
  target.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(target));
  OpPassManager &kernels = pm.nest<mlir::gpu::GPUModuleOp>();
  kernels.addPass(createConvertSCFToCFPass());
  ConvertGpuOpsToNVVMOpsOptions nvvm;
  nvvm.indexBitwidth = 32;
  nvvm.useBarePtrCallConv = true;
  kernels.addPass(createConvertGpuOpsToNVVMOps(nvvm));
  kernels.addPass(createConvertMathToLLVMPass());
  ConvertIndexToLLVMPassOptions index;
  index.indexBitwidth = 32;
  kernels.addPass(createConvertIndexToLLVMPass(index));
  kernels.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.toolkitPath = toolkit;
  binary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(binary));
  if (failed(pm.run(*module)))
    throw Error("gpu: lowering the kernels to PTX failed: " + diagnostics.text());
  std::string ptx;
  module->walk([&](mlir::gpu::BinaryOp b) {
    for (Attribute a : b.getObjects())
      if (auto object = dyn_cast<mlir::gpu::ObjectAttr>(a))
        ptx = object.getObject().getValue().str();
  });
  while (!ptx.empty() && ptx.back() == '\0')
    ptx.pop_back();
  if (ptx.find(".entry") == std::string::npos)
    throw Error("gpu: the NVVM lowering produced no PTX kernels: " + diagnostics.text());
  if (ptx.find(".extern .func __nv_") != std::string::npos)
    throw Error("gpu: the PTX calls libdevice functions that were not linked (the CUDA toolkit at '" + toolkit +
                "' has no usable nvvm/libdevice)");
  return ptx;
}

} // namespace kiln::gpu
