// Shared by matmul.wgsl and matmul_texture.wgsl (prepended to both): the epilogue applied to
// each output element, with the bias read from the `bias` binding each kernel declares.
// Needs erf.wgsl before it.
// ACT: 0 none, 1 GELU (erf form, as BERT's "gelu"), 2 tanh, 3 ReLU, 4 GELU (tanh form, as
// ALBERT's "gelu_new").

override ACT: u32 = 0u;
override HAS_BIAS: bool = true;
// Add into C instead of overwriting it (residual gradients in the backward pass).
override ACCUMULATE: bool = false;

// Head gathers (pruning without copying weights), with `heads` listing the computed heads'
// indices among the weight's HD-sized blocks and each kernel's params carrying gw (computed
// heads × HD), sw (stored heads × HD) and hd:
//   GATHER 1: C holds the Q|K|V columns of the listed heads only, gw per section: output column
//             n reads W row (n / gw) * sw + heads[r / hd] * hd + r % hd, r = n % gw (and that
//             bias element);
//   GATHER 2: A holds the listed heads' columns only (K = gw): reduction index k reads W column
//             heads[k / hd] * hd + k % hd.
override GATHER: u32 = 0u;
@group(0) @binding(5) var<storage, read> heads: array<u32>;

// The W row (and bias element) of output column n.
fn w_row(n: u32) -> u32 {
    if (GATHER != 1u) { return n; }
    let r = n % p.gw;
    return (n / p.gw) * p.sw + heads[r / p.hd] * p.hd + r % p.hd;
}

// The W column of reduction index k.
fn w_col(k: u32) -> u32 {
    if (GATHER != 2u) { return k; }
    return heads[k / p.hd] * p.hd + k % p.hd;
}

// Writes one output element of C (declared by each kernel) through the epilogue; `wr` is the
// W row of its column (w_row(col)), whose bias element is added.
fn store_c(i: u32, v: f32, wr: u32) {
    let r = epilogue(v, wr);
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
    } else if (ACT == 3u) {
        r = max(r, 0.0);
    } else if (ACT == 4u) {
        r = 0.5 * r * (1.0 + tanh(0.79788456080286536 * (r + 0.044715 * r * r * r)));
    }
    return r;
}
