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

// The LayerNorm's input u = x + res.
fn ln_in(i: u32) -> f32 {
    return x[i] + res[i];
}

// (mean, 1/sqrt(var + eps)) of the row of u starting at b, two-pass, over the workgroup.
fn ln_stats(b: u32, h: u32, lid: u32) -> vec2<f32> {
    var s = 0.0;
    for (var i = lid; i < h; i += ROW_WG) { s += ln_in(b + i); }
    let mean = row_sum(s, lid) / f32(h);
    var v = 0.0;
    for (var i = lid; i < h; i += ROW_WG) {
        let d = ln_in(b + i) - mean;
        v += d * d;
    }
    return vec2<f32>(mean, inverseSqrt(row_sum(v, lid) / f32(h) + p.eps));
}

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
    let st = ln_stats(b, h, lid);
    let mean = st.x;
    let rstd = st.y;
    for (var i = lid; i < h; i += ROW_WG) {
        out[b + i] = (ln_in(b + i) - mean) * rstd * gamma[i] + beta[i];
    }
}

// LayerNorm backward, input gradient only (what importance scoring needs):
//   u = x + res (the forward's input rows), g = dy * gamma, u^ = (u - mean) * rstd
//   du = rstd * (g - mean(g) - u^ * mean(g * u^))
// du is the gradient for both x and res. Bindings: 1 x, 2 res, 3 dy, 4 gamma, 5 du.

@group(0) @binding(3) var<storage, read> bdy: array<f32>;
@group(0) @binding(4) var<storage, read> bgamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> bdx: array<f32>;


@compute @workgroup_size(ROW_WG)
fn ln_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_group(wid, nwg);
    if (row >= p.n_rows) { return; }
    let h = p.hidden;
    let b = row * h;
    let st = ln_stats(b, h, lid);
    let mean = st.x;
    let rstd = st.y;
    var sg = 0.0;
    var sgx = 0.0;
    for (var i = lid; i < h; i += ROW_WG) {
        let g = bdy[b + i] * bgamma[i];
        sg += g;
        sgx += g * (ln_in(b + i) - mean) * rstd;
    }
    let mg = row_sum(sg, lid) / f32(h);
    let mgx = row_sum(sgx, lid) / f32(h);
    for (var i = lid; i < h; i += ROW_WG) {
        let xh = (ln_in(b + i) - mean) * rstd;
        bdx[b + i] = rstd * (bdy[b + i] * bgamma[i] - mg - xh * mgx);
    }
}

// LayerNorm parameter gradients, in two passes over u = x + res:
//   ln_row_stats (one workgroup per row): stats[2r] = mean_r, stats[2r+1] = rstd_r
//   ln_param_grad (one thread per column i): dgamma[i] = sum_r dy[r,i] * u^[r,i],
//                                           dbeta[i]  = sum_r dy[r,i]
// Bindings: 1 x, 2 res, 3 dy, 6 stats, 7 dgamma, 8 dbeta.

@group(0) @binding(6) var<storage, read_write> row_stats: array<f32>;
@group(0) @binding(7) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(8) var<storage, read_write> dbeta: array<f32>;

@compute @workgroup_size(ROW_WG)
fn ln_row_stats(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_group(wid, nwg);
    if (row >= p.n_rows) { return; }
    let h = p.hidden;
    let b = row * h;
    let st = ln_stats(b, h, lid);
    let mean = st.x;
    let rstd = st.y;
    if (lid == 0u) {
        row_stats[2u * row] = mean;
        row_stats[2u * row + 1u] = rstd;
    }
}

// Add the parameter gradients into dgamma and dbeta (a layer shared by several applications).
override ACCUMULATE: bool = false;

@compute @workgroup_size(64)
fn ln_param_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_group(wid, nwg) * 64u + lid;
    if (i >= p.hidden) { return; }
    var dg = 0.0;
    var db = 0.0;
    for (var r = 0u; r < p.n_rows; r++) {
        let k = r * p.hidden + i;
        let d = bdy[k];
        dg += d * (ln_in(k) - row_stats[2u * r]) * row_stats[2u * r + 1u];
        db += d;
    }
    if (ACCUMULATE) {
        dgamma[i] += dg;
        dbeta[i] += db;
    } else {
        dgamma[i] = dg;
        dbeta[i] = db;
    }
}

// vec4 forms of every entry above for rows whose width is a multiple of 4 (every real model):
// a lane loads and stores whole vectors, a quarter of the memory instructions (lavapipe runs
// each storage access as a loop over the lanes; GPUs get 16-byte accesses). Same bindings.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> res4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> gamma4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> beta4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out4: array<vec4<f32>>;

fn ln_in4(i: u32) -> vec4<f32> {
    return x4[i] + res4[i];
}

// As ln_stats over the row of h4 vectors starting at vector b.
fn ln_stats4(b: u32, h4: u32, lid: u32) -> vec2<f32> {
    var s = vec4<f32>(0.0);
    for (var i = lid; i < h4; i += ROW_WG) { s += ln_in4(b + i); }
    let h = f32(4u * h4);
    let mean = row_sum(hsum4(s), lid) / h;
    var v = vec4<f32>(0.0);
    for (var i = lid; i < h4; i += ROW_WG) {
        let d = ln_in4(b + i) - mean;
        v += d * d;
    }
    return vec2<f32>(mean, inverseSqrt(row_sum(hsum4(v), lid) / h + p.eps));
}

@compute @workgroup_size(ROW_WG)
fn add_ln4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_group(wid, nwg);
    if (row >= p.n_rows) { return; }
    let h4 = p.hidden / 4u;
    let b = row * h4;
    let st = ln_stats4(b, h4, lid);
    for (var i = lid; i < h4; i += ROW_WG) {
        out4[b + i] = (ln_in4(b + i) - st.x) * st.y * gamma4[i] + beta4[i];
    }
}

@group(0) @binding(3) var<storage, read> bdy4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bgamma4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> bdx4: array<vec4<f32>>;

@compute @workgroup_size(ROW_WG)
fn ln_backward4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_group(wid, nwg);
    if (row >= p.n_rows) { return; }
    let h4 = p.hidden / 4u;
    let b = row * h4;
    let st = ln_stats4(b, h4, lid);
    var sg = vec4<f32>(0.0);
    var sgx = vec4<f32>(0.0);
    for (var i = lid; i < h4; i += ROW_WG) {
        let g = bdy4[b + i] * bgamma4[i];
        sg += g;
        sgx += g * (ln_in4(b + i) - st.x) * st.y;
    }
    let h = f32(p.hidden);
    let mg = row_sum(hsum4(sg), lid) / h;
    let mgx = row_sum(hsum4(sgx), lid) / h;
    for (var i = lid; i < h4; i += ROW_WG) {
        let xh = (ln_in4(b + i) - st.x) * st.y;
        bdx4[b + i] = st.y * (bdy4[b + i] * bgamma4[i] - mg - xh * mgx);
    }
}

@compute @workgroup_size(ROW_WG)
fn ln_row_stats4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_group(wid, nwg);
    if (row >= p.n_rows) { return; }
    let h4 = p.hidden / 4u;
    let st = ln_stats4(row * h4, h4, lid);
    if (lid == 0u) {
        row_stats[2u * row] = st.x;
        row_stats[2u * row + 1u] = st.y;
    }
}

@group(0) @binding(7) var<storage, read_write> dgamma4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dbeta4: array<vec4<f32>>;

// One lane per 4 columns.
@compute @workgroup_size(64)
fn ln_param_grad4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_group(wid, nwg) * 64u + lid;
    let h4 = p.hidden / 4u;
    if (i >= h4) { return; }
    var dg = vec4<f32>(0.0);
    var db = vec4<f32>(0.0);
    for (var r = 0u; r < p.n_rows; r++) {
        let k = r * h4 + i;
        let d = bdy4[k];
        dg += d * (ln_in4(k) - row_stats[2u * r]) * row_stats[2u * r + 1u];
        db += d;
    }
    if (ACCUMULATE) {
        dgamma4[i] += dg;
        dbeta4[i] += db;
    } else {
        dgamma4[i] = dg;
        dbeta4[i] = db;
    }
}
