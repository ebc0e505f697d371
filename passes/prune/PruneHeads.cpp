//===- PruneHeads.cpp - kiln-prune-heads ----------------------------------===//
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

#include "llvm/ADT/MapVector.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

namespace kiln {
#define GEN_PASS_DEF_PRUNEHEADS
#include "kiln/Passes/PrunePasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {

/// One attention block by its weights' names: the fused QKV projection A
/// ([E, 3W], W = H * D, query | key | value, head h the columns [hD, hD+D)
/// of each third), its bias, and the output projection O ([W, Eout]).
struct Block {
  std::string qkv, qkvBias, out;
  int64_t E = 0, H = 0, D = 0, Eout = 0;
  int64_t width() const { return H * D; }
};

/// The attention block whose heads are merged by `merge`: back through the
/// attention ops (each one's first operand is the query side) to the
/// query's split_heads, its split and the QKV linear; forward to the linear
/// reading the merged heads.
std::optional<Block> blockOf(MergeHeadsOp merge) {
  LinearOp out;
  for (Operation *user : merge->getUsers())
    if (auto l = dyn_cast<LinearOp>(user); l && l.getInput() == merge.getResult())
      out = l;
  Value v = merge.getInput();
  SplitHeadsOp heads;
  while (Operation *def = v.getDefiningOp()) {
    if ((heads = dyn_cast<SplitHeadsOp>(def)))
      break;
    if (!isa<MatMulOp, SoftmaxOp, CausalMaskOp, ScaleOp, AttentionOp>(def))
      break;
    v = def->getOperand(0);
  }
  auto split = heads ? heads.getInput().getDefiningOp<SplitOp>() : SplitOp();
  auto qkv = split && split.getNumResults() == 3 ? split.getInput().getDefiningOp<LinearOp>() : LinearOp();
  GlobalOp a = qkv ? globalOf(qkv.getWeight()) : GlobalOp(), o = out ? globalOf(out.getWeight()) : GlobalOp();
  if (!a || !o)
    return std::nullopt;
  Block b;
  b.qkv = a.getSymName().str();
  b.out = o.getSymName().str();
  if (GlobalOp bias = globalOf(qkv.getBias()))
    b.qkvBias = bias.getSymName().str();
  auto as = cast<RankedTensorType>(a.getType()).getShape(), os = cast<RankedTensorType>(o.getType()).getShape();
  auto hs = cast<RankedTensorType>(heads.getType()).getShape();
  b.E = as[0];
  b.D = hs[3];
  b.H = hs[1];
  b.Eout = os[1];
  if (as[1] != 3 * b.width() || os[0] != b.width())
    return std::nullopt;
  return b;
}

/// The greedy group-OBS state of one block: the inverse of its damped Gram
/// matrix and O with the bias change as a last row, both updated after
/// each removal so the remaining heads compensate.
struct ObsState {
  std::vector<double> ginv, o;
  std::vector<double> cost; // per head; only alive heads' are current
};

struct PruneHeadsPass : impl::PruneHeadsBase<PruneHeadsPass> {
  using PruneHeadsBase::PruneHeadsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    try {
      // Shrinking or reconstructing the base would have to transform every adapter's factors too.
      refuseSwitchableAdapters(module);
      run(module);
    } catch (const Error &e) {
      module.emitError("kiln-prune-heads: ") << e.what();
      signalPassFailure();
    }
  }

  void run(ModuleOp module) {
    checkStructuredOptions(fraction, score, refit, "heads");
    if (scope != "global" && scope != "layer")
      throw Error("unknown scope '" + scope + "' (global, layer)");
    if (minHeads < 1)
      throw Error("min-heads must be at least 1, got " + std::to_string(minHeads));

    llvm::MapVector<StringRef, Block> blocks; // by output weight name, in program order
    std::string mismatch;
    module.walk([&](MergeHeadsOp merge) {
      std::optional<Block> b = blockOf(merge);
      if (!b)
        return;
      auto [it, inserted] = blocks.insert({module.lookupSymbol<GlobalOp>(b->out).getSymName(), *b});
      if (!inserted && (it->second.qkv != b->qkv || it->second.H != b->H))
        mismatch = b->out;
    });
    if (!mismatch.empty())
      throw Error("@" + mismatch + " is the output of differently shaped attention blocks");
    if (blocks.empty())
      throw Error("no attention block (QKV linear, split, split_heads, attention, merge_heads, linear) found");
    for (auto &[name, b] : blocks)
      for (const std::string &w : {b.qkv, b.qkvBias, b.out})
        if (auto g = module.lookupSymbol<GlobalOp>(w); g && (g.getQuantAttr() || g.getSparsityAttr()))
          throw Error("weight @" + w + " is already quantized or pruned (run kiln-prune-heads first)");

    // Calibration: the Gram matrix of [merged heads 1], the output projection's input.
    llvm::StringMap<std::vector<double>> gram;
    if (score != "magnitude" || refit) {
      for (auto &[name, b] : blocks)
        gram[name] = std::vector<double>(size_t((b.width() + 1) * (b.width() + 1)), 0.0);
      runCalibration(module, calibrationPath(module, calibration), maxTokens,
                     [&](Operation *op, const std::vector<const Tensor *> &operands) {
                       auto l = dyn_cast<LinearOp>(op);
                       GlobalOp o = l ? globalOf(l.getWeight()) : GlobalOp();
                       if (!o || !blocks.count(o.getSymName()))
                         return;
                       int64_t w = blocks[o.getSymName()].width();
                       const std::vector<double> &x = operands[0]->data;
                       accumulateGram(gram[o.getSymName()], x.data(), x.size() / size_t(w), w);
                     });
      for (auto &[name, b] : blocks)
        symmetrizeAndDamp(gram[name], b.width() + 1, 0.0);
    }

    std::unique_ptr<Checkpoint> checkpoint;
    auto read = [&](const std::string &w) { return readGlobalValues(module.lookupSymbol<GlobalOp>(w), checkpoint); };
    // Each block keeps at least keepAtLeast heads: all but its share of
    // `fraction` (scope=layer) or min-heads (scope=global).
    std::vector<std::vector<char>> alive;
    std::vector<int64_t> left, keepAtLeast;
    int64_t totalHeads = 0, removableHeads = 0;
    for (auto &[name, b] : blocks) {
      alive.emplace_back(size_t(b.H), 1);
      left.push_back(b.H);
      int64_t share = std::clamp<int64_t>(std::llround(double(b.H) * fraction), 0, std::max<int64_t>(0, b.H - minHeads));
      keepAtLeast.push_back(scope == "layer" ? b.H - share : std::min<int64_t>(minHeads, b.H));
      totalHeads += b.H;
      removableHeads += b.H - keepAtLeast.back();
    }
    int64_t toRemove =
        scope == "layer" ? removableHeads : std::min<int64_t>(std::llround(double(totalHeads) * fraction), removableHeads);
    auto removable = [&](size_t block) { return left[block] > keepAtLeast[block]; };

    if (score == "obs") {
      std::vector<ObsState> states;
      for (auto &[name, b] : blocks)
        states.push_back(obsStart(b, gram[name], read(b.out)));
      for (int64_t r = 0; r < toRemove; ++r) {
        size_t bestBlock = 0;
        int64_t bestHead = -1;
        for (size_t i = 0; i < blocks.size(); ++i)
          for (int64_t h = 0; removable(i) && h < blocks.begin()[long(i)].second.H; ++h)
            if (alive[i][size_t(h)] && (bestHead < 0 || states[i].cost[size_t(h)] < states[bestBlock].cost[size_t(bestHead)]))
              bestBlock = i, bestHead = h;
        if (bestHead < 0)
          break;
        alive[bestBlock][size_t(bestHead)] = 0;
        --left[bestBlock];
        obsRemove(blocks.begin()[long(bestBlock)].second, states[bestBlock], bestHead, alive[bestBlock]);
      }
    } else {
      // (score, block, head), least important first.
      std::vector<std::tuple<double, size_t, int64_t>> ranked;
      for (size_t i = 0; i < blocks.size(); ++i) {
        auto &[name, b] = blocks.begin()[long(i)];
        std::vector<double> importance = score == "magnitude" ? magnitudes(b, read(b.qkv), read(b.out))
                                                              : contributions(b, gram[name], read(b.out));
        for (int64_t h = 0; h < b.H; ++h)
          ranked.emplace_back(importance[size_t(h)], i, h);
      }
      std::stable_sort(ranked.begin(), ranked.end(),
                       [](const auto &x, const auto &y) { return std::get<0>(x) < std::get<0>(y); });
      int64_t removedCount = 0;
      for (auto &[importance, i, h] : ranked) {
        if (removedCount == toRemove)
          break;
        if (!removable(i))
          continue;
        alive[i][size_t(h)] = 0;
        --left[i];
        ++removedCount;
      }
    }

    uint64_t removed = 0;
    for (size_t i = 0; i < blocks.size(); ++i) {
      auto &[name, b] = blocks.begin()[long(i)];
      std::vector<int64_t> kept;
      for (int64_t h = 0; h < b.H; ++h)
        if (alive[i][size_t(h)])
          kept.push_back(h);
      removed += uint64_t(b.H - int64_t(kept.size()));
      shrink(module, b, kept, refit ? &gram[name] : nullptr, checkpoint);
    }
    propagateShrunkTypes(module);
    numRemoved += removed;
    recordStatistic(getArgument().str(), "num-removed", removed);
  }

  /// |V_h| |O_h| (Frobenius norms): the size of head h's value-output path.
  static std::vector<double> magnitudes(const Block &b, const std::vector<double> &a, const std::vector<double> &o) {
    int64_t w = b.width(), cols = 3 * w;
    std::vector<double> result(size_t(b.H));
    for (int64_t h = 0; h < b.H; ++h) {
      double v = 0, out = 0;
      for (int64_t e = 0; e < b.E; ++e)
        for (int64_t d = 0; d < b.D; ++d)
          v += a[size_t(e * cols + 2 * w + h * b.D + d)] * a[size_t(e * cols + 2 * w + h * b.D + d)];
      for (int64_t r = h * b.D; r < (h + 1) * b.D; ++r)
        for (int64_t e = 0; e < b.Eout; ++e)
          out += o[size_t(r * b.Eout + e)] * o[size_t(r * b.Eout + e)];
      result[size_t(h)] = std::sqrt(v) * std::sqrt(out);
    }
    return result;
  }

  /// Mean squared contribution of head h to the block's output,
  /// trace(O_h^T G_hh O_h) / tokens, from the calibration Gram matrix (whose
  /// last diagonal entry, the ones column's, counts the tokens).
  static std::vector<double> contributions(const Block &b, const std::vector<double> &g, const std::vector<double> &o) {
    int64_t n = b.width() + 1;
    double tokens = g[size_t(n * n - 1)];
    std::vector<double> result(size_t(b.H), 0.0);
    for (int64_t h = 0; h < b.H; ++h)
      for (int64_t i = h * b.D; i < (h + 1) * b.D; ++i)
        for (int64_t j = h * b.D; j < (h + 1) * b.D; ++j) {
          double gij = g[size_t(i * n + j)], dot = 0;
          for (int64_t e = 0; e < b.Eout; ++e)
            dot += o[size_t(i * b.Eout + e)] * o[size_t(j * b.Eout + e)];
          result[size_t(h)] += gij * dot;
        }
    for (double &r : result)
      r /= std::max(tokens, 1.0);
    return result;
  }

  ObsState obsStart(const Block &b, std::vector<double> g, const std::vector<double> &o) {
    int64_t n = b.width() + 1;
    symmetrizeAndDamp(g, n, damp);
    ObsState s;
    s.ginv.assign(size_t(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
      s.ginv[size_t(i * n + i)] = 1.0;
    if (!solveSPD(g, n, s.ginv, n))
      throw Error("the Gram matrix of @" + b.out + "'s inputs is singular (too little calibration text?)");
    s.o = o;
    s.o.resize(size_t(n * b.Eout), 0.0); // the ones column's row: the bias change
    s.cost.assign(size_t(b.H), 0.0);
    for (int64_t h = 0; h < b.H; ++h)
      s.cost[size_t(h)] = obsCost(b, s, h, nullptr);
    return s;
  }

  /// trace(O_h^T M^-1 O_h) with M = [G^-1]_hh, the squared output error of
  /// removing head h once the others compensate; `x` gets M^-1 O_h.
  double obsCost(const Block &b, const ObsState &s, int64_t h, std::vector<double> *x) {
    int64_t n = b.width() + 1, D = b.D;
    std::vector<double> m(size_t(D * D)), rhs(s.o.begin() + h * D * b.Eout, s.o.begin() + (h + 1) * D * b.Eout);
    for (int64_t i = 0; i < D; ++i)
      for (int64_t j = 0; j < D; ++j)
        m[size_t(i * D + j)] = s.ginv[size_t((h * D + i) * n + h * D + j)];
    if (!solveSPD(m, D, rhs, b.Eout))
      throw Error("the inverse Gram block of a head of @" + b.out + " is singular (too little calibration text?)");
    double cost = 0;
    for (size_t i = 0; i < rhs.size(); ++i)
      cost += rhs[i] * s.o[size_t(h * D * b.Eout) + i];
    if (x)
      *x = std::move(rhs);
    return cost;
  }

  /// Removes head h: O -= C M^-1 O_h and G^-1 -= C M^-1 C^T with C the
  /// head's columns of G^-1; then the costs of the heads left.
  void obsRemove(const Block &b, ObsState &s, int64_t h, const std::vector<char> &alive) {
    int64_t n = b.width() + 1, D = b.D;
    std::vector<double> x; // M^-1 O_h: [D, Eout]
    obsCost(b, s, h, &x);
    std::vector<double> m(size_t(D * D)), y(size_t(D * n)); // y = M^-1 C^T: [D, n]
    for (int64_t i = 0; i < D; ++i) {
      for (int64_t j = 0; j < D; ++j)
        m[size_t(i * D + j)] = s.ginv[size_t((h * D + i) * n + h * D + j)];
      for (int64_t j = 0; j < n; ++j)
        y[size_t(i * n + j)] = s.ginv[size_t((h * D + i) * n + j)];
    }
    if (!solveSPD(m, D, y, n))
      throw Error("the inverse Gram block of a head of @" + b.out + " is singular (too little calibration text?)");
    std::vector<double> c(size_t(n * D));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < D; ++d)
        c[size_t(i * D + d)] = s.ginv[size_t(i * n + h * D + d)];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < D; ++d) {
        double cid = c[size_t(i * D + d)];
        if (cid == 0)
          continue;
        for (int64_t e = 0; e < b.Eout; ++e)
          s.o[size_t(i * b.Eout + e)] -= cid * x[size_t(d * b.Eout + e)];
        for (int64_t j = 0; j < n; ++j)
          s.ginv[size_t(i * n + j)] -= cid * y[size_t(d * n + j)];
      }
    for (int64_t k = 0; k < b.H; ++k)
      if (alive[size_t(k)])
        s.cost[size_t(k)] = obsCost(b, s, k, nullptr);
  }

  /// Rewrites the block's globals to the kept heads; with `gram`, O's kept
  /// rows and its bias are refit by least squares.
  void shrink(ModuleOp module, const Block &b, const std::vector<int64_t> &kept, std::vector<double> *gram,
              std::unique_ptr<Checkpoint> &checkpoint) {
    int64_t w = b.width(), w2 = int64_t(kept.size()) * b.D, D = b.D;
    if (w2 == w)
      return;
    auto read = [&](const std::string &name) {
      return readGlobalValues(module.lookupSymbol<GlobalOp>(name), checkpoint);
    };
    std::vector<double> a = read(b.qkv), o = read(b.out);
    std::vector<int64_t> keptRows; // O's rows (and each third of A's columns) that stay
    for (int64_t h : kept)
      for (int64_t d = 0; d < D; ++d)
        keptRows.push_back(h * D + d);
    std::vector<float> a2(size_t(b.E * 3 * w2));
    for (int64_t e = 0; e < b.E; ++e)
      for (int64_t part = 0; part < 3; ++part)
        for (size_t j = 0; j < keptRows.size(); ++j)
          a2[size_t(e * 3 * w2 + part * w2) + j] = float(a[size_t(e * 3 * w + part * w + keptRows[j])]);
    setInlineValues(module.lookupSymbol<GlobalOp>(b.qkv), {b.E, 3 * w2}, a2);
    if (!b.qkvBias.empty()) {
      std::vector<double> bias = read(b.qkvBias);
      std::vector<float> bias2(size_t(3 * w2));
      for (int64_t part = 0; part < 3; ++part)
        for (size_t j = 0; j < keptRows.size(); ++j)
          bias2[size_t(part * w2) + j] = float(bias[size_t(part * w + keptRows[j])]);
      setInlineValues(module.lookupSymbol<GlobalOp>(b.qkvBias), {3 * w2}, bias2);
    }
    std::vector<float> o2(size_t(w2 * b.Eout));
    std::vector<double> biasDelta;
    if (gram) {
      std::vector<double> solution;
      if (!refitKeptRows(*gram, w, o, b.Eout, keptRows, damp, solution))
        throw Error("the refit of @" + b.out + " is singular (too little calibration text?)");
      for (size_t i = 0; i < o2.size(); ++i)
        o2[i] = float(solution[i]);
      biasDelta.assign(solution.begin() + long(o2.size()), solution.end());
    } else {
      for (size_t j = 0; j < keptRows.size(); ++j)
        for (int64_t e = 0; e < b.Eout; ++e)
          o2[j * size_t(b.Eout) + size_t(e)] = float(o[size_t(keptRows[j] * b.Eout + e)]);
    }
    setInlineValues(module.lookupSymbol<GlobalOp>(b.out), {w2, b.Eout}, o2);
    if (!biasDelta.empty())
      addToLinearBias(module, b.out, biasDelta, checkpoint);
  }
};

} // namespace
} // namespace kiln
