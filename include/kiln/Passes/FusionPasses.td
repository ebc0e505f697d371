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

#endif
