//! `shaders/attention.wgsl`: fused head-gated attention with an online softmax.

use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    seq: u32,
    heads: u32,
    hidden: u32,
    q_blocks: u32,
    layer: u32,
    n_layers: u32,
    total: u32,
    scale: f32,
}

pub struct AttnArgs<'a> {
    /// [B*T, 3H]: Q | K | V.
    pub qkv: &'a Tensor,
    /// [B] valid lengths (keys at or past it are padding).
    pub lens: &'a Tensor,
    /// [B, L, heads] gates ξ.
    pub gates: &'a Tensor,
    pub batch: u32,
    pub seq: u32,
    pub heads: u32,
    pub head_dim: u32,
    pub layer: u32,
    pub n_layers: u32,
}

/// Largest head dimension the kernel holds in registers.
pub const MAX_HEAD_DIM: u32 = 128;

/// out [B*T, H] = per-head gated softmax(QKᵀ/√d)V; lse [B, heads, T].
pub fn attention_fwd(rec: &mut Recorder, a: &AttnArgs, out: &Tensor, lse: &Tensor) {
    assert!(
        a.head_dim <= MAX_HEAD_DIM,
        "head_dim {} over {MAX_HEAD_DIM}",
        a.head_dim
    );
    let gpu = rec.gpu();
    let bq = gpu.tuning.attn_block;
    let q_blocks = a.seq.div_ceil(bq);
    let total = a.batch * a.heads * q_blocks;
    let pipe = gpu.pipeline(
        Shader::Attention,
        "attention_fwd",
        &[("BQ", bq as f64), ("HEAD_DIM", a.head_dim as f64)],
    );
    let params = gpu.uniform(
        "attention.params",
        &Params {
            seq: a.seq,
            heads: a.heads,
            hidden: a.heads * a.head_dim,
            q_blocks,
            layer: a.layer,
            n_layers: a.n_layers,
            total,
            scale: 1.0 / (a.head_dim as f32).sqrt(),
        },
    );
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            a.qkv.binding(),
            a.lens.binding(),
            a.gates.binding(),
            out.binding(),
            lse.binding(),
        ],
    );
    rec.dispatch("attention_fwd", &pipe, &bg, total);
}
