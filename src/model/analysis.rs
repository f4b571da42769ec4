//! The attention analysis pass: a forward pass that keeps each layer's Q|K|V and runs the
//! analysis kernel on it (per-query sieve ratios and attention to words; no attention map).

use super::{Encoded, HeadSkip, Model};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
/// The sieve count and the per-token description the analysis kernel reads, for the methods
/// that prepare its inputs (they never call the kernels themselves).
pub use crate::kernels::attention_analysis::{token_info, SIEVES};
use crate::kernels::{self, AnalysisArgs};

/// One batch's analysis. Per layer (heads: the layer's stored heads, in order):
/// `sieve[l]` [B, heads, T, SIEVES] and `words[l]` [B, heads, T, n_words].
pub struct AttentionStats {
    pub batch: usize,
    pub seq: usize,
    pub n_words: usize,
    pub lengths: Vec<usize>,
    /// Original index of each layer's stored heads.
    pub heads: Vec<Vec<usize>>,
    /// Heads each layer's outputs hold: its stored heads, or one (the zero head) for a pruned
    /// layer without heads.
    pub computed: Vec<usize>,
    pub sieve: Vec<Vec<f32>>,
    pub words: Vec<Vec<f32>>,
}

impl AttentionStats {
    /// Sieve value `k` of (example, layer, stored head j, query i).
    pub fn sieve_at(&self, e: usize, l: usize, j: usize, i: usize, k: usize) -> f32 {
        let hs = self.computed[l];
        self.sieve[l][((e * hs + j) * self.seq + i) * SIEVES + k]
    }

    /// Attention from query token i to word w.
    pub fn word_at(&self, e: usize, l: usize, j: usize, i: usize, w: usize) -> f32 {
        let hs = self.computed[l];
        self.words[l][((e * hs + j) * self.seq + i) * self.n_words + w]
    }
}

impl Model {
    /// Runs the batch with every head on and analyses each layer's attention. `tokens` holds,
    /// per example, one [`kernels::token_info`] per token of its ids; `n_words` ≥ every word
    /// index used + 1.
    pub fn attention_stats(
        &self,
        gpu: &Gpu,
        examples: &[&Encoded],
        tokens: &[Vec<u32>],
        n_words: usize,
    ) -> Result<AttentionStats> {
        let c = &self.config;
        let b = examples.len();
        if tokens.len() != b
            || tokens
                .iter()
                .zip(examples)
                .any(|(t, e)| t.len() != e.ids.len())
        {
            return Err(Error::Usage(
                "token descriptions do not match the batch".into(),
            ));
        }
        let gates = vec![1f32; b * c.num_hidden_layers * c.num_attention_heads];
        let mut rec = gpu.recorder();
        let acts =
            self.record_forward(gpu, &mut rec, examples, &gates, true, None, HeadSkip::Dense)?;
        let t = acts.t;
        let mut padded = vec![kernels::token_info(None, 0, false, false); b * t];
        for (e, tk) in tokens.iter().enumerate() {
            padded[e * t..e * t + tk.len()].copy_from_slice(tk);
        }
        let tok = gpu.upload_u32("analysis.tokens", &padded)?;
        let n_words = n_words.max(1);
        let mut outs = Vec::with_capacity(self.layers.len());
        for (li, s) in acts.layers.iter().enumerate() {
            let heads = acts.plan.active[li].len();
            let sieve = gpu.empty("analysis.sieve", b * heads * t * SIEVES)?;
            let words = gpu.empty("analysis.words", b * heads * t * n_words)?;
            let args = AnalysisArgs {
                qkv: &s.qkv,
                lens: &acts.lens,
                tokens: &tok,
                batch: b as u32,
                seq: t as u32,
                heads: heads as u32,
                head_dim: c.head_dim() as u32,
                n_words: n_words as u32,
                rel_bias: acts.rel_biases[li].as_ref(),
            };
            kernels::attention_analysis(&mut rec, &args, &sieve, &words);
            outs.push((sieve, words));
        }
        rec.finish();
        let (sieve, words) = outs
            .iter()
            .map(|(s, w)| (gpu.read_f32(s), gpu.read_f32(w)))
            .unzip();
        Ok(AttentionStats {
            batch: b,
            seq: t,
            n_words,
            lengths: acts.lengths.clone(),
            heads: self.stored_heads(),
            computed: acts.plan.active.iter().map(Vec::len).collect(),
            sieve,
            words,
        })
    }
}
