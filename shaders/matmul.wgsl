// C[m, n] = act(sum_k A[m * lda + k] * W[n * K + k] + bias[n]), W in PyTorch Linear layout [N, K].
// `lda` lets a matmul read a strided subset of rows (the pooler reads each example's [CLS] row).
// The epilogue (bias, ACT) is in matmul_common.wgsl, prepended to this source.
// TRANS_A / TRANS_B read A as [K, M] and W as [K, N] instead (row strides lda, ldb): with them
// the same kernel computes weight gradients dW = dYᵀ·X and bias gradients db = 1ᵀ·dY.

struct MmParams {
    m: u32,
    n: u32,
    k: u32,
    lda: u32,
    ldc: u32,
    tiles_n: u32,  // workgroups along N
    total: u32,    // workgroups in all
    ldb: u32,      // row stride of W (K when W is [N, K])
    gw: u32,       // head gathers (matmul_common.wgsl)
    sw: u32,
    hd: u32,
    _pad: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<uniform> p: MmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// ---- Tiled variant: 64x64 output tile per workgroup of 16x16 threads, 4x4 per thread, K in
// steps of 16 through workgroup memory. For GPUs.
const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> as_: array<f32, 1024>; // [TK][TM]
var<workgroup> ws_: array<f32, 1024>; // [TK][TN]

@compute @workgroup_size(16, 16)
fn matmul_tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let m0 = (g / p.tiles_n) * TM;
    let n0 = (g % p.tiles_n) * TN;
    let tx = lid3.x;
    let ty = lid3.y;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; }
    }
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var e = lid; e < TM * TK; e += 256u) {
            let r = e / TK;
            let kk = e % TK;
            let gr = m0 + r;
            let gk = k0 + kk;
            var va = 0.0;
            if (gr < p.m && gk < p.k) { va = a[select(gr * p.lda + gk, gk * p.lda + gr, TRANS_A)]; }
            as_[kk * TM + r] = va;
            let gn = n0 + r;
            var vw = 0.0;
            if (gn < p.n && gk < p.k) { vw = w[select(w_row(gn) * p.ldb + w_col(gk), gk * p.ldb + gn, TRANS_B)]; }
            ws_[kk * TN + r] = vw;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var av: array<f32, 4>;
            var wv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) { av[i] = as_[kk * TM + ty + 16u * i]; }
            for (var j = 0u; j < 4u; j++) { wv[j] = ws_[kk * TN + tx + 16u * j]; }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(av[i], wv[j], acc[i][j]); }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = m0 + ty + 16u * i;
        if (row >= p.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let col = n0 + tx + 16u * j;
            if (col < p.n) { store_c(row * p.ldc + col, acc[i][j], w_row(col)); }
        }
    }
}
