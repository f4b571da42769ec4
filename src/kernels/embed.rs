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
    _pad: u32,
}

pub struct EmbedArgs<'a> {
    /// [B*T] token ids.
    pub ids: &'a Tensor,
    /// [B*T] token-type ids.
    pub type_ids: &'a Tensor,
    /// The word table in chunks of rows: (first id, rows, [rows, H] tensor).
    pub word_chunks: &'a [(u32, u32, Tensor)],
    /// [P, H] position table; row r of the batch uses position r % seq_len.
    pub pos: &'a Tensor,
    /// [n_types, H] token-type table.
    pub typ: &'a Tensor,
    pub n_types: u32,
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
    pub eps: f32,
    pub n_rows: u32,
    pub seq_len: u32,
    pub hidden: u32,
}

/// out[r] = LN(word[ids[r]] + pos[r % T] + typ[type_ids[r]]).
pub fn embed_ln(rec: &mut Recorder, a: &EmbedArgs, out: &Tensor) {
    let gpu = rec.gpu();
    let wg = gpu.tuning.row_wg as f64;
    let pipe = gpu.pipeline(Shader::Embed, "embed_ln", &[("ROW_WG", wg)]);
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
                _pad: 0,
            },
        );
        let bg = gpu.bind(
            &pipe,
            &[
                params.as_entire_binding(),
                a.ids.binding(),
                a.type_ids.binding(),
                table.binding(),
                a.pos.binding(),
                a.typ.binding(),
                a.gamma.binding(),
                a.beta.binding(),
                out.binding(),
            ],
        );
        rec.dispatch("embed_ln", &pipe, &bg, a.n_rows);
    }
}
