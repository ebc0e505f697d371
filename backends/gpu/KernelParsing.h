//===- KernelParsing.h - what the SPIR-V and PTX compilers share ----------===//
#ifndef KILN_BACKENDS_GPU_KERNELPARSING_H
#define KILN_BACKENDS_GPU_KERNELPARSING_H

#include "kiln/Support/Error.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace kiln::gpu {

/// A context's diagnostics collected into one line, for kiln::Error messages.
class DiagnosticLine {
public:
  explicit DiagnosticLine(mlir::MLIRContext &context)
      : handler_(&context, [this](mlir::Diagnostic &d) {
          llvm::raw_string_ostream os(text_);
          os << d.getLocation() << ": " << d << "; ";
          return mlir::success();
        }) {}
  const std::string &text() const { return text_; }

private:
  std::string text_;
  mlir::ScopedDiagnosticHandler handler_;
};

/// The kernel module parsed; throws kiln::Error with its diagnostics.
inline mlir::OwningOpRef<mlir::ModuleOp> parseKernelModule(const std::string &text, mlir::MLIRContext &context,
                                                           const DiagnosticLine &diagnostics) {
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceString<mlir::ModuleOp>(text, &context);
  if (!module)
    throw Error("gpu: the kernel module does not parse: " + diagnostics.text());
  return module;
}

} // namespace kiln::gpu

#endif
