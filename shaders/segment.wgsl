// Deterministic scatter-add through a segment sum (WGSL has no float atomics): the host groups
// source rows by target row (CSR: targets[g], offsets[g]..offsets[g+1] into rows[]), and one
// workgroup per group adds the sum of its source rows into out[targets[g]]:
//   out[targets[g], c] += sum_{e in offsets[g]..offsets[g+1]} src[rows[e], c]
// Embedding gradients use it for the word, position and token-type tables.

struct SegParams {
    groups: u32,
    width: u32,
    seq: u32,   // relative_bias only: T
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: SegParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read> rows: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn segment_add(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.groups) { return; }
    let t = targets[g];
    let e0 = offsets[g];
    let e1 = offsets[g + 1u];
    for (var c = lid; c < p.width; c += 64u) {
        var s = 0.0;
        for (var e = e0; e < e1; e++) { s += src[rows[e] * p.width + c]; }
        out[t * p.width + c] += s;
    }
}

// Row gather: out[r, c] = src[targets[r], c] for r < groups (the rows a masked-LM head reads).
@compute @workgroup_size(64)
fn gather_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= p.groups) { return; }
    let s = targets[r];
    for (var c = lid; c < p.width; c += 64u) {
        out[r * p.width + c] = src[s * p.width + c];
    }
}

// Relative position bias per computed head (MPNet): with T = p.seq, `src` the bias table
// [buckets, width] (width = the model's heads), `targets` the bucket of each relative position
// (key − query + T − 1, 2T − 1 of them) and `rows` the computed heads' original indices,
//   out[(h * T + t) * T + j] = src[targets[j + T − 1 − t] * width + rows[h]], h < groups.
@compute @workgroup_size(64)
fn relative_bias(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let seq = p.seq;
    let ht = wid.x + wid.y * nwg.x; // one workgroup per (head, query)
    if (ht >= p.groups * seq) { return; }
    let h = ht / seq;
    let t = ht % seq;
    let col = rows[h];
    for (var j = lid; j < seq; j += 64u) {
        out[ht * seq + j] = src[targets[j + seq - 1u - t] * p.width + col];
    }
}
