//! `shaders/attention.wgsl`: fused head-gated attention with an online softmax.

use super::matmul::{fits_texture, pack_rows, texture_variant_available};
use crate::gpu::{Gpu, Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    seq: u32,
    heads: u32,
    hidden: u32,
    q_blocks: u32,
    gate_off: u32,
    gate_stride: u32,
    total: u32,
    scale: f32,
}

pub struct AttnArgs<'a> {
    /// [B*T, 3H]: Q | K | V.
    pub qkv: &'a Tensor,
    /// [B] valid lengths (keys at or past it are padding).
    pub lens: &'a Tensor,
    /// Gates ξ: one row of `gate_stride` values per example, this layer's `heads` from
    /// `gate_off` on ([B, L, heads] with gate_off = layer·heads for a dense model).
    pub gates: &'a Tensor,
    pub batch: u32,
    pub seq: u32,
    pub heads: u32,
    pub head_dim: u32,
    pub gate_off: u32,
    pub gate_stride: u32,
    /// A relative position bias [heads, T, T] added to the scaled scores (MPNet), for the
    /// heads this layer computes; None: no bias term (the kernels compile it out).
    pub rel_bias: Option<&'a Tensor>,
}

impl AttnArgs<'_> {
    /// The `REL_BIAS` override constant.
    pub(crate) fn rel_bias_constant(&self) -> (&'static str, f64) {
        ("REL_BIAS", self.rel_bias.is_some() as u32 as f64)
    }

    /// What the bias binding holds: the bias, or (never read) the lengths.
    pub(crate) fn rel_bias_binding(&self) -> wgpu::BindingResource<'_> {
        self.rel_bias.unwrap_or(self.lens).binding()
    }
}

/// Largest head dimension the kernel holds in registers.
pub const MAX_HEAD_DIM: u32 = 128;

/// out [B*T, H] = per-head gated softmax(QKᵀ/√d)V; lse [B, heads, T]. CPU adapters read Q|K|V
/// through a texture (see `attention_fwd_tex` in the shader) where the shapes allow.
pub fn attention_fwd(rec: &mut Recorder, a: &AttnArgs, out: &Tensor, lse: &Tensor) {
    let texture = rec.gpu().tuning.cpu && texture_possible(rec.gpu(), a);
    attention_fwd_variant(rec, a, out, lse, texture);
}

/// Whether the texture variant can run these shapes on this adapter.
pub fn texture_possible(gpu: &Gpu, a: &AttnArgs) -> bool {
    let hidden = a.heads * a.head_dim;
    texture_variant_available(gpu)
        && a.head_dim.is_multiple_of(4)
        && fits_texture(gpu, a.batch * a.seq, 3 * hidden)
}

/// As [`attention_fwd`] with the variant chosen by the caller (tests and benches compare them);
/// `texture` is ignored where [`texture_possible`] is false.
pub fn attention_fwd_variant(
    rec: &mut Recorder,
    a: &AttnArgs,
    out: &Tensor,
    lse: &Tensor,
    texture: bool,
) {
    assert!(
        a.head_dim <= MAX_HEAD_DIM,
        "head_dim {} over {MAX_HEAD_DIM}",
        a.head_dim
    );
    let gpu = rec.gpu();
    let texture = texture && texture_possible(gpu, a);
    let bq = gpu.tuning.attn_block;
    let q_blocks = a.seq.div_ceil(bq);
    let total = a.batch * a.heads * q_blocks;
    let hidden = a.heads * a.head_dim;
    let (shader, entry) = if texture {
        (Shader::AttentionTexture, "attention_fwd_tex")
    } else {
        (Shader::Attention, "attention_fwd")
    };
    let pipe = gpu.pipeline(
        shader,
        entry,
        &[
            ("BQ", bq as f64),
            ("HEAD_DIM", a.head_dim as f64),
            a.rel_bias_constant(),
        ],
    );
    let params = gpu.uniform(
        "attention.params",
        &Params {
            seq: a.seq,
            heads: a.heads,
            hidden,
            q_blocks,
            gate_off: a.gate_off,
            gate_stride: a.gate_stride,
            total,
            scale: 1.0 / (a.head_dim as f32).sqrt(),
        },
    );
    let packed;
    let qkv = if texture {
        packed = pack_rows(rec, a.qkv, a.batch * a.seq, 3 * hidden, 3 * hidden);
        wgpu::BindingResource::TextureView(&packed)
    } else {
        a.qkv.binding()
    };
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            qkv,
            a.lens.binding(),
            a.gates.binding(),
            out.binding(),
            lse.binding(),
            a.rel_bias_binding(),
        ],
    );
    rec.dispatch("attention_fwd", &pipe, &bg, total);
}
