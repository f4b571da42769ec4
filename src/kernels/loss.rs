//! `shaders/loss.wgsl`: softmax cross-entropy with ignored label −100.

use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    classes: u32,
    scale: f32,
    _pad: u32,
}

/// Per-row loss and dlogits = scale · (softmax − onehot); rows labelled −100 give 0 and 0.
/// `labels` holds i32 values.
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy(
    rec: &mut Recorder,
    logits: &Tensor,
    labels: &Tensor,
    rows: u32,
    classes: u32,
    scale: f32,
    loss: &Tensor,
    dlogits: &Tensor,
) {
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(Shader::Loss, "cross_entropy", &[]);
    let params = gpu.uniform(
        "cross_entropy.params",
        &Params {
            rows,
            classes,
            scale,
            _pad: 0,
        },
    );
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            logits.binding(),
            labels.binding(),
            loss.binding(),
            dlogits.binding(),
        ],
    );
    rec.dispatch("cross_entropy", &pipe, &bg, rows.div_ceil(64));
}
