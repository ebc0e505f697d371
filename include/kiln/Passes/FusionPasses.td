//===- FusionPasses.td - kiln fusion passes -------------------*- tablegen -*-===//
#ifndef KILN_FUSION_PASSES_TD
#define KILN_FUSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def FuseAttention : Pass<"kiln-fuse-attention", "mlir::func::FuncOp"> {
  let summary = "Fuse QK^T, scale, causal mask, softmax and PV into kiln.attention";
  let description = [{
    Matches the decomposed attention the importer emits and replaces it with
    one `kiln.attention`, which backends implement flash-style (no [S, C]
    score matrix in memory):

    ```mlir
    %s = kiln.matmul %q, %kc {transpose_rhs} : ...
    %t = kiln.scale %s, 0.125 : ...
    %m = kiln.causal_mask %t, %pos : ...
    %p = kiln.softmax %m : ...
    %o = kiln.matmul %p, %vc : ...
    ```
    becomes
    ```mlir
    %o = kiln.attention %q, %kc, %vc, %pos {scale = 0.125 : f64} : ...
    ```
    A chain whose intermediate values have other uses is left alone.
  }];
  let dependentDialects = ["::kiln::KilnDialect"];
  let statistics = [Statistic<"numFused", "num-fused", "Attention blocks fused">];
}

def FuseLinearGelu : Pass<"kiln-fuse-linear-gelu", "mlir::func::FuncOp"> {
  let summary = "Fuse kiln.gelu into the kiln.linear that feeds it (a GELU epilogue)";
  let description = [{
    ```mlir
    %h = kiln.linear %x, %w, %b : ...
    %g = kiln.gelu %h : ...
    ```
    becomes
    ```mlir
    %g = kiln.linear %x, %w, %b {gelu_epilogue = 0 : i32} : ...
    ```
    The linear's result must have no other use.
  }];
  let dependentDialects = ["::kiln::KilnDialect"];
  let statistics = [Statistic<"numFused", "num-fused", "Linear+GELU pairs fused">];
}

def FuseResidualLayerNorm : Pass<"kiln-fuse-residual-layer-norm", "mlir::func::FuncOp"> {
  let summary = "Fuse a residual kiln.add with the kiln.layer_norm of its sum";
  let description = [{
    ```mlir
    %s = kiln.add %x, %r : ...
    %n = kiln.layer_norm %s, %g, %b {epsilon = 1.0e-05 : f64} : ...
    ```
    becomes
    ```mlir
    %s, %n = kiln.residual_layer_norm %x, %r, %g, %b {epsilon = 1.0e-05 : f64} : ...
    ```
    The sum keeps its other uses (the next residual connection).
  }];
  let dependentDialects = ["::kiln::KilnDialect"];
  let statistics = [Statistic<"numFused", "num-fused", "Add+layer-norm pairs fused">];
}

#endif
