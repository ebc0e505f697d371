//===- CodeGen.cpp - LLVM-dialect graphs -> native shared object ----------===//
#include "CPUBackend.h"

#include "kiln/Backend/Timing.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/IRReader/IRReader.h"
#include "llvm/Linker/Linker.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace kiln::cpu {

namespace {

/// math.fma (from the polynomial approximations) -> llvm.intr.fmuladd, so a
/// CPU without FMA gets mul + add instead of a call to libm's fmaf.
struct FmaToFMulAdd : mlir::OpRewritePattern<mlir::math::FmaOp> {
  using OpRewritePattern::OpRewritePattern;
  mlir::LogicalResult matchAndRewrite(mlir::math::FmaOp op, mlir::PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<mlir::LLVM::FMulAddOp>(op, op.getA(), op.getB(), op.getC());
    return mlir::success();
  }
};

/// MLIR LLVM dialect + scf/arith/math -> pure LLVM dialect.
void lowerToLLVMDialect(mlir::ModuleOp module) {
  mlir::MLIRContext *ctx = module.getContext();
  // tanh/erf/exp as polynomials made of arith ops: vectorisable, no libm.
  mlir::RewritePatternSet approximations(ctx);
  mlir::populateMathPolynomialApproximationPatterns(approximations);
  if (failed(mlir::applyPatternsAndFoldGreedily(module, std::move(approximations))))
    throw Error("cpu backend: math approximation failed");
  mlir::RewritePatternSet fmas(ctx);
  fmas.add<FmaToFMulAdd>(ctx);
  if (failed(mlir::applyPatternsAndFoldGreedily(module, std::move(fmas))))
    throw Error("cpu backend: fma rewriting failed");
  mlir::PassManager pm = mlir::PassManager::on<mlir::ModuleOp>(ctx);
  pm.addPass(mlir::createConvertSCFToCFPass());
  pm.addPass(mlir::createConvertMathToLLVMPass());
  pm.addPass(mlir::createArithToLLVMConversionPass());
  pm.addPass(mlir::createConvertIndexToLLVMPass());
  pm.addPass(mlir::createConvertControlFlowToLLVMPass());
  pm.addPass(mlir::createReconcileUnrealizedCastsPass());
  if (failed(pm.run(module)))
    throw Error("cpu backend: lowering to the LLVM dialect failed");
  if (getenv("KILN_DEBUG_LOWERING"))
    module.print(llvm::errs());
}

std::unique_ptr<llvm::TargetMachine> makeTargetMachine(const CodeGenOptions &o) {
  static bool initialised = [] {
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargets();
    llvm::InitializeAllTargetMCs();
    llvm::InitializeAllAsmPrinters();
    return true;
  }();
  (void)initialised;
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(o.triple, error);
  if (!target)
    throw Error("cpu backend: unknown target triple '" + o.triple + "': " + error);
  llvm::TargetOptions options;
  auto *tm = target->createTargetMachine(o.triple, o.cpu, o.features, options, llvm::Reloc::PIC_, std::nullopt,
                                         llvm::CodeGenOptLevel::Aggressive);
  if (!tm)
    throw Error("cpu backend: cannot create a target machine for " + o.triple + " / " + o.cpu);
  return std::unique_ptr<llvm::TargetMachine>(tm);
}

std::string kernelArch(const std::string &triple) {
  if (triple.rfind("x86_64", 0) == 0)
    return "x86_64";
  if (triple.rfind("aarch64", 0) == 0 || triple.rfind("arm64", 0) == 0)
    return "aarch64";
  throw Error("cpu backend: no kernels for target triple '" + triple + "' (x86_64 and aarch64 are supported)");
}

void optimize(llvm::Module &m, llvm::TargetMachine &tm) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3).run(m, mam);
}

std::string findLinker() {
  for (const char *name : {"ld.lld-19", "ld.lld"}) {
    auto path = llvm::sys::findProgramByName(name, {"/usr/lib/llvm-19/bin", "/usr/bin"});
    if (path)
      return *path;
  }
  throw Error("cpu backend: ld.lld not found (install lld-19)");
}

} // namespace

std::string generateCode(mlir::ModuleOp module, const CodeGenOptions &o, const std::string &stage) {
  mlir::TimingScope timer = compileTiming().nest("to the LLVM dialect");
  lowerToLLVMDialect(module);
  timer = compileTiming().nest("translate to LLVM IR");
  mlir::registerBuiltinDialectTranslation(*module.getContext());
  mlir::registerLLVMDialectTranslation(*module.getContext());
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> graph = mlir::translateModuleToLLVMIR(module, llvmContext, "kiln_model");
  if (!graph)
    throw Error("cpu backend: translation to LLVM IR failed");
  auto tm = makeTargetMachine(o);
  graph->setTargetTriple(o.triple);
  graph->setDataLayout(tm->createDataLayout());
  // Generated code is compiled for the artifact's CPU; the kernels carry
  // their own per-variant target features from the bitcode.
  for (llvm::Function &f : *graph)
    if (!f.isDeclaration()) {
      f.addFnAttr("target-cpu", o.cpu);
      if (!o.features.empty())
        f.addFnAttr("target-features", o.features);
    }

  std::string arch = kernelArch(o.triple);
  if (stage == "llvm") {
    // The whole program as one module, kernels included: what the artifact's code amounts to.
    std::string bitcode = (fs::path(o.kernelBitcodeDir) / ("kernels-" + arch + ".bc")).string();
    llvm::SMDiagnostic diag;
    std::unique_ptr<llvm::Module> kernels = llvm::parseIRFile(bitcode, diag, llvmContext);
    if (!kernels)
      throw Error(bitcode + ": cannot read the kernel bitcode: " + diag.getMessage().str());
    kernels->setTargetTriple(o.triple);
    kernels->setDataLayout(graph->getDataLayout());
    if (llvm::Linker::linkModules(*graph, std::move(kernels)))
      throw Error("cpu backend: linking the kernels failed");
  }
  if (llvm::verifyModule(*graph, &llvm::errs()))
    throw Error("cpu backend: generated LLVM IR does not verify");
  timer = compileTiming().nest("LLVM optimize (O3)");
  optimize(*graph, *tm);
  timer = compileTiming().nest("LLVM codegen (object)");

  if (stage == "llvm") {
    std::string text;
    llvm::raw_string_ostream os(text);
    graph->print(os, nullptr);
    return os.str();
  }
  llvm::SmallVector<char, 0> object;
  {
    llvm::raw_svector_ostream os(object);
    llvm::legacy::PassManager pm;
    if (tm->addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::ObjectFile))
      throw Error("cpu backend: the target cannot emit object files");
    pm.run(*graph);
  }

  // Link the graph's object with the kernels, compiled once per architecture when Kiln was built
  // (kernels-ARCH.o from the same bitcode at -O3; their functions carry their own target features,
  // and the graph reaches them through calls it could not inline anyway: the dispatchers pick a
  // variant at load). Optimizing and emitting that library took 3.6 s of every compile.
  // model.so with lld, as IREE does for its CPU artifacts; --emit obj: one relocatable object.
  timer = compileTiming().nest("link model.so (lld)");
  std::string kernelObject = (fs::path(o.kernelBitcodeDir) / ("kernels-" + arch + ".o")).string();
  if (!fs::is_regular_file(kernelObject))
    throw Error(kernelObject + ": missing: the prebuilt kernel object of the cpu backend (rebuild or reinstall Kiln)");
  llvm::SmallString<128> tmpDir;
  if (llvm::sys::fs::createUniqueDirectory("kiln-link", tmpDir))
    throw Error("cpu backend: cannot create a temporary directory");
  fs::path objPath = fs::path(tmpDir.str().str()) / "model.o";
  fs::path outPath = fs::path(tmpDir.str().str()) / (stage == "obj" ? "linked.o" : "model.so");
  std::ofstream(objPath, std::ios::binary).write(object.data(), std::streamsize(object.size()));
  std::string linker = findLinker();
  std::vector<llvm::StringRef> args = {linker};
  if (stage == "obj")
    args.push_back("-r");
  else
    args.insert(args.end(), {"-shared", "--build-id=none", "-soname", "model.so"});
  // The kernels first: their hot loops then sit at the same addresses in every model.so of a
  // build, whatever the graph's size. After the graph, adding ~150 profile marks (4 KB) moved
  // them and cost 5% of f32 decode (placement, not the marks: kernels first, 0.2%).
  args.insert(args.end(), {"-o", outPath.c_str(), kernelObject, objPath.c_str()});
  std::string errorMessage;
  int rc = llvm::sys::ExecuteAndWait(linker, args, std::nullopt, {}, 0, 0, &errorMessage);
  std::string out = rc == 0 ? readFile(outPath.string()) : "";
  std::error_code ec;
  fs::remove_all(tmpDir.str().str(), ec);
  if (rc != 0)
    throw Error("cpu backend: " + linker + " failed (" + std::to_string(rc) + ") " + errorMessage);
  return out;
}

} // namespace kiln::cpu
