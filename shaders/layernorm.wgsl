// LayerNorm fused with the residual add: out[r] = LN(x[r] + res[r]) * gamma + beta.

struct LnParams {
    n_rows: u32,
    hidden: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: LnParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> res: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(ROW_WG)
fn add_ln(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_group(wid, nwg);
    if (row >= p.n_rows) { return; }
    let h = p.hidden;
    let b = row * h;
    var s = 0.0;
    for (var i = lid; i < h; i += ROW_WG) {
        s += x[b + i] + res[b + i];
    }
    let mean = row_sum(s, lid) / f32(h);
    var v = 0.0;
    for (var i = lid; i < h; i += ROW_WG) {
        let d = x[b + i] + res[b + i] - mean;
        v += d * d;
    }
    let rstd = inverseSqrt(row_sum(v, lid) / f32(h) + p.eps);
    for (var i = lid; i < h; i += ROW_WG) {
        out[b + i] = (x[b + i] + res[b + i] - mean) * rstd * gamma[i] + beta[i];
    }
}
