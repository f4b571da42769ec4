// Embeddings fused with LayerNorm: out[r] = LN(word[id] + pos[r % T + offset] + type[tt]) * gamma
// + beta (offset 0, or RoBERTa's padding_idx + 1).
// The word table may be split into chunks of rows (so no binding exceeds the adapter's limit):
// one dispatch per chunk, and each token is written only by the dispatch whose chunk holds its id.

struct EmbedParams {
    n_rows: u32,   // B * T
    hidden: u32,
    seq_len: u32,  // T: position of row r is r % T
    row0: u32,     // first vocabulary id in this chunk
    rows: u32,     // ids in this chunk
    n_types: u32,
    eps: f32,
    pos_offset: u32,
}

@group(0) @binding(0) var<uniform> p: EmbedParams;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> type_ids: array<u32>;
@group(0) @binding(3) var<storage, read> word: array<f32>;
@group(0) @binding(4) var<storage, read> pos: array<f32>;
@group(0) @binding(5) var<storage, read> typ: array<f32>;
@group(0) @binding(6) var<storage, read> gamma: array<f32>;
@group(0) @binding(7) var<storage, read> beta: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(ROW_WG)
fn embed_ln(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_group(wid, nwg);
    if (row >= p.n_rows) { return; }
    let id = ids[row];
    let inside = id >= p.row0 && id < p.row0 + p.rows;
    let w0 = select(0u, id - p.row0, inside) * p.hidden;
    let p0 = (row % p.seq_len + p.pos_offset) * p.hidden;
    let t0 = min(type_ids[row], p.n_types - 1u) * p.hidden;
    let h = p.hidden;

    var s = 0.0;
    for (var i = lid; i < h; i += ROW_WG) {
        s += word[w0 + i] + pos[p0 + i] + typ[t0 + i];
    }
    let mean = row_sum(s, lid) / f32(h);
    var v = 0.0;
    for (var i = lid; i < h; i += ROW_WG) {
        let d = word[w0 + i] + pos[p0 + i] + typ[t0 + i] - mean;
        v += d * d;
    }
    let rstd = inverseSqrt(row_sum(v, lid) / f32(h) + p.eps);
    if (inside) {
        for (var i = lid; i < h; i += ROW_WG) {
            let x = word[w0 + i] + pos[p0 + i] + typ[t0 + i];
            out[row * h + i] = (x - mean) * rstd * gamma[i] + beta[i];
        }
    }
}

// The pre-LayerNorm sum u[r] = word[id] + pos[r % T] + type[tt] alone, for the backward pass
// (LayerNorm and embedding-table gradients need u). One dispatch per word-table chunk, as above.
@compute @workgroup_size(ROW_WG)
fn embed_sum(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_group(wid, nwg);
    if (row >= p.n_rows) { return; }
    let id = ids[row];
    if (id < p.row0 || id >= p.row0 + p.rows) { return; }
    let w0 = (id - p.row0) * p.hidden;
    let p0 = (row % p.seq_len + p.pos_offset) * p.hidden;
    let t0 = min(type_ids[row], p.n_types - 1u) * p.hidden;
    for (var i = lid; i < p.hidden; i += ROW_WG) {
        out[row * p.hidden + i] = word[w0 + i] + pos[p0 + i] + typ[t0 + i];
    }
}
