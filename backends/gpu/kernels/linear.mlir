// y[m, n] = sum_k x[m, k] w[k, n] + b[n] (and GELU of it for linear_gelu), the weight in
// Hugging Face's Conv1D layout [K, N]: thread n of a row reads w[k, n] for every k, so a
// workgroup's reads of one weight row are contiguous. The weight is in any storage format
// (the WARGS / WLOAD macros: f32, f16 / bf16 or int8 / int4 packed in 32-bit words), decoded in
// registers. Grid: (ceil(N / WG), M).
// Template parameters: K, N, WG and the weight's W_FORMAT, W_COLS / W_WORDS, W_GROUPS,
// W_GROUP, W_AXIS, W_SIGNED.
gpu.func @linear(%x: memref<?xf32>, {{WARGS}}, %b: memref<?xf32>, %y: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cn = arith.constant {{N}} : index
  %ck = arith.constant {{K}} : index
  %zero = arith.constant 0.0 : f32
  %n = gpu.global_id x
  %m = gpu.block_id y
  %in = arith.cmpi ult, %n, %cn : index
  scf.if %in {
    %xbase = arith.muli %m, %ck : index
    %acc = scf.for %k = %c0 to %ck step %c1 iter_args(%a = %zero) -> f32 {
      %xi = arith.addi %xbase, %k : index
      %xv = memref.load %x[%xi] : memref<?xf32>
      {{WLOAD %wv %k %n}}
      %r = math.fma %xv, %wv, %a : f32
      scf.yield %r : f32
    }
    %bv = memref.load %b[%n] : memref<?xf32>
    %s = arith.addf %acc, %bv : f32
    %yrow = arith.muli %m, %cn : index
    %yi = arith.addi %yrow, %n : index
    memref.store %s, %y[%yi] : memref<?xf32>
  }
  gpu.return
}

gpu.func @linear_gelu(%x: memref<?xf32>, {{WARGS}}, %b: memref<?xf32>, %y: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cn = arith.constant {{N}} : index
  %ck = arith.constant {{K}} : index
  %zero = arith.constant 0.0 : f32
  %half = arith.constant 0.5 : f32
  %one = arith.constant 1.0 : f32
  %c = arith.constant 0.7978845608028654 : f32
  %kk = arith.constant 0.044715 : f32
  %n = gpu.global_id x
  %m = gpu.block_id y
  %in = arith.cmpi ult, %n, %cn : index
  scf.if %in {
    %xbase = arith.muli %m, %ck : index
    %acc = scf.for %k = %c0 to %ck step %c1 iter_args(%a = %zero) -> f32 {
      %xi = arith.addi %xbase, %k : index
      %xv = memref.load %x[%xi] : memref<?xf32>
      {{WLOAD %wv %k %n}}
      %r = math.fma %xv, %wv, %a : f32
      scf.yield %r : f32
    }
    %bv = memref.load %b[%n] : memref<?xf32>
    %v = arith.addf %acc, %bv : f32
    %v2 = arith.mulf %v, %v : f32
    %v3 = arith.mulf %v2, %v : f32
    %inner = math.fma %v3, %kk, %v : f32
    %t = arith.mulf %inner, %c : f32
    %th = math.tanh %t : f32
    %p = arith.addf %th, %one : f32
    %hv = arith.mulf %v, %half : f32
    %o = arith.mulf %hv, %p : f32
    %yrow = arith.muli %m, %cn : index
    %yi = arith.addi %yrow, %n : index
    memref.store %o, %y[%yi] : memref<?xf32>
  }
  gpu.return
}
