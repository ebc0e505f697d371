// Each verifier rejects the malformed op with a message naming the problem.
// RUN: kiln-opt %s -split-input-file -verify-diagnostics

kiln.global @w : tensor<4x12xf32>
func.func @f() -> tensor<4x8xf32> {
  // expected-error @+1 {{type 'tensor<4x8xf32>' does not match weight @w of type 'tensor<4x12xf32>'}}
  %w = kiln.weight @w : tensor<4x8xf32>
  return %w : tensor<4x8xf32>
}

// -----

func.func @f() -> tensor<4xf32> {
  // expected-error @+1 {{refers to unknown weight @missing}}
  %w = kiln.weight @missing : tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

// expected-error @+1 {{value type 'tensor<2xf32>' does not match 'tensor<3xf32>'}}
kiln.global @v : tensor<3xf32> = dense<1.0> : tensor<2xf32>

// -----

func.func @f(%x: tensor<1x2x5xf32>, %w: tensor<4x12xf32>) -> tensor<1x2x12xf32> {
  // expected-error @+1 {{input [1x2x5] does not match weight [in, out] [4x12]}}
  %y = kiln.linear %x, %w : (tensor<1x2x5xf32>, tensor<4x12xf32>) -> tensor<1x2x12xf32>
  return %y : tensor<1x2x12xf32>
}

// -----

func.func @f(%x: tensor<1x2x4xf32>, %w: tensor<4x12xf32>, %b: tensor<8xf32>) -> tensor<1x2x12xf32> {
  // expected-error @+1 {{bias must be [12], got [8]}}
  %y = kiln.linear %x, %w, %b : (tensor<1x2x4xf32>, tensor<4x12xf32>, tensor<8xf32>) -> tensor<1x2x12xf32>
  return %y : tensor<1x2x12xf32>
}

// -----

func.func @f(%x: tensor<1x2x4xf32>, %w: tensor<4x12xf32>) -> tensor<1x2x12xf32> {
  // expected-error @+1 {{static input quantization needs an input_scale}}
  %y = kiln.linear %x, %w {input_quant = 1 : i32} : (tensor<1x2x4xf32>, tensor<4x12xf32>) -> tensor<1x2x12xf32>
  return %y : tensor<1x2x12xf32>
}

// -----

func.func @f(%x: tensor<1x2x4xf32>, %w: tensor<4x12xf32>) -> tensor<1x2x12xf32> {
  // expected-error @+1 {{input_scale must be > 0}}
  %y = kiln.linear %x, %w {input_quant = 1 : i32, input_scale = -1.0 : f32} : (tensor<1x2x4xf32>, tensor<4x12xf32>) -> tensor<1x2x12xf32>
  return %y : tensor<1x2x12xf32>
}

// -----

func.func @f(%x: tensor<1x2x4xf32>, %w: tensor<4x12xf32>) -> tensor<1x2x12xf32> {
  // expected-error @+1 {{input_scale is only meaningful with input_quant = static}}
  %y = kiln.linear %x, %w {input_scale = 1.0 : f32} : (tensor<1x2x4xf32>, tensor<4x12xf32>) -> tensor<1x2x12xf32>
  return %y : tensor<1x2x12xf32>
}

// -----

func.func @f(%x: tensor<1x2x4xf32>, %g: tensor<5xf32>) -> tensor<1x2x4xf32> {
  // expected-error @+1 {{gamma and beta must be [4], got [5]}}
  %y = kiln.layer_norm %x, %g, %g {epsilon = 1.0e-5 : f64} : (tensor<1x2x4xf32>, tensor<5xf32>, tensor<5xf32>) -> tensor<1x2x4xf32>
  return %y : tensor<1x2x4xf32>
}

// -----

func.func @f(%x: tensor<1x2x4xf32>, %g: tensor<4xf32>) -> tensor<1x2x4xf32> {
  // expected-error @+1 {{epsilon must be positive}}
  %y = kiln.layer_norm %x, %g, %g {epsilon = 0.0 : f64} : (tensor<1x2x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x2x4xf32>
  return %y : tensor<1x2x4xf32>
}

// -----

func.func @f(%x: tensor<1x2x10xf32>) -> (tensor<1x2x3xf32>, tensor<1x2x3xf32>, tensor<1x2x3xf32>) {
  // expected-error @+1 {{cannot split last axis of [1x2x10] into 3 parts}}
  %a, %b, %c = kiln.split %x : tensor<1x2x10xf32> -> tensor<1x2x3xf32>, tensor<1x2x3xf32>, tensor<1x2x3xf32>
  return %a, %b, %c : tensor<1x2x3xf32>, tensor<1x2x3xf32>, tensor<1x2x3xf32>
}

// -----

func.func @f(%x: tensor<1x2x12xf32>) -> tensor<1x5x2x2xf32> {
  // expected-error @+1 {{cannot split [1x2x12] into heads [1x5x2x2]}}
  %y = kiln.split_heads %x : tensor<1x2x12xf32> -> tensor<1x5x2x2xf32>
  return %y : tensor<1x5x2x2xf32>
}

// -----

func.func @f(%c: tensor<1x2x8x2xf32>, %u: tensor<1x2x3x2xf32>, %p: tensor<1x2xi32>) -> tensor<1x2x8x2xf32> {
  // expected-error @+1 {{position_ids must be [1x3], got [1x2]}}
  %y = kiln.cache_update %c[%p], %u : (tensor<1x2x8x2xf32>, tensor<1x2x3x2xf32>, tensor<1x2xi32>) -> tensor<1x2x8x2xf32>
  return %y : tensor<1x2x8x2xf32>
}

// -----

func.func @f(%c: tensor<1x2x2x2xf32>, %u: tensor<1x2x3x2xf32>, %p: tensor<1x3xi32>) -> tensor<1x2x2x2xf32> {
  // expected-error @+1 {{update [1x2x3x2] does not fit cache [1x2x2x2]}}
  %y = kiln.cache_update %c[%p], %u : (tensor<1x2x2x2xf32>, tensor<1x2x3x2xf32>, tensor<1x3xi32>) -> tensor<1x2x2x2xf32>
  return %y : tensor<1x2x2x2xf32>
}

// -----

func.func @f(%a: tensor<2x3x4xf32>, %b: tensor<2x5x4xf32>) -> tensor<2x3x5xf32> {
  // expected-error @+1 {{contraction sizes differ: 4 vs 5}}
  %y = kiln.matmul %a, %b : (tensor<2x3x4xf32>, tensor<2x5x4xf32>) -> tensor<2x3x5xf32>
  return %y : tensor<2x3x5xf32>
}

// -----

func.func @f(%a: tensor<2x3x4xf32>, %b: tensor<3x5x4xf32>) -> tensor<2x3x5xf32> {
  // expected-error @+1 {{batch dimensions differ}}
  %y = kiln.matmul %a, %b {transpose_rhs} : (tensor<2x3x4xf32>, tensor<3x5x4xf32>) -> tensor<2x3x5xf32>
  return %y : tensor<2x3x5xf32>
}

// -----

func.func @f(%q: tensor<1x2x3x4xf32>, %k: tensor<1x2x8x5xf32>, %p: tensor<1x3xi32>) -> tensor<1x2x3x4xf32> {
  // expected-error @+1 {{do not match}}
  %y = kiln.attention %q, %k, %k, %p {scale = 1.0 : f64} : (tensor<1x2x3x4xf32>, tensor<1x2x8x5xf32>, tensor<1x2x8x5xf32>, tensor<1x3xi32>) -> tensor<1x2x3x4xf32>
  return %y : tensor<1x2x3x4xf32>
}

// -----

func.func @f(%x: tensor<1x3x4xf32>, %e: tensor<10x5xf32>) -> tensor<1x3x10xf32> {
  // expected-error @+1 {{input [1x3x4] does not match embedding [vocab, dim] [10x5]}}
  %y = kiln.lm_head %x, %e : (tensor<1x3x4xf32>, tensor<10x5xf32>) -> tensor<1x3x10xf32>
  return %y : tensor<1x3x10xf32>
}

// -----

func.func @f(%x: tensor<1x3x4xf32>, %p: tensor<1x3xi32>) -> tensor<1x2x4xf32> {
  // expected-error @+1 {{result must be [1x1x4], got [1x2x4]}}
  %y = kiln.select_last %x, %p : (tensor<1x3x4xf32>, tensor<1x3xi32>) -> tensor<1x2x4xf32>
  return %y : tensor<1x2x4xf32>
}

// -----

func.func @f(%t: tensor<10x4xf32>, %ids: tensor<1x?xi32>) -> tensor<1x3x4xf32> {
  // expected-error @+1 {{requires statically shaped tensors}}
  %y = kiln.embedding %t[%ids] : (tensor<10x4xf32>, tensor<1x?xi32>) -> tensor<1x3x4xf32>
  return %y : tensor<1x3x4xf32>
}

// -----

func.func @f(%x: tensor<1x3x4xi32>) -> tensor<1x3x4xi32> {
  // expected-error @+1 {{must be ranked tensor of 32-bit float or 64-bit float values}}
  %y = kiln.softmax %x : tensor<1x3x4xi32>
  return %y : tensor<1x3x4xi32>
}

// -----

// expected-error @+1 {{unknown quant format 'int3'}}
kiln.global @q : tensor<4x4xf32> {quant = {axis = 0 : i64, format = "int3", group_size = 0 : i64, symmetric = true}}

// -----

// expected-error @+1 {{int8 is symmetric only}}
kiln.global @q : tensor<4x4xf32> {quant = {axis = 0 : i64, format = "int8", group_size = 0 : i64, symmetric = false}}

// -----

// expected-error @+1 {{quant must be {format, group_size, symmetric, axis}}}
kiln.global @q : tensor<4x4xf32> {quant = {format = "int8"}}

// -----

// expected-error @+1 {{only 2-D weights are quantized}}
kiln.global @q : tensor<4xf32> {quant = {axis = 0 : i64, format = "int8", group_size = 0 : i64, symmetric = true}}
