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

/// The entry point for rows of `hidden`: its vec4 form (`name` + "4", a lane loading whole
/// vectors) when the width is a multiple of 4.
fn entry(name: &'static str, hidden: u32) -> &'static str {
    if !hidden.is_multiple_of(4) {
        return name;
    }
    match name {
        "add_ln" => "add_ln4",
        "ln_backward" => "ln_backward4",
        "ln_row_stats" => "ln_row_stats4",
        "ln_param_grad" => "ln_param_grad4",
        _ => unreachable!("no vec4 form of {name}"),
    }
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
        entry("add_ln", hidden),
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
        entry("ln_backward", hidden),
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
    let pipe = gpu.pipeline(Shader::LayerNorm, entry("ln_row_stats", hidden), &wg);
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
    let pipe = gpu.pipeline(
        Shader::LayerNorm,
        entry("ln_param_grad", hidden),
        &constants,
    );
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
    let lanes = if hidden.is_multiple_of(4) {
        hidden / 4
    } else {
        hidden
    };
    rec.dispatch("ln_param_grad", &pipe, &bg, lanes.div_ceil(64));
}
