// Fused head-gated attention with an online softmax, per (example, head, block of queries):
//   out[b, t, h*d:(h+1)*d] = gate[b, off + h] * softmax(q_t K^T * scale, keys < len[b]) V
// and lse[b, h, t] = log-sum-exp of the scaled scores (for the backward pass).
// With REL_BIAS, a relative position bias [heads, T, T] (MPNet's, gathered per layer for the
// heads it computes) is added to the scaled scores. No [B, H, T, T] buffer exists. A head whose gate is 0 is skipped: its output is 0, exactly as
// transformers' head_mask gives, and its lse is written as 0.
// qkv holds Q | K | V side by side: row (b*T + t), columns [0, H) Q, [H, 2H) K, [2H, 3H) V,
// H = heads * head_dim for the heads this layer computes (all of them, the ones a pruned
// checkpoint kept, or the ones a batch's gates leave active). Gates are one row of
// gate_stride values per example, this layer's heads from gate_off on.

struct AttnParams {
    seq: u32,        // T (padded length)
    heads: u32,
    hidden: u32,     // heads * head_dim
    q_blocks: u32,   // ceil(T / BQ)
    gate_off: u32,    // this layer's first head in a row of the gate buffer
    gate_stride: u32, // gates per example (all layers' heads)
    total: u32,      // B * heads * q_blocks
    scale: f32,
}

override BQ: u32 = 64u;        // queries per workgroup = threads per workgroup
override HEAD_DIM: u32 = 64u;  // at most MAX_D
const MAX_D: u32 = 128u;
const KT: u32 = 16u;           // keys per shared tile

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read> gates: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

override REL_BIAS: bool = false;
@group(0) @binding(6) var<storage, read> relbias: array<f32>;

// The relative position bias of computed head h, query t, key j (indices clamped to the
// sequence); 0 without REL_BIAS.
fn rel_bias(h: u32, t: u32, j: u32) -> f32 {
    if (!REL_BIAS) { return 0.0; }
    let last = p.seq - 1u;
    return relbias[(h * p.seq + min(t, last)) * p.seq + min(j, last)];
}

var<workgroup> ks: array<f32, 2048>; // [KT][MAX_D]
var<workgroup> vs: array<f32, 2048>;
var<workgroup> wg_len: u32;
var<workgroup> wg_gate: f32;

// Which (example, head, block of queries) flat workgroup g works on.
struct Block {
    b: u32,
    h: u32,
    qb: u32,
}

fn block_of(g: u32) -> Block {
    let bh = g / p.q_blocks;
    return Block(bh / p.heads, bh % p.heads, g % p.q_blocks);
}

fn gate_of(blk: Block) -> f32 {
    return gates[blk.b * p.gate_stride + p.gate_off + blk.h];
}

// A head with gate 0 outputs exactly 0 (transformers' head_mask), and its lse is written as 0.
fn write_skipped(orow: u32, lrow: u32) {
    for (var i = 0u; i < HEAD_DIM; i++) { out[orow + i] = 0.0; }
    lse[lrow] = 0.0;
}

@compute @workgroup_size(BQ)
fn attention_fwd(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let blk = block_of(g);
    let b = blk.b;
    let h = blk.h;
    let d = HEAD_DIM;
    let stride = 3u * p.hidden;
    let t = blk.qb * BQ + lid;
    let live = t < p.seq;
    if (lid == 0u) {
        wg_len = lens[b];
        wg_gate = gate_of(blk);
    }
    let len = workgroupUniformLoad(&wg_len);
    let gate = workgroupUniformLoad(&wg_gate);
    let orow = (b * p.seq + t) * p.hidden + h * d;
    let lrow = (b * p.heads + h) * p.seq + t;
    if (gate == 0.0) {
        if (live) { write_skipped(orow, lrow); }
        return;
    }

    var q: array<f32, MAX_D>;
    var acc: array<f32, MAX_D>;
    let qrow = (b * p.seq + min(t, p.seq - 1u)) * stride + h * d;
    for (var i = 0u; i < d; i++) {
        q[i] = qkv[qrow + i] * p.scale;
        acc[i] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    var s: array<f32, KT>;
    for (var k0 = 0u; k0 < len; k0 += KT) {
        for (var e = lid; e < KT * d; e += BQ) {
            let j = e / d;
            let i = e % d;
            let key = k0 + j;
            var kv = 0.0;
            var vv = 0.0;
            if (key < len) {
                let krow = (b * p.seq + key) * stride + h * d + i;
                kv = qkv[krow + p.hidden];
                vv = qkv[krow + 2u * p.hidden];
            }
            ks[j * MAX_D + i] = kv;
            vs[j * MAX_D + i] = vv;
        }
        workgroupBarrier();
        let nk = min(KT, len - k0);
        var mt = m;
        for (var j = 0u; j < nk; j++) {
            var dot = 0.0;
            for (var i = 0u; i < d; i++) { dot = fma(q[i], ks[j * MAX_D + i], dot); }
            s[j] = dot + rel_bias(h, t, k0 + j);
            mt = max(mt, dot);
        }
        let corr = exp(m - mt);
        l *= corr;
        for (var i = 0u; i < d; i++) { acc[i] *= corr; }
        for (var j = 0u; j < nk; j++) {
            let pj = exp(s[j] - mt);
            l += pj;
            for (var i = 0u; i < d; i++) { acc[i] = fma(pj, vs[j * MAX_D + i], acc[i]); }
        }
        m = mt;
        workgroupBarrier();
    }
    if (live) {
        let inv = gate / l;
        for (var i = 0u; i < d; i++) { out[orow + i] = acc[i] * inv; }
        lse[lrow] = m + log(l);
    }
}
