//===- SPIRVCompiler.cpp - gpu kernels to SPIR-V for Vulkan ---------------===//
//
// gpu.module(convert-math-to-spirv) -> convert-gpu-to-spirv (32-bit index)
// -> spirv.module(spirv-lower-abi-attrs, spirv-update-vce) -> serialize.
// For Vulkan the spirv.module is the gpu.module's sibling; kernel memref
// arguments become storage buffers bound (0, i) in order.
//
//===----------------------------------------------------------------------===//
#include "KernelLibrary.h"
#include "KernelParsing.h"

#include "kiln/Support/Error.h"

#include "mlir/Conversion/GPUToSPIRV/GPUToSPIRVPass.h"
#include "mlir/Conversion/MathToSPIRV/MathToSPIRVPass.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SPIRV/IR/SPIRVDialect.h"
#include "mlir/Dialect/SPIRV/IR/SPIRVOps.h"
#include "mlir/Dialect/SPIRV/Transforms/Passes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/SPIRV/Serialization.h"
#include "llvm/Support/raw_ostream.h"


using namespace mlir;

namespace kiln::gpu {

std::vector<uint32_t> compileToSPIRV(const std::string &moduleText) {
  MLIRContext context;
  context.loadDialect<arith::ArithDialect, func::FuncDialect, mlir::gpu::GPUDialect, math::MathDialect,
                      memref::MemRefDialect, scf::SCFDialect, spirv::SPIRVDialect>();
  context.disableMultithreading();
  DiagnosticLine diagnostics(context);
  OwningOpRef<ModuleOp> module = parseKernelModule(moduleText, context, diagnostics);
  PassManager pm = PassManager::on<ModuleOp>(&context);
  pm.addNestedPass<mlir::gpu::GPUModuleOp>(createConvertMathToSPIRVPass());
  pm.addPass(createConvertGPUToSPIRVPass(/*mapMemorySpace=*/true)); // 32-bit indices
  OpPassManager &spv = pm.nest<spirv::ModuleOp>();
  spv.addPass(spirv::createSPIRVLowerABIAttributesPass());
  spv.addPass(spirv::createSPIRVUpdateVCEPass());
  if (failed(pm.run(*module)))
    throw Error("gpu: lowering the kernels to SPIR-V failed: " + diagnostics.text());
  std::vector<uint32_t> words;
  int modules = 0;
  WalkResult r = module->walk([&](spirv::ModuleOp m) {
    SmallVector<uint32_t, 0> binary;
    if (failed(spirv::serialize(m, binary)))
      return WalkResult::interrupt();
    words.assign(binary.begin(), binary.end());
    ++modules;
    return WalkResult::advance();
  });
  if (r.wasInterrupted() || modules != 1)
    throw Error("gpu: serializing SPIR-V failed: " + diagnostics.text());
  return words;
}

} // namespace kiln::gpu
