// Shared by the row kernels (embed.wgsl, layernorm.wgsl): one workgroup per row of ROW_WG
// threads (a power of two), reduced through workgroup memory. Prepended to their sources.

override ROW_WG: u32 = 64u;

var<workgroup> row_red: array<f32, 256>;

// Sum of `v` over the workgroup; every thread gets the result.
fn row_sum(v: f32, lid: u32) -> f32 {
    row_red[lid] = v;
    workgroupBarrier();
    var s = ROW_WG / 2u;
    loop {
        if (s == 0u) { break; }
        if (lid < s) { row_red[lid] += row_red[lid + s]; }
        workgroupBarrier();
        s = s / 2u;
    }
    let r = row_red[0];
    workgroupBarrier();
    return r;
}

// Flat workgroup index of a dispatch laid out as (x, y) to stay within the per-dimension limit.
fn flat_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// The sum of a vector's four components (the vec4 row kernels' partial sums).
fn hsum4(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}
