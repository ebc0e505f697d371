//===- LoadModel.cpp - model folder or .mlir file -> kiln module ----------===//
#include "Commands.h"

#include "kiln/IR/KilnOps.h"
#include "kiln/Support/Error.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <filesystem>

namespace kiln {

void registerKilnDialects(mlir::MLIRContext &context) {
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
}

LoadedModel loadModel(const std::string &path, const ImportOptions &options) {
  LoadedModel m;
  m.context = std::make_unique<mlir::MLIRContext>(mlir::MLIRContext::Threading::DISABLED);
  registerKilnDialects(*m.context);
  if (std::filesystem::is_directory(path)) {
    auto ckpt = Checkpoint::open(path);
    m.module = importGPT2(*m.context, *ckpt, options);
    m.checkpointDir = path;
    return m;
  }
  if (!std::filesystem::exists(path))
    fail(path, "no such model folder or .mlir file");
  // Collect diagnostics so a parse error becomes one kiln::Error.
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  mlir::ScopedDiagnosticHandler handler(m.context.get(), [&](mlir::Diagnostic &d) {
    os << d.getLocation() << ": " << d << "\n";
    return mlir::success();
  });
  llvm::SourceMgr sources;
  m.module = mlir::parseSourceFile<mlir::ModuleOp>(path, sources, m.context.get());
  if (!m.module || failed(mlir::verify(*m.module)))
    fail(path, "invalid kiln IR: " + os.str());
  auto dir = (*m.module)->getAttrOfType<mlir::StringAttr>(kCheckpointAttr);
  m.checkpointDir = dir ? dir.str() : "";
  return m;
}

} // namespace kiln
