// Softmax cross-entropy over a vocabulary too large to hold as one logits matrix: the logits
// arrive in column chunks [R, C] (vocabulary ids col0 .. col0 + C), and a running state per row
// folds each chunk in, so memory stays O(R · C) whatever the vocabulary.
//   vocab_lse:    folds one chunk into the state: running max and sum of exp (log-sum-exp),
//                 the label's logit when the chunk holds it, and the running argmax.
//   vocab_finish: loss = lse − logit[label] per row (0 for label −100), and keeps lse.
//   vocab_grad:   overwrites a chunk with scale · (softmax − onehot), from the kept lse.
// State rows ([6, R]): 0 max, 1 sum of exp(x − max), 2 label logit, 3 best logit, 4 best id
// (exact in f32 below 2^24), 5 lse.

struct VocabParams {
    rows: u32,
    cols: u32,
    col0: u32,
    first: u32,
    scale: f32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: VocabParams;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;

const WG: u32 = 64u;
const NEG: f32 = -3.0e38;

var<workgroup> s_max: array<f32, WG>;
var<workgroup> s_sum: array<f32, WG>;
var<workgroup> s_best: array<f32, WG>;
var<workgroup> s_idx: array<u32, WG>;

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(WG)
fn vocab_lse(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = row_of(wid, nwg);
    if (r >= p.rows) { return; }
    let base = r * p.cols;
    var m = NEG;
    var s = 0.0;
    var best = NEG;
    var idx = 0xffffffffu;
    for (var j = lid; j < p.cols; j += WG) {
        let x = logits[base + j];
        if (x > m) {
            s = s * exp(m - x) + 1.0;
            m = x;
        } else {
            s += exp(x - m);
        }
        if (x > best) {
            best = x;
            idx = j;
        }
    }
    s_max[lid] = m;
    s_sum[lid] = s;
    s_best[lid] = best;
    s_idx[lid] = idx;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w >>= 1u) {
        if (lid < w) {
            let m2 = s_max[lid + w];
            let mm = max(s_max[lid], m2);
            s_sum[lid] = s_sum[lid] * exp(s_max[lid] - mm) + s_sum[lid + w] * exp(m2 - mm);
            s_max[lid] = mm;
            let b2 = s_best[lid + w];
            let i2 = s_idx[lid + w];
            // the first index among equal maxima, as argmax takes it
            if (b2 > s_best[lid] || (b2 == s_best[lid] && i2 < s_idx[lid])) {
                s_best[lid] = b2;
                s_idx[lid] = i2;
            }
        }
        workgroupBarrier();
    }
    if (lid != 0u) { return; }
    let n = p.rows;
    var m0 = NEG;
    var sum0 = 0.0;
    var best0 = NEG;
    var idx0 = 0.0;
    var picked = 0.0;
    if (p.first == 0u) {
        m0 = state[r];
        sum0 = state[n + r];
        picked = state[2u * n + r];
        best0 = state[3u * n + r];
        idx0 = state[4u * n + r];
    }
    let mm = max(m0, s_max[0]);
    state[r] = mm;
    state[n + r] = sum0 * exp(m0 - mm) + s_sum[0] * exp(s_max[0] - mm);
    // chunks arrive in ascending ids: an earlier chunk wins a tie
    if (s_best[0] > best0) {
        best0 = s_best[0];
        idx0 = f32(p.col0 + s_idx[0]);
    }
    state[3u * n + r] = best0;
    state[4u * n + r] = idx0;
    let y = labels[r];
    if (y >= i32(p.col0) && y < i32(p.col0 + p.cols)) {
        picked = logits[base + u32(y) - p.col0];
    }
    state[2u * n + r] = picked;
}

@compute @workgroup_size(WG)
fn vocab_finish(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = row_of(wid, nwg) * WG + lid;
    if (r >= p.rows) { return; }
    let n = p.rows;
    let lse = state[r] + log(state[n + r]);
    state[5u * n + r] = lse;
    loss[r] = select(0.0, lse - state[2u * n + r], labels[r] >= 0);
}

@compute @workgroup_size(WG)
fn vocab_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = row_of(wid, nwg);
    if (r >= p.rows) { return; }
    let base = r * p.cols;
    let y = labels[r];
    let lse = state[5u * p.rows + r];
    for (var j = lid; j < p.cols; j += WG) {
        var g = 0.0;
        if (y >= 0) {
            g = p.scale * (exp(logits[base + j] - lse) - select(0.0, 1.0, p.col0 + j == u32(y)));
        }
        logits[base + j] = g;
    }
}
