// The LM head and greedy argmax on the device, so a decode step reads back one id.

// logits[V0 + v] = sum_k x[k] table[v, k] for the last row's hidden state x and the V rows of
// the [vocab, E] table from row V0 (the whole table, or one chunk of a table larger than the
// device's largest storage buffer), in any weight storage format (WLOAD). Grid: ceil(V / WG).
// Template parameters: V, V0, E, WG and the table's W_* (see linear.mlir).
gpu.func @lm_head(%x: memref<?xf32>, {{WARGS}}, %logits: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cv = arith.constant {{V}} : index
  %ce = arith.constant {{E}} : index
  %zero = arith.constant 0.0 : f32
  %v = gpu.global_id x
  %in = arith.cmpi ult, %v, %cv : index
  scf.if %in {
    %dot = scf.for %k = %c0 to %ce step %c1 iter_args(%a = %zero) -> f32 {
      %xv = memref.load %x[%k] : memref<?xf32>
      {{WLOAD %tv %v %k}}
      %r = math.fma %xv, %tv, %a : f32
      scf.yield %r : f32
    }
    %v0 = arith.constant {{V0}} : index
    %li = arith.addi %v, %v0 : index
    memref.store %dot, %logits[%li] : memref<?xf32>
  }
  gpu.return
}

// Stage 1 of argmax over V logits: workgroup b reduces [b * CHUNK, (b + 1) * CHUNK) to its
// largest value and that value's lowest index. Grid: ceil(V / CHUNK).
// Template parameters: V, CHUNK, WG, LOG2WG.
gpu.func @argmax_partial(%logits: memref<?xf32>, %bestv: memref<?xf32>, %besti: memref<?xi32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %vals = memref.alloc() : memref<{{WG}}xf32, 3>
  %idxs = memref.alloc() : memref<{{WG}}xi32, 3>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cwg = arith.constant {{WG}} : index
  %cv = arith.constant {{V}} : index
  %chunk = arith.constant {{CHUNK}} : index
  %ninf = arith.constant 0xFF800000 : f32
  %big = arith.constant 2147483647 : i32
  %b = gpu.block_id x
  %tid = gpu.thread_id x
  %start = arith.muli %b, %chunk : index
  %end0 = arith.addi %start, %chunk : index
  %end = arith.minui %end0, %cv : index
  %first = arith.addi %start, %tid : index
  %best:2 = scf.for %i = %first to %end step %cwg iter_args(%bv = %ninf, %bi = %big) -> (f32, i32) {
    %x = memref.load %logits[%i] : memref<?xf32>
    %i32 = arith.index_cast %i : index to i32
    %gt = arith.cmpf ogt, %x, %bv : f32
    %nv = arith.select %gt, %x, %bv : f32
    %ni = arith.select %gt, %i32, %bi : i32
    scf.yield %nv, %ni : f32, i32
  }
  memref.store %best#0, %vals[%tid] : memref<{{WG}}xf32, 3>
  memref.store %best#1, %idxs[%tid] : memref<{{WG}}xi32, 3>
  {{ARGMAX_TREE}}
  %zero_tid = arith.cmpi eq, %tid, %c0 : index
  scf.if %zero_tid {
    %v0 = memref.load %vals[%c0] : memref<{{WG}}xf32, 3>
    %i0 = memref.load %idxs[%c0] : memref<{{WG}}xi32, 3>
    memref.store %v0, %bestv[%b] : memref<?xf32>
    memref.store %i0, %besti[%b] : memref<?xi32>
  }
  gpu.return
}

// Stage 2: one workgroup reduces the PARTS partial results to the id in result[0].
// Template parameters: PARTS, WG, LOG2WG.
gpu.func @argmax_final(%bestv: memref<?xf32>, %besti: memref<?xi32>, %result: memref<?xi32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %vals = memref.alloc() : memref<{{WG}}xf32, 3>
  %idxs = memref.alloc() : memref<{{WG}}xi32, 3>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cwg = arith.constant {{WG}} : index
  %parts = arith.constant {{PARTS}} : index
  %ninf = arith.constant 0xFF800000 : f32
  %big = arith.constant 2147483647 : i32
  %tid = gpu.thread_id x
  %best:2 = scf.for %i = %tid to %parts step %cwg iter_args(%bv = %ninf, %bi = %big) -> (f32, i32) {
    %x = memref.load %bestv[%i] : memref<?xf32>
    %xi = memref.load %besti[%i] : memref<?xi32>
    %gt = arith.cmpf ogt, %x, %bv : f32
    %eq = arith.cmpf oeq, %x, %bv : f32
    %lower = arith.cmpi slt, %xi, %bi : i32
    %tie = arith.andi %eq, %lower : i1
    %take = arith.ori %gt, %tie : i1
    %nv = arith.select %take, %x, %bv : f32
    %ni = arith.select %take, %xi, %bi : i32
    scf.yield %nv, %ni : f32, i32
  }
  memref.store %best#0, %vals[%tid] : memref<{{WG}}xf32, 3>
  memref.store %best#1, %idxs[%tid] : memref<{{WG}}xi32, 3>
  {{ARGMAX_TREE}}
  %zero_tid = arith.cmpi eq, %tid, %c0 : index
  scf.if %zero_tid {
    %i0 = memref.load %idxs[%c0] : memref<{{WG}}xi32, 3>
    memref.store %i0, %result[%c0] : memref<?xi32>
  }
  gpu.return
}
