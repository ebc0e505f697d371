// Element-wise kernels over COUNT f32 values, WG threads per workgroup,
// one value per thread (grid: ceil(COUNT / WG) workgroups).

// y = a + b (the residual connection).
gpu.func @add(%a: memref<?xf32>, %b: memref<?xf32>, %y: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %count = arith.constant {{COUNT}} : index
  %i = gpu.global_id x
  %in = arith.cmpi ult, %i, %count : index
  scf.if %in {
    %va = memref.load %a[%i] : memref<?xf32>
    %vb = memref.load %b[%i] : memref<?xf32>
    %s = arith.addf %va, %vb : f32
    memref.store %s, %y[%i] : memref<?xf32>
  }
  gpu.return
}

// y = GELU(x): GELU = tanh (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), Hugging Face's
// gelu_new) or erf (0.5 x (1 + erf(x / sqrt(2))), the exact GELU).
gpu.func @gelu(%x: memref<?xf32>, %y: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %count = arith.constant {{COUNT}} : index
  %i = gpu.global_id x
  %in = arith.cmpi ult, %i, %count : index
  scf.if %in {
    %v = memref.load %x[%i] : memref<?xf32>
    {{GELU %o %v}}
    memref.store %o, %y[%i] : memref<?xf32>
  }
  gpu.return
}

// The int8 activations of W8A8 / W4A8 (a linear's `input_quant`): each row of K values replaced
// by what its int8 quantization stands for, by the reference's rule (include/kiln/Quant/Quant.h,
// quantizeActivationRow): scale = SCALE when positive (calibrated), else max|x| / 127 of the
// row; q = clamp(roundeven(x / scale), -127, 127), 0 for a zero scale; y = q * scale. The
// linear kernels then read y. Grid: rows. Template parameters: K, SCALE (0.0: dynamic), WG.
gpu.func @quantize_rows(%x: memref<?xf32>, %y: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %red = memref.alloc() : memref<{{WG}}xf32, 3>
  %c0 = arith.constant 0 : index
  %cwg = arith.constant {{WG}} : index
  %ck = arith.constant {{K}} : index
  %zero = arith.constant 0.0 : f32
  %qmax = arith.constant 127.0 : f32
  %qmin = arith.constant -127.0 : f32
  %static = arith.constant {{SCALE}} : f32
  %row = gpu.block_id x
  %tid = gpu.thread_id x
  %base = arith.muli %row, %ck : index
  %local = scf.for %k = %tid to %ck step %cwg iter_args(%a = %zero) -> f32 {
    %i = arith.addi %base, %k : index
    %v = memref.load %x[%i] : memref<?xf32>
    %av = math.absf %v : f32
    %n = arith.maximumf %a, %av : f32
    scf.yield %n : f32
  }
  memref.store %local, %red[%tid] : memref<{{WG}}xf32, 3>
  {{TREE_MAX %red}}
  %amax = memref.load %red[%c0] : memref<{{WG}}xf32, 3>
  %dynamic = arith.divf %amax, %qmax : f32
  %isstatic = arith.cmpf ogt, %static, %zero : f32
  %scale = arith.select %isstatic, %static, %dynamic : f32
  %zeroscale = arith.cmpf oeq, %scale, %zero : f32
  scf.for %k = %tid to %ck step %cwg {
    %i = arith.addi %base, %k : index
    %v = memref.load %x[%i] : memref<?xf32>
    %r0 = arith.divf %v, %scale : f32
    %r1 = math.roundeven %r0 : f32
    %r2 = arith.maximumf %r1, %qmin : f32
    %r3 = arith.minimumf %r2, %qmax : f32
    %q = arith.select %zeroscale, %zero, %r3 : f32
    %o = arith.mulf %q, %scale : f32
    memref.store %o, %y[%i] : memref<?xf32>
  }
  gpu.return
}
