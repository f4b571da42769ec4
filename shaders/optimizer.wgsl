// AdamW with decoupled weight decay, exactly as torch.optim.AdamW:
//   p <- p * (1 - lr * wd)
//   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2        (g = grad * grad_scale)
//   p <- p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),   bc_i = 1 - b_i^step
// grad_scale carries gradient clipping (min(1, max_norm / ||g||)) computed from sum_squares.

struct AdamParams {
    n: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    bc1: f32,
    bc2_sqrt: f32,
    grad_scale: f32,
}

@group(0) @binding(0) var<uniform> p: AdamParams;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m1: array<f32>;
@group(0) @binding(4) var<storage, read_write> m2: array<f32>;

@compute @workgroup_size(64)
fn adamw(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= p.n) { return; }
    let g = grad[i] * p.grad_scale;
    let m = p.beta1 * m1[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * m2[i] + (1.0 - p.beta2) * g * g;
    m1[i] = m;
    m2[i] = v;
    let decayed = param[i] * (1.0 - p.lr * p.weight_decay);
    param[i] = decayed - (p.lr / p.bc1) * m / (sqrt(v) / p.bc2_sqrt + p.eps);
}

// Partial sums of squares, one per workgroup of 64, for the global gradient norm; written at
// partial[first + group] so that every tensor's partials share one buffer (one read-back).
struct SumParams {
    n: u32,
    first: u32,
    _q1: u32,
    _q2: u32,
}

@group(0) @binding(0) var<uniform> sp: SumParams;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

var<workgroup> red: array<f32, 64>;

// Each workgroup sums SPAN consecutive values (few workgroups: barriers are costly on CPU
// adapters), then reduces its 64 lanes.
const SPAN: u32 = 4096u;

@compute @workgroup_size(64)
fn sum_squares(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    let end = min(sp.n, (g + 1u) * SPAN);
    var v = 0.0;
    for (var i = g * SPAN + lid; i < end; i += 64u) { v = fma(values[i], values[i], v); }
    red[lid] = v;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s / 2u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    if (lid == 0u) { partial[sp.first + g] = red[0]; }
}
