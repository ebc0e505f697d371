// RUN: kiln-opt %s --pass-pipeline="builtin.module(func.func(kiln-fuse-attention))" -split-input-file | FileCheck %s

// CHECK-LABEL: func.func @fuses
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2, %arg3 {scale = 1.250000e-01 : f64}
// CHECK-NEXT: return %[[O]]
func.func @fuses(%q: tensor<1x2x3x4xf32>, %kc: tensor<1x2x8x4xf32>, %vc: tensor<1x2x8x4xf32>, %pos: tensor<1x3xi32>) -> tensor<1x2x3x4xf32> {
  %s = kiln.matmul %q, %kc {transpose_rhs} : (tensor<1x2x3x4xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x3x8xf32>
  %t = kiln.scale %s, 0.125 : tensor<1x2x3x8xf32>
  %m = kiln.causal_mask %t, %pos : (tensor<1x2x3x8xf32>, tensor<1x3xi32>) -> tensor<1x2x3x8xf32>
  %p = kiln.softmax %m : tensor<1x2x3x8xf32>
  %o = kiln.matmul %p, %vc : (tensor<1x2x3x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x3x4xf32>
  return %o : tensor<1x2x3x4xf32>
}

// -----

// The probabilities are used twice: fusing would lose them.
// CHECK-LABEL: func.func @keeps_shared_probs
// CHECK-NOT: kiln.attention
// CHECK: kiln.softmax
func.func @keeps_shared_probs(%q: tensor<1x2x3x4xf32>, %kc: tensor<1x2x8x4xf32>, %vc: tensor<1x2x8x4xf32>, %pos: tensor<1x3xi32>) -> (tensor<1x2x3x4xf32>, tensor<1x2x3x8xf32>) {
  %s = kiln.matmul %q, %kc {transpose_rhs} : (tensor<1x2x3x4xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x3x8xf32>
  %t = kiln.scale %s, 0.125 : tensor<1x2x3x8xf32>
  %m = kiln.causal_mask %t, %pos : (tensor<1x2x3x8xf32>, tensor<1x3xi32>) -> tensor<1x2x3x8xf32>
  %p = kiln.softmax %m : tensor<1x2x3x8xf32>
  %o = kiln.matmul %p, %vc : (tensor<1x2x3x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x3x4xf32>
  return %o, %p : tensor<1x2x3x4xf32>, tensor<1x2x3x8xf32>
}

// -----

// Without the causal mask this is not the attention kiln.attention computes.
// CHECK-LABEL: func.func @needs_mask
// CHECK-NOT: kiln.attention
func.func @needs_mask(%q: tensor<1x2x3x4xf32>, %kc: tensor<1x2x8x4xf32>, %vc: tensor<1x2x8x4xf32>) -> tensor<1x2x3x4xf32> {
  %s = kiln.matmul %q, %kc {transpose_rhs} : (tensor<1x2x3x4xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x3x8xf32>
  %t = kiln.scale %s, 0.125 : tensor<1x2x3x8xf32>
  %p = kiln.softmax %t : tensor<1x2x3x8xf32>
  %o = kiln.matmul %p, %vc : (tensor<1x2x3x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x3x4xf32>
  return %o : tensor<1x2x3x4xf32>
}
