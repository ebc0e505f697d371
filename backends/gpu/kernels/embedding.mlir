// Row gathers: the token and position embeddings, and kiln.select_last.

// out[s, d] = table[ids[s] - ROW0, d] for the slots whose id lies in this table chunk's rows
// [ROW0, ROW0 + ROWS): a table larger than the device's largest storage buffer is split into
// chunks, one dispatch each, and every id lies in exactly one. A padding slot (id < 0) gets
// zeros from the chunk with FIRST = true. Grid: (ceil(E / WG), S).
// Template parameters: E, ROW0, ROWS, FIRST (true or false), WG and the table's W_* (see
// linear.mlir; rows relative to the chunk).
gpu.func @embedding(%ids: memref<?xi32>, {{WARGS}}, %out: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %ce = arith.constant {{E}} : index
  %row0 = arith.constant {{ROW0}} : i32
  %rows = arith.constant {{ROWS}} : i32
  %first = arith.constant {{FIRST}}
  %c0_i32 = arith.constant 0 : i32
  %zero = arith.constant 0.0 : f32
  %d = gpu.global_id x
  %s = gpu.block_id y
  %id = memref.load %ids[%s] : memref<?xi32>
  %rel = arith.subi %id, %row0 : i32
  %lo = arith.cmpi sge, %rel, %c0_i32 : i32
  %hi = arith.cmpi slt, %rel, %rows : i32
  %mine = arith.andi %lo, %hi : i1
  %pad0 = arith.cmpi slt, %id, %c0_i32 : i32
  %pad = arith.andi %pad0, %first : i1
  %inrange = arith.cmpi ult, %d, %ce : index
  %oi0 = arith.muli %s, %ce : index
  %oi = arith.addi %oi0, %d : index
  %write = arith.andi %inrange, %mine : i1
  scf.if %write {
    %row = arith.index_cast %rel : i32 to index
    {{WLOAD %v %row %d}}
    memref.store %v, %out[%oi] : memref<?xf32>
  }
  %zerofill = arith.andi %inrange, %pad : i1
  scf.if %zerofill {
    memref.store %zero, %out[%oi] : memref<?xf32>
  }
  gpu.return
}

// kiln.select_last: out[e] = x[best * XS + e], best the first of the S slots with the largest
// position id (the row whose logits the step returns). Grid: ceil(E / WG).
// Template parameters: S, E, XS, WG.
gpu.func @select_last(%x: memref<?xf32>, %positions: memref<?xi32>, %out: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cs = arith.constant {{S}} : index
  %ce = arith.constant {{E}} : index
  %xs = arith.constant {{XS}} : index
  %e = gpu.global_id x
  %p0 = memref.load %positions[%c0] : memref<?xi32>
  %best:2 = scf.for %s = %c1 to %cs step %c1 iter_args(%b = %c0, %bp = %p0) -> (index, i32) {
    %p = memref.load %positions[%s] : memref<?xi32>
    %better = arith.cmpi sgt, %p, %bp : i32
    %nb = arith.select %better, %s, %b : index
    %np = arith.select %better, %p, %bp : i32
    scf.yield %nb, %np : index, i32
  }
  %in = arith.cmpi ult, %e, %ce : index
  scf.if %in {
    %xi0 = arith.muli %best#0, %xs : index
    %xi = arith.addi %xi0, %e : index
    %v = memref.load %x[%xi] : memref<?xf32>
    memref.store %v, %out[%e] : memref<?xf32>
  }
  gpu.return
}
