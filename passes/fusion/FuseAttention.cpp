//===- FuseAttention.cpp - kiln-fuse-attention ----------------------------===//
#include "kiln/Passes/Partitioner.h"
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

struct FuseAttentionPass : impl::FuseAttentionBase<FuseAttentionPass> {
  void runOnOperation() override {
    uint64_t numFusedHere = 0;
    for (const FusionGroup &group : partitionFusionGroups(getOperation(), {FusionKind::Attention})) {
      auto qk = cast<MatMulOp>(group.ops[0]);
      auto scale = cast<ScaleOp>(group.ops[1]);
      auto mask = cast<CausalMaskOp>(group.ops[2]);
      auto softmax = cast<SoftmaxOp>(group.ops[3]);
      auto pv = cast<MatMulOp>(group.ops[4]);
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
