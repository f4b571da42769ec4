// attention.wgsl's attention_fwd for CPU adapters (lavapipe), compiled with attention.wgsl
// prepended (its parameters, bindings and helpers) as a module of its own, since it needs the
// SUBGROUP feature and subgroups of 8. On lavapipe storage-buffer and workgroup-memory loads
// are scalar and barriers are costly, so Q|K|V are read as vec4 texels of an rgba32float
// texture [B*T rows, 3H/4 texels] (packed by matmul_texture.wgsl's pack_rows and bound as a
// read-only storage texture, for the reason given there), one lane per query, with no
// workgroup memory and no barriers. Needs head_dim % 4 == 0.
// Every lane of a subgroup needs the same K and V rows, so each lane loads other texels of the
// row (texel 8c + lane of group c) and the subgroup shares them with `subgroupBroadcast`: one
// texel gather per 8 texels used, where loading the whole row in every lane cost one per texel
// (a gather is a loop over the lanes plus a transpose on lavapipe).

@group(0) @binding(1) var tqkv: texture_storage_2d<rgba32float, read>;

const MAX_D4: u32 = 32u;

// The lane's texel of group c (of 8 texels) of the head's K or V row y, starting at texel x0;
// clamped into the head (the lanes past the last texel repeat it, and q is 0 there).
fn row_texel(x0: i32, c: u32, lane: u32, d4: u32, y: i32) -> vec4<f32> {
    return textureLoad(tqkv, vec2<i32>(x0 + i32(min(c * 8u + lane, d4 - 1u)), y));
}

@compute @workgroup_size(BQ)
fn attention_fwd_tex(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.total) { return; }
    let blk = block_of(g);
    let b = blk.b;
    let h = blk.h;
    let d4 = HEAD_DIM / 4u;
    let groups = (d4 + 7u) / 8u;
    let t = blk.qb * BQ + lid;
    // lanes past the sequence run along (the subgroup shares loads) and write nothing
    let live = t < p.seq;
    let len = lens[b];
    let gate = gate_of(blk);
    let orow = (b * p.seq + t) * p.hidden + h * HEAD_DIM;
    let lrow = (b * p.heads + h) * p.seq + t;
    if (gate == 0.0) {
        if (live) { write_skipped(orow, lrow); }
        return;
    }
    let qx = i32(h * d4);
    let kx = i32(p.hidden / 4u + h * d4);
    let vx = i32(2u * p.hidden / 4u + h * d4);
    var q: array<vec4<f32>, MAX_D4>;
    var acc: array<vec4<f32>, MAX_D4>;
    let qy = i32(b * p.seq + min(t, p.seq - 1u));
    for (var i = 0u; i < MAX_D4; i++) {
        var qi = vec4<f32>(0.0);
        if (i < d4) { qi = textureLoad(tqkv, vec2<i32>(qx + i32(i), qy)) * p.scale; }
        q[i] = qi;
        acc[i] = vec4<f32>(0.0);
    }
    var m = -3.0e38;
    var l = 0.0;
    var s: array<f32, KT>;
    let row0 = i32(b * p.seq);
    for (var k0 = 0u; k0 < len; k0 += KT) {
        let nk = min(KT, len - k0);
        var mt = m;
        for (var j = 0u; j < nk; j++) {
            let y = row0 + i32(k0 + j);
            var dot4 = vec4<f32>(0.0);
            for (var c = 0u; c < groups; c++) {
                let kt = row_texel(kx, c, lane, d4, y);
                let i = c * 8u;
                dot4 = fma(q[i], subgroupBroadcast(kt, 0u), dot4);
                dot4 = fma(q[i + 1u], subgroupBroadcast(kt, 1u), dot4);
                dot4 = fma(q[i + 2u], subgroupBroadcast(kt, 2u), dot4);
                dot4 = fma(q[i + 3u], subgroupBroadcast(kt, 3u), dot4);
                dot4 = fma(q[i + 4u], subgroupBroadcast(kt, 4u), dot4);
                dot4 = fma(q[i + 5u], subgroupBroadcast(kt, 5u), dot4);
                dot4 = fma(q[i + 6u], subgroupBroadcast(kt, 6u), dot4);
                dot4 = fma(q[i + 7u], subgroupBroadcast(kt, 7u), dot4);
            }
            let sc = dot4.x + dot4.y + dot4.z + dot4.w + rel_bias(h, t, k0 + j);
            s[j] = sc;
            mt = max(mt, sc);
        }
        let corr = exp(m - mt);
        l *= corr;
        for (var i = 0u; i < groups * 8u; i++) { acc[i] *= corr; }
        for (var j = 0u; j < nk; j++) {
            let y = row0 + i32(k0 + j);
            let pj = vec4<f32>(exp(s[j] - mt));
            l += pj.x;
            for (var c = 0u; c < groups; c++) {
                let vt = row_texel(vx, c, lane, d4, y);
                let i = c * 8u;
                acc[i] = fma(pj, subgroupBroadcast(vt, 0u), acc[i]);
                acc[i + 1u] = fma(pj, subgroupBroadcast(vt, 1u), acc[i + 1u]);
                acc[i + 2u] = fma(pj, subgroupBroadcast(vt, 2u), acc[i + 2u]);
                acc[i + 3u] = fma(pj, subgroupBroadcast(vt, 3u), acc[i + 3u]);
                acc[i + 4u] = fma(pj, subgroupBroadcast(vt, 4u), acc[i + 4u]);
                acc[i + 5u] = fma(pj, subgroupBroadcast(vt, 5u), acc[i + 5u]);
                acc[i + 6u] = fma(pj, subgroupBroadcast(vt, 6u), acc[i + 6u]);
                acc[i + 7u] = fma(pj, subgroupBroadcast(vt, 7u), acc[i + 7u]);
            }
        }
        m = mt;
    }
    if (!live) { return; }
    let inv = gate / l;
    for (var i = 0u; i < d4; i++) {
        let o = acc[i] * inv;
        out[orow + 4u * i] = o.x;
        out[orow + 4u * i + 1u] = o.y;
        out[orow + 4u * i + 2u] = o.z;
        out[orow + 4u * i + 3u] = o.w;
    }
    lse[lrow] = m + log(l);
}
