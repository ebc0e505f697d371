//===- KnowledgeDistill.cpp - kiln-keep-teacher and kiln-distill-kd -------===//
//
// The teacher travels from kiln-keep-teacher to kiln-distill-kd in a side
// table keyed by the module, since a pass sees nothing but its module: the
// snapshot is a clone (weights are attributes, shared, not copied).
//
//===----------------------------------------------------------------------===//
#include "Tape.h"

#include "kiln/IR/Adapters.h"
#include "kiln/IR/KilnDialect.h"
#include "kiln/IR/WeightValues.h"
#include "kiln/Passes/Calibration.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"
#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include "mlir/IR/Builders.h"

#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
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

/// log_softmax of each row of `logits` [T, V], in double.
void logSoftmax(const std::vector<float> &logits, int64_t V, std::vector<float> &out) {
  out.resize(logits.size());
  for (size_t r0 = 0; r0 < logits.size(); r0 += size_t(V)) {
    float mx = logits[r0];
    for (int64_t v = 1; v < V; ++v)
      mx = std::max(mx, logits[r0 + size_t(v)]);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v)
      sum += std::exp(double(logits[r0 + size_t(v)] - mx));
    double lse = double(mx) + std::log(sum);
    for (int64_t v = 0; v < V; ++v)
      out[r0 + size_t(v)] = float(double(logits[r0 + size_t(v)]) - lse);
  }
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
    {
      std::stringstream ss(train);
      for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) {
          if (item != "ln" && item != "bias")
            throw Error("train: unknown set '" + item + "' (ln, bias)");
          sets.insert(item);
        }
    }
    if (sets.empty())
      throw Error("train names no trainable set (ln, bias)");
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
    if (trained.empty())
      throw Error("the model has no parameter in the sets '" + train + "'");

    // Mean KL(teacher || student) per token of one window; with `grad`, the
    // gradient of `scale` times that KL added through the student.
    std::vector<float> teacherLp, studentLp;
    auto windowKL = [&](int64_t w, bool grad, double scale) {
      std::vector<int32_t> x = windowIds(w);
      const kd::Buf &tl = teach.forward(x);
      int64_t V = tl.shape.back();
      logSoftmax(tl.data, V, teacherLp);
      const kd::Buf &sl = student.forward(x);
      logSoftmax(sl.data, V, studentLp);
      double kl = 0;
      std::vector<float> d(grad ? sl.size() : 0);
      for (size_t i = 0; i < teacherLp.size(); ++i) {
        double pt = std::exp(double(teacherLp[i]));
        kl += pt * (double(teacherLp[i]) - double(studentLp[i]));
        if (grad)
          d[i] = float(scale / double(window) * (std::exp(double(studentLp[i])) - pt));
      }
      if (grad)
        student.backward(d);
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
    std::mt19937_64 rng(seed);
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int64_t step = 1; step <= steps; ++step) {
      student.zeroGrads();
      for (int64_t b = 0; b < batch; ++b)
        windowKL(int64_t(rng() % uint64_t(windows)), true, 1.0 / double(batch));
      double c1 = 1 - std::pow(b1, double(step)), c2 = 1 - std::pow(b2, double(step));
      for (size_t i = 0; i < trained.size(); ++i) {
        kd::Param &p = *trained[i];
        for (size_t k = 0; k < p.value.size(); ++k) {
          double g = p.grad[k];
          m[i][k] = b1 * m[i][k] + (1 - b1) * g;
          v[i][k] = b2 * v[i][k] + (1 - b2) * g * g;
          p.value.data[k] -= float(learningRate * (m[i][k] / c1) / (std::sqrt(v[i][k] / c2) + eps));
        }
      }
    }
    double after = meanKL();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    for (kd::Param *p : trained)
      setInlineValues(p->global, p->value.shape, p->value.data);
    uint64_t count = 0;
    for (kd::Param *p : trained)
      count += p->value.size();
    recordStatistic(getArgument().str(), "num-trained", count);
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
