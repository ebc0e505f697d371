//===- QuantizeWeights.cpp - kiln-quantize-weights ------------------------===//
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"
#include "kiln/Quant/Quant.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

#define DEBUG_TYPE "kiln-quantize-weights"

namespace kiln {
#define GEN_PASS_DEF_QUANTIZEWEIGHTS
#include "kiln/Passes/QuantPasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {

struct QuantizeWeightsPass : impl::QuantizeWeightsBase<QuantizeWeightsPass> {
  using QuantizeWeightsBase::QuantizeWeightsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    WeightFormat parsed;
    if (!parseWeightFormat(format, parsed) || parsed == WeightFormat::F32) {
      module.emitError("kiln-quantize-weights: unknown format '") << format << "' (f16, bf16, int8, int4)";
      return signalPassFailure();
    }
    if (parsed == WeightFormat::Int8 && !symmetric) {
      module.emitError("kiln-quantize-weights: int8 is symmetric only");
      return signalPassFailure();
    }
    if (groupSize < 0) {
      module.emitError("kiln-quantize-weights: group-size must be >= 0");
      return signalPassFailure();
    }
    // Each weight with the reduction axis of the product that reads it.
    llvm::MapVector<Operation *, int64_t> axes;
    bool conflict = false;
    auto note = [&](Value weight, int64_t axis) {
      Operation *global = globalOf(weight);
      if (!global || cast<GlobalOp>(global).getAdapter()) // adapter branches stay f32 (the QLoRA layout)
        return;
      auto [it, inserted] = axes.insert({global, axis});
      if (!inserted && it->second != axis) {
        global->emitError("weight is read along two different axes; cannot pick a quantization axis");
        conflict = true;
      }
    };
    module.walk([&](Operation *op) {
      if (auto l = dyn_cast<LinearOp>(op))
        note(l.getWeight(), 0);
      else if (auto h = dyn_cast<LMHeadOp>(op); h && includeLMHead)
        note(h.getEmbedding(), 1);
    });
    if (conflict)
      return signalPassFailure();
    Builder b(&getContext());
    uint64_t count = 0;
    for (auto [op, axis] : axes) {
      auto global = cast<GlobalOp>(op);
      if (global.getQuantAttr())
        continue; // already has a format: the first pass to set it wins
      global.setQuantAttr(b.getDictionaryAttr({
          b.getNamedAttr("axis", b.getI64IntegerAttr(axis)),
          b.getNamedAttr("format", b.getStringAttr(format)),
          b.getNamedAttr("group_size", b.getI64IntegerAttr(groupSize)),
          b.getNamedAttr("symmetric", b.getBoolAttr(symmetric)),
      }));
      ++count;
    }
    numQuantized += count;
    recordStatistic(getArgument().str(), "num-quantized", count);
  }
};

} // namespace
} // namespace kiln
