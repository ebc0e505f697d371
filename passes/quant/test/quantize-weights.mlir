// RUN: kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-weights{format=int4 group-size=32})" -split-input-file | FileCheck %s
// RUN: kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-weights{format=int8 include-lm-head=true})" -split-input-file | FileCheck %s --check-prefix=HEAD
// RUN: not kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-weights{format=int3})" -split-input-file 2>&1 | FileCheck %s --check-prefix=BAD

// Linear weights get the format with the reduction axis 0; the LM head's
// embedding only with include-lm-head, along its axis 1; other weights never.
// CHECK: kiln.global @w : tensor<64x8xf32> {quant = {axis = 0 : i64, format = "int4", group_size = 32 : i64, symmetric = true}}
// CHECK: kiln.global @e : tensor<10x8xf32>{{$}}
// CHECK: kiln.global @g : tensor<8xf32>{{$}}
// HEAD: kiln.global @w : tensor<64x8xf32> {quant = {axis = 0 : i64, format = "int8", group_size = 0 : i64, symmetric = true}}
// HEAD: kiln.global @e : tensor<10x8xf32> {quant = {axis = 1 : i64, format = "int8", group_size = 0 : i64, symmetric = true}}
// HEAD: kiln.global @g : tensor<8xf32>{{$}}
// BAD: kiln-quantize-weights: unknown format 'int3'
kiln.global @w : tensor<64x8xf32>
kiln.global @e : tensor<10x8xf32>
kiln.global @g : tensor<8xf32>
func.func @f(%x: tensor<1x1x64xf32>) -> tensor<1x1x10xf32> {
  %w = kiln.weight @w : tensor<64x8xf32>
  %g = kiln.weight @g : tensor<8xf32>
  %e = kiln.weight @e : tensor<10x8xf32>
  %h = kiln.linear %x, %w, %g : (tensor<1x1x64xf32>, tensor<64x8xf32>, tensor<8xf32>) -> tensor<1x1x8xf32>
  %l = kiln.lm_head %h, %e : (tensor<1x1x8xf32>, tensor<10x8xf32>) -> tensor<1x1x10xf32>
  return %l : tensor<1x1x10xf32>
}
