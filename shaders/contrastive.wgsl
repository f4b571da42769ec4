// In-batch contrastive loss (sentence-transformers' MultipleNegativesRankingLoss, SimCSE) over B
// pairs of sentence embeddings, and its backward down to the last hidden states.
//
// The batch holds 2B sequences: rows 0..B are the first sentences a_i, rows B..2B the second
// b_i. With unit rows â = a/|a|, b̂ = b/|b| (computed by pool.wgsl with NORMALIZE):
//   anchor k < B:      s_kj = scale · â_k · b̂_j,  loss_k = logsumexp_j s_kj − s_kk
//   anchor B + j (SYMMETRIC only): s = scale · b̂_j · â_i over i, target i = j.
// probs keeps each anchor's softmax row for the backward. Every anchor's loss counts with
// weight 1, or 1/2 with SYMMETRIC (the mean of the two directions).
// One workgroup per anchor (loss) or per embedding row (backward); row_common.wgsl is prepended.

override SYMMETRIC: bool = false;
// pool.wgsl's modes: 0 mean, 1 first token, 3 sum / sqrt(len) (max pooling has no backward here)
override MODE: u32 = 0u;

struct ContrastiveParams {
    pairs: u32,
    hidden: u32,
    seq: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: ContrastiveParams;
// unit embeddings [2B, H]
@group(0) @binding(1) var<storage, read> unit: array<f32>;
// contrastive_loss: loss [anchors]; probs [anchors, B]
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;

// at most 256 pairs a batch (checked by the wrapper)
var<workgroup> sims: array<f32, 256>;

// the row of the j-th candidate of anchor k
fn candidate(k: u32, j: u32) -> u32 {
    return select(j, p.pairs + j, k < p.pairs);
}

@compute @workgroup_size(ROW_WG)
fn contrastive_loss(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let k = flat_group(wid, nwg);
    let anchors = select(p.pairs, 2u * p.pairs, SYMMETRIC);
    if (k >= anchors) { return; }
    let b = p.pairs;
    let h = p.hidden;
    // anchor k < B is a_k; anchor B + j is b_j (its row is k itself)
    let anchor = k;
    for (var j = 0u; j < b; j++) {
        let c = candidate(k, j);
        var d = 0.0;
        for (var x = lid; x < h; x += ROW_WG) {
            d += unit[anchor * h + x] * unit[c * h + x];
        }
        let s = p.scale * row_sum(d, lid);
        if (lid == 0u) { sims[j] = s; }
    }
    workgroupBarrier();
    var m = -3.0e38;
    for (var j = 0u; j < b; j++) { m = max(m, sims[j]); }
    var z = 0.0;
    for (var j = 0u; j < b; j++) { z += exp(sims[j] - m); }
    let lse = m + log(z);
    let partner = k % b;
    if (lid == 0u) { loss[k] = lse - sims[partner]; }
    for (var j = lid; j < b; j += ROW_WG) {
        probs[k * b + j] = exp(sims[j] - lse);
    }
}

@group(0) @binding(4) var<storage, read> pooled: array<f32>;
@group(0) @binding(5) var<storage, read> lens: array<u32>;
// d(Σ losses)/d(last hidden states) [2B, T, H]
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

// at most 1024 hidden units (checked by the wrapper)
var<workgroup> dunit: array<f32, 1024>;

// d loss / d s for anchor k and candidate j: weight · (P_kj − [j = target])
fn dsim(k: u32, j: u32) -> f32 {
    let w = select(1.0, 0.5, SYMMETRIC);
    return w * (probs[k * p.pairs + j] - select(0.0, 1.0, j == k % p.pairs));
}

@compute @workgroup_size(ROW_WG)
fn contrastive_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = flat_group(wid, nwg);
    let b = p.pairs;
    if (r >= 2u * b) { return; }
    let h = p.hidden;
    let first = r < b;
    let i = r % b;
    // d loss / d unit_r: every similarity row r takes part in, times scale and the other unit row
    var dot = 0.0;
    var sq = 0.0;
    for (var x = lid; x < h; x += ROW_WG) {
        var g = 0.0;
        for (var j = 0u; j < b; j++) {
            // the pair (a_i, b_j) when r is a_i, (a_j, b_i) when r is b_i
            var coeff = 0.0;
            var other = 0u;
            if (first) {
                coeff = dsim(i, j);
                if (SYMMETRIC) { coeff += dsim(b + j, i); }
                other = b + j;
            } else {
                coeff = dsim(j, i);
                if (SYMMETRIC) { coeff += dsim(b + i, j); }
                other = j;
            }
            g += coeff * unit[other * h + x];
        }
        g = p.scale * g;
        dunit[x] = g;
        dot += g * unit[r * h + x];
        let v = pooled[r * h + x];
        sq += v * v;
    }
    dot = row_sum(dot, lid);
    let norm = max(sqrt(row_sum(sq, lid)), 1e-12);
    // through the normalisation, then the pooling, to every token row of the example
    let n = max(lens[r], 1u);
    var share = 1.0 / f32(n);
    if (MODE == 3u) { share = 1.0 / sqrt(f32(n)); }
    if (MODE == 1u) { share = 1.0; }
    for (var x = lid; x < h; x += ROW_WG) {
        let d = (dunit[x] - unit[r * h + x] * dot) / norm;
        for (var t = 0u; t < p.seq; t++) {
            var v = 0.0;
            if ((MODE == 1u && t == 0u) || (MODE != 1u && t < n)) { v = d * share; }
            dx[(r * p.seq + t) * h + x] = v;
        }
    }
}
