//===- KnowledgeDistill.cpp - kiln-keep-teacher and kiln-distill-kd -------===//
//
// The teacher travels from kiln-keep-teacher to kiln-distill-kd in a side
// table keyed by the module, since a pass sees nothing but its module: the
// snapshot is a clone (weights are attributes, shared, not copied).
//
//===----------------------------------------------------------------------===//
#include "RowKL.h"
#include "Tape.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/IR/Adapters.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/IR/KilnDialect.h"
#include "kiln/IR/WeightValues.h"
#include "kiln/Passes/Calibration.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"
#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"
#include "kiln/Support/ParallelRows.h"

#include "mlir/IR/Builders.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace kiln {
#define GEN_PASS_DEF_KEEPTEACHER
#define GEN_PASS_DEF_DISTILLKD
#include "kiln/Passes/PrunePasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {

std::mutex teachersMutex;
std::map<Operation *, OwningOpRef<ModuleOp>> &teachers() {
  static std::map<Operation *, OwningOpRef<ModuleOp>> table;
  return table;
}

struct KeepTeacherPass : impl::KeepTeacherBase<KeepTeacherPass> {
  void runOnOperation() override {
    std::lock_guard<std::mutex> lock(teachersMutex);
    teachers()[getOperation()] = OwningOpRef<ModuleOp>(getOperation().clone());
  }
};

/// A trainable low-rank branch beside one base weight, and its ops in each function.
struct Branch {
  GlobalOp base, a, b;
  struct Use {
    WeightOp wa, wb;
    LinearOp down, up;
    AddOp add;
  };
  std::vector<Use> uses;
};

/// Adds y + linear(linear(x, A), B) beside every linear that reads a weight
/// of the module (every function: prefill and decode compute the same model).
/// A [in, r] is drawn uniform in +-1/sqrt(in) from `rng`, B [r, out] is zero.
/// `targets` (comma separated, empty: every linear) names the linears by the end of their
/// module name, as PEFT's target_modules does: "c_attn", "mlp.c_proj", "h.0.attn.c_attn".
std::vector<Branch> addBranches(ModuleOp module, int64_t rank, const std::string &targets, std::mt19937_64 &rng) {
  llvm::SmallVector<llvm::StringRef> wanted;
  llvm::StringRef(targets).split(wanted, ',', -1, /*KeepEmpty=*/false);
  auto chosen = [&](llvm::StringRef weight) {
    if (wanted.empty())
      return true;
    llvm::StringRef module = weight.ends_with(".weight") ? weight.drop_back(7) : weight;
    for (llvm::StringRef t : wanted)
      if (module == t || module.ends_with(("." + t).str()))
        return true;
    return false;
  };
  std::vector<Branch> branches;
  std::map<Operation *, size_t> index;
  OpBuilder b(module.getContext());
  auto f32 = b.getF32Type();
  module.walk([&](LinearOp l) {
    auto w = l.getWeight().getDefiningOp<WeightOp>();
    auto base = w ? module.lookupSymbol<GlobalOp>(w.getGlobal()) : GlobalOp();
    if (!base || base.getAdapter() || base.getSymName().ends_with(".kd_A") || base.getSymName().ends_with(".kd_B") ||
        !chosen(base.getSymName()))
      return;
    if (l.getGeluEpilogue())
      throw Error("lora: '" + base.getSymName().str() + "' has a fused GELU epilogue (run kiln-distill-kd before "
                  "kiln-fuse-linear-gelu)");
    auto [it, fresh] = index.try_emplace(base, branches.size());
    if (fresh) {
      auto shape = cast<RankedTensorType>(base.getType()).getShape();
      int64_t in = shape[0], out = shape[1], r = std::min({rank, in, out});
      Branch br;
      br.base = base;
      b.setInsertionPointAfter(base);
      auto ta = RankedTensorType::get({in, r}, f32), tb = RankedTensorType::get({r, out}, f32);
      std::vector<float> av(size_t(in * r));
      std::uniform_real_distribution<float> u(-1.0f / std::sqrt(float(in)), 1.0f / std::sqrt(float(in)));
      for (float &v : av)
        v = u(rng);
      std::string name = base.getSymName().str();
      br.a = b.create<GlobalOp>(base.getLoc(), name + ".kd_A", ta, DenseElementsAttr::get(ta, llvm::ArrayRef<float>(av)),
                                DictionaryAttr(), DictionaryAttr());
      br.b = b.create<GlobalOp>(base.getLoc(), name + ".kd_B", tb, DenseElementsAttr::get(tb, 0.0f), DictionaryAttr(),
                                DictionaryAttr());
      branches.push_back(br);
    }
    Branch &br = branches[it->second];
    b.setInsertionPointAfter(l);
    auto xs = cast<RankedTensorType>(l.getInput().getType()).getShape();
    SmallVector<int64_t> mid(xs.begin(), xs.end());
    mid.back() = cast<RankedTensorType>(br.a.getType()).getShape()[1];
    Branch::Use use;
    use.wa = b.create<WeightOp>(l.getLoc(), br.a.getType(), br.a.getSymName());
    use.wb = b.create<WeightOp>(l.getLoc(), br.b.getType(), br.b.getSymName());
    use.down = b.create<LinearOp>(l.getLoc(), RankedTensorType::get(mid, f32), l.getInput(), use.wa, Value(),
                                  GeluApproximationAttr(), InputQuantizationAttr(), FloatAttr());
    use.up = b.create<LinearOp>(l.getLoc(), l.getResult().getType(), use.down.getResult(), use.wb, Value(),
                                GeluApproximationAttr(), InputQuantizationAttr(), FloatAttr());
    use.add = b.create<AddOp>(l.getLoc(), l.getResult(), use.up.getResult());
    l.getResult().replaceAllUsesExcept(use.add.getResult(), use.add);
    br.uses.push_back(use);
  });
  return branches;
}

/// W += A B for a branch beside a plain float weight; the branch goes.
void mergeBranch(Branch &br, const kd::Param &a, const kd::Param &bp, std::unique_ptr<Checkpoint> &checkpoint) {
  std::vector<double> w = readEffectiveGlobalValues(br.base, checkpoint);
  int64_t in = a.value.shape[0], r = a.value.shape[1], out = bp.value.shape[1];
  for (int64_t i = 0; i < in; ++i)
    for (int64_t k = 0; k < r; ++k) {
      double x = a.value.data[size_t(i * r + k)];
      for (int64_t o = 0; o < out; ++o)
        w[size_t(i * out + o)] += x * double(bp.value.data[size_t(k * out + o)]);
    }
  std::vector<float> wf(w.begin(), w.end());
  auto shape = cast<RankedTensorType>(br.base.getType()).getShape();
  setInlineValues(br.base, shape, wf);
  for (Branch::Use &u : br.uses) {
    u.add.getResult().replaceAllUsesWith(u.add.getLhs());
    u.add.erase(), u.up.erase(), u.down.erase(), u.wb.erase(), u.wa.erase();
  }
  br.a.erase(), br.b.erase();
}

struct DistillKDPass : impl::DistillKDBase<DistillKDPass> {
  using DistillKDBase::DistillKDBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    OwningOpRef<ModuleOp> teacher;
    {
      std::lock_guard<std::mutex> lock(teachersMutex);
      auto it = teachers().find(module);
      if (it != teachers().end()) {
        teacher = std::move(it->second);
        teachers().erase(it);
      }
    }
    if (!teacher) {
      module.emitError("kiln-distill-kd: no teacher: put kiln-keep-teacher before the lossy passes in the pipeline");
      return signalPassFailure();
    }
    try {
      // Shrinking or reconstructing the base would have to transform every adapter's factors too.
      refuseSwitchableAdapters(module);
      run(module, *teacher);
    } catch (const Error &e) {
      module.emitError("kiln-distill-kd: ") << e.what();
      signalPassFailure();
    }
  }

  void run(ModuleOp module, ModuleOp teacher) {
    std::set<std::string> sets;
    llvm::SmallVector<llvm::StringRef> items;
    llvm::StringRef(train).split(items, ',', -1, /*KeepEmpty=*/false);
    for (llvm::StringRef item : items) {
      if (item != "ln" && item != "bias" && item != "lora")
        throw Error("train: unknown set '" + item.str() + "' (ln, bias, lora)");
      sets.insert(item.str());
    }
    if (sets.empty())
      throw Error("train names no trainable set (ln, bias, lora)");
    if (sets.count("lora") && rank < 1)
      throw Error("rank must be at least 1");
    if (!sets.count("lora") && !targets.empty())
      throw Error("targets choose the lora set's linears: add lora to train");
    if (steps < 0 || batch < 1 || window < 2 || !(learningRate > 0) || evalWindows < 1)
      throw Error("steps >= 0, batch >= 1, window >= 2, lr > 0 and eval-windows >= 1 are required");
    auto config = module->getAttrOfType<DictionaryAttr>(kConfigAttr);
    int64_t nPositions = config ? config.getAs<IntegerAttr>("n_positions").getInt() : 0;
    if (window > nPositions)
      throw Error("window " + std::to_string(window) + " exceeds the model's n_positions " + std::to_string(nPositions));

    // Calibration windows: consecutive, non-overlapping, full.
    std::string path = calibrationPath(module, calibration);
    auto dir = module->getAttrOfType<StringAttr>(kCheckpointAttr);
    if (!dir)
      throw Error("the module names no checkpoint folder (kiln.checkpoint) to take the tokenizer from");
    std::vector<int32_t> ids = Tokenizer::fromDir(dir.str())->encode(readFile(path, "cannot open calibration text"));
    if (maxTokens > 0 && int64_t(ids.size()) > maxTokens)
      ids.resize(size_t(maxTokens));
    int64_t windows = int64_t(ids.size()) / window;
    if (windows < 1)
      throw Error(path + ": needs at least one window of " + std::to_string(window) + " tokens");
    auto windowIds = [&](int64_t w) {
      return std::vector<int32_t>(ids.begin() + w * window, ids.begin() + (w + 1) * window);
    };

    auto studentFn = module.lookupSymbol<func::FuncOp>("prefill");
    auto teacherFn = teacher.lookupSymbol<func::FuncOp>("prefill");
    if (!studentFn || !teacherFn)
      throw Error("the module has no prefill function");
    std::mt19937_64 rng(seed);
    std::vector<Branch> branches;
    if (sets.count("lora"))
      branches = addBranches(module, rank, targets, rng);
    if (sets.count("lora") && branches.empty())
      throw Error("lora: targets '" + targets.getValue() + "' name no linear of the model");
    int hw = int(std::max(1u, std::thread::hardware_concurrency()));
    kd::Tape::setThreads(threads > 0 ? int(threads) : hw);
    kd::Tape student(studentFn), teach(teacherFn);

    // The trainable parameters: layer norm gains and biases, linear biases.
    std::vector<kd::Param *> trained;
    std::set<Operation *> chosen;
    auto pick = [&](Value v) {
      auto w = v ? v.getDefiningOp<WeightOp>() : WeightOp();
      if (!w)
        return;
      auto g = module.lookupSymbol<GlobalOp>(w.getGlobal());
      if (g && chosen.insert(g).second && student.setTrainable(g))
        trained.push_back(student.param(g));
    };
    for (Operation &op : studentFn.getBody().front()) {
      if (sets.count("ln")) {
        if (auto ln = dyn_cast<LayerNormOp>(op))
          pick(ln.getGamma()), pick(ln.getBeta());
        if (auto rl = dyn_cast<ResidualLayerNormOp>(op))
          pick(rl.getGamma()), pick(rl.getBeta());
      }
      if (auto l = dyn_cast<LinearOp>(op); l && sets.count("bias"))
        pick(l.getBias());
    }
    for (Branch &br : branches) {
      if (!student.setTrainable(br.a) || !student.setTrainable(br.b))
        throw Error("kiln-distill-kd: internal error: the prefill function does not read a lora branch");
      trained.push_back(student.param(br.a)), trained.push_back(student.param(br.b));
    }
    if (trained.empty())
      throw Error("the model has no parameter in the sets '" + train + "'");

    // Mean KL(teacher || student) per token of one window; with `grad`, the
    // gradient of `scale` times that KL added through the student.
    std::vector<float> scratch;
    int rowThreads = threads > 0 ? int(threads) : hw;
    auto windowKL = [&](int64_t w, bool grad, double scale) {
      std::vector<int32_t> x = windowIds(w);
      const kd::Buf &tl = teach.forward(x);
      int64_t V = tl.shape.back();
      const kd::Buf &sl = student.forward(x);
      scratch.resize(2 * tl.size());
      std::vector<float> d(grad ? sl.size() : 0);
      // Rows in parallel, each summed in fixed lanes, and the rows summed in order below:
      // the result does not depend on the thread count.
      std::vector<double> kls(size_t(window), 0.0);
      const float g = float(scale / double(window));
      parallelRows(size_t(window), unsigned(rowThreads), [&](size_t r) {
        size_t r0 = r * size_t(V);
        kls[r] = kd::rowKL(&tl.data[r0], &sl.data[r0], V, &scratch[2 * r0], g, grad ? &d[r0] : nullptr);
      });
      if (grad)
        student.backward(d);
      double kl = 0;
      for (double k : kls)
        kl += k;
      return kl / double(window);
    };
    auto meanKL = [&] {
      double sum = 0;
      int64_t n = std::min(evalWindows.getValue(), windows);
      for (int64_t w = 0; w < n; ++w)
        sum += windowKL(w, false, 0);
      return sum / double(n);
    };

    auto start = std::chrono::steady_clock::now();
    double before = meanKL();
    // Adam (Kingma & Ba), bias-corrected, on the mean KL over the batch.
    std::vector<std::vector<double>> m(trained.size()), v(trained.size());
    for (size_t i = 0; i < trained.size(); ++i)
      m[i].assign(trained[i]->value.size(), 0.0), v[i].assign(trained[i]->value.size(), 0.0);
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int64_t step = 1; step <= steps; ++step) {
      student.zeroGrads();
      for (int64_t b = 0; b < batch; ++b)
        windowKL(int64_t(rng() % uint64_t(windows)), true, 1.0 / double(batch));
      double c1 = 1 - std::pow(b1, double(step)), c2 = 1 - std::pow(b2, double(step));
      // Linear warm-up over the first tenth of the steps, then linear decay to zero: Adam's
      // first steps move every parameter by about lr whatever its gradient, and the last
      // ones average out the batches' noise.
      double warm = std::max(1.0, std::ceil(0.1 * double(steps)));
      double lr = learningRate * (double(step) <= warm ? double(step) / warm
                                                       : double(steps - step + 1) / (double(steps) - warm + 1));
      for (size_t i = 0; i < trained.size(); ++i) {
        kd::Param &p = *trained[i];
        for (size_t k = 0; k < p.value.size(); ++k) {
          double g = p.grad[k];
          m[i][k] = b1 * m[i][k] + (1 - b1) * g;
          v[i][k] = b2 * v[i][k] + (1 - b2) * g * g;
          p.value.data[k] -= float(lr * (m[i][k] / c1) / (std::sqrt(v[i][k] / c2) + eps));
        }
      }
    }
    double after = meanKL();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    uint64_t count = 0;
    for (kd::Param *p : trained)
      count += p->value.size();
    // Merged factors go into their base weight and are erased; the rest are stored.
    int64_t merged = 0;
    std::unique_ptr<Checkpoint> checkpoint;
    std::set<Operation *> erased;
    for (Branch &br : branches)
      if (merge && !br.base.getQuant() && !br.base.getSparsity()) {
        erased.insert(br.a), erased.insert(br.b);
        mergeBranch(br, *student.param(br.a), *student.param(br.b), checkpoint);
        ++merged;
      }
    for (kd::Param *p : trained)
      if (!erased.count(p->global))
        setInlineValues(p->global, p->value.shape, p->value.data);
    recordStatistic(getArgument().str(), "num-trained", count);
    if (!branches.empty()) {
      recordStatistic(getArgument().str(), "lora-branches", uint64_t(branches.size()));
      recordStatistic(getArgument().str(), "lora-merged", uint64_t(merged));
    }
    recordStatistic(getArgument().str(), "kl-before-nano", uint64_t(std::llround(before * 1e9)));
    recordStatistic(getArgument().str(), "kl-after-nano", uint64_t(std::llround(after * 1e9)));
    recordStatistic(getArgument().str(), "milliseconds", uint64_t(std::llround(seconds * 1e3)));
    Builder b(module.getContext());
    module->setAttr("kiln.distill_kd", b.getDictionaryAttr({
                                           b.getNamedAttr("kl_before", b.getF64FloatAttr(before)),
                                           b.getNamedAttr("kl_after", b.getF64FloatAttr(after)),
                                           b.getNamedAttr("steps", b.getI64IntegerAttr(steps)),
                                           b.getNamedAttr("parameters", b.getI64IntegerAttr(int64_t(count))),
                                       }));
  }
};

} // namespace
} // namespace kiln
