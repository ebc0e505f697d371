//===- Prune.cpp - kiln-prune ---------------------------------------------===//
#include "kiln/Frontend/Checkpoint.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"
#include "kiln/IR/WeightValues.h"
#include "kiln/Support/Error.h"

#include "llvm/ADT/MapVector.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kiln {
#define GEN_PASS_DEF_PRUNE
#include "kiln/Passes/PrunePasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {

struct Matrix {
  GlobalOp global;
  int64_t axis; ///< reduction axis
  std::vector<float> values;
};

struct PrunePass : impl::PruneBase<PrunePass> {
  using PruneBase::PruneBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (pattern != "unstructured" && pattern != "2:4") {
      module.emitError("kiln-prune: unknown pattern '") << pattern << "' (unstructured, 2:4)";
      return signalPassFailure();
    }
    if (scope != "layer" && scope != "global") {
      module.emitError("kiln-prune: unknown scope '") << scope << "' (layer, global)";
      return signalPassFailure();
    }
    if (!(sparsity >= 0 && sparsity < 1)) {
      module.emitError("kiln-prune: sparsity must be in [0, 1), got ") << sparsity;
      return signalPassFailure();
    }
    llvm::MapVector<Operation *, int64_t> axes;
    module.walk([&](Operation *op) {
      Value w;
      int64_t axis = 0;
      if (auto l = dyn_cast<LinearOp>(op))
        w = l.getWeight();
      else if (auto h = dyn_cast<LMHeadOp>(op); h && includeLMHead)
        w = h.getEmbedding(), axis = 1;
      if (GlobalOp global = globalOf(w); global && !global.getAdapter()) // adapter branches stay dense
        axes.insert({global, axis});
    });
    std::vector<Matrix> matrices;
    std::unique_ptr<Checkpoint> checkpoint;
    try {
      for (auto [op, axis] : axes) {
        auto global = cast<GlobalOp>(op);
        if (global.getQuantAttr() || global.getSparsityAttr()) {
          global.emitError("kiln-prune: the weight is already quantized or pruned (prune first)");
          return signalPassFailure();
        }
        std::vector<double> v = readGlobalValues(op, checkpoint);
        matrices.push_back({global, axis, std::vector<float>(v.begin(), v.end())});
      }
    } catch (const Error &e) {
      module.emitError("kiln-prune: ") << e.what();
      return signalPassFailure();
    }

    uint64_t pruned = 0;
    if (pattern == "2:4") {
      for (Matrix &m : matrices)
        pruned += prune24(m);
    } else if (scope == "layer") {
      for (Matrix &m : matrices)
        pruned += pruneSmallest({&m});
    } else {
      std::vector<Matrix *> all;
      for (Matrix &m : matrices)
        all.push_back(&m);
      pruned += pruneSmallest(all);
    }

    for (Matrix &m : matrices)
      setPrunedValues(m.global, pattern, m.axis, m.values);
    numPruned += pruned;
    recordStatistic(getArgument().str(), "num-pruned", pruned);
  }

  /// Zeroes the smallest |w| across `ms` (the sparsity fraction of all their
  /// weights; ties: the earlier matrix, then the lower index).
  uint64_t pruneSmallest(const std::vector<Matrix *> &ms) {
    std::vector<std::pair<uint32_t, uint32_t>> order; // (matrix, index)
    for (uint32_t i = 0; i < ms.size(); ++i)
      for (uint32_t j = 0; j < ms[i]->values.size(); ++j)
        order.push_back({i, j});
    size_t count = size_t(std::floor(double(sparsity) * double(order.size())));
    auto magnitude = [&](const std::pair<uint32_t, uint32_t> &e) { return std::fabs(ms[e.first]->values[e.second]); };
    std::nth_element(order.begin(), order.begin() + long(count), order.end(), [&](const auto &a, const auto &b) {
      float ma = magnitude(a), mb = magnitude(b);
      return ma != mb ? ma < mb : a < b;
    });
    for (size_t i = 0; i < count; ++i)
      ms[order[i].first]->values[order[i].second] = 0.0f;
    return count;
  }

  /// Keeps the 2 largest |w| of every 4 consecutive weights along the
  /// reduction axis of each output (ties: the lower index stays).
  static uint64_t prune24(Matrix &m) {
    auto shape = cast<RankedTensorType>(m.global.getType()).getShape();
    int64_t rows = shape[0], cols = shape[1];
    int64_t length = m.axis == 0 ? rows : cols, channels = m.axis == 0 ? cols : rows;
    auto at = [&](int64_t ch, int64_t k) { return size_t(m.axis == 0 ? k * cols + ch : ch * cols + k); };
    uint64_t pruned = 0;
    for (int64_t ch = 0; ch < channels; ++ch)
      for (int64_t k0 = 0; k0 < length; k0 += 4) {
        int64_t n = std::min<int64_t>(4, length - k0);
        if (n <= 2)
          continue;
        std::vector<int64_t> idx(static_cast<size_t>(n));
        std::iota(idx.begin(), idx.end(), k0);
        std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
          return std::fabs(m.values[at(ch, a)]) > std::fabs(m.values[at(ch, b)]);
        });
        for (size_t i = 2; i < idx.size(); ++i) {
          m.values[at(ch, idx[i])] = 0.0f;
          ++pruned;
        }
      }
    return pruned;
  }
};

} // namespace
} // namespace kiln
