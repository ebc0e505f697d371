// RUN: kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-kv-cache)" | FileCheck %s
// RUN: kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-kv-cache,kiln-quantize-kv-cache{format=f32})" | FileCheck %s --check-prefix=BACK
// RUN: not kiln-opt %s --pass-pipeline="builtin.module(kiln-quantize-kv-cache{format=int3})" 2>&1 | FileCheck %s --check-prefix=BAD

// Every cache update stores int8 rows; f32 is the default and prints no attribute.
// CHECK-COUNT-2: kiln.cache_update {{.*}} {format = 1 : i32}
// BACK-NOT: format
// BAD: kiln-quantize-kv-cache: unknown format 'int3' (int8, f32)
func.func @f(%k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %u: tensor<1x2x1x4xf32>, %p: tensor<1x1xi32>) -> (tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>) {
  %k2 = kiln.cache_update %k[%p], %u : (tensor<1x2x8x4xf32>, tensor<1x2x1x4xf32>, tensor<1x1xi32>) -> tensor<1x2x8x4xf32>
  %v2 = kiln.cache_update %v[%p], %u : (tensor<1x2x8x4xf32>, tensor<1x2x1x4xf32>, tensor<1x1xi32>) -> tensor<1x2x8x4xf32>
  return %k2, %v2 : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>
}
