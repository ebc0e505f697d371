// RUN: kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-weights{format=int8},kiln-quantize-activations)" -split-input-file | FileCheck %s
// RUN: not kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-activations)" -split-input-file 2>&1 | FileCheck %s --check-prefix=F32
// RUN: not kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-weights{format=int8},kiln-quantize-activations{mode=static})" -split-input-file 2>&1 | FileCheck %s --check-prefix=NOCAL
// RUN: not kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-weights{format=int8},kiln-quantize-activations{mode=sometimes})" -split-input-file 2>&1 | FileCheck %s --check-prefix=MODE

// Every linear gets a dynamic int8 input; the LM head keeps its f32 input.
// CHECK: kiln.linear %arg0, %{{.*}}, %{{.*}} {input_quant = 0 : i32}
// CHECK: kiln.lm_head %{{.*}}, %{{.*}} :
// F32: the weight is f32, integer inputs need int8 per-channel or int4 weights
// NOCAL: kiln-quantize-activations: needs calibration text
// MODE: unknown mode 'sometimes' (dynamic, static)
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
