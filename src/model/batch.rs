//! Batching: sort by length, pad each batch to its longest, keep every buffer within the
//! adapter's binding limit, and return results in input order.

use super::{Encoded, HeadSkip, Model, Readback, SentencePooling, TaskHead};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Head gates ξ.
#[derive(Clone, Debug)]
pub enum Gates {
    /// Every head open.
    Ones,
    /// One [L, H] mask for every example (transformers' `head_mask`).
    Broadcast(Vec<f32>),
    /// Per example: [N, L, H] in input order.
    PerExample(Vec<f32>),
}

impl Gates {
    /// The gates [B, L, H] of the examples `idx` (input indices), `lh` = L·H per example.
    pub fn for_batch(&self, idx: &[usize], lh: usize) -> Vec<f32> {
        let mut g = Vec::with_capacity(idx.len() * lh);
        for &i in idx {
            match self {
                Gates::Ones => g.extend(std::iter::repeat_n(1.0f32, lh)),
                Gates::Broadcast(m) => g.extend_from_slice(m),
                Gates::PerExample(m) => g.extend_from_slice(&m[i * lh..(i + 1) * lh]),
            }
        }
        g
    }
}

#[derive(Clone, Debug)]
pub struct ForwardOptions {
    pub batch_size: usize,
    pub hidden: bool,
    pub progress: bool,
    /// Also pool each example's token states into a sentence embedding.
    pub sentence: Option<SentencePooling>,
    /// Also read the masked-LM head's scores (a model loaded for the MLM objective).
    pub mlm_logits: bool,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        ForwardOptions {
            batch_size: 32,
            hidden: false,
            progress: false,
            sentence: None,
            mlm_logits: false,
        }
    }
}

/// Outputs in input order. Per-token tensors are padded to `seq`, the longest example.
pub struct ForwardResult {
    pub n: usize,
    pub seq: usize,
    pub lengths: Vec<usize>,
    /// [N, C] for sequence classification, [N, seq, C] for token classification.
    pub logits: Option<Vec<f32>>,
    pub num_labels: usize,
    /// [N, H].
    pub pooled: Option<Vec<f32>>,
    /// [N, seq, H] when asked for.
    pub hidden: Option<Vec<f32>>,
    /// [N, H] sentence embeddings when asked for.
    pub sentence: Option<Vec<f32>>,
    /// [N, seq, vocabulary] masked-LM scores when asked for.
    pub mlm_logits: Option<Vec<f32>>,
}

/// Groups example indices (sorted longest first) into batches of at most `batch_size` examples
/// and `max_tokens` padded tokens.
pub fn plan_batches(lengths: &[usize], batch_size: usize, max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
    let mut batches = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    for i in order {
        let t = cur
            .first()
            .map(|&f| lengths[f])
            .unwrap_or(lengths[i])
            .max(1);
        if !cur.is_empty() && (cur.len() >= batch_size || (cur.len() + 1) * t > max_tokens) {
            batches.push(std::mem::take(&mut cur));
        }
        cur.push(i);
    }
    if !cur.is_empty() {
        batches.push(cur);
    }
    batches
}

/// Batches of at most `batch_size` examples that keep every buffer of the model within the
/// adapter's storage-binding limit (and, for the texture matmul, a batch's rows within one
/// texture's height). Fails with one line when a single example cannot fit.
pub fn plan_for(
    gpu: &Gpu,
    model: &Model,
    lengths: &[usize],
    batch_size: usize,
) -> Result<Vec<Vec<usize>>> {
    let widest = model.widest_row().max(model.config.hidden_size);
    let mut max_tokens = (gpu.max_binding() / 4) as usize / widest;
    if gpu.tuning.matmul == crate::gpu::MatmulVariant::Texture {
        max_tokens = max_tokens.min(gpu.limits.max_texture_dimension_2d as usize);
    }
    let seq = lengths.iter().copied().max().unwrap_or(0);
    if seq > max_tokens {
        return Err(Error::Limit(format!(
            "one example of {seq} tokens needs {:.1} MiB in one buffer, over the adapter's binding limit",
            (seq * widest * 4) as f64 / 1048576.0
        )));
    }
    Ok(plan_batches(lengths, batch_size.max(1), max_tokens))
}

/// The progress bar every batched command shows on stderr (hidden when stderr is no terminal).
pub fn progress_bar(examples: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(examples as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} examples {elapsed} ({eta} left) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

pub fn run_forward(
    gpu: &Gpu,
    model: &Model,
    examples: &[Encoded],
    gates: &Gates,
    opts: &ForwardOptions,
) -> Result<ForwardResult> {
    let c = &model.config;
    let (nl, nh, h) = (c.num_hidden_layers, c.num_attention_heads, c.hidden_size);
    let lh = nl * nh;
    let n = examples.len();
    match gates {
        Gates::Broadcast(g) if g.len() != lh => {
            return Err(Error::Usage(format!(
                "head mask has {} entries; the model has {nl}×{nh}",
                g.len()
            )))
        }
        Gates::PerExample(g) if g.len() != n * lh => {
            return Err(Error::Usage(format!(
                "per-example gates have {} entries; expected {n}×{nl}×{nh}",
                g.len()
            )))
        }
        _ => {}
    }
    let lengths: Vec<usize> = examples.iter().map(|e| e.ids.len()).collect();
    let seq = lengths.iter().copied().max().unwrap_or(0);
    let batches = plan_for(gpu, model, &lengths, opts.batch_size)?;
    let c_out = model.num_labels;
    let token_logits = model.task == TaskHead::TokenClassification;
    let mut logits = (model.task != TaskHead::None).then(|| {
        vec![
            0f32;
            if token_logits {
                n * seq * c_out
            } else {
                n * c_out
            }
        ]
    });
    let mut pooled = model.has_pooler().then(|| vec![0f32; n * h]);
    let mut hidden = opts.hidden.then(|| vec![0f32; n * seq * h]);
    let mut sentence = opts.sentence.map(|_| vec![0f32; n * h]);
    let v = c.vocab_size;
    let mut mlm_logits = opts.mlm_logits.then(|| vec![0f32; n * seq * v]);
    let readback = Readback {
        hidden: opts.hidden,
        sentence: opts.sentence,
        mlm_logits: opts.mlm_logits,
    };

    let bar = opts.progress.then(|| progress_bar(n));
    for idx in &batches {
        let exs: Vec<&Encoded> = idx.iter().map(|&i| &examples[i]).collect();
        let g = gates.for_batch(idx, lh);
        let out = model.forward_batch_reading(gpu, &exs, &g, &readback, HeadSkip::Skip)?;
        let t = out.seq;
        for (e, &i) in idx.iter().enumerate() {
            if let (Some(dst), Some(src)) = (logits.as_mut(), out.logits.as_ref()) {
                if token_logits {
                    for j in 0..t {
                        dst[(i * seq + j) * c_out..][..c_out]
                            .copy_from_slice(&src[(e * t + j) * c_out..][..c_out]);
                    }
                } else {
                    dst[i * c_out..][..c_out].copy_from_slice(&src[e * c_out..][..c_out]);
                }
            }
            if let (Some(dst), Some(src)) = (pooled.as_mut(), out.pooled.as_ref()) {
                dst[i * h..][..h].copy_from_slice(&src[e * h..][..h]);
            }
            if let (Some(dst), Some(src)) = (sentence.as_mut(), out.sentence.as_ref()) {
                dst[i * h..][..h].copy_from_slice(&src[e * h..][..h]);
            }
            if let (Some(dst), Some(src)) = (hidden.as_mut(), out.hidden.as_ref()) {
                dst[i * seq * h..][..t * h].copy_from_slice(&src[e * t * h..][..t * h]);
            }
            if let (Some(dst), Some(src)) = (mlm_logits.as_mut(), out.mlm_logits.as_ref()) {
                dst[i * seq * v..][..t * v].copy_from_slice(&src[e * t * v..][..t * v]);
            }
        }
        if let Some(b) = &bar {
            b.inc(idx.len() as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(ForwardResult {
        n,
        seq,
        lengths,
        logits,
        num_labels: c_out,
        pooled,
        hidden,
        sentence,
        mlm_logits,
    })
}
