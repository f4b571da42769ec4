// Elementwise activation backward: dx = dy * act'(.)
//   gelu_backward: from the pre-activation x: gelu'(x) = Phi(x) + x * phi(x) (erf form), or the
//                  derivative of the tanh form when TANH_GELU (ALBERT's gelu_new)
//   tanh_backward: from the output y: tanh' = 1 - y^2
//   relu_backward: from the output y: relu' = (y > 0)
// gelu_forward writes gelu(saved) into dx (bindings reused). erf.wgsl is prepended.
// Every entry has a vec4 twin (`name4`) for lengths that are a multiple of 4 (the tensors of
// every real model): a lane loads and stores whole vectors, a quarter of the memory
// instructions. lavapipe runs each storage access as a loop over the lanes, so the twins are
// ~3x faster there; GPUs get 16-byte accesses. The wrappers pick them by length. Each formula
// is written once, on vec4; the scalar entries call it on a splat and keep one component (the
// compilers drop the other three).

struct ActParams {
    n: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

// GELU's tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), for
// gelu_forward and gelu_backward.
override TANH_GELU: bool = false;

@group(0) @binding(0) var<uniform> p: ActParams;
@group(0) @binding(1) var<storage, read> saved: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 64u + lid;
}

fn gelu4(x: vec4<f32>) -> vec4<f32> {
    if (TANH_GELU) {
        return 0.5 * x * (1.0 + tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)));
    }
    return 0.5 * x * (1.0 + erf_approx4(x * 0.70710678118654752));
}

fn gelu_grad4(x: vec4<f32>) -> vec4<f32> {
    if (TANH_GELU) {
        let th = tanh(0.79788456080286536 * (x + 0.044715 * x * x * x));
        let du = 0.79788456080286536 * (1.0 + 0.134145 * x * x);
        return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
    }
    let cdf = 0.5 * (1.0 + erf_approx4(x * 0.70710678118654752));
    let pdf = 0.39894228040143268 * exp(-0.5 * x * x);
    return cdf + x * pdf;
}

fn relu_grad4(y: vec4<f32>, d: vec4<f32>) -> vec4<f32> {
    return select(vec4<f32>(0.0), d, y > vec4<f32>(0.0));
}

@compute @workgroup_size(64)
fn gelu_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    dx[i] = dy[i] * gelu_grad4(vec4<f32>(saved[i])).x;
}

@compute @workgroup_size(64)
fn tanh_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let y = saved[i];
    dx[i] = dy[i] * (1.0 - y * y);
}

@compute @workgroup_size(64)
fn relu_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    dx[i] = relu_grad4(vec4<f32>(saved[i]), vec4<f32>(dy[i])).x;
}

// Forward GELU (erf or tanh form) as its own pass, where the pre-activation must be kept.
@compute @workgroup_size(64)
fn gelu_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    dx[i] = gelu4(vec4<f32>(saved[i])).x;
}

// Inverted dropout with a counter-based hash, deterministic for a seed: element i is kept when
// hash(seed, i) / 2^32 >= p, and then scaled by 1 / (1 - p). The op is linear for a fixed
// mask, so the backward pass is the same call on dy with the same seed.
struct DropParams {
    n: u32,
    seed: u32,
    prob: f32,
    _q: u32,
}

@group(0) @binding(0) var<uniform> dp: DropParams;
@group(0) @binding(1) var<storage, read> dsrc: array<f32>;
@group(0) @binding(3) var<storage, read_write> ddst: array<f32>;

fn pcg_hash4(v: vec4<u32>) -> vec4<u32> {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> vec4<u32>(28u)) + 4u)) ^ state) * 277803737u;
    return (word >> vec4<u32>(22u)) ^ word;
}

// x / (1 - p) where element e's hash keeps it, else 0: elements e of x.
fn dropped4(x: vec4<f32>, e: vec4<u32>) -> vec4<f32> {
    let seed = pcg_hash4(vec4<u32>(dp.seed)).x;
    let r = pcg_hash4(e ^ vec4<u32>(seed));
    let u = vec4<f32>(r >> vec4<u32>(8u)) * (1.0 / 16777216.0);
    return select(vec4<f32>(0.0), x / (1.0 - dp.prob), u >= vec4<f32>(dp.prob));
}

@compute @workgroup_size(64)
fn dropout(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= dp.n) { return; }
    ddst[i] = dropped4(vec4<f32>(dsrc[i]), vec4<u32>(i)).x;
}

@group(0) @binding(1) var<storage, read> saved4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn gelu_forward4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.n / 4u) { return; }
    dx4[i] = gelu4(saved4[i]);
}

@compute @workgroup_size(64)
fn gelu_backward4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.n / 4u) { return; }
    dx4[i] = dy4[i] * gelu_grad4(saved4[i]);
}

@compute @workgroup_size(64)
fn tanh_backward4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.n / 4u) { return; }
    let y = saved4[i];
    dx4[i] = dy4[i] * (1.0 - y * y);
}

@compute @workgroup_size(64)
fn relu_backward4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= p.n / 4u) { return; }
    dx4[i] = relu_grad4(saved4[i], dy4[i]);
}

@group(0) @binding(1) var<storage, read> dsrc4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> ddst4: array<vec4<f32>>;

// The same mask as dropout: element 4i + k hashes its own index.
@compute @workgroup_size(64)
fn dropout4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if (i >= dp.n / 4u) { return; }
    ddst4[i] = dropped4(dsrc4[i], 4u * i + vec4<u32>(0u, 1u, 2u, 3u));
}
