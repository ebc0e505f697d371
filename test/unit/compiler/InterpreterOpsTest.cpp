//===- InterpreterOpsTest.cpp - reference ops against hand-computed values ===//
#include "kiln/IR/KilnOps.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Support/Error.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <cmath>
#include <gtest/gtest.h>

using namespace kiln;

namespace {

class InterpreterOps : public ::testing::Test {
protected:
  InterpreterOps() { ctx.loadDialect<KilnDialect, mlir::func::FuncDialect>(); }

  std::vector<Tensor> run(const std::string &ir, const std::vector<Tensor> &args) {
    module = mlir::parseSourceString<mlir::ModuleOp>(ir, &ctx);
    EXPECT_TRUE(module && mlir::succeeded(mlir::verify(*module)));
    Interpreter interp(*module);
    return interp.call("f", args);
  }

  static Tensor make(std::vector<int64_t> shape, std::vector<double> data) {
    Tensor t(std::move(shape));
    t.data = std::move(data);
    return t;
  }

  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

void expectNear(const std::vector<double> &got, const std::vector<double> &want, double tol = 1e-12) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

TEST_F(InterpreterOps, LayerNorm) {
  auto out = run(R"(
    kiln.global @g : tensor<4xf32> = dense<[1.0, 1.0, 2.0, 2.0]> : tensor<4xf32>
    kiln.global @b : tensor<4xf32> = dense<[0.0, 0.0, 0.0, 1.0]> : tensor<4xf32>
    func.func @f(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
      %g = kiln.weight @g : tensor<4xf32>
      %b = kiln.weight @b : tensor<4xf32>
      %y = kiln.layer_norm %x, %g, %b {epsilon = 1.0e-05 : f64} : (tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
      return %y : tensor<1x4xf32>
    })",
                 {make({1, 4}, {1, 2, 3, 4})});
  // mean 2.5, biased variance 1.25.
  double inv = 1.0 / std::sqrt(1.25 + 1e-5);
  expectNear(out[0].data, {-1.5 * inv, -0.5 * inv, 2 * 0.5 * inv, 2 * 1.5 * inv + 1});
}

TEST_F(InterpreterOps, LinearAndLMHead) {
  auto out = run(R"(
    kiln.global @w : tensor<2x3xf32> = dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
    kiln.global @bias : tensor<3xf32> = dense<[0.5, 0.0, -1.0]> : tensor<3xf32>
    kiln.global @e : tensor<3x2xf32> = dense<[[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]]> : tensor<3x2xf32>
    func.func @f(%x: tensor<1x1x2xf32>) -> (tensor<1x1x3xf32>, tensor<1x1x3xf32>) {
      %w = kiln.weight @w : tensor<2x3xf32>
      %b = kiln.weight @bias : tensor<3xf32>
      %e = kiln.weight @e : tensor<3x2xf32>
      %y = kiln.linear %x, %w, %b : (tensor<1x1x2xf32>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<1x1x3xf32>
      %l = kiln.lm_head %x, %e : (tensor<1x1x2xf32>, tensor<3x2xf32>) -> tensor<1x1x3xf32>
      return %y, %l : tensor<1x1x3xf32>, tensor<1x1x3xf32>
    })",
                 {make({1, 1, 2}, {1, 2})});
  expectNear(out[0].data, {9.5, 12, 14});
  expectNear(out[1].data, {1, 2, 0});
}

TEST_F(InterpreterOps, LinearWithInt8Inputs) {
  // Two rows through W = I: dynamic quantization gives each row its own scale
  // (max|x| / 127), static the given one (values beyond it clamp).
  auto out = run(R"(
    kiln.global @w : tensor<2x2xf32> = dense<[[1.0, 0.0], [0.0, 1.0]]> : tensor<2x2xf32>
    func.func @f(%x: tensor<2x2xf32>) -> (tensor<2x2xf32>, tensor<2x2xf32>) {
      %w = kiln.weight @w : tensor<2x2xf32>
      %d = kiln.linear %x, %w {input_quant = 0 : i32} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
      %s = kiln.linear %x, %w {input_quant = 1 : i32, input_scale = 0.5 : f32} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
      return %d, %s : tensor<2x2xf32>, tensor<2x2xf32>
    })",
                 {make({2, 2}, {127, 0.5, -2.54, 1.0})});
  // Row 0: scale 1, 0.5 rounds half to even -> 0. Row 1: scale 0.02, 1.0 / 0.02 = 50.
  expectNear(out[0].data, {127, 0, double(-127 * (2.54f / 127.0f)), double(50 * (2.54f / 127.0f))}, 1e-6);
  // Static 0.5: 127 / 0.5 clamps to 127 -> 63.5; 0.5 -> 1 * 0.5; -2.54 -> -5 * 0.5; 1.0 -> 2 * 0.5.
  expectNear(out[1].data, {63.5, 0.5, -2.5, 1.0}, 1e-12);
}

TEST_F(InterpreterOps, GeluBothForms) {
  auto out = run(R"(
    func.func @f(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
      %t = kiln.gelu %x : tensor<3xf32>
      %e = kiln.gelu %x {approximation = 1 : i32} : tensor<3xf32>
      return %t, %e : tensor<3xf32>, tensor<3xf32>
    })",
                 {make({3}, {1, -2, 0})});
  expectNear(out[0].data, {0.8411919906082768, -0.04540230591222, 0}, 1e-13);
  expectNear(out[1].data, {0.8413447460685429, -0.04550026389635842, 0}, 1e-13);
}

TEST_F(InterpreterOps, FusedOpsEqualTheirParts) {
  auto out = run(R"(
    kiln.global @w : tensor<2x3xf32> = dense<[[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]]> : tensor<2x3xf32>
    kiln.global @g : tensor<2xf32> = dense<[2.0, 1.0]> : tensor<2xf32>
    kiln.global @b : tensor<2xf32> = dense<[0.0, 1.0]> : tensor<2xf32>
    func.func @f(%x: tensor<1x2xf32>, %r: tensor<1x2xf32>) -> (tensor<1x3xf32>, tensor<1x3xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>) {
      %w = kiln.weight @w : tensor<2x3xf32>
      %g = kiln.weight @g : tensor<2xf32>
      %b = kiln.weight @b : tensor<2xf32>
      %l = kiln.linear %x, %w : (tensor<1x2xf32>, tensor<2x3xf32>) -> tensor<1x3xf32>
      %a = kiln.gelu %l : tensor<1x3xf32>
      %f = kiln.linear %x, %w {gelu_epilogue = 0 : i32} : (tensor<1x2xf32>, tensor<2x3xf32>) -> tensor<1x3xf32>
      %s, %n = kiln.residual_layer_norm %x, %r, %g, %b {epsilon = 1.0e-5 : f64} : (tensor<1x2xf32>, tensor<1x2xf32>, tensor<2xf32>, tensor<2xf32>) -> (tensor<1x2xf32>, tensor<1x2xf32>)
      %s2 = kiln.add %x, %r : tensor<1x2xf32>
      %n2 = kiln.layer_norm %s2, %g, %b {epsilon = 1.0e-5 : f64} : (tensor<1x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2xf32>
      return %a, %f, %s, %n, %n2 : tensor<1x3xf32>, tensor<1x3xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>
    })",
                 {make({1, 2}, {1, 2}), make({1, 2}, {0.5, -1})});
  expectNear(out[1].data, out[0].data, 0);
  expectNear(out[2].data, {1.5, 1});
  // Sum [1.5, 1]: mean 1.25, variance 0.0625, so (x - mean) / sqrt(var + eps) = +-0.25 / sqrt(0.06251).
  double z = 0.25 / std::sqrt(0.0625 + 1e-5);
  expectNear(out[3].data, {2 * z, -z + 1});
  expectNear(out[4].data, out[3].data, 0);
}

TEST_F(InterpreterOps, SoftmaxOfMaskedRowsIsZero) {
  double inf = INFINITY;
  auto out = run(R"(
    func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
      %y = kiln.softmax %x : tensor<2x3xf32>
      return %y : tensor<2x3xf32>
    })",
                 {make({2, 3}, {0, std::log(2.0), -inf, -inf, -inf, -inf})});
  expectNear(out[0].data, {1.0 / 3, 2.0 / 3, 0, 0, 0, 0}, 1e-15);
}

const char *kAttention = R"(
    func.func @f(%q: tensor<1x1x2x1xf32>, %k: tensor<1x1x2x1xf32>, %v: tensor<1x1x2x1xf32>,
                 %kc: tensor<1x1x3x1xf32>, %vc: tensor<1x1x3x1xf32>, %pos: tensor<1x2xi32>)
        -> (tensor<1x1x2x1xf32>, tensor<1x1x2x1xf32>, tensor<1x1x3x1xf32>) {
      %kc2 = kiln.cache_update %kc[%pos], %k : (tensor<1x1x3x1xf32>, tensor<1x1x2x1xf32>, tensor<1x2xi32>) -> tensor<1x1x3x1xf32>
      %vc2 = kiln.cache_update %vc[%pos], %v : (tensor<1x1x3x1xf32>, tensor<1x1x2x1xf32>, tensor<1x2xi32>) -> tensor<1x1x3x1xf32>
      %s = kiln.matmul %q, %kc2 {transpose_rhs} : (tensor<1x1x2x1xf32>, tensor<1x1x3x1xf32>) -> tensor<1x1x2x3xf32>
      %s2 = kiln.scale %s, 1.0 : tensor<1x1x2x3xf32>
      %m = kiln.causal_mask %s2, %pos : (tensor<1x1x2x3xf32>, tensor<1x2xi32>) -> tensor<1x1x2x3xf32>
      %p = kiln.softmax %m : tensor<1x1x2x3xf32>
      %o = kiln.matmul %p, %vc2 : (tensor<1x1x2x3xf32>, tensor<1x1x3x1xf32>) -> tensor<1x1x2x1xf32>
      %fused = kiln.attention %q, %kc2, %vc2, %pos {scale = 1.0 : f64} : (tensor<1x1x2x1xf32>, tensor<1x1x3x1xf32>, tensor<1x1x3x1xf32>, tensor<1x2xi32>) -> tensor<1x1x2x1xf32>
      return %o, %fused, %kc2 : tensor<1x1x2x1xf32>, tensor<1x1x2x1xf32>, tensor<1x1x3x1xf32>
    })";

TEST_F(InterpreterOps, AttentionOverTheCache) {
  // Keys 0 and ln 2 at positions 0 and 1; query 1 everywhere. Row 0 sees only
  // position 0; row 1 weighs positions 0 and 1 as 1:2.
  auto out = run(kAttention, {make({1, 1, 2, 1}, {1, 1}), make({1, 1, 2, 1}, {0, std::log(2.0)}),
                              make({1, 1, 2, 1}, {10, 40}), Tensor({1, 1, 3, 1}, 7.0), Tensor({1, 1, 3, 1}, 7.0),
                              make({1, 2}, {0, 1})});
  expectNear(out[0].data, {10, 30});
  expectNear(out[1].data, {10, 30});
  expectNear(out[2].data, {0, std::log(2.0), 7}); // position 2 keeps its old value
}

TEST_F(InterpreterOps, Int8CacheRowsHoldTheirQuantization) {
  // One head, D = 3: the row written at position 1 is stored as q * scale with
  // scale = max|row| / 127 = 2 (254 / 127); 3 / 2 = 1.5 rounds half to even to 2.
  auto out = run(R"(
    func.func @f(%c: tensor<1x1x2x3xf32>, %u: tensor<1x1x1x3xf32>, %p: tensor<1x1xi32>) -> tensor<1x1x2x3xf32> {
      %r = kiln.cache_update %c[%p], %u {format = 1 : i32} : (tensor<1x1x2x3xf32>, tensor<1x1x1x3xf32>, tensor<1x1xi32>) -> tensor<1x1x2x3xf32>
      return %r : tensor<1x1x2x3xf32>
    })",
                 {Tensor({1, 1, 2, 3}, 0.25), make({1, 1, 1, 3}, {-254, 3, 100.9}), make({1, 1}, {1})});
  expectNear(out[0].data, {0.25, 0.25, 0.25, -254, 4, 100}, 0);
}

TEST_F(InterpreterOps, PaddingSlotsWriteAndSeeNothing) {
  auto out = run(kAttention, {make({1, 1, 2, 1}, {1, 1}), make({1, 1, 2, 1}, {5, 6}), make({1, 1, 2, 1}, {10, 40}),
                              Tensor({1, 1, 3, 1}, 0.0), Tensor({1, 1, 3, 1}, 0.0), make({1, 2}, {2, -1})});
  expectNear(out[2].data, {0, 0, 5});
  EXPECT_EQ(out[0].data[1], 0.0);
  EXPECT_EQ(out[1].data[1], 0.0);
  // Row 0 is at position 2 and sees cache rows 0..2 (values 0, 0, 10).
  double e5 = std::exp(5.0);
  expectNear({out[0].data[0], out[1].data[0]}, {10 * e5 / (2 + e5), 10 * e5 / (2 + e5)});
}

TEST_F(InterpreterOps, PositionPastTheCacheIsAnError) {
  EXPECT_THROW(run(kAttention, {make({1, 1, 2, 1}, {1, 1}), make({1, 1, 2, 1}, {5, 6}), make({1, 1, 2, 1}, {1, 4}),
                                Tensor({1, 1, 3, 1}), Tensor({1, 1, 3, 1}), make({1, 2}, {2, 3})}),
               Error);
}

TEST_F(InterpreterOps, EmbeddingHeadsAndSelectLast) {
  auto out = run(R"(
    kiln.global @t : tensor<3x4xf32> = dense<[[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0, 10.0, 11.0]]> : tensor<3x4xf32>
    func.func @f(%ids: tensor<1x2xi32>, %pos: tensor<1x2xi32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x4xf32>, tensor<1x1x4xf32>) {
      %t = kiln.weight @t : tensor<3x4xf32>
      %x = kiln.embedding %t[%ids] : (tensor<3x4xf32>, tensor<1x2xi32>) -> tensor<1x2x4xf32>
      %h = kiln.split_heads %x : tensor<1x2x4xf32> -> tensor<1x2x2x2xf32>
      %m = kiln.merge_heads %h : tensor<1x2x2x2xf32> -> tensor<1x2x4xf32>
      %l = kiln.select_last %x, %pos : (tensor<1x2x4xf32>, tensor<1x2xi32>) -> tensor<1x1x4xf32>
      return %h, %m, %l : tensor<1x2x2x2xf32>, tensor<1x2x4xf32>, tensor<1x1x4xf32>
    })",
                 {make({1, 2}, {2, -1}), make({1, 2}, {5, -1})});
  // Token 2 then a padding slot (zero row); head 0 = columns 0..1, head 1 = 2..3.
  expectNear(out[0].data, {8, 9, 0, 0, 10, 11, 0, 0});
  expectNear(out[1].data, {8, 9, 10, 11, 0, 0, 0, 0});
  expectNear(out[2].data, {8, 9, 10, 11});
  EXPECT_THROW(run(R"(
    kiln.global @t : tensor<3x4xf32> = dense<0.0> : tensor<3x4xf32>
    func.func @f(%ids: tensor<1x1xi32>) -> tensor<1x1x4xf32> {
      %t = kiln.weight @t : tensor<3x4xf32>
      %x = kiln.embedding %t[%ids] : (tensor<3x4xf32>, tensor<1x1xi32>) -> tensor<1x1x4xf32>
      return %x : tensor<1x1x4xf32>
    })",
                   {make({1, 1}, {3})}),
               Error);
}

TEST_F(InterpreterOps, WrongArgumentShapeIsAnError) {
  EXPECT_THROW(run(R"(
    func.func @f(%x: tensor<3xf32>) -> tensor<3xf32> {
      return %x : tensor<3xf32>
    })",
                   {make({2}, {1, 2})}),
               Error);
}

} // namespace
