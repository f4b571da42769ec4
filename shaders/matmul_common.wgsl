// Shared by matmul.wgsl and matmul_texture.wgsl (prepended to both): the epilogue applied to
// each output element, with the bias read from the `bias` binding each kernel declares.
// ACT: 0 none, 1 GELU (erf form, as BERT's "gelu"), 2 tanh.

override ACT: u32 = 0u;
override HAS_BIAS: bool = true;

// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26).
fn erf_approx(x: f32) -> f32 {
    let s = sign(x);
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
        + 0.254829592) * t * exp(-z * z);
    return s * y;
}

fn epilogue(v: f32, col: u32) -> f32 {
    var r = v;
    if (HAS_BIAS) { r += bias[col]; }
    if (ACT == 1u) {
        r = 0.5 * r * (1.0 + erf_approx(r * 0.70710678118654752));
    } else if (ACT == 2u) {
        r = tanh(r);
    }
    return r;
}
