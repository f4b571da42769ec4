// Matmul variant for CPU adapters (lavapipe): storage-buffer loads there compile to one scalar,
// bounds-checked load per lane while texel loads vectorise, so A and W are read as vec4 texels
// of rgba32float textures (4 consecutive k per texel, rows zero-padded to a multiple of 4), and
// each subgroup of 8 lanes shares 8 rows of A through `subgroupBroadcast`. The textures are
// bound as read-only storage textures, not sampled ones: lavapipe's sampled `textureLoad` looks
// up the mip level's strides and offset lane by lane, its image load does not, and the matmul
// runs 1.2-1.6x faster so (BENCHMARKS.md).
//   C[m, n] = act(sum_k A[m, k] W[n, k] + bias[n])
// Needs the SUBGROUP feature and a subgroup size of exactly 8; chosen at start-up only then.
// Each subgroup computes ROWS rows x 8*NC columns, lane l owning NC adjacent columns.

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

override NC: u32 = 4u; // columns per lane (at most 4)
// The 8 subgroups of a workgroup form ROW_GROUPS (1, 2, 4 or 8) groups along M and
// 8 / ROW_GROUPS along N: a workgroup tile is (ROWS * ROW_GROUPS) x (64 / ROW_GROUPS * NC).
// More row groups reuse each W column block from cache across more rows (large K).
override ROW_GROUPS: u32 = 4u;
// Rows of A per subgroup: 8 (one texel per lane) or 16 (two), sharing each W load over more FMAs.
override ROWS: u32 = 16u;

@group(0) @binding(0) var<uniform> p: TexParams;
@group(0) @binding(1) var ta: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var tw: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// acc + dot(a, b) as a chain of fused multiply-adds: lavapipe compiles `dot` to separate
// multiplies and adds, twice the arithmetic instructions.
fn dot_acc(acc: f32, a: vec4<f32>, b: vec4<f32>) -> f32 {
    return fma(a.w, b.w, fma(a.z, b.z, fma(a.y, b.y, fma(a.x, b.x, acc))));
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
    let n0 = (g % p.tiles_n) * (64u / ROW_GROUPS * NC) + cg * (8u * NC) + lane * NC;
    let arow = i32(min(m0 + lane, p.m - 1u));
    let arow_hi = i32(min(m0 + 8u + lane, p.m - 1u));
    var wrow: array<i32, 4>;
    var acc: array<array<f32, 16>, 4>;
    for (var j = 0u; j < NC; j++) {
        wrow[j] = i32(w_row(min(n0 + j, p.n - 1u)));
        for (var r = 0u; r < ROWS; r++) { acc[j][r] = 0.0; }
    }
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
            let a = textureLoad(ta, vec2<i32>(x, arow));
            let xw = i32(w0 + kk);
            var b: array<vec4<f32>, 4>;
            for (var j = 0u; j < NC; j++) { b[j] = textureLoad(tw, vec2<i32>(xw, wrow[j])); }
            let a0 = subgroupBroadcast(a, 0u);
            for (var j = 0u; j < NC; j++) { acc[j][0] = dot_acc(acc[j][0], a0, b[j]); }
            let a1 = subgroupBroadcast(a, 1u);
            for (var j = 0u; j < NC; j++) { acc[j][1] = dot_acc(acc[j][1], a1, b[j]); }
            let a2 = subgroupBroadcast(a, 2u);
            for (var j = 0u; j < NC; j++) { acc[j][2] = dot_acc(acc[j][2], a2, b[j]); }
            let a3 = subgroupBroadcast(a, 3u);
            for (var j = 0u; j < NC; j++) { acc[j][3] = dot_acc(acc[j][3], a3, b[j]); }
            let a4 = subgroupBroadcast(a, 4u);
            for (var j = 0u; j < NC; j++) { acc[j][4] = dot_acc(acc[j][4], a4, b[j]); }
            let a5 = subgroupBroadcast(a, 5u);
            for (var j = 0u; j < NC; j++) { acc[j][5] = dot_acc(acc[j][5], a5, b[j]); }
            let a6 = subgroupBroadcast(a, 6u);
            for (var j = 0u; j < NC; j++) { acc[j][6] = dot_acc(acc[j][6], a6, b[j]); }
            let a7 = subgroupBroadcast(a, 7u);
            for (var j = 0u; j < NC; j++) { acc[j][7] = dot_acc(acc[j][7], a7, b[j]); }
            if (ROWS == 16u) {
                let a_hi = textureLoad(ta, vec2<i32>(x, arow_hi));
                let c0 = subgroupBroadcast(a_hi, 0u);
                for (var j = 0u; j < NC; j++) { acc[j][8] = dot_acc(acc[j][8], c0, b[j]); }
                let c1 = subgroupBroadcast(a_hi, 1u);
                for (var j = 0u; j < NC; j++) { acc[j][9] = dot_acc(acc[j][9], c1, b[j]); }
                let c2 = subgroupBroadcast(a_hi, 2u);
                for (var j = 0u; j < NC; j++) { acc[j][10] = dot_acc(acc[j][10], c2, b[j]); }
                let c3 = subgroupBroadcast(a_hi, 3u);
                for (var j = 0u; j < NC; j++) { acc[j][11] = dot_acc(acc[j][11], c3, b[j]); }
                let c4 = subgroupBroadcast(a_hi, 4u);
                for (var j = 0u; j < NC; j++) { acc[j][12] = dot_acc(acc[j][12], c4, b[j]); }
                let c5 = subgroupBroadcast(a_hi, 5u);
                for (var j = 0u; j < NC; j++) { acc[j][13] = dot_acc(acc[j][13], c5, b[j]); }
                let c6 = subgroupBroadcast(a_hi, 6u);
                for (var j = 0u; j < NC; j++) { acc[j][14] = dot_acc(acc[j][14], c6, b[j]); }
                let c7 = subgroupBroadcast(a_hi, 7u);
                for (var j = 0u; j < NC; j++) { acc[j][15] = dot_acc(acc[j][15], c7, b[j]); }
            }
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        let row = m0 + r;
        if (row >= p.m) { break; }
        for (var j = 0u; j < NC; j++) {
            let col = n0 + j;
            if (col < p.n) { store_c(row * p.ldc + col, acc[j][r], u32(wrow[j])); }
        }
    }
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
