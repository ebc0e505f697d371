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
