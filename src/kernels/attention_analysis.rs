//! `shaders/attention_analysis.wgsl`: per query, the attention mass on the role sieves' token
//! sets and on every word, recomputed from Q|K|V without keeping an attention map.

use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    seq: u32,
    heads: u32,
    hidden: u32,
    n_words: u32,
    total: u32,
    scale: f32,
    _p: [u32; 2],
}

/// Sieve values per query: local, [CLS], [SEP], [CLS]+[SEP], own segment (block).
pub const SIEVES: usize = 5;
/// A token that belongs to no word (special tokens).
pub const NO_WORD: u32 = 0xFFFF;

/// Packs a token's description for the kernel: its word (or [`NO_WORD`]), segment and flags.
pub fn token_info(word: Option<usize>, segment: u32, cls: bool, sep: bool) -> u32 {
    let w = word.map_or(NO_WORD, |w| {
        assert!(
            w < NO_WORD as usize,
            "word index {w} over the kernel's limit"
        );
        w as u32
    });
    w | (segment & 1) << 16 | (cls as u32) << 17 | (sep as u32) << 18
}

pub struct AnalysisArgs<'a> {
    /// [B*T, 3H]: Q | K | V of every head.
    pub qkv: &'a Tensor,
    /// [B] valid lengths.
    pub lens: &'a Tensor,
    /// [B*T] from [`token_info`].
    pub tokens: &'a Tensor,
    pub batch: u32,
    pub seq: u32,
    pub heads: u32,
    pub head_dim: u32,
    /// Words per example the `words` output has room for (at least 1).
    pub n_words: u32,
    /// The relative position bias [heads, T, T] the forward adds (MPNet), if any.
    pub rel_bias: Option<&'a Tensor>,
}

/// sieve [B, heads, T, SIEVES] and words [B, heads, T, n_words] (see the shader).
pub fn attention_analysis(rec: &mut Recorder, a: &AnalysisArgs, sieve: &Tensor, words: &Tensor) {
    assert!(a.head_dim <= super::attention::MAX_HEAD_DIM);
    assert!(a.n_words >= 1);
    let gpu = rec.gpu();
    let total = a.batch * a.heads * a.seq;
    let pipe = gpu.pipeline(
        Shader::AttentionAnalysis,
        "attention_analysis",
        &[
            ("HEAD_DIM", a.head_dim as f64),
            ("REL_BIAS", a.rel_bias.is_some() as u32 as f64),
        ],
    );
    let params = gpu.uniform(
        "attention_analysis.params",
        &Params {
            seq: a.seq,
            heads: a.heads,
            hidden: a.heads * a.head_dim,
            n_words: a.n_words,
            total,
            scale: 1.0 / (a.head_dim as f32).sqrt(),
            _p: [0; 2],
        },
    );
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            a.qkv.binding(),
            a.lens.binding(),
            a.tokens.binding(),
            sieve.binding(),
            words.binding(),
            a.rel_bias.unwrap_or(a.lens).binding(),
        ],
    );
    rec.dispatch("attention_analysis", &pipe, &bg, total.div_ceil(64));
}
