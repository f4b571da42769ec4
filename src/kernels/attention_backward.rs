//! `shaders/attention_backward.wgsl`: backward of the fused head-gated attention.

use super::attention::{texture_possible, AttnArgs, MAX_HEAD_DIM};
use super::matmul::pack_rows;
use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    seq: u32,
    heads: u32,
    hidden: u32,
    blocks: u32,
    gate_off: u32,
    gate_stride: u32,
    total: u32,
    scale: f32,
}

/// What the forward left behind, and the upstream gradient.
pub struct AttnBackwardArgs<'a> {
    /// The forward's arguments (qkv, lengths, gates, shapes, layer).
    pub fwd: AttnArgs<'a>,
    /// The forward's gated output [B*T, H] and saved log-sum-exp [B, heads, T].
    pub out: &'a Tensor,
    pub lse: &'a Tensor,
    /// Gradient of the loss with respect to the gated output [B*T, H].
    pub dout: &'a Tensor,
}

/// Elements of scratch `stats` needs: 5 × B × heads × T.
pub fn stats_len(a: &AttnArgs) -> usize {
    5 * (a.batch * a.heads * a.seq) as usize
}

/// Outputs of [`attention_bwd`] besides dqkv, each [B, L, heads] and written at this layer.
pub struct GateOutputs<'a> {
    /// ∂L/∂ξ[b, layer, h].
    pub dgates: &'a Tensor,
    /// Attention entropy −Σ_j p log p summed over each example's real query tokens.
    pub entropy_sum: &'a Tensor,
    /// Σ_t |⟨dO_t, O_t⟩| over query tokens (token-level importance).
    pub token_abs: &'a Tensor,
    /// Confidence max_j p_tj summed over each example's real query tokens.
    pub confidence_sum: &'a Tensor,
}

/// Writes dqkv [B*T, 3H] (dQ | dK | dV), the gate gradient, attention entropy and confidence;
/// `stats` is scratch of [`stats_len`] elements.
pub fn attention_bwd(
    rec: &mut Recorder,
    a: &AttnBackwardArgs,
    dqkv: &Tensor,
    stats: &Tensor,
    outs: &GateOutputs,
) {
    let texture = rec.gpu().tuning.cpu && texture_possible(rec.gpu(), &a.fwd);
    attention_bwd_variant(rec, a, dqkv, stats, outs, texture);
}

/// As [`attention_bwd`] with the variant chosen by the caller (tests and benches compare
/// them); `texture` reads Q|K|V and dout as vec4 texels (CPU adapters) and is ignored where
/// `texture_possible` is false.
pub fn attention_bwd_variant(
    rec: &mut Recorder,
    a: &AttnBackwardArgs,
    dqkv: &Tensor,
    stats: &Tensor,
    outs: &GateOutputs,
    texture: bool,
) {
    let f = &a.fwd;
    let texture = texture && texture_possible(rec.gpu(), f);
    assert!(
        f.head_dim <= MAX_HEAD_DIM,
        "head_dim {} over {MAX_HEAD_DIM}",
        f.head_dim
    );
    let gpu = rec.gpu();
    let bq = gpu.tuning.attn_block;
    let blocks = f.seq.div_ceil(bq);
    let constants = [("BQ", bq as f64), ("HEAD_DIM", f.head_dim as f64)];
    let params = |blocks: u32, total: u32| {
        gpu.uniform(
            "attention_bwd.params",
            &Params {
                seq: f.seq,
                heads: f.heads,
                hidden: f.heads * f.head_dim,
                blocks,
                gate_off: f.gate_off,
                gate_stride: f.gate_stride,
                total,
                scale: 1.0 / (f.head_dim as f32).sqrt(),
            },
        )
    };
    let total = f.batch * f.heads * blocks;
    let pq = params(blocks, total);
    let hidden = f.heads * f.head_dim;
    let (tq, td);
    let (qkv_res, dout_res) = if texture {
        tq = pack_rows(rec, f.qkv, f.batch * f.seq, 3 * hidden, 3 * hidden);
        td = pack_rows(rec, a.dout, f.batch * f.seq, hidden, hidden);
        (
            wgpu::BindingResource::TextureView(&tq),
            wgpu::BindingResource::TextureView(&td),
        )
    } else {
        (f.qkv.binding(), a.dout.binding())
    };
    let (q_entry, kv_entry) = if texture {
        ("attn_bwd_q_tex", "attn_bwd_kv_tex")
    } else {
        ("attn_bwd_q", "attn_bwd_kv")
    };
    let pipe = gpu.pipeline(Shader::AttentionBackward, q_entry, &constants);
    let bg = gpu.bind(
        &pipe,
        &[
            pq.as_entire_binding(),
            qkv_res.clone(),
            f.lens.binding(),
            f.gates.binding(),
            a.out.binding(),
            a.lse.binding(),
            dout_res.clone(),
            dqkv.binding(),
            stats.binding(),
        ],
    );
    rec.dispatch("attn_bwd_q", &pipe, &bg, total);

    let pipe = gpu.pipeline(Shader::AttentionBackward, kv_entry, &constants);
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, pq.as_entire_binding()),
            (1, qkv_res),
            (2, f.lens.binding()),
            (3, f.gates.binding()),
            (6, dout_res),
            (7, dqkv.binding()),
            (8, stats.binding()),
        ],
    );
    rec.dispatch("attn_bwd_kv", &pipe, &bg, total);

    let bh = f.batch * f.heads;
    let pg = params(1, bh);
    let pipe = gpu.pipeline(Shader::AttentionBackward, "attn_gate_grad", &constants);
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, pg.as_entire_binding()),
            (2, f.lens.binding()),
            (8, stats.binding()),
            (9, outs.dgates.binding()),
            (10, outs.entropy_sum.binding()),
            (11, outs.token_abs.binding()),
            (12, outs.confidence_sum.binding()),
        ],
    );
    rec.dispatch("attn_gate_grad", &pipe, &bg, bh.div_ceil(64));
}
