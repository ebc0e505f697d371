// Every kiln op prints and parses back to the same text.
// RUN: kiln-opt %s | kiln-opt | FileCheck %s

// CHECK-LABEL: kiln.global @w : tensor<4x12xf32>
kiln.global @w : tensor<4x12xf32>
// CHECK: kiln.global @b : tensor<12xf16>
kiln.global @b : tensor<12xf16>
// CHECK: kiln.global @g : tensor<4xbf16> = dense<1.000000e+00> : tensor<4xbf16>
kiln.global @g : tensor<4xbf16> = dense<1.0> : tensor<4xbf16>
kiln.global @e : tensor<10x4xf32>

// CHECK-LABEL: func.func @block
func.func @block(%ids: tensor<1x2xi32>, %pos: tensor<1x2xi32>, %kc: tensor<1x2x8x2xf32>, %vc: tensor<1x2x8x2xf32>)
    -> (tensor<1x1x10xf32>, tensor<1x2x8x2xf32>) {
  // CHECK: kiln.weight @e : tensor<10x4xf32>
  %e = kiln.weight @e : tensor<10x4xf32>
  // CHECK: kiln.embedding %{{.*}}[%{{.*}}] : (tensor<10x4xf32>, tensor<1x2xi32>) -> tensor<1x2x4xf32>
  %x = kiln.embedding %e[%ids] : (tensor<10x4xf32>, tensor<1x2xi32>) -> tensor<1x2x4xf32>
  %g = kiln.weight @g : tensor<4xbf16>
  // CHECK: kiln.layer_norm {{.*}} {epsilon = 1.000000e-05 : f64}
  %h = kiln.layer_norm %x, %g, %g {epsilon = 1.0e-5 : f64} : (tensor<1x2x4xf32>, tensor<4xbf16>, tensor<4xbf16>) -> tensor<1x2x4xf32>
  %w = kiln.weight @w : tensor<4x12xf32>
  %b = kiln.weight @b : tensor<12xf16>
  // CHECK: kiln.linear {{.*}} : (tensor<1x2x4xf32>, tensor<4x12xf32>, tensor<12xf16>) -> tensor<1x2x12xf32>
  %qkv = kiln.linear %h, %w, %b : (tensor<1x2x4xf32>, tensor<4x12xf32>, tensor<12xf16>) -> tensor<1x2x12xf32>
  // CHECK: kiln.split {{.*}} : tensor<1x2x12xf32> -> tensor<1x2x4xf32>, tensor<1x2x4xf32>, tensor<1x2x4xf32>
  %q, %k, %v = kiln.split %qkv : tensor<1x2x12xf32> -> tensor<1x2x4xf32>, tensor<1x2x4xf32>, tensor<1x2x4xf32>
  // CHECK: kiln.split_heads {{.*}} : tensor<1x2x4xf32> -> tensor<1x2x2x2xf32>
  %qh = kiln.split_heads %q : tensor<1x2x4xf32> -> tensor<1x2x2x2xf32>
  %kh = kiln.split_heads %k : tensor<1x2x4xf32> -> tensor<1x2x2x2xf32>
  %vh = kiln.split_heads %v : tensor<1x2x4xf32> -> tensor<1x2x2x2xf32>
  // CHECK: kiln.cache_update %{{.*}}[%{{.*}}], %{{.*}} :
  %kc2 = kiln.cache_update %kc[%pos], %kh : (tensor<1x2x8x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2xi32>) -> tensor<1x2x8x2xf32>
  %vc2 = kiln.cache_update %vc[%pos], %vh : (tensor<1x2x8x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2xi32>) -> tensor<1x2x8x2xf32>
  // CHECK: kiln.matmul {{.*}} {transpose_rhs}
  %s = kiln.matmul %qh, %kc2 {transpose_rhs} : (tensor<1x2x2x2xf32>, tensor<1x2x8x2xf32>) -> tensor<1x2x2x8xf32>
  // CHECK: kiln.scale {{.*}}, 0.70710678118654746 : tensor<1x2x2x8xf32>
  %s2 = kiln.scale %s, 0.70710678118654746 : tensor<1x2x2x8xf32>
  // CHECK: kiln.causal_mask
  %m = kiln.causal_mask %s2, %pos : (tensor<1x2x2x8xf32>, tensor<1x2xi32>) -> tensor<1x2x2x8xf32>
  // CHECK: kiln.softmax
  %p = kiln.softmax %m : tensor<1x2x2x8xf32>
  %o = kiln.matmul %p, %vc2 : (tensor<1x2x2x8xf32>, tensor<1x2x8x2xf32>) -> tensor<1x2x2x2xf32>
  // CHECK: kiln.attention {{.*}} {scale = 0.70710678118654746 : f64}
  %f = kiln.attention %qh, %kc2, %vc2, %pos {scale = 0.70710678118654746 : f64} : (tensor<1x2x2x2xf32>, tensor<1x2x8x2xf32>, tensor<1x2x8x2xf32>, tensor<1x2xi32>) -> tensor<1x2x2x2xf32>
  // CHECK: kiln.merge_heads
  %mh = kiln.merge_heads %o : tensor<1x2x2x2xf32> -> tensor<1x2x4xf32>
  // CHECK: kiln.gelu {{.*}} : tensor<1x2x4xf32>
  %ge = kiln.gelu %mh : tensor<1x2x4xf32>
  // CHECK: kiln.gelu {{.*}} {approximation = 1 : i32}
  %ge2 = kiln.gelu %ge {approximation = 1 : i32} : tensor<1x2x4xf32>
  // CHECK: kiln.add
  %r = kiln.add %x, %ge2 : tensor<1x2x4xf32>
  // CHECK: kiln.select_last
  %last = kiln.select_last %r, %pos : (tensor<1x2x4xf32>, tensor<1x2xi32>) -> tensor<1x1x4xf32>
  // CHECK: kiln.lm_head {{.*}} : (tensor<1x1x4xf32>, tensor<10x4xf32>) -> tensor<1x1x10xf32>
  %logits = kiln.lm_head %last, %e : (tensor<1x1x4xf32>, tensor<10x4xf32>) -> tensor<1x1x10xf32>
  return %logits, %kc2 : tensor<1x1x10xf32>, tensor<1x2x8x2xf32>
}
