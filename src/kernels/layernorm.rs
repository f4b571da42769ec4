//! `shaders/layernorm.wgsl`: LayerNorm fused with the residual add.

use super::Vec4Twin;
use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_rows: u32,
    hidden: u32,
    eps: f32,
    _pad: u32,
}

const ADD_LN: Vec4Twin = Vec4Twin {
    scalar: "add_ln",
    vec4: "add_ln4",
};
const LN_BACKWARD: Vec4Twin = Vec4Twin {
    scalar: "ln_backward",
    vec4: "ln_backward4",
};
const LN_ROW_STATS: Vec4Twin = Vec4Twin {
    scalar: "ln_row_stats",
    vec4: "ln_row_stats4",
};
const LN_PARAM_GRAD: Vec4Twin = Vec4Twin {
    scalar: "ln_param_grad",
    vec4: "ln_param_grad4",
};

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
        ADD_LN.pick(hidden),
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
        LN_BACKWARD.pick(hidden),
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

/// LayerNorm parameter gradients over u = x + res: dγ = Σ_rows dy ⊙ û, dβ = Σ_rows dy, written
/// or, with `accumulate`, added. `row_stats` is scratch of 2 × n_rows elements.
#[allow(clippy::too_many_arguments)]
pub fn ln_param_grad(
    rec: &mut Recorder,
    x: &Tensor,
    res: &Tensor,
    dy: &Tensor,
    eps: f32,
    n_rows: u32,
    hidden: u32,
    row_stats: &Tensor,
    accumulate: bool,
    dgamma: &Tensor,
    dbeta: &Tensor,
) {
    let gpu = rec.gpu();
    let wg = [("ROW_WG", gpu.tuning.row_wg as f64)];
    let params = gpu.uniform(
        "ln_param_grad.params",
        &Params {
            n_rows,
            hidden,
            eps,
            _pad: 0,
        },
    );
    let pipe = gpu.pipeline(Shader::LayerNorm, LN_ROW_STATS.pick(hidden), &wg);
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, params.as_entire_binding()),
            (1, x.binding()),
            (2, res.binding()),
            (6, row_stats.binding()),
        ],
    );
    rec.dispatch("ln_row_stats", &pipe, &bg, n_rows);
    let constants = [wg[0], ("ACCUMULATE", accumulate as u32 as f64)];
    let pipe = gpu.pipeline(Shader::LayerNorm, LN_PARAM_GRAD.pick(hidden), &constants);
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, params.as_entire_binding()),
            (1, x.binding()),
            (2, res.binding()),
            (3, dy.binding()),
            (6, row_stats.binding()),
            (7, dgamma.binding()),
            (8, dbeta.binding()),
        ],
    );
    let lanes = LN_PARAM_GRAD.lanes(hidden);
    rec.dispatch("ln_param_grad", &pipe, &bg, lanes.div_ceil(64));
}
