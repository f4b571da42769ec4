//! `shaders/activation.wgsl`: the elementwise kernels (GELU forward, the activation backwards,
//! dropout), each in a scalar and a vec4 form.

use super::{Act, Vec4Twin};
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

const GELU_BACKWARD: Vec4Twin = Vec4Twin {
    scalar: "gelu_backward",
    vec4: "gelu_backward4",
};
const TANH_BACKWARD: Vec4Twin = Vec4Twin {
    scalar: "tanh_backward",
    vec4: "tanh_backward4",
};
const RELU_BACKWARD: Vec4Twin = Vec4Twin {
    scalar: "relu_backward",
    vec4: "relu_backward4",
};
const GELU_FORWARD: Vec4Twin = Vec4Twin {
    scalar: "gelu_forward",
    vec4: "gelu_forward4",
};
const DROPOUT: Vec4Twin = Vec4Twin {
    scalar: "dropout",
    vec4: "dropout4",
};

/// Binds the uniform `params` at 0, `saved` at 1, `dy` (when there is one) at 2 and `out` at 3,
/// and dispatches `entry` over `n` elements.
#[allow(clippy::too_many_arguments)]
fn elementwise(
    rec: &mut Recorder,
    entry: Vec4Twin,
    constants: &[(&'static str, f64)],
    params: &wgpu::Buffer,
    saved: &Tensor,
    dy: Option<&Tensor>,
    n: u32,
    out: &Tensor,
) {
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(Shader::Activation, entry.pick(n), constants);
    let mut bindings = vec![(0, params.as_entire_binding()), (1, saved.binding())];
    if let Some(dy) = dy {
        bindings.push((2, dy.binding()));
    }
    bindings.push((3, out.binding()));
    let bg = gpu.bind_at(&pipe, &bindings);
    rec.dispatch(entry.scalar, &pipe, &bg, entry.lanes(n).div_ceil(64));
}

/// [`elementwise`] with the activations' parameters (the length).
fn activation(
    rec: &mut Recorder,
    entry: Vec4Twin,
    constants: &[(&'static str, f64)],
    saved: &Tensor,
    dy: Option<&Tensor>,
    n: u32,
    out: &Tensor,
) {
    let params = rec.gpu().uniform(entry.scalar, &Params { n, _p: [0; 3] });
    elementwise(rec, entry, constants, &params, saved, dy, n, out)
}

/// dx = dy · gelu'(x), from the pre-activation `x`.
pub fn gelu_backward(rec: &mut Recorder, form: Gelu, x: &Tensor, dy: &Tensor, n: u32, dx: &Tensor) {
    activation(rec, GELU_BACKWARD, &form.constants(), x, Some(dy), n, dx)
}

/// dx = dy · (1 − y²), from the output `y` = tanh(x).
pub fn tanh_backward(rec: &mut Recorder, y: &Tensor, dy: &Tensor, n: u32, dx: &Tensor) {
    activation(rec, TANH_BACKWARD, &[], y, Some(dy), n, dx)
}

/// dx = dy · [y > 0], from the output `y` = relu(x).
pub fn relu_backward(rec: &mut Recorder, y: &Tensor, dy: &Tensor, n: u32, dx: &Tensor) {
    activation(rec, RELU_BACKWARD, &[], y, Some(dy), n, dx)
}

/// y = gelu(x) as its own pass (the backward keeps the pre-activation x).
pub fn gelu_forward(rec: &mut Recorder, form: Gelu, x: &Tensor, n: u32, y: &Tensor) {
    activation(rec, GELU_FORWARD, &form.constants(), x, None, n, y)
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
    let params = rec.gpu().uniform(
        "dropout.params",
        &DropParams {
            n,
            seed,
            prob,
            _q: 0,
        },
    );
    elementwise(rec, DROPOUT, &[], &params, x, None, n, y);
}
