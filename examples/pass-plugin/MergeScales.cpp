//===- MergeScales.cpp - an example kiln pass plugin ----------------------===//
//
// kiln-example-merge-scales: kiln.scale(kiln.scale(x, a), b) -> kiln.scale(x, a*b).
// A complete out-of-tree pass: a rewrite pattern, a pass that applies it,
// and the entry point MLIR's --load-pass-plugin looks for.
//
//===----------------------------------------------------------------------===//
#include "kiln/IR/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

using namespace mlir;

namespace {

struct MergeScales : OpRewritePattern<kiln::ScaleOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(kiln::ScaleOp outer, PatternRewriter &rewriter) const override {
    auto inner = outer.getInput().getDefiningOp<kiln::ScaleOp>();
    if (!inner)
      return failure();
    double factor = inner.getFactor().convertToDouble() * outer.getFactor().convertToDouble();
    rewriter.replaceOpWithNewOp<kiln::ScaleOp>(outer, inner.getInput(), rewriter.getF64FloatAttr(factor));
    return success();
  }
};

struct MergeScalesPass : PassWrapper<MergeScalesPass, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(MergeScalesPass)
  StringRef getArgument() const override { return "kiln-example-merge-scales"; }
  StringRef getDescription() const override { return "Merge chains of kiln.scale into one"; }
  void getDependentDialects(DialectRegistry &registry) const override { registry.insert<kiln::KilnDialect>(); }
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<MergeScales>(&getContext());
    if (failed(applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "KilnMergeScales", "0.1", [] { PassRegistration<MergeScalesPass>(); }};
}
