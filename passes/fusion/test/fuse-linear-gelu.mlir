// RUN: kiln-opt %s --pass-pipeline="builtin.module(func.func(kiln-fuse-linear-gelu))" -split-input-file | FileCheck %s

// CHECK-LABEL: func.func @fuses
// CHECK-NEXT: %[[L:.*]] = kiln.linear %arg0, %arg1, %arg2 {gelu_epilogue = 0 : i32}
// CHECK-NEXT: return %[[L]]
func.func @fuses(%x: tensor<1x2x4xf32>, %w: tensor<4x8xf32>, %b: tensor<8xf32>) -> tensor<1x2x8xf32> {
  %h = kiln.linear %x, %w, %b : (tensor<1x2x4xf32>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<1x2x8xf32>
  %g = kiln.gelu %h : tensor<1x2x8xf32>
  return %g : tensor<1x2x8xf32>
}

// -----

// The erf form carries over.
// CHECK-LABEL: func.func @erf
// CHECK: kiln.linear {{.*}} {gelu_epilogue = 1 : i32}
func.func @erf(%x: tensor<1x2x4xf32>, %w: tensor<4x8xf32>) -> tensor<1x2x8xf32> {
  %h = kiln.linear %x, %w : (tensor<1x2x4xf32>, tensor<4x8xf32>) -> tensor<1x2x8xf32>
  %g = kiln.gelu %h {approximation = 1 : i32} : tensor<1x2x8xf32>
  return %g : tensor<1x2x8xf32>
}

// -----

// The pre-activation is used elsewhere: fusing would lose it.
// CHECK-LABEL: func.func @shared
// CHECK: kiln.gelu
func.func @shared(%x: tensor<1x2x4xf32>, %w: tensor<4x8xf32>) -> (tensor<1x2x8xf32>, tensor<1x2x8xf32>) {
  %h = kiln.linear %x, %w : (tensor<1x2x4xf32>, tensor<4x8xf32>) -> tensor<1x2x8xf32>
  %g = kiln.gelu %h : tensor<1x2x8xf32>
  return %g, %h : tensor<1x2x8xf32>, tensor<1x2x8xf32>
}
