// Softmax cross-entropy over rows of logits [R, C] with integer labels; label -100 is ignored
// (loss 0, gradient 0). Writes the per-row loss and dlogits = scale * (softmax - onehot).
// One thread per row: C is a handful of classes.

struct LossParams {
    rows: u32,
    classes: u32,
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: LossParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;

@compute @workgroup_size(64)
fn cross_entropy(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (r >= p.rows) { return; }
    let c = p.classes;
    let base = r * c;
    let y = labels[r];
    if (y < 0) {
        loss[r] = 0.0;
        for (var j = 0u; j < c; j++) { dlogits[base + j] = 0.0; }
        return;
    }
    var m = -3.0e38;
    for (var j = 0u; j < c; j++) { m = max(m, logits[base + j]); }
    var z = 0.0;
    for (var j = 0u; j < c; j++) { z += exp(logits[base + j] - m); }
    let lz = m + log(z);
    loss[r] = lz - logits[base + u32(y)];
    for (var j = 0u; j < c; j++) {
        let pj = exp(logits[base + j] - lz);
        dlogits[base + j] = p.scale * (pj - select(0.0, 1.0, j == u32(y)));
    }
}
