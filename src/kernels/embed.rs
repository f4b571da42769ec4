//! `shaders/embed.wgsl`: word + position + token-type embeddings fused with LayerNorm.

use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_rows: u32,
    hidden: u32,
    seq_len: u32,
    row0: u32,
    rows: u32,
    n_types: u32,
    eps: f32,
    pos_offset: u32,
}

pub struct EmbedArgs<'a> {
    /// [B*T] token ids.
    pub ids: &'a Tensor,
    /// [B*T] token-type ids.
    pub type_ids: &'a Tensor,
    /// The word table in chunks of rows: (first id, rows, [rows, H] tensor).
    pub word_chunks: &'a [(u32, u32, Tensor)],
    /// [P, H] position table; row r of the batch uses position r % seq_len + pos_offset.
    pub pos: &'a Tensor,
    /// [n_types, H] token-type table.
    pub typ: &'a Tensor,
    pub n_types: u32,
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
    pub eps: f32,
    pub n_rows: u32,
    pub seq_len: u32,
    pub pos_offset: u32,
    pub hidden: u32,
}

/// out[r] = LN(word[ids[r]] + pos[r % T + offset] + typ[type_ids[r]]).
pub fn embed_ln(rec: &mut Recorder, a: &EmbedArgs, out: &Tensor) {
    embed(rec, a, out, "embed_ln");
}

/// out[r] = word[ids[r]] + pos[r % T + offset] + typ[type_ids[r]], before the LayerNorm (the backward
/// pass needs it; `gamma`, `beta` and `eps` of `a` are unused).
pub fn embed_sum(rec: &mut Recorder, a: &EmbedArgs, out: &Tensor) {
    embed(rec, a, out, "embed_sum");
}

fn embed(rec: &mut Recorder, a: &EmbedArgs, out: &Tensor, entry: &'static str) {
    let gpu = rec.gpu();
    let wg = gpu.tuning.row_wg as f64;
    let pipe = gpu.pipeline(Shader::Embed, entry, &[("ROW_WG", wg)]);
    for (row0, rows, table) in a.word_chunks {
        let params = gpu.uniform(
            "embed.params",
            &Params {
                n_rows: a.n_rows,
                hidden: a.hidden,
                seq_len: a.seq_len,
                row0: *row0,
                rows: *rows,
                n_types: a.n_types,
                eps: a.eps,
                pos_offset: a.pos_offset,
            },
        );
        let mut entries = vec![
            (0, params.as_entire_binding()),
            (1, a.ids.binding()),
            (2, a.type_ids.binding()),
            (3, table.binding()),
            (4, a.pos.binding()),
            (5, a.typ.binding()),
            (8, out.binding()),
        ];
        if entry == "embed_ln" {
            entries.extend([(6, a.gamma.binding()), (7, a.beta.binding())]);
        }
        let bg = gpu.bind_at(&pipe, &entries);
        rec.dispatch(entry, &pipe, &bg, a.n_rows);
    }
}
