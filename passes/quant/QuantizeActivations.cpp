//===- QuantizeActivations.cpp - kiln-quantize-activations ----------------===//
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"
#include "kiln/Quant/Quant.h"
#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

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

Operation *weightGlobal(LinearOp l) {
  auto w = l.getWeight().getDefiningOp<WeightOp>();
  return w ? SymbolTable::lookupNearestSymbolFrom(w, w.getGlobalAttr()) : nullptr;
}

struct QuantizeActivationsPass : impl::QuantizeActivationsBase<QuantizeActivationsPass> {
  using QuantizeActivationsBase::QuantizeActivationsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (mode != "dynamic" && mode != "static") {
      module.emitError("kiln-quantize-activations: unknown mode '") << mode << "' (dynamic, static)";
      return signalPassFailure();
    }
    SmallVector<LinearOp> linears;
    bool bad = false;
    module.walk([&](LinearOp l) {
      Operation *global = weightGlobal(l);
      QuantSpec spec = global ? quantSpecOf(global) : QuantSpec();
      if (spec.format != WeightFormat::Int8 || spec.groupSize != 0) {
        l.emitError("kiln-quantize-activations: the weight is ")
            << spec.name() << ", W8A8 needs int8 per output channel (run kiln-quantize-weights{format=int8} first)";
        bad = true;
      }
      linears.push_back(l);
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
    for (LinearOp l : linears) {
      if (mode == "dynamic") {
        l.setInputQuant(InputQuantization::Dynamic);
        continue;
      }
      auto it = amax.find(weightGlobal(l));
      // An input the calibration never reached (or all zeros) gets a tiny
      // scale rather than none: every value still quantizes to 0.
      float range = it == amax.end() ? 0.0f : it->second;
      l.setInputQuant(InputQuantization::Static);
      l.setInputScaleAttr(b.getF32FloatAttr(range > 0 ? range / 127.0f : 1e-30f));
    }
    numQuantized += linears.size();
    recordStatistic(getArgument().str(), "num-quantized", linears.size());
  }

  /// max |input| per linear weight over the calibration text, run through
  /// the prefill function in full chunks (no padding rows).
  llvm::DenseMap<Operation *, float> calibrate(ModuleOp module) {
    std::string path = calibration;
    if (path.empty())
      if (auto attr = module->getAttrOfType<StringAttr>("kiln.calibration"))
        path = attr.str();
    if (path.empty())
      throw Error("static scales need calibration text: give kiln compile --calibration FILE "
                  "(or the pass option calibration=FILE)");
    auto dir = module->getAttrOfType<StringAttr>(kCheckpointAttr);
    if (!dir)
      throw Error("the module names no checkpoint folder (kiln.checkpoint) to take the tokenizer from");
    auto tokenizer = Tokenizer::fromDir(dir.str());
    std::vector<int32_t> ids = tokenizer->encode(readFile(path, "cannot open calibration text"));
    if (maxTokens > 0 && int64_t(ids.size()) > maxTokens)
      ids.resize(size_t(maxTokens));

    ReferenceModel model(module);
    int64_t chunk = model.promptLen(), window = model.contextLen() / chunk * chunk;
    ids.resize(ids.size() / size_t(chunk) * size_t(chunk));
    if (ids.empty() || window == 0)
      throw Error(path + ": calibration needs at least one full prefill chunk of " + std::to_string(chunk) +
                  " tokens");
    llvm::DenseMap<Operation *, float> amax;
    model.interpreter().setObserver([&](Operation *op, const std::vector<const Tensor *> &operands) {
      auto l = dyn_cast<LinearOp>(op);
      if (!l)
        return;
      float &m = amax[weightGlobal(l)];
      for (double v : operands[0]->data)
        m = std::max(m, std::fabs(float(v)));
    });
    for (size_t start = 0; start < ids.size(); start += size_t(window)) {
      model.reset();
      size_t end = std::min(ids.size(), start + size_t(window));
      model.prefill(std::vector<int32_t>(ids.begin() + long(start), ids.begin() + long(end)));
    }
    model.interpreter().setObserver({});
    return amax;
  }
};

} // namespace
} // namespace kiln
