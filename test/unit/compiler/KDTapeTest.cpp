//===- KDTapeTest.cpp - the training tape of kiln-distill-kd --------------===//
//
// On a random GPT-2 (2 layers) imported with every logit kept:
//  - forward: the tape's logits at every position equal the reference
//    interpreter's (dense, fused, int8/int4 weights, W8A8, int8 KV cache);
//  - backward: the gradient of L = sum(logits * R) with respect to every
//    layer norm gain and bias and every linear bias (which flows back
//    through every op: LM head, layer norm, GELU, linear, split, heads,
//    attention's products, scale, causal mask, softmax, the cache update,
//    the residual adds) equals central finite differences, for the dense,
//    fused (residual layer norm, GELU epilogue) and quantized-weight models;
//    the dense model's linear weight matrices too (the gradient the lora
//    set's factors, themselves linear weights, get);
//  - int8 activations pass gradients straight through.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "distill/kd/RowKL.h"
#include "distill/kd/Tape.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/Frontend/Importer.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Pipeline.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/Pass/PassManager.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <random>

using namespace kiln;
using namespace kiln::test;

namespace {

class KDTape : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir = new TempDir("kdtape");
    CheckpointSpec spec;
    spec.config = presetConfig("tiny");
    spec.config.nLayer = 2;
    spec.config.nEmbd = 32;
    spec.config.nHead = 4;
    spec.config.vocabSize = 97;
    spec.config.nPositions = 16;
    spec.seed = 11;
    writeRandomCheckpoint(spec, dir->file("ckpt"));
  }
  static void TearDownTestSuite() { delete dir; }

  void SetUp() override {
    context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
    auto ckpt = Checkpoint::open(dir->file("ckpt"));
    ImportOptions options;
    options.promptLen = options.ctxLen = 8;
    options.allLogits = true;
    module = importGPT2(context, *ckpt, options);
  }

  void runPasses(const std::string &list) {
    registerKilnPasses();
    mlir::PassManager pm = mlir::PassManager::on<mlir::ModuleOp>(&context);
    addPipeline(pm, parsePassList(list));
    ASSERT_TRUE(succeeded(pm.run(*module)));
  }
  mlir::func::FuncOp prefill() { return module->lookupSymbol<mlir::func::FuncOp>("prefill"); }

  /// Every linear's input rounded to int8 per row (W8A8's dynamic mode).
  void quantizeInputs() {
    prefill().walk([&](LinearOp l) {
      l.setInputQuantAttr(InputQuantizationAttr::get(&context, InputQuantization::Dynamic));
    });
  }

  /// Tape logits [T, V] vs the reference interpreter's at every position.
  void expectForwardMatchesReference(double tolerance) {
    kd::Tape tape(prefill());
    std::vector<int32_t> ids = {3, 14, 15, 92, 65, 35, 89, 79};
    const kd::Buf &logits = tape.forward(ids);
    ReferenceModel ref(*module);
    std::vector<std::vector<double>> want = ref.scoreAll(ids);
    ASSERT_EQ(logits.size(), want.size() * 97);
    double worst = 0, scale = 0;
    for (size_t t = 0; t < want.size(); ++t)
      for (size_t v = 0; v < 97; ++v) {
        worst = std::max(worst, std::fabs(double(logits.data[t * 97 + v]) - want[t][v]));
        scale = std::max(scale, std::fabs(want[t][v]));
      }
    EXPECT_LE(worst, tolerance * scale) << "largest |tape - reference| over all positions";
  }

  /// d(sum(logits * R))/d(p) for every layer norm parameter and linear bias
  /// (and with `linearWeights`, every linear's weight matrix: the gradient the
  /// lora set's factors get), against central differences on the three
  /// largest coordinates of each.
  void expectGradientsMatchFiniteDifferences(bool linearWeights = false) {
    kd::Tape tape(prefill());
    std::vector<GlobalOp> params;
    for (GlobalOp g : module->getOps<GlobalOp>()) {
      llvm::StringRef n = g.getSymName();
      bool linear = n.ends_with(".weight") && (n.contains(".attn.c_") || n.contains(".mlp.c_"));
      if (n.contains("ln_") || n.ends_with(".bias") || (linearWeights && linear))
        if (tape.setTrainable(g))
          params.push_back(g);
    }
    // Per layer ln_1, ln_2 (gain, bias), four linear biases (and weights); ln_f.
    ASSERT_EQ(params.size(), 2u * (linearWeights ? 12 : 8) + 2);
    std::vector<int32_t> ids = {5, 1, 77, 42, 8, 60, 33, 21};
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    const kd::Buf &first = tape.forward(ids);
    std::vector<float> r(first.size());
    for (float &x : r)
      x = normal(rng);
    auto loss = [&] {
      const kd::Buf &l = tape.forward(ids);
      double s = 0;
      for (size_t i = 0; i < l.size(); ++i)
        s += double(l.data[i]) * r[i];
      return s;
    };
    tape.zeroGrads();
    loss();
    tape.backward(r);
    int checked = 0;
    for (GlobalOp g : params) {
      kd::Param *p = tape.param(g);
      std::vector<float> grad = p->grad;
      std::vector<size_t> order(grad.size());
      for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
      std::partial_sort(order.begin(), order.begin() + 3, order.end(),
                        [&](size_t a, size_t b) { return std::fabs(grad[a]) > std::fabs(grad[b]); });
      for (int j = 0; j < 3; ++j) {
        size_t k = order[size_t(j)];
        float saved = p->value.data[k], h = 1e-2f * std::max(1.0f, std::fabs(saved));
        p->value.data[k] = saved + h;
        double up = loss();
        p->value.data[k] = saved - h;
        double down = loss();
        p->value.data[k] = saved;
        double fd = (up - down) / (2 * double(h));
        EXPECT_NEAR(grad[k], fd, 2e-2 * std::max(std::fabs(fd), 1.0))
            << "@" << g.getSymName().str() << "[" << k << "]";
        ++checked;
      }
    }
    EXPECT_EQ(checked, int(3 * params.size()));
  }

  static TempDir *dir;
  mlir::MLIRContext context{mlir::MLIRContext::Threading::DISABLED};
  mlir::OwningOpRef<mlir::ModuleOp> module;
};
TempDir *KDTape::dir = nullptr;

TEST_F(KDTape, DenseForwardMatchesTheReference) { expectForwardMatchesReference(1e-5); }
TEST_F(KDTape, DenseGradientsMatchFiniteDifferences) { expectGradientsMatchFiniteDifferences(); }
TEST_F(KDTape, LinearWeightGradientsMatchFiniteDifferences) { expectGradientsMatchFiniteDifferences(true); }

TEST_F(KDTape, FusedModelForwardAndGradients) {
  runPasses("kiln-fuse-linear-gelu,kiln-fuse-residual-layer-norm");
  bool fused = false;
  prefill().walk([&](ResidualLayerNormOp) { fused = true; });
  ASSERT_TRUE(fused);
  expectForwardMatchesReference(1e-5);
  expectGradientsMatchFiniteDifferences();
}

TEST_F(KDTape, QuantizedWeightsForwardAndGradients) {
  runPasses("kiln-quantize-weights{format=int8},kiln-quantize-weights{format=int4 group-size=16 include-lm-head=true}");
  expectForwardMatchesReference(1e-5);
  expectGradientsMatchFiniteDifferences();
}

TEST_F(KDTape, Int8ActivationsAndCacheForwardMatchTheReference) {
  runPasses("kiln-quantize-weights{format=int8},kiln-quantize-kv-cache");
  quantizeInputs();
  // The f32 tape and the f64 reference can round a value near an int8 step
  // differently; the logits still agree closely.
  expectForwardMatchesReference(2e-2);
}

TEST_F(KDTape, Int8ActivationsPassGradientsStraightThrough) {
  // The gradient through rounded inputs is the rounding-free model's
  // backward evaluated at the rounded forward values: with every input's
  // rounding removed again, the two tapes' gradients agree to the
  // difference the rounding makes in the forward values (a few percent).
  std::vector<int32_t> ids = {5, 1, 77, 42, 8, 60, 33, 21};
  auto gradient = [&](bool rounded) {
    if (rounded)
      quantizeInputs();
    kd::Tape tape(prefill());
    GlobalOp g = module->lookupSymbol<GlobalOp>("h.1.ln_2.weight");
    EXPECT_TRUE(tape.setTrainable(g));
    const kd::Buf &l = tape.forward(ids);
    std::vector<float> r(l.size(), 0.0f);
    r[5] = 1; // d(logit 5 of position 0)
    r[r.size() - 3] = 1;
    tape.backward(r);
    prefill().walk([&](LinearOp op) { op.removeInputQuantAttr(); });
    return tape.param(g)->grad;
  };
  std::vector<float> plain = gradient(false), ste = gradient(true);
  double num = 0, den = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    num += (plain[i] - ste[i]) * (plain[i] - ste[i]);
    den += plain[i] * plain[i];
  }
  ASSERT_GT(den, 0);
  EXPECT_LT(std::sqrt(num / den), 0.1) << "relative distance of the straight-through gradient";
}

} // namespace

// The loss row against the same sums in double with libm's exp.
TEST(KDRowKL, MatchesADoubleReference) {
  std::mt19937 rng(3);
  for (int64_t V : {int64_t(1), int64_t(15), int64_t(37), int64_t(50257)}) {
    std::normal_distribution<float> normal(0.0f, 4.0f);
    const size_t n = static_cast<size_t>(V);
    std::vector<float> t(n), s(n), scratch(2 * n), grad(n);
    for (int64_t i = 0; i < V; ++i)
      t[size_t(i)] = normal(rng), s[size_t(i)] = t[size_t(i)] + 0.5f * normal(rng);
    double mt = *std::max_element(t.begin(), t.end()), ms = *std::max_element(s.begin(), s.end());
    double zt = 0, zs = 0;
    for (int64_t i = 0; i < V; ++i)
      zt += std::exp(t[size_t(i)] - mt), zs += std::exp(s[size_t(i)] - ms);
    double want = 0;
    std::vector<double> wantGrad(n), scale(n);
    for (int64_t i = 0; i < V; ++i) {
      double lpt = t[size_t(i)] - mt - std::log(zt), lps = s[size_t(i)] - ms - std::log(zs);
      want += std::exp(lpt) * (lpt - lps);
      wantGrad[size_t(i)] = 0.25 * (std::exp(lps) - std::exp(lpt));
      scale[size_t(i)] = 0.25 * (std::exp(lps) + std::exp(lpt)); // float rounding is relative to the terms
    }
    double got = kiln::kd::rowKL(t.data(), s.data(), V, scratch.data(), 0.25f, grad.data());
    EXPECT_NEAR(got, want, 1e-6 * std::max(1.0, want)) << "V=" << V;
    for (int64_t i = 0; i < V; ++i)
      ASSERT_NEAR(grad[size_t(i)], wantGrad[size_t(i)], 1e-6 * scale[size_t(i)] + 1e-12)
          << "V=" << V << " i=" << i;
    EXPECT_EQ(kiln::kd::rowKL(t.data(), s.data(), V, scratch.data(), 0, nullptr), got) << "no gradient, same sum";
  }
}

TEST(KDRowKL, ExpIsWithinThreeUlp) {
  for (float x = -87.0f; x <= 0.0f; x += 0.00731f) {
    float want = float(std::exp(double(x))), got = kiln::kd::expNonPositive(x);
    ASSERT_LE(std::abs(got - want), 3 * (std::nextafter(want, 1e30f) - want)) << "x=" << x;
  }
  EXPECT_EQ(kiln::kd::expNonPositive(0.0f), 1.0f);
  EXPECT_EQ(kiln::kd::expNonPositive(-88.0f), 0.0f) << "below -87: 0, never negative or NaN";
}
