// Backward of the fused head-gated attention (attention.wgsl), FlashAttention-2 style: P is
// recomputed from Q, K and the saved log-sum-exp, so no [B, H, T, T] buffer exists.
//   forward:  O_t = sum_j P_tj V_j (ungated), out_t = gate * O_t, P = softmax(scale * Q K^T)
//   given dout (gradient of out):
//     dgate      = sum_t <dout_t, O_t>
//     dO_t       = gate * dout_t,   D_t = <dO_t, O_t>
//     dS_tj      = P_tj (<dO_t, V_j> - D_t)
//     dQ_t       = scale * sum_j dS_tj K_j
//     dK_j       = scale * sum_t dS_tj Q_t,   dV_j = sum_t P_tj dO_t
// O_t is the saved output divided by the gate; a head whose gate is 0 was skipped by the
// forward, so its statistics and O are recomputed here (its dgate is still exact).
// Three entry points: attn_bwd_q (one thread per query: dQ, D, lse, per-query gate terms),
// attn_bwd_kv (one thread per key: dK, dV), attn_gate_grad (one thread per (b, h): dgate and
// the entropy summed over real query tokens).
// dqkv has qkv's layout [B*T, 3H], so the QKV projection's backward is one matmul.

struct AttnParams {
    seq: u32,
    heads: u32,
    hidden: u32,
    blocks: u32,     // ceil(T / BQ)
    gate_off: u32,    // this layer's first head in a row of the gate buffer
    gate_stride: u32, // gates per example (all layers' heads)
    total: u32,      // B * heads * blocks (or B * heads for attn_gate_grad)
    scale: f32,
}

override BQ: u32 = 64u;
override HEAD_DIM: u32 = 64u;
const MAX_D: u32 = 128u;

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read> gates: array<f32>;
@group(0) @binding(4) var<storage, read> out_g: array<f32>;
@group(0) @binding(5) var<storage, read> lse_saved: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read_write> dqkv: array<f32>;
// Per query row, five planes of n = B * heads * T: D_t, the lse used, <dout_t, O_t>, the
// attention entropy -sum_j P_tj log P_tj and the largest weight max_j P_tj (no attention map
// is stored).
@group(0) @binding(8) var<storage, read_write> stats: array<f32>;
@group(0) @binding(9) var<storage, read_write> dgates: array<f32>;
// [B, L, heads]: entropy summed over each example's real (non-pad) query tokens.
@group(0) @binding(10) var<storage, read_write> entsum: array<f32>;
// [B, L, heads]: sum_t |<dout_t, O_t>| (token-level importance, Michel et al.'s code).
@group(0) @binding(11) var<storage, read_write> tokabs: array<f32>;
// [B, L, heads]: max_j P_tj summed over real query tokens (Voita et al.'s confidence).
@group(0) @binding(12) var<storage, read_write> confsum: array<f32>;

fn plane() -> u32 {
    return (p.total / p.blocks) * p.seq;
}

struct Block {
    b: u32,
    h: u32,
    blk: u32,
}

fn block_of(g: u32) -> Block {
    let bh = g / p.blocks;
    return Block(bh / p.heads, bh % p.heads, g % p.blocks);
}

fn gate_at(b: u32, h: u32) -> f32 {
    return gates[b * p.gate_stride + p.gate_off + h];
}

fn q_at(b: u32, t: u32, h: u32, i: u32) -> f32 {
    return qkv[(b * p.seq + t) * 3u * p.hidden + h * HEAD_DIM + i];
}
fn k_at(b: u32, t: u32, h: u32, i: u32) -> f32 {
    return qkv[(b * p.seq + t) * 3u * p.hidden + p.hidden + h * HEAD_DIM + i];
}
fn v_at(b: u32, t: u32, h: u32, i: u32) -> f32 {
    return qkv[(b * p.seq + t) * 3u * p.hidden + 2u * p.hidden + h * HEAD_DIM + i];
}

@compute @workgroup_size(BQ)
fn attn_bwd_q(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let bl = block_of(g);
    let b = bl.b;
    let h = bl.h;
    let t = bl.blk * BQ + lid;
    if (t >= p.seq) { return; }
    let d = HEAD_DIM;
    let len = lens[b];
    let gate = gate_at(b, h);
    let orow = (b * p.seq + t) * p.hidden + h * d;
    let srow = (b * p.heads + h) * p.seq + t;

    var q: array<f32, MAX_D>;
    var o: array<f32, MAX_D>;
    var dov: array<f32, MAX_D>;
    var dq: array<f32, MAX_D>;
    for (var i = 0u; i < d; i++) {
        q[i] = q_at(b, t, h, i) * p.scale;
        dq[i] = 0.0;
    }
    var lse = 0.0;
    if (gate != 0.0) {
        lse = lse_saved[srow];
        for (var i = 0u; i < d; i++) { o[i] = out_g[orow + i] / gate; }
    } else {
        // recompute the skipped head's softmax statistics and output
        var m = -3.0e38;
        var l = 0.0;
        for (var i = 0u; i < d; i++) { o[i] = 0.0; }
        for (var j = 0u; j < len; j++) {
            var s = 0.0;
            for (var i = 0u; i < d; i++) { s = fma(q[i], k_at(b, j, h, i), s); }
            let mn = max(m, s);
            let corr = exp(m - mn);
            let pj = exp(s - mn);
            l = l * corr + pj;
            for (var i = 0u; i < d; i++) { o[i] = o[i] * corr + pj * v_at(b, j, h, i); }
            m = mn;
        }
        for (var i = 0u; i < d; i++) { o[i] /= l; }
        lse = m + log(l);
    }
    var gp = 0.0;
    for (var i = 0u; i < d; i++) {
        let dg = dout[orow + i];
        gp = fma(dg, o[i], gp);
        dov[i] = gate * dg;
    }
    let dt = gate * gp;
    var ent = 0.0;
    var pmax = 0.0;
    for (var j = 0u; j < len; j++) {
        var s = 0.0;
        var dp = 0.0;
        for (var i = 0u; i < d; i++) {
            s = fma(q[i], k_at(b, j, h, i), s);
            dp = fma(dov[i], v_at(b, j, h, i), dp);
        }
        let pj = exp(s - lse);
        ent += pj * (lse - s);
        pmax = max(pmax, pj);
        let ds = pj * (dp - dt);
        for (var i = 0u; i < d; i++) { dq[i] = fma(ds, k_at(b, j, h, i), dq[i]); }
    }
    let qrow = (b * p.seq + t) * 3u * p.hidden + h * d;
    for (var i = 0u; i < d; i++) { dqkv[qrow + i] = dq[i] * p.scale; }
    let n = plane();
    stats[srow] = dt;
    stats[n + srow] = lse;
    stats[2u * n + srow] = gp;
    stats[3u * n + srow] = ent;
    stats[4u * n + srow] = pmax;
}

@compute @workgroup_size(BQ)
fn attn_bwd_kv(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let bl = block_of(g);
    let b = bl.b;
    let h = bl.h;
    let j = bl.blk * BQ + lid;
    if (j >= p.seq) { return; }
    let d = HEAD_DIM;
    let gate = gate_at(b, h);
    let krow = (b * p.seq + j) * 3u * p.hidden + p.hidden + h * d;
    let vrow = krow + p.hidden;
    var k: array<f32, MAX_D>;
    var v: array<f32, MAX_D>;
    var dk: array<f32, MAX_D>;
    var dv: array<f32, MAX_D>;
    for (var i = 0u; i < d; i++) {
        k[i] = k_at(b, j, h, i);
        v[i] = v_at(b, j, h, i);
        dk[i] = 0.0;
        dv[i] = 0.0;
    }
    let n = plane();
    if (j < lens[b]) {
        // every query row attends to this key, padded query rows included
        for (var t = 0u; t < p.seq; t++) {
            let srow = (b * p.heads + h) * p.seq + t;
            let orow = (b * p.seq + t) * p.hidden + h * d;
            var s = 0.0;
            var dp = 0.0;
            for (var i = 0u; i < d; i++) {
                s = fma(q_at(b, t, h, i), k[i], s);
                dp = fma(dout[orow + i], v[i], dp);
            }
            let pj = exp(s * p.scale - stats[n + srow]);
            let ds = pj * (gate * dp - stats[srow]);
            for (var i = 0u; i < d; i++) {
                let dg = gate * dout[orow + i];
                dv[i] = fma(pj, dg, dv[i]);
                dk[i] = fma(ds, q_at(b, t, h, i), dk[i]);
            }
        }
    }
    for (var i = 0u; i < d; i++) {
        dqkv[krow + i] = dk[i] * p.scale;
        dqkv[vrow + i] = dv[i];
    }
}

@compute @workgroup_size(64)
fn attn_gate_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= p.total) { return; }
    let b = i / p.heads;
    let h = i % p.heads;
    let n = plane(); // dispatched with blocks = 1, total = B * heads
    let row = (b * p.heads + h) * p.seq;
    var s = 0.0;
    var a = 0.0;
    for (var t = 0u; t < p.seq; t++) {
        let g = stats[2u * n + row + t];
        s += g;
        a += abs(g);
    }
    var e = 0.0;
    var c = 0.0;
    for (var t = 0u; t < min(lens[b], p.seq); t++) {
        e += stats[3u * n + row + t];
        c += stats[4u * n + row + t];
    }
    let o = b * p.gate_stride + p.gate_off + h;
    dgates[o] = s;
    entsum[o] = e;
    tokabs[o] = a;
    confsum[o] = c;
}

// ---- Variants for CPU adapters (lavapipe): Q|K|V and dout are read as vec4 texels of
// rgba32float textures (packed by matmul_texture.wgsl's pack_rows), as attention.wgsl's
// attention_fwd_tex does; same math and outputs. Needs head_dim % 4 == 0.

@group(0) @binding(1) var tqkv: texture_2d<f32>;
@group(0) @binding(6) var tdout: texture_2d<f32>;

const MAX_D4: u32 = 32u;

fn qkv4(row: u32, x: u32) -> vec4<f32> {
    return textureLoad(tqkv, vec2<i32>(i32(x), i32(row)), 0);
}

fn dout4(row: u32, x: u32) -> vec4<f32> {
    return textureLoad(tdout, vec2<i32>(i32(x), i32(row)), 0);
}

@compute @workgroup_size(BQ)
fn attn_bwd_q_tex(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let bl = block_of(g);
    let b = bl.b;
    let h = bl.h;
    let t = bl.blk * BQ + lid;
    if (t >= p.seq) { return; }
    let d4 = HEAD_DIM / 4u;
    let len = lens[b];
    let gate = gate_at(b, h);
    let qx = h * d4;
    let kx = p.hidden / 4u + h * d4;
    let vx = 2u * p.hidden / 4u + h * d4;
    let ox = h * d4;
    let row = b * p.seq + t;
    let srow = (b * p.heads + h) * p.seq + t;
    let orow = row * p.hidden + h * HEAD_DIM;
    var q: array<vec4<f32>, MAX_D4>;
    var o: array<vec4<f32>, MAX_D4>;
    var dov: array<vec4<f32>, MAX_D4>;
    var dq: array<vec4<f32>, MAX_D4>;
    for (var i = 0u; i < d4; i++) {
        q[i] = qkv4(row, qx + i) * p.scale;
        dq[i] = vec4<f32>(0.0);
    }
    var lse = 0.0;
    if (gate != 0.0) {
        lse = lse_saved[srow];
        for (var i = 0u; i < d4; i++) {
            o[i] = vec4<f32>(out_g[orow + 4u * i], out_g[orow + 4u * i + 1u], out_g[orow + 4u * i + 2u],
                out_g[orow + 4u * i + 3u]) / gate;
        }
    } else {
        var m = -3.0e38;
        var l = 0.0;
        for (var i = 0u; i < d4; i++) { o[i] = vec4<f32>(0.0); }
        for (var j = 0u; j < len; j++) {
            let kr = b * p.seq + j;
            var s4 = vec4<f32>(0.0);
            for (var i = 0u; i < d4; i++) { s4 = fma(q[i], qkv4(kr, kx + i), s4); }
            let s = s4.x + s4.y + s4.z + s4.w;
            let mn = max(m, s);
            let corr = exp(m - mn);
            let pj = exp(s - mn);
            l = l * corr + pj;
            for (var i = 0u; i < d4; i++) { o[i] = o[i] * corr + pj * qkv4(kr, vx + i); }
            m = mn;
        }
        for (var i = 0u; i < d4; i++) { o[i] /= l; }
        lse = m + log(l);
    }
    var gp4 = vec4<f32>(0.0);
    for (var i = 0u; i < d4; i++) {
        let dg = dout4(row, ox + i);
        gp4 = fma(dg, o[i], gp4);
        dov[i] = gate * dg;
    }
    let gp = gp4.x + gp4.y + gp4.z + gp4.w;
    let dt = gate * gp;
    var ent = 0.0;
    var pmax = 0.0;
    for (var j = 0u; j < len; j++) {
        let kr = b * p.seq + j;
        var s4 = vec4<f32>(0.0);
        var dp4 = vec4<f32>(0.0);
        for (var i = 0u; i < d4; i++) {
            s4 = fma(q[i], qkv4(kr, kx + i), s4);
            dp4 = fma(dov[i], qkv4(kr, vx + i), dp4);
        }
        let s = s4.x + s4.y + s4.z + s4.w;
        let pj = exp(s - lse);
        ent += pj * (lse - s);
        pmax = max(pmax, pj);
        let ds = pj * (dp4.x + dp4.y + dp4.z + dp4.w - dt);
        for (var i = 0u; i < d4; i++) { dq[i] = fma(vec4<f32>(ds), qkv4(kr, kx + i), dq[i]); }
    }
    let qrow = row * 3u * p.hidden + h * HEAD_DIM;
    for (var i = 0u; i < d4; i++) {
        let v = dq[i] * p.scale;
        dqkv[qrow + 4u * i] = v.x;
        dqkv[qrow + 4u * i + 1u] = v.y;
        dqkv[qrow + 4u * i + 2u] = v.z;
        dqkv[qrow + 4u * i + 3u] = v.w;
    }
    let n = plane();
    stats[srow] = dt;
    stats[n + srow] = lse;
    stats[2u * n + srow] = gp;
    stats[3u * n + srow] = ent;
    stats[4u * n + srow] = pmax;
}

@compute @workgroup_size(BQ)
fn attn_bwd_kv_tex(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let bl = block_of(g);
    let b = bl.b;
    let h = bl.h;
    let j = bl.blk * BQ + lid;
    if (j >= p.seq) { return; }
    let d4 = HEAD_DIM / 4u;
    let gate = gate_at(b, h);
    let qx = h * d4;
    let kx = p.hidden / 4u + h * d4;
    let vx = 2u * p.hidden / 4u + h * d4;
    let ox = h * d4;
    let krow = b * p.seq + j;
    var k: array<vec4<f32>, MAX_D4>;
    var v: array<vec4<f32>, MAX_D4>;
    var dk: array<vec4<f32>, MAX_D4>;
    var dv: array<vec4<f32>, MAX_D4>;
    for (var i = 0u; i < d4; i++) {
        k[i] = qkv4(krow, kx + i);
        v[i] = qkv4(krow, vx + i);
        dk[i] = vec4<f32>(0.0);
        dv[i] = vec4<f32>(0.0);
    }
    let n = plane();
    if (j < lens[b]) {
        for (var t = 0u; t < p.seq; t++) {
            let row = b * p.seq + t;
            let srow = (b * p.heads + h) * p.seq + t;
            var s4 = vec4<f32>(0.0);
            var dp4 = vec4<f32>(0.0);
            for (var i = 0u; i < d4; i++) {
                s4 = fma(qkv4(row, qx + i), k[i], s4);
                dp4 = fma(dout4(row, ox + i), v[i], dp4);
            }
            let s = s4.x + s4.y + s4.z + s4.w;
            let pj = exp(s * p.scale - stats[n + srow]);
            let ds = pj * (gate * (dp4.x + dp4.y + dp4.z + dp4.w) - stats[srow]);
            for (var i = 0u; i < d4; i++) {
                dv[i] = fma(vec4<f32>(pj * gate), dout4(row, ox + i), dv[i]);
                dk[i] = fma(vec4<f32>(ds), qkv4(row, qx + i), dk[i]);
            }
        }
    }
    let kbase = krow * 3u * p.hidden + p.hidden + h * HEAD_DIM;
    let vbase = kbase + p.hidden;
    for (var i = 0u; i < d4; i++) {
        let a = dk[i] * p.scale;
        let c = dv[i];
        dqkv[kbase + 4u * i] = a.x;
        dqkv[kbase + 4u * i + 1u] = a.y;
        dqkv[kbase + 4u * i + 2u] = a.z;
        dqkv[kbase + 4u * i + 3u] = a.w;
        dqkv[vbase + 4u * i] = c.x;
        dqkv[vbase + 4u * i + 1u] = c.y;
        dqkv[vbase + 4u * i + 2u] = c.z;
        dqkv[vbase + 4u * i + 3u] = c.w;
    }
}
