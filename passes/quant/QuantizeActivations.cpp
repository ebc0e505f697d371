//===- QuantizeActivations.cpp - kiln-quantize-activations ----------------===//
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Passes/Calibration.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"
#include "kiln/Quant/Quant.h"
#include "kiln/Support/Error.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"

#include <algorithm>
#include <cmath>

namespace kiln {
#define GEN_PASS_DEF_QUANTIZEACTIVATIONS
#include "kiln/Passes/QuantPasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {

/// The global a product (kiln.linear or kiln.lm_head) reads its weights from.
Operation *weightGlobal(Operation *op) {
  return globalOf(isa<LinearOp>(op) ? cast<LinearOp>(op).getWeight() : cast<LMHeadOp>(op).getEmbedding());
}

/// Integer weights the integer kernels take: int8 per output channel, or int4.
bool hasIntegerWeights(Operation *op) {
  Operation *global = weightGlobal(op);
  QuantSpec spec = global ? quantSpecOf(global) : QuantSpec();
  return (spec.format == WeightFormat::Int8 && spec.groupSize == 0) || spec.format == WeightFormat::Int4;
}

struct QuantizeActivationsPass : impl::QuantizeActivationsBase<QuantizeActivationsPass> {
  using QuantizeActivationsBase::QuantizeActivationsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (mode != "dynamic" && mode != "static") {
      module.emitError("kiln-quantize-activations: unknown mode '") << mode << "' (dynamic, static)";
      return signalPassFailure();
    }
    // Every linear (an error if its weights are not integer), and the LM
    // head when its weights are.
    SmallVector<Operation *> products;
    bool bad = false;
    module.walk([&](Operation *op) {
      if (auto l = dyn_cast<LinearOp>(op)) {
        if (auto g = dyn_cast_or_null<GlobalOp>(weightGlobal(l)); g && g.getAdapter())
          return; // the adapter branch keeps f32 inputs and weights
        if (!hasIntegerWeights(l)) {
          Operation *global = weightGlobal(l);
          l.emitError("kiln-quantize-activations: the weight is ")
              << (global ? quantSpecOf(global).name() : std::string("computed"))
              << ", integer inputs need int8 per-channel or int4 weights (run kiln-quantize-weights first)";
          bad = true;
        }
        products.push_back(op);
      } else if (isa<LMHeadOp>(op) && hasIntegerWeights(op)) {
        products.push_back(op);
      }
    });
    if (bad)
      return signalPassFailure();

    Builder b(&getContext());
    llvm::DenseMap<Operation *, float> amax;
    if (mode == "static") {
      try {
        amax = calibrate(module);
      } catch (const Error &e) {
        module.emitError("kiln-quantize-activations: ") << e.what();
        return signalPassFailure();
      }
    }
    for (Operation *op : products) {
      if (mode == "dynamic") {
        op->setAttr("input_quant", InputQuantizationAttr::get(&getContext(), InputQuantization::Dynamic));
        continue;
      }
      auto it = amax.find(weightGlobal(op));
      // An input the calibration never reached (or all zeros) gets a tiny
      // scale rather than none: every value still quantizes to 0.
      float range = it == amax.end() ? 0.0f : it->second;
      op->setAttr("input_quant", InputQuantizationAttr::get(&getContext(), InputQuantization::Static));
      op->setAttr("input_scale", b.getF32FloatAttr(range > 0 ? range / 127.0f : 1e-30f));
    }
    numQuantized += products.size();
    recordStatistic(getArgument().str(), "num-quantized", products.size());
  }

  /// max |input| per product's weights over the calibration text, run through
  /// the prefill function in full chunks (no padding rows).
  llvm::DenseMap<Operation *, float> calibrate(ModuleOp module) {
    llvm::DenseMap<Operation *, float> amax;
    runCalibration(module, calibrationPath(module, calibration), maxTokens,
                   [&](Operation *op, const std::vector<const Tensor *> &operands) {
                     if (!isa<LinearOp, LMHeadOp>(op))
                       return;
                     float &m = amax[weightGlobal(op)];
                     for (double v : operands[0]->data)
                       m = std::max(m, std::fabs(float(v)));
                   });
    return amax;
  }
};

} // namespace
} // namespace kiln
