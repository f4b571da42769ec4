//! `shaders/pool.wgsl`: sentence embeddings (mean, first-token, max or sqrt-length pooling of
//! each example's real tokens, optionally L2-normalised).

use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    seq: u32,
    hidden: u32,
    _pad: u32,
}

/// How the token rows of an example become one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    Mean = 0,
    First = 1,
    Max = 2,
    /// The sum divided by the square root of the length.
    MeanSqrtLen = 3,
}

/// out [B, H] from x [B, T, H] and each example's real length `lens` [B].
#[allow(clippy::too_many_arguments)]
pub fn pool(
    rec: &mut Recorder,
    x: &Tensor,
    lens: &Tensor,
    (b, t, h): (u32, u32, u32),
    mode: Pooling,
    normalize: bool,
    out: &Tensor,
) {
    let gpu = rec.gpu();
    let constants = [
        ("MODE", mode as u32 as f64),
        ("NORMALIZE", if normalize { 1.0 } else { 0.0 }),
        ("ROW_WG", gpu.tuning.row_wg as f64),
    ];
    let pipe = gpu.pipeline(Shader::Pool, "pool", &constants);
    let params = gpu.uniform(
        "pool.params",
        &Params {
            batch: b,
            seq: t,
            hidden: h,
            _pad: 0,
        },
    );
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            x.binding(),
            lens.binding(),
            out.binding(),
        ],
    );
    rec.dispatch("pool", &pipe, &bg, b);
}
