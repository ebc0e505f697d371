// RUN: kiln-opt %s --pass-pipeline="builtin.module(func.func(kiln-fuse-residual-layer-norm))" -split-input-file | FileCheck %s

// The sum keeps feeding the next residual; the norm is fused with the add.
// CHECK-LABEL: func.func @fuses
// CHECK: %[[S:.*]], %[[N:.*]] = kiln.residual_layer_norm %arg0, %arg1, %{{.*}}, %{{.*}} {epsilon = 1.000000e-05 : f64}
// CHECK-NOT: kiln.layer_norm
// CHECK: return %[[S]], %[[N]]
kiln.global @g : tensor<4xf32>
kiln.global @b : tensor<4xf32>
func.func @fuses(%x: tensor<1x2x4xf32>, %r: tensor<1x2x4xf32>) -> (tensor<1x2x4xf32>, tensor<1x2x4xf32>) {
  %s = kiln.add %x, %r : tensor<1x2x4xf32>
  %g = kiln.weight @g : tensor<4xf32>
  %b = kiln.weight @b : tensor<4xf32>
  %n = kiln.layer_norm %s, %g, %b {epsilon = 1.0e-5 : f64} : (tensor<1x2x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x2x4xf32>
  return %s, %n : tensor<1x2x4xf32>, tensor<1x2x4xf32>
}

// -----

// A layer norm of something that is not an add stays as it is.
// CHECK-LABEL: func.func @no_add
// CHECK: kiln.layer_norm
func.func @no_add(%x: tensor<1x2x4xf32>, %g: tensor<4xf32>) -> tensor<1x2x4xf32> {
  %n = kiln.layer_norm %x, %g, %g {epsilon = 1.0e-5 : f64} : (tensor<1x2x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x2x4xf32>
  return %n : tensor<1x2x4xf32>
}

// -----

// Fusing would create a cycle (the norm's gamma is computed from the sum, so
// the fused op would feed its own operand): the partitioner refuses the group.
// CHECK-LABEL: func.func @cycle
// CHECK: kiln.add
// CHECK: kiln.gelu
// CHECK: kiln.layer_norm
// CHECK-NOT: kiln.residual_layer_norm
func.func @cycle(%a: tensor<4xf32>, %b: tensor<4xf32>, %beta: tensor<4xf32>) -> tensor<4xf32> {
  %s = kiln.add %a, %b : tensor<4xf32>
  %g = kiln.gelu %s : tensor<4xf32>
  %n = kiln.layer_norm %s, %g, %beta {epsilon = 1.0e-5 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %n : tensor<4xf32>
}
