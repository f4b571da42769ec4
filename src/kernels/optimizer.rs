//! `shaders/optimizer.wgsl`: AdamW (torch semantics) and the squared-norm reduction that
//! gradient clipping needs.

use crate::error::Result;
use crate::gpu::{Gpu, Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AdamParams {
    n: u32,
    _p: [u32; 3],
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    bc1: f32,
    bc2_sqrt: f32,
    grad_scale: f32,
}

#[derive(Clone, Copy, Debug)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// One AdamW step (1-based `step`) on `param` with moments `m1`, `m2`; the gradient is
/// multiplied by `grad_scale` first (clipping).
#[allow(clippy::too_many_arguments)]
pub fn adamw_step(
    rec: &mut Recorder,
    opt: &AdamW,
    step: u32,
    grad_scale: f32,
    param: &Tensor,
    grad: &Tensor,
    m1: &Tensor,
    m2: &Tensor,
) {
    let gpu = rec.gpu();
    let n = param.len as u32;
    let pipe = gpu.pipeline(Shader::Optimizer, "adamw", &[]);
    let bc1 = 1.0 - (opt.beta1 as f64).powi(step as i32);
    let bc2 = 1.0 - (opt.beta2 as f64).powi(step as i32);
    let params = gpu.uniform(
        "adamw.params",
        &AdamParams {
            n,
            _p: [0; 3],
            lr: opt.lr,
            beta1: opt.beta1,
            beta2: opt.beta2,
            eps: opt.eps,
            weight_decay: opt.weight_decay,
            bc1: bc1 as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            grad_scale,
        },
    );
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            param.binding(),
            grad.binding(),
            m1.binding(),
            m2.binding(),
        ],
    );
    rec.dispatch("adamw", &pipe, &bg, n.div_ceil(64));
}

/// Values each sum_squares workgroup reduces (`SPAN` in optimizer.wgsl).
const SPAN: u32 = 4096;

/// Σ x² over several tensors (the global gradient norm squared), reduced per workgroup on the
/// device into one buffer of partials and summed on the host (one read-back). Waits for the
/// queue.
pub fn sum_squares(gpu: &Gpu, tensors: &[&Tensor]) -> Result<f64> {
    let mut rec = gpu.recorder();
    let pipe = gpu.pipeline(Shader::Optimizer, "sum_squares", &[]);
    let groups: Vec<u32> = tensors
        .iter()
        .map(|t| (t.len as u32).div_ceil(SPAN).max(1))
        .collect();
    let total: u32 = groups.iter().sum();
    let out = gpu.empty("sum_squares.partial", total.max(1) as usize)?;
    let mut first = 0u32;
    for (t, &g) in tensors.iter().zip(&groups) {
        let params = gpu.uniform("sum_squares.params", &[t.len as u32, first, 0, 0]);
        let bg = gpu.bind(
            &pipe,
            &[params.as_entire_binding(), t.binding(), out.binding()],
        );
        rec.dispatch("sum_squares", &pipe, &bg, g);
        first += g;
    }
    rec.finish();
    Ok(gpu.read_f32(&out)[..total as usize]
        .iter()
        .map(|&v| v as f64)
        .sum())
}
