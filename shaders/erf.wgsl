// erf for the GELU forward (matmul epilogue) and backward (activation.wgsl).

// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26).
fn erf_approx(x: f32) -> f32 {
    let s = sign(x);
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
        + 0.254829592) * t * exp(-z * z);
    return s * y;
}


// erf_approx on four values at once (activation.wgsl's kernels). The scalar form above stays
// scalar for the matmul epilogue, which applies it to one output at a time.
fn erf_approx4(x: vec4<f32>) -> vec4<f32> {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
        + 0.254829592) * t * exp(-z * z);
    return sign(x) * y;
}
