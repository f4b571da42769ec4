// Backward of the fused head-gated attention (attention.wgsl), FlashAttention-2 style: P is
// recomputed from Q, K and the saved log-sum-exp, so no [B, H, T, T] buffer exists.
//   forward:  O_t = sum_j P_tj V_j (ungated), out_t = gate * O_t,
//             P = softmax(scale * Q K^T + R) with R the relative position bias (REL_BIAS) or 0
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

// [heads, T, T]: the relative position bias the forward added (REL_BIAS).
override REL_BIAS: bool = false;
@group(0) @binding(13) var<storage, read> relbias: array<f32>;

// The relative position bias of computed head h, query t, key j (indices clamped to the
// sequence); 0 without REL_BIAS.
fn rel_bias(h: u32, t: u32, j: u32) -> f32 {
    if (!REL_BIAS) { return 0.0; }
    let last = p.seq - 1u;
    return relbias[(h * p.seq + min(t, last)) * p.seq + min(j, last)];
}

// The bias of query t against keys j .. j + 3.
fn rel_bias_keys(h: u32, t: u32, j: u32) -> vec4<f32> {
    return vec4<f32>(rel_bias(h, t, j), rel_bias(h, t, j + 1u), rel_bias(h, t, j + 2u),
        rel_bias(h, t, j + 3u));
}

// The bias of queries t .. t + 3 against key j.
fn rel_bias_queries(h: u32, t: u32, j: u32) -> vec4<f32> {
    return vec4<f32>(rel_bias(h, t, j), rel_bias(h, t + 1u, j), rel_bias(h, t + 2u, j),
        rel_bias(h, t + 3u, j));
}

fn plane() -> u32 {
    return (p.total / p.blocks) * p.seq;
}

// The dQ pass's per-query results into the five stats planes (see `stats`).
fn write_stats(srow: u32, dt: f32, lse: f32, gp: f32, ent: f32, pmax: f32) {
    let n = plane();
    stats[srow] = dt;
    stats[n + srow] = lse;
    stats[2u * n + srow] = gp;
    stats[3u * n + srow] = ent;
    stats[4u * n + srow] = pmax;
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
            var s = rel_bias(h, t, j);
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
        var s = rel_bias(h, t, j);
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
    write_stats(srow, dt, lse, gp, ent, pmax);
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
            let pj = exp(s * p.scale + rel_bias(h, t, j) - stats[n + srow]);
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

// The relative position bias's gradient (MPNet, fine-tuning), per computed head h and relative
// offset r = key − query + T − 1: relgrad[h * (2T − 1) + r] = sum over examples b and query rows
// t of dS_tj at j = t + r − (T − 1), keys j < len[b]. One workgroup per (h, r); dispatched
// after attn_bwd_q (it reads D and the lse from stats) with blocks = 1, total = B * heads.
// (row_common.wgsl, prepended, gives the workgroup sum.)
@group(0) @binding(14) var<storage, read_write> relgrad: array<f32>;

@compute @workgroup_size(ROW_WG)
fn attn_rel_bias_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    let span = 2u * p.seq - 1u;
    if (g >= p.heads * span) { return; }
    let h = g / span;
    let r = g % span;
    let batch = p.total / p.heads;
    let n = plane();
    var acc = 0.0;
    for (var e = lid; e < batch * p.seq; e += ROW_WG) {
        let b = e / p.seq;
        let t = e % p.seq;
        let jj = i32(t + r) - i32(p.seq - 1u);
        if (jj < 0 || u32(jj) >= min(lens[b], p.seq)) { continue; }
        let j = u32(jj);
        let srow = (b * p.heads + h) * p.seq + t;
        let orow = (b * p.seq + t) * p.hidden + h * HEAD_DIM;
        var s = 0.0;
        var dp = 0.0;
        for (var i = 0u; i < HEAD_DIM; i++) {
            s = fma(q_at(b, t, h, i), k_at(b, j, h, i), s);
            dp = fma(dout[orow + i], v_at(b, j, h, i), dp);
        }
        let pj = exp(s * p.scale + rel_bias(h, t, j) - stats[n + srow]);
        acc += pj * (gate_at(b, h) * dp - stats[srow]);
    }
    let total = row_sum(acc, lid);
    if (lid == 0u) { relgrad[g] = total; }
}

// ---- Variants for CPU adapters (lavapipe): Q|K|V and dout are read as vec4 texels of
// rgba32float textures (packed by matmul_texture.wgsl's pack_rows), as attention_texture.wgsl's
// attention_fwd_tex does; same math and outputs. Needs head_dim % 4 == 0, SUBGROUP and
// subgroups of exactly 8 (the adapters the texture kernels are chosen for).
// One lane per query (dQ) or key (dK, dV); every lane of a subgroup walks the same keys (or
// queries), so each lane gathers other texels of the shared row (texel 8c + lane of group c)
// and the subgroup passes them round with `subgroupBroadcast`: one texel gather per 8 texels
// used (a gather is a loop over the lanes and a transpose on lavapipe).

@group(0) @binding(1) var tqkv: texture_storage_2d<rgba32float, read>;
@group(0) @binding(6) var tdout: texture_storage_2d<rgba32float, read>;

const MAX_D4: u32 = 32u;

fn qkv4(row: u32, x: u32) -> vec4<f32> {
    return textureLoad(tqkv, vec2<i32>(i32(x), i32(row)));
}

fn dout4(row: u32, x: u32) -> vec4<f32> {
    return textureLoad(tdout, vec2<i32>(i32(x), i32(row)));
}

// The lane's texel of group c (of 8 texels) of the head's row `row`, from texel x0 on; clamped
// into the head (lanes past the last texel repeat it, and the vectors it meets are 0 there).
fn qkv_texel(x0: u32, c: u32, lane: u32, d4: u32, row: u32) -> vec4<f32> {
    return qkv4(row, x0 + min(c * 8u + lane, d4 - 1u));
}

fn dout_texel(x0: u32, c: u32, lane: u32, d4: u32, row: u32) -> vec4<f32> {
    return dout4(row, x0 + min(c * 8u + lane, d4 - 1u));
}

// sum over the 8 texels of group c of dot(x[c8 + k], texel k of the subgroup's shared row),
// the lane holding texel `lane` in `t`: the vec4 partial sums added to acc.
fn shared_dot(acc: vec4<f32>, x: ptr<function, array<vec4<f32>, MAX_D4>>, c: u32,
              t: vec4<f32>) -> vec4<f32> {
    let i = c * 8u;
    var a = acc;
    a = fma((*x)[i], subgroupBroadcast(t, 0u), a);
    a = fma((*x)[i + 1u], subgroupBroadcast(t, 1u), a);
    a = fma((*x)[i + 2u], subgroupBroadcast(t, 2u), a);
    a = fma((*x)[i + 3u], subgroupBroadcast(t, 3u), a);
    a = fma((*x)[i + 4u], subgroupBroadcast(t, 4u), a);
    a = fma((*x)[i + 5u], subgroupBroadcast(t, 5u), a);
    a = fma((*x)[i + 6u], subgroupBroadcast(t, 6u), a);
    a = fma((*x)[i + 7u], subgroupBroadcast(t, 7u), a);
    return a;
}

// y[c8 + k] += w * texel k of the subgroup's shared row, for the 8 texels of group c.
fn shared_axpy(y: ptr<function, array<vec4<f32>, MAX_D4>>, c: u32, w: f32, t: vec4<f32>) {
    let i = c * 8u;
    let wv = vec4<f32>(w);
    (*y)[i] = fma(wv, subgroupBroadcast(t, 0u), (*y)[i]);
    (*y)[i + 1u] = fma(wv, subgroupBroadcast(t, 1u), (*y)[i + 1u]);
    (*y)[i + 2u] = fma(wv, subgroupBroadcast(t, 2u), (*y)[i + 2u]);
    (*y)[i + 3u] = fma(wv, subgroupBroadcast(t, 3u), (*y)[i + 3u]);
    (*y)[i + 4u] = fma(wv, subgroupBroadcast(t, 4u), (*y)[i + 4u]);
    (*y)[i + 5u] = fma(wv, subgroupBroadcast(t, 5u), (*y)[i + 5u]);
    (*y)[i + 6u] = fma(wv, subgroupBroadcast(t, 6u), (*y)[i + 6u]);
    (*y)[i + 7u] = fma(wv, subgroupBroadcast(t, 7u), (*y)[i + 7u]);
}

@compute @workgroup_size(BQ)
fn attn_bwd_q_tex(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let bl = block_of(g);
    let b = bl.b;
    let h = bl.h;
    // lanes past the sequence run along (the subgroup shares loads) and write nothing
    let live = bl.blk * BQ + lid < p.seq;
    let t = min(bl.blk * BQ + lid, p.seq - 1u);
    let d4 = HEAD_DIM / 4u;
    let groups = (d4 + 7u) / 8u;
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
    for (var i = 0u; i < groups * 8u; i++) {
        q[i] = vec4<f32>(0.0);
        o[i] = vec4<f32>(0.0);
        dov[i] = vec4<f32>(0.0);
        dq[i] = vec4<f32>(0.0);
    }
    for (var i = 0u; i < d4; i++) { q[i] = qkv4(row, qx + i) * p.scale; }
    var lse = 0.0;
    if (gate != 0.0) {
        lse = lse_saved[srow];
        for (var i = 0u; i < d4; i++) {
            o[i] = vec4<f32>(out_g[orow + 4u * i], out_g[orow + 4u * i + 1u], out_g[orow + 4u * i + 2u],
                out_g[orow + 4u * i + 3u]) / gate;
        }
    } else {
        // the forward skipped this head: recompute O and the lse (the gate is the workgroup's)
        var m = -3.0e38;
        var l = 0.0;
        for (var j = 0u; j < len; j++) {
            let kr = b * p.seq + j;
            var s4 = vec4<f32>(0.0);
            for (var i = 0u; i < d4; i++) { s4 = fma(q[i], qkv4(kr, kx + i), s4); }
            let s = hsum4(s4) + rel_bias(h, t, j);
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
    let gp = hsum4(gp4);
    let dt = gate * gp;
    var ent = 0.0;
    var pmax = 0.0;
    for (var j = 0u; j < len; j++) {
        let kr = b * p.seq + j;
        var s4 = vec4<f32>(0.0);
        var dp4 = vec4<f32>(0.0);
        for (var c = 0u; c < groups; c++) {
            s4 = shared_dot(s4, &q, c, qkv_texel(kx, c, lane, d4, kr));
            dp4 = shared_dot(dp4, &dov, c, qkv_texel(vx, c, lane, d4, kr));
        }
        let s = hsum4(s4) + rel_bias(h, t, j);
        let pj = exp(s - lse);
        ent += pj * (lse - s);
        pmax = max(pmax, pj);
        let ds = pj * (hsum4(dp4) - dt);
        for (var c = 0u; c < groups; c++) {
            shared_axpy(&dq, c, ds, qkv_texel(kx, c, lane, d4, kr));
        }
    }
    if (!live) { return; }
    let qrow = row * 3u * p.hidden + h * HEAD_DIM;
    for (var i = 0u; i < d4; i++) {
        let v = dq[i] * p.scale;
        dqkv[qrow + 4u * i] = v.x;
        dqkv[qrow + 4u * i + 1u] = v.y;
        dqkv[qrow + 4u * i + 2u] = v.z;
        dqkv[qrow + 4u * i + 3u] = v.w;
    }
    write_stats(srow, dt, lse, gp, ent, pmax);
}

@compute @workgroup_size(BQ)
fn attn_bwd_kv_tex(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let bl = block_of(g);
    let b = bl.b;
    let h = bl.h;
    let j = min(bl.blk * BQ + lid, p.seq - 1u);
    let live = bl.blk * BQ + lid < p.seq;
    let len = lens[b];
    let d4 = HEAD_DIM / 4u;
    let groups = (d4 + 7u) / 8u;
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
    for (var i = 0u; i < groups * 8u; i++) {
        k[i] = vec4<f32>(0.0);
        v[i] = vec4<f32>(0.0);
        dk[i] = vec4<f32>(0.0);
        dv[i] = vec4<f32>(0.0);
    }
    for (var i = 0u; i < d4; i++) {
        k[i] = qkv4(krow, kx + i);
        v[i] = qkv4(krow, vx + i);
    }
    let n = plane();
    // keys past the example's length get zero gradients; the workgroup skips the walk when
    // all of its keys are past it (a uniform condition), else every lane walks
    if (bl.blk * BQ < len) {
        for (var t = 0u; t < p.seq; t++) {
            let row = b * p.seq + t;
            let srow = (b * p.heads + h) * p.seq + t;
            var s4 = vec4<f32>(0.0);
            var dp4 = vec4<f32>(0.0);
            for (var c = 0u; c < groups; c++) {
                s4 = shared_dot(s4, &k, c, qkv_texel(qx, c, lane, d4, row));
                dp4 = shared_dot(dp4, &v, c, dout_texel(ox, c, lane, d4, row));
            }
            let pj = exp(hsum4(s4) * p.scale + rel_bias(h, t, j) - stats[n + srow]);
            let ds = pj * (gate * hsum4(dp4) - stats[srow]);
            for (var c = 0u; c < groups; c++) {
                shared_axpy(&dv, c, pj * gate, dout_texel(ox, c, lane, d4, row));
                shared_axpy(&dk, c, ds, qkv_texel(qx, c, lane, d4, row));
            }
        }
    }
    if (!live) { return; }
    let kept = j < len;
    let kbase = krow * 3u * p.hidden + p.hidden + h * HEAD_DIM;
    let vbase = kbase + p.hidden;
    for (var i = 0u; i < d4; i++) {
        let a = select(vec4<f32>(0.0), dk[i] * p.scale, kept);
        let c = select(vec4<f32>(0.0), dv[i], kept);
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

// ---- Tiled variants for GPUs (FlashAttention-2 style), same math and outputs as attn_bwd_q and
// attn_bwd_kv. TD lanes (adjacent invocations of one subgroup) share a query (attn_bwd_q_tiled)
// or a key (attn_bwd_kv_tiled): lane c owns the vec4 chunks c, c + TD, c + 2 TD, ... of the
// head dimension (EV chunks at most, so each thread keeps 4 small vec4 arrays instead of four
// [MAX_D] arrays), and partial dot products are summed across the TD lanes with
// subgroupShuffleXor, which leaves the same bits in every lane of the group. The rows the
// other side needs (K and V for dQ; Q, gate * dO, lse and D for dK and dV) are staged in
// workgroup memory, TILE rows at a time, loaded cooperatively (consecutive invocations read
// consecutive chunks of a row). Reads of a tile row: the TD lanes of a group read TD adjacent
// vec4s, and every group of the subgroup reads the same row (a broadcast), so no padding is
// needed against bank conflicts. Each group takes the staged rows four at a time (four
// independent dot-product / shuffle / exp chains; tiles hold a multiple of 4 rows, the rows
// past the data zero). Each tile loop barriers after filling a tile (before any read) and
// after the last read of it (before the next fill). Needs the SUBGROUP feature, a subgroup size of at least TD
// made of consecutive local invocation indices, and HEAD_DIM <= 4 * EV * TD; the head
// dimension is zero-padded to whole chunks, so any HEAD_DIM works. Workgroup memory:
// 2 * 4096 + 2 * 256 + 8 bytes.

override TD: u32 = 4u;     // lanes per query / key: 1, 2, 4 or 8, at most the subgroup size
override TWG: u32 = 128u;  // invocations per workgroup, a multiple of TD
const EV: u32 = 4u;        // vec4 chunks per lane at most
const TILE_V4: u32 = 256u; // vec4s per staged tile
const TILE_MAX: u32 = 64u; // rows per staged tile at most

var<workgroup> ta: array<vec4<f32>, TILE_V4>; // K rows (dQ pass) or Q rows (dK/dV pass)
var<workgroup> tb: array<vec4<f32>, TILE_V4>; // V rows (dQ pass) or gate * dO rows (dK/dV pass)
var<workgroup> tr0: array<f32, TILE_MAX>;     // lse of each staged query row (dK/dV pass)
var<workgroup> tr1: array<f32, TILE_MAX>;     // D of each staged query row (dK/dV pass)
var<workgroup> wg_len: u32;
var<workgroup> wg_gate: f32;

// Chunks per lane, chunks per (zero-padded) row, rows per tile.
fn chunks() -> u32 {
    return (HEAD_DIM + 4u * TD - 1u) / (4u * TD);
}
fn row_chunks() -> u32 {
    return chunks() * TD;
}
fn tile_rows() -> u32 {
    return min(TILE_MAX, (TILE_V4 / row_chunks()) & ~3u); // a multiple of 4 (8 at least)
}

// Elements 4ch .. 4ch + 3 of the head row at `base`, zero past HEAD_DIM.
fn qkv_chunk(base: u32, ch: u32) -> vec4<f32> {
    var r = vec4<f32>(0.0);
    for (var u = 0u; u < 4u; u++) {
        let i = 4u * ch + u;
        if (i < HEAD_DIM) { r[u] = qkv[base + i]; }
    }
    return r;
}
fn dout_chunk(base: u32, ch: u32) -> vec4<f32> {
    var r = vec4<f32>(0.0);
    for (var u = 0u; u < 4u; u++) {
        let i = 4u * ch + u;
        if (i < HEAD_DIM) { r[u] = dout[base + i]; }
    }
    return r;
}
fn out_chunk(base: u32, ch: u32) -> vec4<f32> {
    var r = vec4<f32>(0.0);
    for (var u = 0u; u < 4u; u++) {
        let i = 4u * ch + u;
        if (i < HEAD_DIM) { r[u] = out_g[base + i]; }
    }
    return r;
}
fn store_chunk(base: u32, ch: u32, v: vec4<f32>) {
    for (var u = 0u; u < 4u; u++) {
        let i = 4u * ch + u;
        if (i < HEAD_DIM) { dqkv[base + i] = v[u]; }
    }
}

// Sum over the TD lanes of a group (every lane gets the same value).
fn group_sum(x: f32) -> f32 {
    var s = x;
    for (var m = TD >> 1u; m > 0u; m = m >> 1u) {
        s += subgroupShuffleXor(s, m);
    }
    return s;
}
fn group_sum4(x: vec4<f32>) -> vec4<f32> {
    var s = x;
    for (var m = TD >> 1u; m > 0u; m = m >> 1u) {
        s += subgroupShuffleXor(s, m);
    }
    return s;
}

// Stages rows r0 .. r0 + tile_rows() - 1 of K (into ta) and V (into tb) of head h of example
// b; rows at or past `lim` are zero. Called by the whole workgroup between barriers.
fn stage_kv(b: u32, h: u32, r0: u32, lim: u32, lid: u32) {
    let rc = row_chunks();
    for (var e = lid; e < tile_rows() * rc; e += TWG) {
        let r = r0 + e / rc;
        let ch = e % rc;
        var kv = vec4<f32>(0.0);
        var vv = vec4<f32>(0.0);
        if (r < lim) {
            let base = (b * p.seq + r) * 3u * p.hidden + p.hidden + h * HEAD_DIM;
            kv = qkv_chunk(base, ch);
            vv = qkv_chunk(base + p.hidden, ch);
        }
        ta[e] = kv;
        tb[e] = vv;
    }
}

@compute @workgroup_size(TWG)
fn attn_bwd_q_tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let bl = block_of(g);
    let b = bl.b;
    let h = bl.h;
    let c = lid % TD;
    let t = bl.blk * (TWG / TD) + lid / TD;
    let live = t < p.seq;
    let tc = min(t, p.seq - 1u);
    let ev = chunks();
    let rc = row_chunks();
    let tile = tile_rows();
    if (lid == 0u) {
        wg_len = min(lens[b], p.seq);
        wg_gate = gate_at(b, h);
    }
    let len = workgroupUniformLoad(&wg_len);
    let gate = workgroupUniformLoad(&wg_gate);
    let qbase = (b * p.seq + tc) * 3u * p.hidden + h * HEAD_DIM;
    let orow = (b * p.seq + tc) * p.hidden + h * HEAD_DIM;
    let srow = (b * p.heads + h) * p.seq + tc;

    var q: array<vec4<f32>, EV>;
    var o: array<vec4<f32>, EV>;
    var dov: array<vec4<f32>, EV>;
    var dq: array<vec4<f32>, EV>;
    for (var e = 0u; e < ev; e++) {
        q[e] = qkv_chunk(qbase, c + TD * e) * p.scale;
        dq[e] = vec4<f32>(0.0);
    }
    var lse = 0.0;
    if (gate != 0.0) {
        lse = lse_saved[srow];
        for (var e = 0u; e < ev; e++) { o[e] = out_chunk(orow, c + TD * e) / gate; }
    } else {
        // recompute the skipped head's softmax statistics and output
        var m = -3.0e38;
        var l = 0.0;
        for (var e = 0u; e < ev; e++) { o[e] = vec4<f32>(0.0); }
        for (var k0 = 0u; k0 < len; k0 += tile) {
            stage_kv(b, h, k0, len, lid);
            workgroupBarrier(); // the tile is filled before anyone reads it
            let nk = min(tile, len - k0);
            for (var r = 0u; r < nk; r++) {
                let base = r * rc + c;
                var sp = 0.0;
                for (var e = 0u; e < ev; e++) { sp += dot(q[e], ta[base + TD * e]); }
                let s = group_sum(sp) + rel_bias(h, tc, k0 + r);
                let mn = max(m, s);
                let corr = exp(m - mn);
                let pj = exp(s - mn);
                l = l * corr + pj;
                for (var e = 0u; e < ev; e++) { o[e] = o[e] * corr + pj * tb[base + TD * e]; }
                m = mn;
            }
            workgroupBarrier(); // every read of the tile is done before the next fill
        }
        for (var e = 0u; e < ev; e++) { o[e] /= l; }
        lse = m + log(l);
    }
    var gpp = 0.0;
    for (var e = 0u; e < ev; e++) {
        let dg = dout_chunk(orow, c + TD * e);
        gpp += dot(dg, o[e]);
        dov[e] = gate * dg;
    }
    let gp = group_sum(gpp);
    let dt = gate * gp;
    var ent = 0.0;
    var pmax = 0.0;
    for (var k0 = 0u; k0 < len; k0 += tile) {
        stage_kv(b, h, k0, len, lid);
        workgroupBarrier(); // the tile is filled before anyone reads it
        let nk = min(tile, len - k0);
        // four keys at a time (independent dependency chains); the rows past nk are zero and
        // their weights are masked to 0
        for (var r = 0u; r < nk; r += 4u) {
            var sp = vec4<f32>(0.0);
            var dpp = vec4<f32>(0.0);
            for (var e = 0u; e < ev; e++) {
                let o = r * rc + c + TD * e;
                sp += vec4<f32>(dot(q[e], ta[o]), dot(q[e], ta[o + rc]), dot(q[e], ta[o + 2u * rc]),
                    dot(q[e], ta[o + 3u * rc]));
                dpp += vec4<f32>(dot(dov[e], tb[o]), dot(dov[e], tb[o + rc]),
                    dot(dov[e], tb[o + 2u * rc]), dot(dov[e], tb[o + 3u * rc]));
            }
            let s = group_sum4(sp) + rel_bias_keys(h, tc, k0 + r);
            let dp = group_sum4(dpp);
            let real = vec4<u32>(r, r + 1u, r + 2u, r + 3u) < vec4<u32>(nk);
            let pj = select(vec4<f32>(0.0), exp(s - lse), real);
            ent += dot(pj, lse - s);
            pmax = max(pmax, max(max(pj.x, pj.y), max(pj.z, pj.w)));
            let ds = pj * (dp - dt);
            for (var e = 0u; e < ev; e++) {
                let o = r * rc + c + TD * e;
                var a = fma(vec4<f32>(ds.x), ta[o], dq[e]);
                a = fma(vec4<f32>(ds.y), ta[o + rc], a);
                a = fma(vec4<f32>(ds.z), ta[o + 2u * rc], a);
                dq[e] = fma(vec4<f32>(ds.w), ta[o + 3u * rc], a);
            }
        }
        workgroupBarrier(); // every read of the tile is done before the next fill
    }
    if (live) {
        for (var e = 0u; e < ev; e++) { store_chunk(qbase, c + TD * e, dq[e] * p.scale); }
        if (c == 0u) {
            write_stats(srow, dt, lse, gp, ent, pmax);
        }
    }
}

@compute @workgroup_size(TWG)
fn attn_bwd_kv_tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let bl = block_of(g);
    let b = bl.b;
    let h = bl.h;
    let c = lid % TD;
    let key0 = bl.blk * (TWG / TD);
    let j = key0 + lid / TD;
    let jc = min(j, p.seq - 1u);
    let ev = chunks();
    let rc = row_chunks();
    let tile = tile_rows();
    if (lid == 0u) {
        wg_len = min(lens[b], p.seq);
        wg_gate = gate_at(b, h);
    }
    let len = workgroupUniformLoad(&wg_len);
    let gate = workgroupUniformLoad(&wg_gate);
    let kbase = (b * p.seq + jc) * 3u * p.hidden + p.hidden + h * HEAD_DIM;
    let vbase = kbase + p.hidden;
    var k: array<vec4<f32>, EV>;
    var v: array<vec4<f32>, EV>;
    var dk: array<vec4<f32>, EV>;
    var dv: array<vec4<f32>, EV>;
    for (var e = 0u; e < ev; e++) {
        k[e] = qkv_chunk(kbase, c + TD * e);
        v[e] = qkv_chunk(vbase, c + TD * e);
        dk[e] = vec4<f32>(0.0);
        dv[e] = vec4<f32>(0.0);
    }
    let n = plane();
    if (key0 < len) {
        // every query row attends to a real key, padded query rows included
        for (var t0 = 0u; t0 < p.seq; t0 += tile) {
            for (var e = lid; e < tile * rc; e += TWG) {
                let t = t0 + e / rc;
                let ch = e % rc;
                var qv = vec4<f32>(0.0);
                var dg = vec4<f32>(0.0);
                if (t < p.seq) {
                    qv = qkv_chunk((b * p.seq + t) * 3u * p.hidden + h * HEAD_DIM, ch);
                    dg = gate * dout_chunk((b * p.seq + t) * p.hidden + h * HEAD_DIM, ch);
                }
                ta[e] = qv;
                tb[e] = dg;
            }
            for (var r = lid; r < tile; r += TWG) {
                let t = t0 + r;
                var ls = 0.0;
                var dd = 0.0;
                if (t < p.seq) {
                    let srow = (b * p.heads + h) * p.seq + t;
                    dd = stats[srow];
                    ls = stats[n + srow];
                }
                tr0[r] = ls;
                tr1[r] = dd;
            }
            workgroupBarrier(); // the tile is filled before anyone reads it
            let nq = min(tile, p.seq - t0);
            // four query rows at a time (independent dependency chains); the rows past nq are
            // zero (Q, dO, lse and D), so they add exactly nothing
            for (var r = 0u; r < nq; r += 4u) {
                var sp = vec4<f32>(0.0);
                var dpp = vec4<f32>(0.0);
                for (var e = 0u; e < ev; e++) {
                    let o = r * rc + c + TD * e;
                    sp += vec4<f32>(dot(ta[o], k[e]), dot(ta[o + rc], k[e]),
                        dot(ta[o + 2u * rc], k[e]), dot(ta[o + 3u * rc], k[e]));
                    dpp += vec4<f32>(dot(tb[o], v[e]), dot(tb[o + rc], v[e]),
                        dot(tb[o + 2u * rc], v[e]), dot(tb[o + 3u * rc], v[e]));
                }
                let s = group_sum4(sp);
                let dp = group_sum4(dpp);
                let pj = exp(s * p.scale + rel_bias_queries(h, t0 + r, jc)
                    - vec4<f32>(tr0[r], tr0[r + 1u], tr0[r + 2u], tr0[r + 3u]));
                let ds = pj * (dp - vec4<f32>(tr1[r], tr1[r + 1u], tr1[r + 2u], tr1[r + 3u]));
                for (var e = 0u; e < ev; e++) {
                    let o = r * rc + c + TD * e;
                    var a = fma(vec4<f32>(pj.x), tb[o], dv[e]);
                    a = fma(vec4<f32>(pj.y), tb[o + rc], a);
                    a = fma(vec4<f32>(pj.z), tb[o + 2u * rc], a);
                    dv[e] = fma(vec4<f32>(pj.w), tb[o + 3u * rc], a);
                    var b4 = fma(vec4<f32>(ds.x), ta[o], dk[e]);
                    b4 = fma(vec4<f32>(ds.y), ta[o + rc], b4);
                    b4 = fma(vec4<f32>(ds.z), ta[o + 2u * rc], b4);
                    dk[e] = fma(vec4<f32>(ds.w), ta[o + 3u * rc], b4);
                }
            }
            workgroupBarrier(); // every read of the tile is done before the next fill
        }
    }
    if (j < p.seq) {
        // keys past the example's length get exact zeros
        let real = j < len;
        for (var e = 0u; e < ev; e++) {
            store_chunk(kbase, c + TD * e, select(vec4<f32>(0.0), dk[e] * p.scale, real));
            store_chunk(vbase, c + TD * e, select(vec4<f32>(0.0), dv[e], real));
        }
    }
}
