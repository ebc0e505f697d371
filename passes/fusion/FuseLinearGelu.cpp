//===- FuseLinearGelu.cpp - kiln-fuse-linear-gelu -------------------------===//
#include "kiln/Passes/Partitioner.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"

#define DEBUG_TYPE "kiln-fuse-linear-gelu"

namespace kiln {
#define GEN_PASS_DEF_FUSELINEARGELU
#include "kiln/Passes/FusionPasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {
struct FuseLinearGeluPass : impl::FuseLinearGeluBase<FuseLinearGeluPass> {
  void runOnOperation() override {
    uint64_t numFusedHere = 0;
    for (const FusionGroup &group : partitionFusionGroups(getOperation(), {FusionKind::LinearGelu})) {
      auto linear = cast<LinearOp>(group.ops[0]);
      auto g = cast<GeluOp>(group.ops[1]);
      linear.setGeluEpilogue(g.getApproximation());
      g.replaceAllUsesWith(linear.getResult());
      g.erase();
      ++numFusedHere;
    }
    numFused += numFusedHere;
    recordStatistic(getArgument().str(), "num-fused", numFusedHere);
  }
};
} // namespace
} // namespace kiln
