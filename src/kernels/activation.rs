//! `shaders/activation.wgsl`: elementwise activation backward.

use super::Act;
use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    _p: [u32; 3],
}

/// Which GELU: the erf form (BERT's `gelu`) or the tanh approximation (`gelu_new`,
/// `gelu_pytorch_tanh`: ALBERT's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Gelu {
    #[default]
    Erf,
    Tanh,
}

impl Gelu {
    /// The matmul epilogue that applies it.
    pub fn act(self) -> Act {
        match self {
            Gelu::Erf => Act::Gelu,
            Gelu::Tanh => Act::GeluTanh,
        }
    }

    fn constants(self) -> [(&'static str, f64); 1] {
        [("TANH_GELU", (self == Gelu::Tanh) as u32 as f64)]
    }
}

fn run(
    rec: &mut Recorder,
    entry: &'static str,
    constants: &[(&'static str, f64)],
    saved: &Tensor,
    dy: &Tensor,
    n: u32,
    dx: &Tensor,
) {
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(Shader::Activation, entry, constants);
    let params = gpu.uniform(entry, &Params { n, _p: [0; 3] });
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            saved.binding(),
            dy.binding(),
            dx.binding(),
        ],
    );
    rec.dispatch(entry, &pipe, &bg, n.div_ceil(64));
}

/// dx = dy · gelu'(x), from the pre-activation `x`.
pub fn gelu_backward(rec: &mut Recorder, form: Gelu, x: &Tensor, dy: &Tensor, n: u32, dx: &Tensor) {
    run(rec, "gelu_backward", &form.constants(), x, dy, n, dx)
}

/// dx = dy · (1 − y²), from the output `y` = tanh(x).
pub fn tanh_backward(rec: &mut Recorder, y: &Tensor, dy: &Tensor, n: u32, dx: &Tensor) {
    run(rec, "tanh_backward", &[], y, dy, n, dx)
}

/// dx = dy · [y > 0], from the output `y` = relu(x).
pub fn relu_backward(rec: &mut Recorder, y: &Tensor, dy: &Tensor, n: u32, dx: &Tensor) {
    run(rec, "relu_backward", &[], y, dy, n, dx)
}

/// y = gelu(x) as its own pass (the backward keeps the pre-activation x).
pub fn gelu_forward(rec: &mut Recorder, form: Gelu, x: &Tensor, n: u32, y: &Tensor) {
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(Shader::Activation, "gelu_forward", &form.constants());
    let params = gpu.uniform("gelu_forward", &Params { n, _p: [0; 3] });
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, params.as_entire_binding()),
            (1, x.binding()),
            (3, y.binding()),
        ],
    );
    rec.dispatch("gelu_forward", &pipe, &bg, n.div_ceil(64));
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DropParams {
    n: u32,
    seed: u32,
    prob: f32,
    _q: u32,
}

/// Inverted dropout of `n` elements with probability `prob`, deterministic for `seed` (and the
/// same on every adapter: an integer hash of the element index). Call it on dy with the same
/// seed for the backward pass.
pub fn dropout(rec: &mut Recorder, x: &Tensor, n: u32, seed: u32, prob: f32, y: &Tensor) {
    assert!(
        (0.0..1.0).contains(&prob),
        "dropout probability {prob} outside [0, 1)"
    );
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(Shader::Activation, "dropout", &[]);
    let params = gpu.uniform(
        "dropout.params",
        &DropParams {
            n,
            seed,
            prob,
            _q: 0,
        },
    );
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, params.as_entire_binding()),
            (1, x.binding()),
            (3, y.binding()),
        ],
    );
    rec.dispatch("dropout", &pipe, &bg, n.div_ceil(64));
}
