// RUN: kiln-opt %s --pass-pipeline="builtin.module(kiln-prune{sparsity=0.5})" | FileCheck %s
// RUN: kiln-opt %s --pass-pipeline="builtin.module(kiln-prune{pattern=2:4})" | FileCheck %s --check-prefix=P24
// RUN: kiln-opt %s --pass-pipeline="builtin.module(kiln-prune{sparsity=0.25 scope=global})" | FileCheck %s --check-prefix=GLOBAL
// RUN: not kiln-opt %s --pass-pipeline="builtin.module(kiln-prune{pattern=3:8})" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-weights,kiln-prune)" 2>&1 | FileCheck %s --check-prefix=ORDER

// Per layer: half of each matrix, the smallest magnitudes (ties: lower index).
// |a| sorted: 0.5, 1 (index 0), 1 (index 6), 2, ... so those four go.
// CHECK: kiln.global @a : tensor<4x2xf32> = dense<{{\[}}[0.000000e+00, 0.000000e+00], [3.000000e+00, 0.000000e+00], [-5.000000e+00, -7.000000e+00], [0.000000e+00, 8.000000e+00]]> : tensor<4x2xf32> {sparsity = {axis = 0 : i64, pattern = "unstructured", sparsity = 5.000000e-01 : f64}}
// CHECK: kiln.global @b : tensor<2x2xf32> = dense<{{\[}}[0.000000e+00, 0.000000e+00], [1.000000e+01, 2.000000e+01]]>
// CHECK: kiln.global @g : tensor<2xf32> = dense<1.000000e+00> : tensor<2xf32>{{$}}
// 2:4 along the reduction axis (axis 0: down each column): column 0 keeps 3 and -5, column 1 keeps -7 and 8.
// P24: kiln.global @a : tensor<4x2xf32> = dense<{{\[}}[0.000000e+00, 0.000000e+00], [3.000000e+00, 0.000000e+00], [-5.000000e+00, -7.000000e+00], [0.000000e+00, 8.000000e+00]]> : tensor<4x2xf32> {sparsity = {axis = 0 : i64, pattern = "2:4", sparsity = 5.000000e-01 : f64}}
// A reduction axis of 2 already holds at most 2 of every 4.
// P24: kiln.global @b : tensor<2x2xf32> = dense<{{\[}}[6.000000e+00, 9.000000e+00], [1.000000e+01, 2.000000e+01]]> : tensor<2x2xf32> {sparsity = {axis = 0 : i64, pattern = "2:4", sparsity = 0.000000e+00 : f64}}
// Global: the 3 smallest of all 12 weights (0.5, 1, 1), all in @a; @b keeps everything.
// GLOBAL: kiln.global @a : tensor<4x2xf32> = dense<{{\[}}[0.000000e+00, -2.000000e+00], [3.000000e+00, 0.000000e+00], [-5.000000e+00, -7.000000e+00], [0.000000e+00, 8.000000e+00]]> : tensor<4x2xf32> {sparsity = {axis = 0 : i64, pattern = "unstructured", sparsity = 3.750000e-01 : f64}}
// GLOBAL: kiln.global @b : tensor<2x2xf32> = dense<{{\[}}[6.000000e+00, 9.000000e+00], [1.000000e+01, 2.000000e+01]]> : tensor<2x2xf32> {sparsity = {axis = 0 : i64, pattern = "unstructured", sparsity = 0.000000e+00 : f64}}
// BAD: kiln-prune: unknown pattern '3:8' (unstructured, 2:4)
// ORDER: kiln-prune: the weight is already quantized or pruned (prune first)
kiln.global @a : tensor<4x2xf32> = dense<[[1.0, -2.0], [3.0, 0.5], [-5.0, -7.0], [1.0, 8.0]]> : tensor<4x2xf32>
kiln.global @b : tensor<2x2xf32> = dense<[[6.0, 9.0], [10.0, 20.0]]> : tensor<2x2xf32>
kiln.global @g : tensor<2xf32> = dense<[1.0, 1.0]> : tensor<2xf32>
func.func @f(%x: tensor<1x1x4xf32>) -> tensor<1x1x2xf32> {
  %a = kiln.weight @a : tensor<4x2xf32>
  %b = kiln.weight @b : tensor<2x2xf32>
  %g = kiln.weight @g : tensor<2xf32>
  %h = kiln.linear %x, %a, %g : (tensor<1x1x4xf32>, tensor<4x2xf32>, tensor<2xf32>) -> tensor<1x1x2xf32>
  %y = kiln.linear %h, %b : (tensor<1x1x2xf32>, tensor<2x2xf32>) -> tensor<1x1x2xf32>
  return %y : tensor<1x1x2xf32>
}
