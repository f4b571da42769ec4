// Shared by matmul.wgsl and matmul_texture.wgsl (prepended to both): the epilogue applied to
// each output element, with the bias read from the `bias` binding each kernel declares.
// Needs erf.wgsl before it.
// ACT: 0 none, 1 GELU (erf form, as BERT's "gelu"), 2 tanh.

override ACT: u32 = 0u;
override HAS_BIAS: bool = true;
// Add into C instead of overwriting it (residual gradients in the backward pass).
override ACCUMULATE: bool = false;

// Writes one output element of C (declared by each kernel) through the epilogue.
fn store_c(i: u32, v: f32, col: u32) {
    let r = epilogue(v, col);
    if (ACCUMULATE) {
        c[i] = c[i] + r;
    } else {
        c[i] = r;
    }
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
