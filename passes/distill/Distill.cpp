//===- Distill.cpp - kiln-distill -----------------------------------------===//
//
// GPTQ / SparseGPT-style reconstruction. For W[K, N] (y = x W) and
// H = X^T X of its calibration inputs, with U the upper Cholesky factor of
// H^-1: rows k = 0..K-1 are fixed in turn to their target (quantized,
// zeroed where pruned) and the error (w_k - q_k) / U_kk is spread over the
// rows after k as W[j] -= U_kj * err, which minimizes the change of X W.
//
//===----------------------------------------------------------------------===//
#include "LinearAlgebra.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Passes/Calibration.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"
#include "kiln/IR/Adapters.h"
#include "kiln/IR/WeightValues.h"
#include "kiln/Quant/Quant.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/Float16.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringMap.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kiln {
#define GEN_PASS_DEF_DISTILL
#include "kiln/Passes/PrunePasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {

using Matrix = std::vector<double>; // row-major

/// U, upper, with U^T U = H^-1 (from H's Cholesky factor); false if H is singular.
bool inverseCholeskyUpper(const Matrix &h, int64_t K, Matrix &u) {
  Matrix l;
  if (!cholesky(h, K, l))
    return false;
  // Linv = L^-1 (lower), by forward substitution per column.
  Matrix linv(size_t(K * K), 0.0);
  for (int64_t c = 0; c < K; ++c) {
    linv[size_t(c * K + c)] = 1.0 / l[size_t(c * K + c)];
    for (int64_t i = c + 1; i < K; ++i) {
      double s = 0;
      for (int64_t p = c; p < i; ++p)
        s -= l[size_t(i * K + p)] * linv[size_t(p * K + c)];
      linv[size_t(i * K + c)] = s / l[size_t(i * K + i)];
    }
  }
  // H^-1 = Linv^T Linv.
  Matrix hinv(size_t(K * K), 0.0);
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t p = std::max(i, j); p < K; ++p)
        s += linv[size_t(p * K + i)] * linv[size_t(p * K + j)];
      hinv[size_t(i * K + j)] = hinv[size_t(j * K + i)] = s;
    }
  Matrix l2;
  if (!cholesky(hinv, K, l2))
    return false;
  u.assign(size_t(K * K), 0.0);
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = i; j < K; ++j)
      u[size_t(i * K + j)] = l2[size_t(j * K + i)];
  return true;
}

/// What kiln-prune and kiln-quantize-weights decided for one weight.
struct Target {
  std::string pattern; ///< "", "unstructured" or "2:4"
  double sparsity = 0;
  QuantSpec spec;
};

/// Fixes the rows of W [K, N] one at a time to `target`, spreading the error
/// through U. Returns the explicit scales of an integer format (channel-major).
std::vector<float> reconstruct(Matrix &w, int64_t K, int64_t N, const Matrix &u, const Target &t, int64_t block) {
  const bool integer = t.spec.isInteger(), int8 = t.spec.format == WeightFormat::Int8;
  const double qmax = int8 ? 127 : 7, qmin = int8 ? -127 : -8;
  const int64_t group = t.spec.groupSize > 0 ? t.spec.groupSize : K, groups = (K + group - 1) / group;
  std::vector<float> scales(integer ? size_t(N * groups) : 0, 0.0f);
  std::vector<char> pruned(size_t(K * N), 0);
  auto saliency = [&](int64_t k, int64_t n) {
    double d = u[size_t(k * K + k)];
    return w[size_t(k * N + n)] * w[size_t(k * N + n)] / (d * d);
  };
  for (int64_t k = 0; k < K; ++k) {
    // Masks for the block starting here, by saliency on the current W.
    if (t.pattern == "unstructured" && k % block == 0) {
      int64_t k1 = std::min(K, k + block);
      std::vector<std::pair<double, int64_t>> order;
      for (int64_t r = k; r < k1; ++r)
        for (int64_t n = 0; n < N; ++n)
          order.push_back({saliency(r, n), r * N + n});
      size_t count = size_t(std::llround(t.sparsity * double(order.size())));
      std::nth_element(order.begin(), order.begin() + long(count), order.end());
      for (size_t i = 0; i < count; ++i)
        pruned[size_t(order[i].second)] = 1;
    } else if (t.pattern == "2:4" && k % 4 == 0 && K - k > 2) {
      int64_t k1 = std::min(K, k + 4);
      for (int64_t n = 0; n < N; ++n) {
        std::vector<int64_t> rows(static_cast<size_t>(k1 - k));
        std::iota(rows.begin(), rows.end(), k);
        std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) { return saliency(a, n) > saliency(b, n); });
        for (size_t i = 2; i < rows.size(); ++i)
          pruned[size_t(rows[i] * N + n)] = 1;
      }
    }
    // Group scales when a group is first reached (round to nearest's rule on
    // the current, partly reconstructed rows).
    if (integer && k % group == 0) {
      int64_t g = k / group, k1 = std::min(K, k + group);
      for (int64_t n = 0; n < N; ++n) {
        float amax = 0;
        for (int64_t r = k; r < k1; ++r)
          if (!pruned[size_t(r * N + n)])
            amax = std::max(amax, float(std::fabs(w[size_t(r * N + n)])));
        scales[size_t(n * groups + g)] = amax / float(qmax);
      }
    }
    double d = u[size_t(k * K + k)];
    std::vector<double> err(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
      double v = w[size_t(k * N + n)], q = v;
      if (pruned[size_t(k * N + n)]) {
        q = 0;
      } else if (integer) {
        float s = scales[size_t(n * groups + k / group)];
        q = s == 0 ? 0 : double(float(std::clamp(std::nearbyint(float(v) / s), float(qmin), float(qmax))) * s);
      } else if (t.spec.format == WeightFormat::F16) {
        q = halfToFloat(floatToHalf(float(v)));
      } else if (t.spec.format == WeightFormat::BF16) {
        q = bf16ToFloat(floatToBf16(float(v)));
      }
      err[size_t(n)] = (v - q) / d;
      w[size_t(k * N + n)] = q;
    }
    for (int64_t j = k + 1; j < K; ++j) {
      double ukj = u[size_t(k * K + j)];
      if (ukj == 0)
        continue;
      double *row = &w[size_t(j * N)];
      for (int64_t n = 0; n < N; ++n)
        row[n] -= ukj * err[size_t(n)];
    }
  }
  return scales;
}

struct DistillPass : impl::DistillBase<DistillPass> {
  using DistillBase::DistillBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    try {
      // Shrinking or reconstructing the base would have to transform every adapter's factors too.
      refuseSwitchableAdapters(module);
      run(module);
    } catch (const Error &e) {
      module.emitError("kiln-distill: ") << e.what();
      signalPassFailure();
    }
  }

  void run(ModuleOp module) {
    // The linear weights with a decision to reconstruct.
    llvm::MapVector<Operation *, Target> targets;
    module.walk([&](LinearOp l) {
      GlobalOp global = globalOf(l.getWeight());
      if (!global)
        return;
      Target t;
      t.spec = quantSpecOf(global);
      if (auto sp = global.getSparsityAttr()) {
        t.pattern = sp.getAs<StringAttr>("pattern").str();
        t.sparsity = sp.getAs<FloatAttr>("sparsity").getValueAsDouble();
      }
      if (t.pattern.empty() && t.spec.format == WeightFormat::F32)
        return;
      if (t.spec.isInteger() && !t.spec.symmetric)
        throw Error("weight @" + global.getSymName().str() + " is " + t.spec.name() +
                    ": only symmetric formats are reconstructed");
      targets.insert({global, t});
    });
    if (targets.empty())
      throw Error("nothing to reconstruct: run kiln-prune or kiln-quantize-weights first");

    // Stages: every target at once from the dense teacher's inputs, or
    // (sequential) one transformer block at a time, in program order.
    std::vector<std::vector<Operation *>> stages;
    std::string lastBlock;
    for (auto &[op, t] : targets) {
      std::string block = sequential ? blockOf(cast<GlobalOp>(op).getSymName()) : "";
      if (stages.empty() || block != lastBlock)
        stages.emplace_back();
      stages.back().push_back(op);
      lastBlock = block;
    }
    std::unique_ptr<Checkpoint> checkpoint;
    uint64_t count = 0;
    llvm::DenseSet<Operation *> done;
    for (const std::vector<Operation *> &stage : stages) {
      // The model this stage's inputs come from: the dense teacher, or the
      // student with the blocks before this one reconstructed and this
      // block and those after it still dense.
      OwningOpRef<ModuleOp> source = module.clone();
      source->walk([&](Operation *op) {
        if (auto g = dyn_cast<GlobalOp>(op)) {
          auto original = module.lookupSymbol<GlobalOp>(g.getSymName());
          if (!sequential || (targets.count(original) && !done.count(original)))
            makeDense(g);
        } else if (!sequential && isa<LinearOp, LMHeadOp>(op)) {
          op->removeAttr("input_quant");
          op->removeAttr("input_scale");
        } else if (auto c = dyn_cast<CacheUpdateOp>(op); c && !sequential) {
          c.setFormat(CacheFormat::f32);
        }
      });
      llvm::StringMap<Matrix> hessians = collectHessians(*source, stage, module);
      for (Operation *op : stage) {
        reconstructTarget(cast<GlobalOp>(op), targets[op], hessians[cast<GlobalOp>(op).getSymName()], *source,
                          checkpoint);
        done.insert(op);
        ++count;
      }
    }
    numReconstructed += count;
    recordStatistic(getArgument().str(), "num-reconstructed", count);
  }

  /// "h.3" for "h.3.attn.c_attn.weight": the transformer block of a weight.
  static std::string blockOf(StringRef name) {
    size_t first = name.find('.');
    size_t second = first == StringRef::npos ? StringRef::npos : name.find('.', first + 1);
    return second == StringRef::npos ? name.str() : name.substr(0, second).str();
  }

  /// The dense f32 value of a weight: no pruned value, no format.
  static void makeDense(GlobalOp g) {
    if (g.getSparsityAttr())
      g.removeValueAttr();
    g.removeSparsityAttr();
    g.removeQuantAttr();
  }

  /// H = X^T X (lower triangle) of the stage's targets' inputs, running `source`.
  llvm::StringMap<Matrix> collectHessians(ModuleOp source, const std::vector<Operation *> &stage, ModuleOp module) {
    llvm::StringMap<Matrix> hessians;
    llvm::StringMap<int64_t> sizes;
    for (Operation *op : stage) {
      auto g = cast<GlobalOp>(op);
      int64_t K = cast<RankedTensorType>(g.getType()).getShape()[0];
      hessians[g.getSymName()] = Matrix(size_t(K * K), 0.0);
      sizes[g.getSymName()] = K;
    }
    runCalibration(source, calibrationPath(module, calibration), maxTokens,
                   [&](Operation *op, const std::vector<const Tensor *> &operands) {
                     auto l = dyn_cast<LinearOp>(op);
                     auto w = l ? l.getWeight().getDefiningOp<WeightOp>() : WeightOp();
                     if (!w)
                       return;
                     auto it = hessians.find(w.getGlobal());
                     if (it == hessians.end())
                       return;
                     int64_t K = sizes[w.getGlobal()];
                     const std::vector<double> &x = operands[0]->data;
                     accumulateXtX(it->second, x.data(), x.size() / size_t(K), K);
                   });
    return hessians;
  }

  /// Reconstructs one weight from its dense value (in `source`, where it is
  /// still dense) and H, and records its values, sparsity and scales.
  void reconstructTarget(GlobalOp g, const Target &t, Matrix &h, ModuleOp source,
                         std::unique_ptr<Checkpoint> &checkpoint) {
    Builder b(&getContext());
    auto type = cast<RankedTensorType>(g.getType());
    int64_t K = type.getShape()[0], N = type.getShape()[1];
    symmetrizeAndDamp(h, K, 0.0);
    // The dense weights: `source` still has this one dense.
    auto denseGlobal = source.lookupSymbol<GlobalOp>(g.getSymName());
    std::vector<double> w = readGlobalValues(denseGlobal, checkpoint);
    double mean = 0;
    for (int64_t i = 0; i < K; ++i)
      mean += h[size_t(i * K + i)];
    mean = mean / double(K);
    for (int64_t i = 0; i < K; ++i)
      if (h[size_t(i * K + i)] == 0) { // an input never active: its row cannot matter
        h[size_t(i * K + i)] = 1;
        for (int64_t n = 0; n < N; ++n)
          w[size_t(i * N + n)] = 0;
      }
    Matrix u;
    double lambda = damp * (mean > 0 ? mean : 1);
    for (int attempt = 0; attempt < 6; ++attempt, lambda *= 10) {
      Matrix damped = h;
      for (int64_t i = 0; i < K; ++i)
        damped[size_t(i * K + i)] += lambda;
      if (inverseCholeskyUpper(damped, K, u))
        break;
      u.clear();
    }
    if (u.empty())
      throw Error("weight @" + g.getSymName().str() + ": H is not positive definite even with dampening");
    std::vector<float> scales = reconstruct(w, K, N, u, t, std::max<int64_t>(1, block));
    std::vector<float> values(w.begin(), w.end());
    if (t.pattern.empty())
      setInlineValues(g, type.getShape(), values);
    else
      setPrunedValues(g, t.pattern, 0, values);
    if (t.spec.isInteger()) {
      SmallVector<NamedAttribute> entries(g.getQuantAttr().getValue());
      auto scalesType = RankedTensorType::get({int64_t(scales.size())}, b.getF32Type());
      entries.push_back(b.getNamedAttr("scales", DenseElementsAttr::get(scalesType, ArrayRef<float>(scales))));
      g.setQuantAttr(b.getDictionaryAttr(entries));
    }
  }
};

} // namespace
} // namespace kiln
