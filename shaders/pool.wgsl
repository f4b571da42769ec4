// Sentence embeddings from the last hidden states x [B, T, H], as sentence-transformers' Pooling
// and Normalize modules compute them: per example, over its len real tokens, the mean
// (MODE 0), the first token (1), the maximum (2), or the sum divided by sqrt(len) (3) of each
// column; with NORMALIZE, the row divided by max(its L2 norm, 1e-12).
// One workgroup per example; each invocation owns the columns lid, lid + ROW_WG, ...
// row_common.wgsl is prepended (row_sum, flat_group, ROW_WG).

override MODE: u32 = 0u;
override NORMALIZE: bool = false;

struct PoolParams {
    batch: u32,
    seq: u32,
    hidden: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(ROW_WG)
fn pool(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // the dispatch may be split over two dimensions past the per-dimension limit
    let e = flat_group(wid, nwg);
    // every invocation of a workgroup takes the same branch: e is uniform
    if (e >= p.batch) { return; }
    let n = max(lens[e], 1u);
    let row0 = e * p.seq * p.hidden;
    var sq = 0.0;
    for (var j = lid; j < p.hidden; j += ROW_WG) {
        var v = 0.0;
        if (MODE == 1u) {
            v = x[row0 + j];
        } else if (MODE == 2u) {
            v = x[row0 + j];
            for (var t = 1u; t < n; t++) {
                v = max(v, x[row0 + t * p.hidden + j]);
            }
        } else {
            for (var t = 0u; t < n; t++) {
                v += x[row0 + t * p.hidden + j];
            }
            if (MODE == 0u) {
                v = v / f32(n);
            } else {
                v = v / sqrt(f32(n));
            }
        }
        out[e * p.hidden + j] = v;
        sq += v * v;
    }
    if (NORMALIZE) {
        let norm = max(sqrt(row_sum(sq, lid)), 1e-12);
        for (var j = lid; j < p.hidden; j += ROW_WG) {
            out[e * p.hidden + j] = out[e * p.hidden + j] / norm;
        }
    }
}
