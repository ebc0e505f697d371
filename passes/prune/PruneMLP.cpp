//===- PruneMLP.cpp - kiln-prune-mlp --------------------------------------===//
#include "LinearAlgebra.h"
#include "Shrink.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Passes/Calibration.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"
#include "kiln/IR/Adapters.h"
#include "kiln/IR/WeightValues.h"
#include "kiln/Support/Error.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kiln {
#define GEN_PASS_DEF_PRUNEMLP
#include "kiln/Passes/PrunePasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {

/// One MLP by its weights' names: up (A: [E, I]), its bias, down (B: [I, E]).
struct MLP {
  std::string up, upBias, down;
  int64_t E = 0, I = 0;
};

/// The linear B of an MLP whose input is GELU(A x + a), by its up linear A.
LinearOp upOf(LinearOp down) {
  Value in = down.getInput();
  if (auto g = in.getDefiningOp<GeluOp>())
    in = g.getInput();
  else if (auto l = in.getDefiningOp<LinearOp>(); !l || !l.getGeluEpilogue())
    return LinearOp();
  return in.getDefiningOp<LinearOp>();
}

struct PruneMLPPass : impl::PruneMLPBase<PruneMLPPass> {
  using PruneMLPBase::PruneMLPBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    try {
      // Shrinking or reconstructing the base would have to transform every adapter's factors too.
      refuseSwitchableAdapters(module);
      run(module);
    } catch (const Error &e) {
      module.emitError("kiln-prune-mlp: ") << e.what();
      signalPassFailure();
    }
  }

  void run(ModuleOp module) {
    checkStructuredOptions(fraction, score, refit, "neurons");
    llvm::MapVector<StringRef, MLP> mlps; // by down weight name
    module.walk([&](LinearOp down) {
      LinearOp up = upOf(down);
      GlobalOp a = up ? globalOf(up.getWeight()) : GlobalOp(), b = globalOf(down.getWeight());
      if (!a || !b)
        return;
      MLP m;
      m.up = a.getSymName().str();
      m.down = b.getSymName().str();
      if (GlobalOp bias = globalOf(up.getBias()))
        m.upBias = bias.getSymName().str();
      auto shape = cast<RankedTensorType>(a.getType()).getShape();
      m.E = shape[0];
      m.I = shape[1];
      mlps.insert({b.getSymName(), m});
    });
    if (mlps.empty())
      throw Error("no MLP (linear, GELU, linear) found");
    for (auto &[name, m] : mlps)
      for (const std::string &w : {m.up, m.upBias, m.down})
        if (auto g = module.lookupSymbol<GlobalOp>(w); g && (g.getQuantAttr() || g.getSparsityAttr()))
          throw Error("weight @" + w + " is already quantized or pruned (run kiln-prune-mlp first)");

    // Calibration statistics of the down projections' inputs (the GELU outputs).
    bool calibrate = score != "magnitude" || refit;
    // sumAbs: sum over tokens of |GELU output i| (proportional to its mean,
    // which is all the ranking needs); gram: [I+1, I+1] with a ones column last.
    llvm::StringMap<std::vector<double>> sumAbs, gram;
    if (calibrate) {
      for (auto &[name, m] : mlps) {
        sumAbs[name] = std::vector<double>(size_t(m.I), 0.0);
        if (refit)
          gram[name] = std::vector<double>(size_t((m.I + 1) * (m.I + 1)), 0.0);
      }
      runCalibration(module, calibrationPath(module, calibration), maxTokens,
                     [&](Operation *op, const std::vector<const Tensor *> &operands) {
                       auto l = dyn_cast<LinearOp>(op);
                       GlobalOp b = l ? globalOf(l.getWeight()) : GlobalOp();
                       if (!b || !mlps.count(b.getSymName()))
                         return;
                       const MLP &m = mlps[b.getSymName()];
                       const std::vector<double> &h = operands[0]->data;
                       std::vector<double> &sum = sumAbs[b.getSymName()];
                       for (size_t r0 = 0; r0 < h.size(); r0 += size_t(m.I)) {
                         for (int64_t i = 0; i < m.I; ++i)
                           sum[size_t(i)] += std::fabs(h[r0 + size_t(i)]);
                       }
                       if (refit)
                         accumulateGram(gram[b.getSymName()], h.data(), h.size() / size_t(m.I), m.I);
                     });
    }

    std::unique_ptr<Checkpoint> checkpoint;
    uint64_t removed = 0;
    for (auto &[name, m] : mlps) {
      auto read = [&](const std::string &w) {
        return readGlobalValues(module.lookupSymbol<GlobalOp>(w), checkpoint);
      };
      std::vector<double> a = read(m.up), b = read(m.down);
      std::vector<double> upBias = m.upBias.empty() ? std::vector<double>() : read(m.upBias);
      // Importance of each neuron, then the kept ones in their original order.
      std::vector<double> importance(size_t(m.I));
      for (int64_t i = 0; i < m.I; ++i) {
        double out = 0, in = 0;
        for (int64_t e = 0; e < m.E; ++e) {
          out += b[size_t(i * m.E + e)] * b[size_t(i * m.E + e)];
          in += a[size_t(e * m.I + i)] * a[size_t(e * m.I + i)];
        }
        importance[size_t(i)] = std::sqrt(out) * (score == "magnitude" ? std::sqrt(in) : score == "activation" ? sumAbs[name][size_t(i)] : 0.0);
      }
      int64_t keep = std::max<int64_t>(1, int64_t(std::llround(double(m.I) * (1.0 - fraction))));
      std::vector<int64_t> kept;
      if (score == "obs") {
        kept = obsSelect(m, gram[name], b, keep);
      } else {
        std::vector<int64_t> order(static_cast<size_t>(m.I));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t x, int64_t y) { return importance[size_t(x)] > importance[size_t(y)]; });
        kept.assign(order.begin(), order.begin() + keep);
        std::sort(kept.begin(), kept.end());
      }
      removed += uint64_t(m.I - keep);

      std::vector<float> a2(static_cast<size_t>(m.E * keep)), bias2(static_cast<size_t>(keep)),
          b2(static_cast<size_t>(keep * m.E));
      for (int64_t e = 0; e < m.E; ++e)
        for (int64_t j = 0; j < keep; ++j)
          a2[size_t(e * keep + j)] = float(a[size_t(e * m.I + kept[size_t(j)])]);
      for (int64_t j = 0; j < keep && !upBias.empty(); ++j)
        bias2[size_t(j)] = float(upBias[size_t(kept[size_t(j)])]);
      for (int64_t j = 0; j < keep; ++j)
        for (int64_t e = 0; e < m.E; ++e)
          b2[size_t(j * m.E + e)] = float(b[size_t(kept[size_t(j)] * m.E + e)]);
      std::vector<double> downBiasDelta;
      if (refit)
        refitDown(m, gram[name], kept, b, b2, downBiasDelta);

      setGlobal(module, m.up, {m.E, keep}, a2);
      if (!m.upBias.empty())
        setGlobal(module, m.upBias, {keep}, bias2);
      setGlobal(module, m.down, {keep, m.E}, b2);
      if (!downBiasDelta.empty())
        addToLinearBias(module, m.down, downBiasDelta, checkpoint);
    }
    propagateShrunkTypes(module);
    numRemoved += removed;
    recordStatistic(getArgument().str(), "num-removed", removed);
  }

  /// Greedy optimal-brain-surgeon selection: removes, one at a time, the
  /// neuron whose loss the others compensate best (cost |B_i|^2 / [G^-1]_ii
  /// with G the damped Gram matrix of [H 1]), updating B and G^-1 after each
  /// removal. Returns the kept neurons in order.
  std::vector<int64_t> obsSelect(const MLP &m, std::vector<double> g, std::vector<double> b, int64_t keep) {
    int64_t n = m.I + 1;
    symmetrizeAndDamp(g, n, damp);
    // G^-1 by solving G X = I.
    std::vector<double> ginv(size_t(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
      ginv[size_t(i * n + i)] = 1.0;
    if (!solveSPD(g, n, ginv, n))
      throw Error("the Gram matrix of @" + m.down + "'s inputs is singular (too little calibration text?)");
    b.resize(size_t(n * m.E), 0.0); // the ones column's row: the bias change
    std::vector<char> alive(size_t(m.I), 1);
    for (int64_t removedCount = 0; removedCount < m.I - keep; ++removedCount) {
      int64_t best = -1;
      double bestCost = 0;
      for (int64_t i = 0; i < m.I; ++i) {
        if (!alive[size_t(i)])
          continue;
        double norm = 0;
        for (int64_t e = 0; e < m.E; ++e)
          norm += b[size_t(i * m.E + e)] * b[size_t(i * m.E + e)];
        double cost = norm / ginv[size_t(i * n + i)];
        if (best < 0 || cost < bestCost)
          best = i, bestCost = cost;
      }
      double d = ginv[size_t(best * n + best)];
      // B -= G^-1[:, best] B[best] / d;  G^-1 -= G^-1[:, best] G^-1[best, :] / d.
      std::vector<double> col(static_cast<size_t>(n)), row(b.begin() + best * m.E, b.begin() + (best + 1) * m.E);
      for (int64_t i = 0; i < n; ++i)
        col[size_t(i)] = ginv[size_t(i * n + best)];
      for (int64_t i = 0; i < n; ++i) {
        double f = col[size_t(i)] / d;
        if (f == 0)
          continue;
        for (int64_t e = 0; e < m.E; ++e)
          b[size_t(i * m.E + e)] -= f * row[size_t(e)];
        for (int64_t j = 0; j < n; ++j)
          ginv[size_t(i * n + j)] -= f * col[size_t(j)];
      }
      alive[size_t(best)] = 0;
    }
    std::vector<int64_t> kept;
    for (int64_t i = 0; i < m.I; ++i)
      if (alive[size_t(i)])
        kept.push_back(i);
    return kept;
  }

  /// Solves for the kept rows of B and a bias change: min || [H_S 1] X - H B ||.
  void refitDown(const MLP &m, std::vector<double> &g, const std::vector<int64_t> &kept, const std::vector<double> &b,
                 std::vector<float> &b2, std::vector<double> &biasDelta) {
    symmetrizeAndDamp(g, m.I + 1, 0.0);
    std::vector<double> solution;
    if (!refitKeptRows(g, m.I, b, m.E, kept, damp, solution))
      throw Error("the refit of @" + m.down + " is singular (too little calibration text?)");
    int64_t keep = int64_t(kept.size());
    for (size_t i = 0; i < size_t(keep * m.E); ++i)
      b2[i] = float(solution[i]);
    biasDelta.assign(solution.begin() + keep * m.E, solution.end());
  }

  static void setGlobal(ModuleOp module, const std::string &name, ArrayRef<int64_t> shape, const std::vector<float> &v) {
    setInlineValues(module.lookupSymbol<GlobalOp>(name), shape, v);
  }
};

} // namespace
} // namespace kiln
