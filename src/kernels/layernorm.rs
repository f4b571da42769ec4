//! `shaders/layernorm.wgsl`: LayerNorm fused with the residual add.

use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_rows: u32,
    hidden: u32,
    eps: f32,
    _pad: u32,
}

/// out = LN(x + res) * gamma + beta over rows of `hidden`.
#[allow(clippy::too_many_arguments)]
pub fn add_ln(
    rec: &mut Recorder,
    x: &Tensor,
    res: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    n_rows: u32,
    hidden: u32,
    out: &Tensor,
) {
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(
        Shader::LayerNorm,
        "add_ln",
        &[("ROW_WG", gpu.tuning.row_wg as f64)],
    );
    let params = gpu.uniform(
        "add_ln.params",
        &Params {
            n_rows,
            hidden,
            eps,
            _pad: 0,
        },
    );
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            x.binding(),
            res.binding(),
            gamma.binding(),
            beta.binding(),
            out.binding(),
        ],
    );
    rec.dispatch("add_ln", &pipe, &bg, n_rows);
}

/// LayerNorm backward, input gradient only: du for u = x + res (the forward's two inputs, so
/// du is the gradient of both), from `gamma` and the upstream `dy`.
#[allow(clippy::too_many_arguments)]
pub fn ln_backward(
    rec: &mut Recorder,
    x: &Tensor,
    res: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    eps: f32,
    n_rows: u32,
    hidden: u32,
    dx: &Tensor,
) {
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(
        Shader::LayerNorm,
        "ln_backward",
        &[("ROW_WG", gpu.tuning.row_wg as f64)],
    );
    let params = gpu.uniform(
        "ln_backward.params",
        &Params {
            n_rows,
            hidden,
            eps,
            _pad: 0,
        },
    );
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            x.binding(),
            res.binding(),
            dy.binding(),
            gamma.binding(),
            dx.binding(),
        ],
    );
    rec.dispatch("ln_backward", &pipe, &bg, n_rows);
}
