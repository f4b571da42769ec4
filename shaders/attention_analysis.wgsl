// What a head attends to, for head-role analysis, without keeping any attention map: one
// thread per (example b, head h, query token i) recomputes its softmax row
//   P_ij = softmax_j(q_i k_j * scale + R_ij), keys j < len[b]
// (R the relative position bias [heads, T, T] with REL_BIAS, as attention.wgsl adds it)
// in two passes over the keys (max and sum, then the weights) and writes
//   sieve[b, h, i, 0..5]: attention mass on a token set divided by the set's share under
//     uniform attention (|set| / n, n = len[b]): 0 local (|j - i| <= 2), 1 [CLS], 2 [SEP],
//     3 [CLS] and [SEP] together, 4 the query's own segment without special tokens (block);
//     0 where the set is empty;
//   words[b, h, i, w] = sum of P_ij over the sub-tokens j of word w (attention to a word).
// Padding queries (i >= len[b]) write zeros. The host averages over queries and sub-tokens.
// tok[b*T + j] describes token j: bits 0..15 its word (0xFFFF: none), bit 16 its segment,
// bit 17 [CLS], bit 18 [SEP].

struct Params {
    seq: u32,       // T
    heads: u32,
    hidden: u32,    // heads * head_dim
    n_words: u32,   // W
    total: u32,     // B * heads * T
    scale: f32,
    _p0: u32,
    _p1: u32,
}

override HEAD_DIM: u32 = 64u;
const MAX_D: u32 = 128u;
const NO_WORD: u32 = 0xFFFFu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read> tok: array<u32>;
@group(0) @binding(4) var<storage, read_write> sieve: array<f32>;
@group(0) @binding(5) var<storage, read_write> words: array<f32>;

override REL_BIAS: bool = false;
@group(0) @binding(6) var<storage, read> relbias: array<f32>;

// q_i k_j * scale (q pre-scaled) plus head h's bias of query i and key j.
fn score(qrow: u32, krow: u32, q: ptr<function, array<f32, MAX_D>>, h: u32, i: u32, j: u32) -> f32 {
    var dot = 0.0;
    if (REL_BIAS) { dot = relbias[(h * p.seq + i) * p.seq + j]; }
    for (var e = 0u; e < HEAD_DIM; e++) { dot = fma((*q)[e], qkv[krow + e], dot); }
    return dot;
}

@compute @workgroup_size(64)
fn attention_analysis(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (g >= p.total) { return; }
    let i = g % p.seq;
    let bh = g / p.seq;
    let h = bh % p.heads;
    let b = bh / p.heads;
    let srow = g * 5u;
    let wrow = g * p.n_words;
    for (var w = 0u; w < p.n_words; w++) { words[wrow + w] = 0.0; }
    let n = lens[b];
    if (i >= n) {
        for (var s = 0u; s < 5u; s++) { sieve[srow + s] = 0.0; }
        return;
    }
    let stride = 3u * p.hidden;
    var q: array<f32, MAX_D>;
    let qrow = (b * p.seq + i) * stride + h * HEAD_DIM;
    for (var e = 0u; e < HEAD_DIM; e++) { q[e] = qkv[qrow + e] * p.scale; }
    // pass 1: max and normaliser
    var m = -3.0e38;
    var l = 0.0;
    for (var j = 0u; j < n; j++) {
        let s = score(qrow, (b * p.seq + j) * stride + p.hidden + h * HEAD_DIM, &q, h, i, j);
        let mn = max(m, s);
        l = l * exp(m - mn) + exp(s - mn);
        m = mn;
    }
    // pass 2: weights into the sets and words
    let me = tok[b * p.seq + i];
    let my_seg = (me >> 16u) & 1u;
    var mass = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
    var count = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
    for (var j = 0u; j < n; j++) {
        let s = score(qrow, (b * p.seq + j) * stride + p.hidden + h * HEAD_DIM, &q, h, i, j);
        let pj = exp(s - m) / l;
        let t = tok[b * p.seq + j];
        let cls = (t >> 17u) & 1u;
        let sep = (t >> 18u) & 1u;
        let local = select(0.0, 1.0, max(i, j) - min(i, j) <= 2u);
        let own = select(0.0, 1.0, cls == 0u && sep == 0u && ((t >> 16u) & 1u) == my_seg);
        var in_set = array<f32, 5>(local, f32(cls), f32(sep), f32(cls | sep), own);
        for (var s2 = 0u; s2 < 5u; s2++) {
            mass[s2] += pj * in_set[s2];
            count[s2] += in_set[s2];
        }
        let w = t & 0xFFFFu;
        if (w != NO_WORD && w < p.n_words) { words[wrow + w] += pj; }
    }
    for (var s = 0u; s < 5u; s++) {
        sieve[srow + s] = select(0.0, mass[s] * f32(n) / count[s], count[s] > 0.0);
    }
}
