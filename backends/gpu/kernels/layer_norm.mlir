// Layer norm of [rows, N] f32 rows, one workgroup of WG threads per row:
// y = (x - mean) / sqrt(var + EPS) * gamma + beta with the biased variance,
// the reference interpreter's formula. Sums are tree reductions in
// workgroup memory (portable: no subgroup shuffles needed).
// Template parameters: WG (a power of two), N, EPS; TREE(buf) expands to the
// reduction of buf[0..WG) into buf[0].
gpu.func @layer_norm(%x: memref<?xf32>, %gamma: memref<?xf32>, %beta: memref<?xf32>, %y: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %red = memref.alloc() : memref<{{WG}}xf32, 3>
  %c0 = arith.constant 0 : index
  %cwg = arith.constant {{WG}} : index
  %n = arith.constant {{N}} : index
  %nf = arith.constant {{N}}.0 : f32
  %eps = arith.constant {{EPS}} : f32
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  %row = gpu.block_id x
  %tid = gpu.thread_id x
  %base = arith.muli %row, %n : index
  %sum = scf.for %k = %tid to %n step %cwg iter_args(%acc = %zero) -> f32 {
    %i = arith.addi %base, %k : index
    %v = memref.load %x[%i] : memref<?xf32>
    %a = arith.addf %acc, %v : f32
    scf.yield %a : f32
  }
  memref.store %sum, %red[%tid] : memref<{{WG}}xf32, 3>
  {{TREE %red}}
  %total = memref.load %red[%c0] : memref<{{WG}}xf32, 3>
  %mean = arith.divf %total, %nf : f32
  gpu.barrier
  %sq = scf.for %k = %tid to %n step %cwg iter_args(%acc = %zero) -> f32 {
    %i = arith.addi %base, %k : index
    %v = memref.load %x[%i] : memref<?xf32>
    %d = arith.subf %v, %mean : f32
    %a = math.fma %d, %d, %acc : f32
    scf.yield %a : f32
  }
  memref.store %sq, %red[%tid] : memref<{{WG}}xf32, 3>
  {{TREE %red}}
  %sqtotal = memref.load %red[%c0] : memref<{{WG}}xf32, 3>
  %var = arith.divf %sqtotal, %nf : f32
  %ve = arith.addf %var, %eps : f32
  %rstd = math.rsqrt %ve : f32
  scf.for %k = %tid to %n step %cwg {
    %i = arith.addi %base, %k : index
    %v = memref.load %x[%i] : memref<?xf32>
    %d = arith.subf %v, %mean : f32
    %g = memref.load %gamma[%k] : memref<?xf32>
    %b = memref.load %beta[%k] : memref<?xf32>
    %dn = arith.mulf %d, %rstd : f32
    %o = math.fma %dn, %g, %b : f32
    memref.store %o, %y[%i] : memref<?xf32>
  }
  gpu.return
}

// kiln.residual_layer_norm: sum = x + r (stored, the next block's residual), then the layer norm
// of sum, as @layer_norm computes it. Each thread reads back only the sums it stored, so the
// reductions' barriers are the only ones needed. Grid: rows.
// Template parameters: WG, N, EPS.
gpu.func @residual_layer_norm(%x: memref<?xf32>, %r: memref<?xf32>, %gamma: memref<?xf32>, %beta: memref<?xf32>,
                              %s: memref<?xf32>, %y: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %red = memref.alloc() : memref<{{WG}}xf32, 3>
  %c0 = arith.constant 0 : index
  %cwg = arith.constant {{WG}} : index
  %n = arith.constant {{N}} : index
  %nf = arith.constant {{N}}.0 : f32
  %eps = arith.constant {{EPS}} : f32
  %zero = arith.constant 0.0 : f32
  %row = gpu.block_id x
  %tid = gpu.thread_id x
  %base = arith.muli %row, %n : index
  %sum = scf.for %k = %tid to %n step %cwg iter_args(%acc = %zero) -> f32 {
    %i = arith.addi %base, %k : index
    %xv = memref.load %x[%i] : memref<?xf32>
    %rv = memref.load %r[%i] : memref<?xf32>
    %v = arith.addf %xv, %rv : f32
    memref.store %v, %s[%i] : memref<?xf32>
    %a = arith.addf %acc, %v : f32
    scf.yield %a : f32
  }
  memref.store %sum, %red[%tid] : memref<{{WG}}xf32, 3>
  {{TREE %red}}
  %total = memref.load %red[%c0] : memref<{{WG}}xf32, 3>
  %mean = arith.divf %total, %nf : f32
  gpu.barrier
  %sq = scf.for %k = %tid to %n step %cwg iter_args(%acc = %zero) -> f32 {
    %i = arith.addi %base, %k : index
    %v = memref.load %s[%i] : memref<?xf32>
    %d = arith.subf %v, %mean : f32
    %a = math.fma %d, %d, %acc : f32
    scf.yield %a : f32
  }
  memref.store %sq, %red[%tid] : memref<{{WG}}xf32, 3>
  {{TREE %red}}
  %sqtotal = memref.load %red[%c0] : memref<{{WG}}xf32, 3>
  %var = arith.divf %sqtotal, %nf : f32
  %ve = arith.addf %var, %eps : f32
  %rstd = math.rsqrt %ve : f32
  scf.for %k = %tid to %n step %cwg {
    %i = arith.addi %base, %k : index
    %v = memref.load %s[%i] : memref<?xf32>
    %d = arith.subf %v, %mean : f32
    %g = memref.load %gamma[%k] : memref<?xf32>
    %b = memref.load %beta[%k] : memref<?xf32>
    %dn = arith.mulf %d, %rstd : f32
    %o = math.fma %dn, %g, %b : f32
    memref.store %o, %y[%i] : memref<?xf32>
  }
  gpu.return
}
