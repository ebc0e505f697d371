// Causal attention of S query rows over a KV cache, one workgroup per (query row, head):
// grid (S, H). Queries are read where the QKV linear wrote them (row s, columns
// Q_OFFSET + h * D + d, rows Q_STRIDE apart), caches are [H, C, D], the output is
// [S, H * D] (merge_heads' layout). positions[s] is the row's position; cache slots past it
// are hidden, and a padding row (position -1) writes zeros. The scores of a row stay in
// workgroup memory; max and sum are tree reductions.
// Template parameters: H, D, C, Q_STRIDE, Q_OFFSET, SCALE, WG.
gpu.func @attention(%qkv: memref<?xf32>, %kc: memref<?xf32>, %vc: memref<?xf32>, %positions: memref<?xi32>,
                    %out: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %scores = memref.alloc() : memref<{{C}}xf32, 3>
  %red = memref.alloc() : memref<{{WG}}xf32, 3>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cwg = arith.constant {{WG}} : index
  %cd = arith.constant {{D}} : index
  %cc = arith.constant {{C}} : index
  %hd = arith.constant {{H}} : index
  %qstride = arith.constant {{Q_STRIDE}} : index
  %qoffset = arith.constant {{Q_OFFSET}} : index
  %scale = arith.constant {{SCALE}} : f32
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %c0_i32 = arith.constant 0 : i32
  %s = gpu.block_id x
  %h = gpu.block_id y
  %tid = gpu.thread_id x
  %pos32 = memref.load %positions[%s] : memref<?xi32>
  %pos = arith.index_cast %pos32 : i32 to index
  %valid = arith.cmpi sge, %pos32, %c0_i32 : i32
  %hdd = arith.muli %h, %cd : index
  %qrow = arith.muli %s, %qstride : index
  %qbase0 = arith.addi %qrow, %qoffset : index
  %qbase = arith.addi %qbase0, %hdd : index
  %cachebase = arith.muli %h, %cc : index
  // Scores (scale * q . k for visible slots, -inf otherwise) and their maximum.
  %localmax = scf.for %c = %tid to %cc step %cwg iter_args(%mx = %ninf) -> f32 {
    %visible0 = arith.cmpi sle, %c, %pos : index
    %visible = arith.andi %visible0, %valid : i1
    %score = scf.if %visible -> f32 {
      %krow0 = arith.addi %cachebase, %c : index
      %krow = arith.muli %krow0, %cd : index
      %dot = scf.for %d = %c0 to %cd step %c1 iter_args(%a = %zero) -> f32 {
        %qi = arith.addi %qbase, %d : index
        %qv = memref.load %qkv[%qi] : memref<?xf32>
        %ki = arith.addi %krow, %d : index
        %kv = memref.load %kc[%ki] : memref<?xf32>
        %r = math.fma %qv, %kv, %a : f32
        scf.yield %r : f32
      }
      %sc = arith.mulf %dot, %scale : f32
      scf.yield %sc : f32
    } else {
      scf.yield %ninf : f32
    }
    memref.store %score, %scores[%c] : memref<{{C}}xf32, 3>
    %m = arith.maximumf %mx, %score : f32
    scf.yield %m : f32
  }
  memref.store %localmax, %red[%tid] : memref<{{WG}}xf32, 3>
  {{TREE_MAX %red}}
  %rowmax = memref.load %red[%c0] : memref<{{WG}}xf32, 3>
  gpu.barrier
  // exp(score - max) in place, and their sum.
  %localsum = scf.for %c = %tid to %cc step %cwg iter_args(%acc = %zero) -> f32 {
    %sc = memref.load %scores[%c] : memref<{{C}}xf32, 3>
    %visible0 = arith.cmpi sle, %c, %pos : index
    %visible = arith.andi %visible0, %valid : i1
    %p = scf.if %visible -> f32 {
      %diff = arith.subf %sc, %rowmax : f32
      %e = math.exp %diff : f32
      scf.yield %e : f32
    } else {
      scf.yield %zero : f32
    }
    memref.store %p, %scores[%c] : memref<{{C}}xf32, 3>
    %a = arith.addf %acc, %p : f32
    scf.yield %a : f32
  }
  memref.store %localsum, %red[%tid] : memref<{{WG}}xf32, 3>
  {{TREE %red}}
  %total = memref.load %red[%c0] : memref<{{WG}}xf32, 3>
  // out[s, h * D + d] = sum_c p_c v[h, c, d] / total (zeros for a padding row).
  %stop = arith.select %valid, %pos, %c0 : index
  %limit0 = arith.addi %stop, %c1 : index
  %limit = arith.select %valid, %limit0, %c0 : index
  %outrow0 = arith.muli %s, %hd : index
  %outrow = arith.muli %outrow0, %cd : index
  %outbase = arith.addi %outrow, %hdd : index
  scf.for %d = %tid to %cd step %cwg {
    %acc = scf.for %c = %c0 to %limit step %c1 iter_args(%a = %zero) -> f32 {
      %p = memref.load %scores[%c] : memref<{{C}}xf32, 3>
      %vrow0 = arith.addi %cachebase, %c : index
      %vrow = arith.muli %vrow0, %cd : index
      %vi = arith.addi %vrow, %d : index
      %vv = memref.load %vc[%vi] : memref<?xf32>
      %r = math.fma %p, %vv, %a : f32
      scf.yield %r : f32
    }
    %o0 = arith.divf %acc, %total : f32
    %o = arith.select %valid, %o0, %zero : f32
    %oi = arith.addi %outbase, %d : index
    memref.store %o, %out[%oi] : memref<?xf32>
  }
  gpu.return
}

// The KV-cache write of kiln.cache_update: cache[h, positions[s], d] = qkv[s, OFFSET + h * D + d]
// for every row whose position is not negative. Grid: (ceil(H * D / WG), S).
// Template parameters: H, D, C, Q_STRIDE, OFFSET, WG.
gpu.func @cache_write(%qkv: memref<?xf32>, %positions: memref<?xi32>, %cache: memref<?xf32>)
    kernel attributes {spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{{WG}}, 1, 1]>} {
  %cd = arith.constant {{D}} : index
  %cc = arith.constant {{C}} : index
  %chd = arith.constant {{HD}} : index
  %qstride = arith.constant {{Q_STRIDE}} : index
  %offset = arith.constant {{OFFSET}} : index
  %c0_i32 = arith.constant 0 : i32
  %i = gpu.global_id x
  %s = gpu.block_id y
  %pos32 = memref.load %positions[%s] : memref<?xi32>
  %inrange = arith.cmpi ult, %i, %chd : index
  %valid = arith.cmpi sge, %pos32, %c0_i32 : i32
  %write = arith.andi %inrange, %valid : i1
  scf.if %write {
    %pos = arith.index_cast %pos32 : i32 to index
    %h = arith.divui %i, %cd : index
    %d = arith.remui %i, %cd : index
    %row = arith.muli %s, %qstride : index
    %src0 = arith.addi %row, %offset : index
    %src = arith.addi %src0, %i : index
    %v = memref.load %qkv[%src] : memref<?xf32>
    %slot0 = arith.muli %h, %cc : index
    %slot = arith.addi %slot0, %pos : index
    %dst0 = arith.muli %slot, %cd : index
    %dst = arith.addi %dst0, %d : index
    memref.store %v, %cache[%dst] : memref<?xf32>
  }
  gpu.return
}
