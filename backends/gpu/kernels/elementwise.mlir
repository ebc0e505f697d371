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

// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): Hugging Face's gelu_new.
gpu.func @gelu_tanh(%x: memref<?xf32>, %y: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %count = arith.constant {{COUNT}} : index
  %half = arith.constant 0.5 : f32
  %one = arith.constant 1.0 : f32
  %c = arith.constant 0.7978845608028654 : f32
  %k = arith.constant 0.044715 : f32
  %i = gpu.global_id x
  %in = arith.cmpi ult, %i, %count : index
  scf.if %in {
    %v = memref.load %x[%i] : memref<?xf32>
    %v2 = arith.mulf %v, %v : f32
    %v3 = arith.mulf %v2, %v : f32
    %inner = math.fma %v3, %k, %v : f32
    %t = arith.mulf %inner, %c : f32
    %th = math.tanh %t : f32
    %p = arith.addf %th, %one : f32
    %hv = arith.mulf %v, %half : f32
    %o = arith.mulf %hv, %p : f32
    memref.store %o, %y[%i] : memref<?xf32>
  }
  gpu.return
}
