// y[m, n] = sum_k x[m, k] w[k, n] + b[n] (and GELU of it for linear_gelu: GELU = tanh or erf), the weight in
// Hugging Face's Conv1D layout [K, N]: thread n of a row reads w[k, n] for every k, so a
// workgroup's reads of one weight row are contiguous. The weight is in any storage format
// (the WARGS / WLOAD macros: f32, f16 / bf16 or int8 / int4 packed in 32-bit words), decoded in
// registers. Grid: (ceil(N / WG), M).
// Template parameters: K, N, WG, GELU (linear_gelu) and the weight's W_FORMAT, W_COLS / W_WORDS, W_GROUPS,
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
    {{GELU %o %v}}
    %yrow = arith.muli %m, %cn : index
    %yi = arith.addi %yrow, %n : index
    memref.store %o, %y[%yi] : memref<?xf32>
  }
  gpu.return
}

// The prefill form of @linear / @linear_gelu (GELU = none, tanh or erf): each thread computes four
// rows of its column, so a weight element read once serves four rows. The row values are the
// same for every thread of a workgroup (one broadcast load each). Per output, the products are
// summed in the order @linear sums them, so prefill and decode agree bit for bit.
// Grid: (ceil(N / WG), ceil(M / 4)). Template parameters: K, N, M, GELU, WG and the weight's W_*.
gpu.func @linear_rows4(%x: memref<?xf32>, {{WARGS}}, %b: memref<?xf32>, %y: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %cn = arith.constant {{N}} : index
  %ck = arith.constant {{K}} : index
  %cm = arith.constant {{M}} : index
  %last = arith.constant {{M}} : index
  %zero = arith.constant 0.0 : f32
  %n = gpu.global_id x
  %tile = gpu.block_id y
  %m0 = arith.muli %tile, %c4 : index
  %mlast = arith.subi %last, %c1 : index
  // Rows past M read the last row (and store nothing).
  %m1r = arith.addi %m0, %c1 : index
  %m2r = arith.addi %m0, %c2 : index
  %m3r = arith.addi %m0, %c3 : index
  %m1 = arith.minui %m1r, %mlast : index
  %m2 = arith.minui %m2r, %mlast : index
  %m3 = arith.minui %m3r, %mlast : index
  %in = arith.cmpi ult, %n, %cn : index
  scf.if %in {
    %x0 = arith.muli %m0, %ck : index
    %x1 = arith.muli %m1, %ck : index
    %x2 = arith.muli %m2, %ck : index
    %x3 = arith.muli %m3, %ck : index
    %acc:4 = scf.for %k = %c0 to %ck step %c1 iter_args(%a0 = %zero, %a1 = %zero, %a2 = %zero, %a3 = %zero)
        -> (f32, f32, f32, f32) {
      {{WLOAD %wv %k %n}}
      %i0 = arith.addi %x0, %k : index
      %i1 = arith.addi %x1, %k : index
      %i2 = arith.addi %x2, %k : index
      %i3 = arith.addi %x3, %k : index
      %v0 = memref.load %x[%i0] : memref<?xf32>
      %v1 = memref.load %x[%i1] : memref<?xf32>
      %v2 = memref.load %x[%i2] : memref<?xf32>
      %v3 = memref.load %x[%i3] : memref<?xf32>
      %r0 = math.fma %v0, %wv, %a0 : f32
      %r1 = math.fma %v1, %wv, %a1 : f32
      %r2 = math.fma %v2, %wv, %a2 : f32
      %r3 = math.fma %v3, %wv, %a3 : f32
      scf.yield %r0, %r1, %r2, %r3 : f32, f32, f32, f32
    }
    %bv = memref.load %b[%n] : memref<?xf32>
    scf.for %r = %c0 to %c4 step %c1 {
      %m = arith.addi %m0, %r : index
      %valid = arith.cmpi ult, %m, %cm : index
      scf.if %valid {
        %is1 = arith.cmpi eq, %r, %c1 : index
        %is2 = arith.cmpi eq, %r, %c2 : index
        %is3 = arith.cmpi eq, %r, %c3 : index
        %s01 = arith.select %is1, %acc#1, %acc#0 : f32
        %s012 = arith.select %is2, %acc#2, %s01 : f32
        %sum = arith.select %is3, %acc#3, %s012 : f32
        %v = arith.addf %sum, %bv : f32
        {{GELU %o %v}}
        %yrow = arith.muli %m, %cn : index
        %yi = arith.addi %yrow, %n : index
        memref.store %o, %y[%yi] : memref<?xf32>
      }
    }
  }
  gpu.return
}
