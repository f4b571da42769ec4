// Matmul variant for CPU adapters (lavapipe): storage-buffer loads there compile to one scalar,
// bounds-checked load per lane while texel loads vectorise, so A and W are read as vec4 texels
// of rgba32float textures (4 consecutive k per texel, rows zero-padded to a multiple of 4), and
// each subgroup of 8 lanes shares 8 rows of A through `subgroupBroadcast`. The textures are
// bound as read-only storage textures, not sampled ones: lavapipe's sampled `textureLoad` looks
// up the mip level's strides and offset lane by lane, its image load does not, and the matmul
// runs 1.2-1.6x faster so (BENCHMARKS.md).
//   C[m, n] = act(sum_k A[m, k] W[n, k] + bias[n])
// Needs the SUBGROUP feature and a subgroup size of exactly 8; chosen at start-up only then.

// Each subgroup computes ROWS rows x 32 columns, lane l owning the 4 adjacent columns
// 4l..4l+3 of its block. The accumulators are one vec4 variable per row, not an array: lavapipe
// kept arrays in stack memory and wrote every element back under the lane mask, and the kernel
// ran 1.3x faster with plain variables (BENCHMARKS.md).

struct TexParams {
    m: u32,
    n: u32,
    k4: u32,       // texels per row = ceil(K / 4)
    ldc: u32,
    tiles_n: u32,  // workgroups along N
    total: u32,
    gw: u32,       // head gathers (matmul_common.wgsl)
    sw: u32,
    hd: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

// The 8 subgroups of a workgroup form ROW_GROUPS (1, 2, 4 or 8) groups along M and
// 8 / ROW_GROUPS along N: a workgroup tile is (ROWS * ROW_GROUPS) x (256 / ROW_GROUPS).
// More row groups reuse each W column block from cache across more rows (large K).
override ROW_GROUPS: u32 = 4u;
// Rows of A per subgroup: 8, 16, 24 or 32 (one to four texels per lane), sharing each W load
// over more FMAs.
override ROWS: u32 = 24u;

@group(0) @binding(0) var<uniform> p: TexParams;
@group(0) @binding(1) var ta: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var tw: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// acc + dot(a, b) as a chain of multiply-adds (lavapipe splits fma into a multiply and an add).
fn dot_acc(acc: f32, a: vec4<f32>, b: vec4<f32>) -> f32 {
    return fma(a.w, b.w, fma(a.z, b.z, fma(a.y, b.y, fma(a.x, b.x, acc))));
}

// One row's four column sums advanced by one texel: a is the row's texel of A, b0..b3 the
// texels of the lane's four W rows.
fn row_step(acc: vec4<f32>, a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>,
            b3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot_acc(acc.x, a, b0), dot_acc(acc.y, a, b1), dot_acc(acc.z, a, b2),
                     dot_acc(acc.w, a, b3));
}

// Writes row m0 + r of the tile (columns n0..n0+3) through the epilogue.
fn store_row(m0: u32, r: u32, n0: u32, wr: vec4<u32>, acc: vec4<f32>) {
    let row = m0 + r;
    if (r >= ROWS || row >= p.m) { return; }
    for (var j = 0u; j < 4u; j++) {
        if (n0 + j < p.n) { store_c(row * p.ldc + n0 + j, acc[j], wr[j]); }
    }
}

@compute @workgroup_size(64)
fn matmul_tex_sg8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let rg = sg % ROW_GROUPS;
    let cg = sg / ROW_GROUPS;
    let m0 = (g / p.tiles_n) * (ROWS * ROW_GROUPS) + rg * ROWS;
    let n0 = (g % p.tiles_n) * (256u / ROW_GROUPS) + cg * 32u + lane * 4u;
    // the lane's A rows (one per texel of A it loads) and W rows, clamped into range
    let last = p.m - 1u;
    let ar = vec4<i32>(vec4<u32>(min(m0 + lane, last), min(m0 + 8u + lane, last),
                                 min(m0 + 16u + lane, last), min(m0 + 24u + lane, last)));
    let wr = vec4<u32>(w_row(min(n0, p.n - 1u)), w_row(min(n0 + 1u, p.n - 1u)),
                       w_row(min(n0 + 2u, p.n - 1u)), w_row(min(n0 + 3u, p.n - 1u)));
    let wri = vec4<i32>(wr);
    var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0); var acc4 = vec4<f32>(0.0); var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0); var acc7 = vec4<f32>(0.0); var acc8 = vec4<f32>(0.0);
    var acc9 = vec4<f32>(0.0); var acc10 = vec4<f32>(0.0); var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0); var acc13 = vec4<f32>(0.0); var acc14 = vec4<f32>(0.0);
    var acc15 = vec4<f32>(0.0); var acc16 = vec4<f32>(0.0); var acc17 = vec4<f32>(0.0);
    var acc18 = vec4<f32>(0.0); var acc19 = vec4<f32>(0.0); var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0); var acc22 = vec4<f32>(0.0); var acc23 = vec4<f32>(0.0);
    var acc24 = vec4<f32>(0.0); var acc25 = vec4<f32>(0.0); var acc26 = vec4<f32>(0.0);
    var acc27 = vec4<f32>(0.0); var acc28 = vec4<f32>(0.0); var acc29 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0); var acc31 = vec4<f32>(0.0);
    // K in runs of texels: one run of k4 (no gather), or under GATHER 2 one run of hd/4 per
    // listed head, whose W texels start at heads[o] * hd/4 (hd is a multiple of 4 then): no
    // division or list lookup per texel (integer division does not vectorise on CPUs).
    let gathered = GATHER == 2u;
    let runs = select(1u, p.gw / p.hd, gathered);
    let run = select(p.k4, p.hd / 4u, gathered);
    for (var o = 0u; o < runs; o++) {
        var w0 = 0u;
        if (gathered) { w0 = heads[o] * run; }
        for (var kk = 0u; kk < run; kk++) {
            let x = i32(o * run + kk);
            let xw = i32(w0 + kk);
            let b0 = textureLoad(tw, vec2<i32>(xw, wri.x));
            let b1 = textureLoad(tw, vec2<i32>(xw, wri.y));
            let b2 = textureLoad(tw, vec2<i32>(xw, wri.z));
            let b3 = textureLoad(tw, vec2<i32>(xw, wri.w));
            let a = textureLoad(ta, vec2<i32>(x, ar.x));
            acc0 = row_step(acc0, subgroupBroadcast(a, 0u), b0, b1, b2, b3);
            acc1 = row_step(acc1, subgroupBroadcast(a, 1u), b0, b1, b2, b3);
            acc2 = row_step(acc2, subgroupBroadcast(a, 2u), b0, b1, b2, b3);
            acc3 = row_step(acc3, subgroupBroadcast(a, 3u), b0, b1, b2, b3);
            acc4 = row_step(acc4, subgroupBroadcast(a, 4u), b0, b1, b2, b3);
            acc5 = row_step(acc5, subgroupBroadcast(a, 5u), b0, b1, b2, b3);
            acc6 = row_step(acc6, subgroupBroadcast(a, 6u), b0, b1, b2, b3);
            acc7 = row_step(acc7, subgroupBroadcast(a, 7u), b0, b1, b2, b3);
            if (ROWS >= 16u) {
                let a1 = textureLoad(ta, vec2<i32>(x, ar.y));
                acc8 = row_step(acc8, subgroupBroadcast(a1, 0u), b0, b1, b2, b3);
                acc9 = row_step(acc9, subgroupBroadcast(a1, 1u), b0, b1, b2, b3);
                acc10 = row_step(acc10, subgroupBroadcast(a1, 2u), b0, b1, b2, b3);
                acc11 = row_step(acc11, subgroupBroadcast(a1, 3u), b0, b1, b2, b3);
                acc12 = row_step(acc12, subgroupBroadcast(a1, 4u), b0, b1, b2, b3);
                acc13 = row_step(acc13, subgroupBroadcast(a1, 5u), b0, b1, b2, b3);
                acc14 = row_step(acc14, subgroupBroadcast(a1, 6u), b0, b1, b2, b3);
                acc15 = row_step(acc15, subgroupBroadcast(a1, 7u), b0, b1, b2, b3);
            }
            if (ROWS >= 24u) {
                let a2 = textureLoad(ta, vec2<i32>(x, ar.z));
                acc16 = row_step(acc16, subgroupBroadcast(a2, 0u), b0, b1, b2, b3);
                acc17 = row_step(acc17, subgroupBroadcast(a2, 1u), b0, b1, b2, b3);
                acc18 = row_step(acc18, subgroupBroadcast(a2, 2u), b0, b1, b2, b3);
                acc19 = row_step(acc19, subgroupBroadcast(a2, 3u), b0, b1, b2, b3);
                acc20 = row_step(acc20, subgroupBroadcast(a2, 4u), b0, b1, b2, b3);
                acc21 = row_step(acc21, subgroupBroadcast(a2, 5u), b0, b1, b2, b3);
                acc22 = row_step(acc22, subgroupBroadcast(a2, 6u), b0, b1, b2, b3);
                acc23 = row_step(acc23, subgroupBroadcast(a2, 7u), b0, b1, b2, b3);
            }
            if (ROWS >= 32u) {
                let a3 = textureLoad(ta, vec2<i32>(x, ar.w));
                acc24 = row_step(acc24, subgroupBroadcast(a3, 0u), b0, b1, b2, b3);
                acc25 = row_step(acc25, subgroupBroadcast(a3, 1u), b0, b1, b2, b3);
                acc26 = row_step(acc26, subgroupBroadcast(a3, 2u), b0, b1, b2, b3);
                acc27 = row_step(acc27, subgroupBroadcast(a3, 3u), b0, b1, b2, b3);
                acc28 = row_step(acc28, subgroupBroadcast(a3, 4u), b0, b1, b2, b3);
                acc29 = row_step(acc29, subgroupBroadcast(a3, 5u), b0, b1, b2, b3);
                acc30 = row_step(acc30, subgroupBroadcast(a3, 6u), b0, b1, b2, b3);
                acc31 = row_step(acc31, subgroupBroadcast(a3, 7u), b0, b1, b2, b3);
            }
        }
    }
    store_row(m0, 0u, n0, wr, acc0); store_row(m0, 1u, n0, wr, acc1);
    store_row(m0, 2u, n0, wr, acc2); store_row(m0, 3u, n0, wr, acc3);
    store_row(m0, 4u, n0, wr, acc4); store_row(m0, 5u, n0, wr, acc5);
    store_row(m0, 6u, n0, wr, acc6); store_row(m0, 7u, n0, wr, acc7);
    store_row(m0, 8u, n0, wr, acc8); store_row(m0, 9u, n0, wr, acc9);
    store_row(m0, 10u, n0, wr, acc10); store_row(m0, 11u, n0, wr, acc11);
    store_row(m0, 12u, n0, wr, acc12); store_row(m0, 13u, n0, wr, acc13);
    store_row(m0, 14u, n0, wr, acc14); store_row(m0, 15u, n0, wr, acc15);
    store_row(m0, 16u, n0, wr, acc16); store_row(m0, 17u, n0, wr, acc17);
    store_row(m0, 18u, n0, wr, acc18); store_row(m0, 19u, n0, wr, acc19);
    store_row(m0, 20u, n0, wr, acc20); store_row(m0, 21u, n0, wr, acc21);
    store_row(m0, 22u, n0, wr, acc22); store_row(m0, 23u, n0, wr, acc23);
    store_row(m0, 24u, n0, wr, acc24); store_row(m0, 25u, n0, wr, acc25);
    store_row(m0, 26u, n0, wr, acc26); store_row(m0, 27u, n0, wr, acc27);
    store_row(m0, 28u, n0, wr, acc28); store_row(m0, 29u, n0, wr, acc29);
    store_row(m0, 30u, n0, wr, acc30); store_row(m0, 31u, n0, wr, acc31);
}

// Row sums of a packed texture: c[r] (+)= sum of row r's first k elements, r < m (p.m rows,
// p.k4 texels; padding texels are zero). The bias gradient db = 1ᵀ·dY from the packed dYᵀ the
// weight gradient reads: as a one-row matmul it computed a whole 64-row tile for one row.
@compute @workgroup_size(64)
fn row_sums_tex(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (r >= p.m) { return; }
    var s = vec4<f32>(0.0);
    for (var x = 0u; x < p.k4; x++) {
        s += textureLoad(ta, vec2<i32>(i32(x), i32(r)));
    }
    let v = (s.x + s.y) + (s.z + s.w);
    if (ACCUMULATE) {
        c[r] = c[r] + v;
    } else {
        c[r] = v;
    }
}

// Packs rows of a storage buffer (row stride lda, K columns) into an rgba32float texture of
// ceil(K/4) texels per row, zero-padding the last texel. With TRANSPOSE, texture row r holds
// column r of the source (element c at src[c * lda + r]): the transposed weight Wᵀ that input
// gradients read, packed on the device from W itself.
override TRANSPOSE: bool = false;

struct PackParams {
    rows: u32,
    k: u32,
    k4: u32,
    lda: u32,
}

@group(0) @binding(0) var<uniform> pp: PackParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;

// The texel (x, row) of a packing invocation; row >= pp.rows past the last one.
fn packed_texel(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> vec2<u32> {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    let row = i / pp.k4;
    return vec2<u32>(i - row * pp.k4, row);
}

@compute @workgroup_size(64)
fn pack_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = packed_texel(wid, nwg, lid);
    let kx = t.x;
    let row = t.y;
    if (row >= pp.rows) { return; }
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let col = kx * 4u + j;
        if (col < pp.k) { v[j] = src[select(row * pp.lda + col, col * pp.lda + row, TRANSPOSE)]; }
    }
    textureStore(dst, vec2<i32>(i32(kx), i32(row)), v);
}

// pack_rows when K and lda are multiples of 4 and nothing is transposed: one vec4 load per
// texel. lavapipe runs a storage load as a loop over the lanes, once per load instruction, so
// this is one loop where pack_rows runs four (each behind a branch on the padding).
@group(0) @binding(3) var<storage, read> src4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn pack_rows4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = packed_texel(wid, nwg, lid);
    let kx = t.x;
    let row = t.y;
    if (row >= pp.rows) { return; }
    textureStore(dst, vec2<i32>(i32(kx), i32(row)), src4[row * (pp.lda / 4u) + kx]);
}
