//===- FuseResidualLayerNorm.cpp - kiln-fuse-residual-layer-norm ----------===//
#include "kiln/Passes/Partitioner.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"

#include "mlir/IR/Builders.h"

#define DEBUG_TYPE "kiln-fuse-residual-layer-norm"

namespace kiln {
#define GEN_PASS_DEF_FUSERESIDUALLAYERNORM
#include "kiln/Passes/FusionPasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {
struct FuseResidualLayerNormPass : impl::FuseResidualLayerNormBase<FuseResidualLayerNormPass> {
  void runOnOperation() override {
    uint64_t numFusedHere = 0;
    for (const FusionGroup &group : partitionFusionGroups(getOperation(), {FusionKind::ResidualLayerNorm})) {
      auto add = cast<AddOp>(group.ops[0]);
      auto ln = cast<LayerNormOp>(group.ops[1]);
      // The fused op goes where the add is; gamma and beta must already exist there.
      if (!isBeforeOrDefinedAt(ln.getGamma(), add) || !isBeforeOrDefinedAt(ln.getBeta(), add)) {
        OpBuilder b(add);
        if (auto g = ln.getGamma().getDefiningOp(); g && g->getNumOperands() == 0)
          g->moveBefore(add);
        if (auto bt = ln.getBeta().getDefiningOp(); bt && bt->getNumOperands() == 0)
          bt->moveBefore(add);
        if (!isBeforeOrDefinedAt(ln.getGamma(), add) || !isBeforeOrDefinedAt(ln.getBeta(), add))
          continue;
      }
      OpBuilder b(add);
      auto fused = b.create<ResidualLayerNormOp>(add.getLoc(), add.getType(), add.getType(), add.getLhs(),
                                                 add.getRhs(), ln.getGamma(), ln.getBeta(), ln.getEpsilonAttr());
      add.replaceAllUsesWith(fused.getSum());
      ln.replaceAllUsesWith(fused.getNormalized());
      ln.erase();
      add.erase();
      ++numFusedHere;
    }
    numFused += numFusedHere;
    recordStatistic(getArgument().str(), "num-fused", numFusedHere);
  }

  /// Whether `v` is available right before `op` (a block argument or defined earlier).
  static bool isBeforeOrDefinedAt(Value v, Operation *op) {
    Operation *def = v.getDefiningOp();
    return !def || (def->getBlock() == op->getBlock() && def->isBeforeInBlock(op));
  }
};
} // namespace
} // namespace kiln
