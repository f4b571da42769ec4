//! `shaders/attention_backward.wgsl`: backward of the fused head-gated attention.

use super::attention::{texture_possible, AttnArgs, MAX_HEAD_DIM};
use super::matmul::pack_rows;
pub use crate::gpu::AttnBwdVariant;
use crate::gpu::{Gpu, Recorder, Shader, Tensor};

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
/// `stats` is scratch of [`stats_len`] elements. The variant is the adapter's
/// (`gpu.tuning.attn_bwd`).
pub fn attention_bwd(
    rec: &mut Recorder,
    a: &AttnBackwardArgs,
    dqkv: &Tensor,
    stats: &Tensor,
    outs: &GateOutputs,
) {
    let variant = rec.gpu().tuning.attn_bwd;
    attention_bwd_variant(rec, a, dqkv, stats, outs, variant);
}

/// Workgroup memory of the tiled variant in bytes: two tiles of 256 vec4s, two rows of 64
/// per-query statistics, the length and the gate.
pub const TILED_WORKGROUP_BYTES: u32 = 2 * 256 * 16 + 2 * 64 * 4 + 8;

/// How the tiled variant splits the work: `lanes` invocations share a query (dQ pass) or a
/// key (dK/dV pass), `workgroup` invocations per workgroup (so `workgroup / lanes` queries or
/// keys per workgroup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TiledShape {
    pub lanes: u32,
    pub workgroup: u32,
}

/// The tiled variant's shape for these arguments on this adapter, or `None` where it cannot
/// run (no SUBGROUP, subgroups narrower than the lanes, head_dim over 16 × lanes, limits).
/// `HEADROOM_ATTN_BWD_LANES` (1, 2, 4, 8) and `HEADROOM_ATTN_BWD_WG` (32 … 1024, a power of
/// two) override the defaults (4 lanes for head_dim ≤ 64, else 8; 128 invocations) to
/// experiment.
pub fn tiled_shape(gpu: &Gpu, a: &AttnArgs) -> Option<TiledShape> {
    let env = |name: &str, allowed: &[u32]| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| allowed.contains(v))
    };
    let d = a.head_dim;
    let lanes =
        env("HEADROOM_ATTN_BWD_LANES", &[1, 2, 4, 8]).unwrap_or(if d <= 64 { 4 } else { 8 });
    let workgroup = env("HEADROOM_ATTN_BWD_WG", &[32, 64, 128, 256, 512, 1024]).unwrap_or(128);
    let shape = TiledShape { lanes, workgroup };
    tiled_fits(gpu, d, shape).then_some(shape)
}

/// Whether the tiled variant can run `shape` for this head_dim on this adapter: SUBGROUP,
/// `lanes` a power of two up to the subgroup size, head_dim within 16 × lanes and
/// MAX_HEAD_DIM, `workgroup` a multiple of `lanes` within the limits.
fn tiled_fits(gpu: &Gpu, head_dim: u32, shape: TiledShape) -> bool {
    let l = &gpu.limits;
    let (lanes, wg) = (shape.lanes, shape.workgroup);
    gpu.tuning.subgroups
        && lanes.is_power_of_two()
        && lanes <= gpu.tuning.subgroup_size
        && head_dim >= 1
        && head_dim <= 16 * lanes
        && head_dim <= MAX_HEAD_DIM
        && wg.is_multiple_of(lanes)
        && wg <= l.max_compute_invocations_per_workgroup
        && wg <= l.max_compute_workgroup_size_x
        && TILED_WORKGROUP_BYTES <= l.max_compute_workgroup_storage_size
}

/// The variant that runs for `wanted`: a variant these shapes or this adapter cannot run
/// falls back to `Storage`.
pub fn effective_variant(gpu: &Gpu, a: &AttnArgs, wanted: AttnBwdVariant) -> AttnBwdVariant {
    match wanted {
        AttnBwdVariant::Texture if texture_possible(gpu, a) => AttnBwdVariant::Texture,
        AttnBwdVariant::Tiled if tiled_shape(gpu, a).is_some() => AttnBwdVariant::Tiled,
        _ => AttnBwdVariant::Storage,
    }
}

/// As [`attention_bwd`] with the variant chosen by the caller (tests and benches compare
/// them); see [`effective_variant`] for what runs.
pub fn attention_bwd_variant(
    rec: &mut Recorder,
    a: &AttnBackwardArgs,
    dqkv: &Tensor,
    stats: &Tensor,
    outs: &GateOutputs,
    variant: AttnBwdVariant,
) {
    let gpu = rec.gpu();
    let kind = match effective_variant(gpu, &a.fwd, variant) {
        AttnBwdVariant::Tiled => Kind::Tiled(tiled_shape(gpu, &a.fwd).expect("tiled shape")),
        AttnBwdVariant::Texture => Kind::Texture,
        AttnBwdVariant::Storage => Kind::Storage,
    };
    record(rec, a, dqkv, stats, outs, kind);
}

/// The tiled variant with an explicit shape (tests cover shapes other than the default).
/// Panics where the adapter cannot run it: no SUBGROUP, `lanes` not a power of two up to the
/// subgroup size, head_dim over 16 × lanes, or `workgroup` not a multiple of `lanes` within
/// the limits.
pub fn attention_bwd_tiled(
    rec: &mut Recorder,
    a: &AttnBackwardArgs,
    dqkv: &Tensor,
    stats: &Tensor,
    outs: &GateOutputs,
    shape: TiledShape,
) {
    assert!(
        tiled_fits(rec.gpu(), a.fwd.head_dim, shape),
        "tiled attention backward {shape:?} cannot run head_dim {} here",
        a.fwd.head_dim
    );
    record(rec, a, dqkv, stats, outs, Kind::Tiled(shape));
}

enum Kind {
    Storage,
    Texture,
    Tiled(TiledShape),
}

fn record(
    rec: &mut Recorder,
    a: &AttnBackwardArgs,
    dqkv: &Tensor,
    stats: &Tensor,
    outs: &GateOutputs,
    kind: Kind,
) {
    let f = &a.fwd;
    assert!(
        f.head_dim <= MAX_HEAD_DIM,
        "head_dim {} over {MAX_HEAD_DIM}",
        f.head_dim
    );
    let gpu = rec.gpu();
    let texture = matches!(kind, Kind::Texture);
    // queries (or keys) per workgroup, and the pipelines' constants
    let bq = gpu.tuning.attn_block;
    let (rows, constants, q_entry, kv_entry) = match kind {
        Kind::Tiled(s) => (
            s.workgroup / s.lanes,
            vec![
                ("HEAD_DIM", f.head_dim as f64),
                ("TD", s.lanes as f64),
                ("TWG", s.workgroup as f64),
            ],
            "attn_bwd_q_tiled",
            "attn_bwd_kv_tiled",
        ),
        Kind::Texture => (
            bq,
            vec![("BQ", bq as f64), ("HEAD_DIM", f.head_dim as f64)],
            "attn_bwd_q_tex",
            "attn_bwd_kv_tex",
        ),
        Kind::Storage => (
            bq,
            vec![("BQ", bq as f64), ("HEAD_DIM", f.head_dim as f64)],
            "attn_bwd_q",
            "attn_bwd_kv",
        ),
    };
    let mut constants = constants;
    constants.push(f.rel_bias_constant());
    let blocks = f.seq.div_ceil(rows);
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
    let pipe = gpu.pipeline(Shader::AttentionBackward, q_entry, &constants);
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, pq.as_entire_binding()),
            (1, qkv_res.clone()),
            (2, f.lens.binding()),
            (3, f.gates.binding()),
            (4, a.out.binding()),
            (5, a.lse.binding()),
            (6, dout_res.clone()),
            (7, dqkv.binding()),
            (8, stats.binding()),
            (13, f.rel_bias_binding()),
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
            (13, f.rel_bias_binding()),
        ],
    );
    rec.dispatch("attn_bwd_kv", &pipe, &bg, total);

    let bh = f.batch * f.heads;
    let pg = params(1, bh);
    let constants = [("BQ", bq as f64), ("HEAD_DIM", f.head_dim as f64)];
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

/// The relative position bias's gradient (MPNet, fine-tuning) after [`attention_bwd`] has
/// filled `stats`: `out` [heads, 2T − 1], the sum of dS over every (example, query) pair at
/// each relative offset key − query + T − 1 (keys within each example's length). Reads Q|K|V
/// and dout as storage buffers on every adapter.
pub fn relative_bias_grad(rec: &mut Recorder, a: &AttnBackwardArgs, stats: &Tensor, out: &Tensor) {
    let f = &a.fwd;
    let bias = f.rel_bias.expect("a relative position bias");
    let gpu = rec.gpu();
    let constants = [
        ("BQ", gpu.tuning.attn_block as f64),
        ("HEAD_DIM", f.head_dim as f64),
        ("REL_BIAS", 1.0),
        ("ROW_WG", gpu.tuning.row_wg as f64),
    ];
    let pipe = gpu.pipeline(Shader::AttentionBackward, "attn_rel_bias_grad", &constants);
    let params = gpu.uniform(
        "attention_bwd.params",
        &Params {
            seq: f.seq,
            heads: f.heads,
            hidden: f.heads * f.head_dim,
            blocks: 1,
            gate_off: f.gate_off,
            gate_stride: f.gate_stride,
            total: f.batch * f.heads,
            scale: 1.0 / (f.head_dim as f32).sqrt(),
        },
    );
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, params.as_entire_binding()),
            (1, f.qkv.binding()),
            (2, f.lens.binding()),
            (3, f.gates.binding()),
            (6, a.dout.binding()),
            (8, stats.binding()),
            (13, bias.binding()),
            (14, out.binding()),
        ],
    );
    rec.dispatch("attn_rel_bias_grad", &pipe, &bg, f.heads * (2 * f.seq - 1));
}
