//===- FuseAttention.cpp - kiln-fuse-attention ----------------------------===//
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"

#define DEBUG_TYPE "kiln-fuse-attention"

namespace kiln {
#define GEN_PASS_DEF_FUSEATTENTION
#include "kiln/Passes/FusionPasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {

/// The op defining `v`, if it is an OpTy whose result has exactly one use.
template <typename OpTy> OpTy singleUseDef(Value v) {
  auto op = v.getDefiningOp<OpTy>();
  return op && op->hasOneUse() ? op : OpTy();
}

struct FuseAttentionPass : impl::FuseAttentionBase<FuseAttentionPass> {
  void runOnOperation() override {
    uint64_t numFusedHere = 0;
    SmallVector<MatMulOp> candidates;
    getOperation().walk([&](MatMulOp pv) {
      if (!pv.getTransposeRhs())
        candidates.push_back(pv);
    });
    for (MatMulOp pv : candidates) {
      auto softmax = singleUseDef<SoftmaxOp>(pv.getLhs());
      auto mask = softmax ? singleUseDef<CausalMaskOp>(softmax.getInput()) : CausalMaskOp();
      auto scale = mask ? singleUseDef<ScaleOp>(mask.getScores()) : ScaleOp();
      auto qk = scale ? singleUseDef<MatMulOp>(scale.getInput()) : MatMulOp();
      if (!qk || !qk.getTransposeRhs())
        continue;
      OpBuilder b(pv);
      auto fused = b.create<AttentionOp>(pv.getLoc(), pv.getType(), qk.getLhs(), qk.getRhs(), pv.getRhs(),
                                         mask.getPositionIds(), scale.getFactorAttr());
      if (failed(fused.verify())) { // shapes a verifier rejects: keep the decomposed form
        fused.erase();
        continue;
      }
      pv.replaceAllUsesWith(fused.getResult());
      for (Operation *dead : {pv.getOperation(), softmax.getOperation(), mask.getOperation(),
                              scale.getOperation(), qk.getOperation()})
        dead->erase();
      ++numFusedHere;
    }
    numFused += numFusedHere;
    recordStatistic(getArgument().str(), "num-fused", numFusedHere);
  }
};

} // namespace
} // namespace kiln
