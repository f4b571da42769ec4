//! Head importance (Michel et al. 2019): I_h from gate gradients ∂ℓ/∂ξ_h of the model's
//! backward pass, in the granularities the literature uses, with attention entropy from the
//! same pass. Calls the model, never kernels.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::batch::{plan_for, progress_bar};
use crate::model::{Encoded, Model, TaskHead};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// Mean over examples of |∂ℓ_x/∂ξ_h| (the paper).
    Example,
    /// |Σ over a batch|, then the mean over batches (DSP code, HF bertology).
    Batch,
    /// Mean of the squared per-example gradient.
    Fisher,
}

impl Granularity {
    pub fn parse(s: &str) -> Result<Granularity> {
        match s {
            "example" => Ok(Granularity::Example),
            "batch" => Ok(Granularity::Batch),
            "fisher" => Ok(Granularity::Fisher),
            "token" => Err(Error::Usage(
                "--granularity token is not implemented yet (example, batch, fisher are)".into(),
            )),
            _ => Err(Error::Usage(format!(
                "unknown --granularity {s:?} (example, batch, fisher)"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Example => "example",
            Granularity::Batch => "batch",
            Granularity::Fisher => "fisher",
        }
    }
}

pub struct Scores {
    pub layers: usize,
    pub heads: usize,
    pub examples: usize,
    pub batches: usize,
    /// Per-example gate gradients [N, L, H], input order.
    pub per_example: Vec<f32>,
    /// [L, H] for each granularity.
    pub example: Vec<f32>,
    pub batch: Vec<f32>,
    pub fisher: Vec<f32>,
    /// Attention entropy averaged over real query tokens [L, H].
    pub entropy: Vec<f32>,
    pub mean_loss: f64,
}

impl Scores {
    pub fn get(&self, g: Granularity) -> &[f32] {
        match g {
            Granularity::Example => &self.example,
            Granularity::Batch => &self.batch,
            Granularity::Fisher => &self.fisher,
        }
    }
}

/// One forward and one backward pass per batch, all gates at 1.
pub fn score(
    gpu: &Gpu,
    model: &Model,
    enc: &[Encoded],
    labels: &[i32],
    batch_size: usize,
    progress: bool,
) -> Result<Scores> {
    if model.task != TaskHead::SequenceClassification {
        return Err(Error::Usage(format!(
            "{}: scoring supports sequence classifiers for now (this checkpoint is {:?})",
            model.dir.display(),
            model.task
        )));
    }
    let c = &model.config;
    let (nl, nh) = (c.num_hidden_layers, c.num_attention_heads);
    let lh = nl * nh;
    let n = enc.len();
    let lengths: Vec<usize> = enc.iter().map(|e| e.ids.len()).collect();
    // Every buffer of the backward pass is one of the forward's shapes: the same plan holds.
    let batches = plan_for(gpu, model, &lengths, batch_size)?;
    let bar = progress.then(|| progress_bar(n));
    let mut per_example = vec![0f32; n * lh];
    let mut batch = vec![0f64; lh];
    let mut ent = vec![0f64; lh];
    let mut tokens = 0usize;
    let mut loss = 0f64;
    for idx in &batches {
        let refs: Vec<&Encoded> = idx.iter().map(|&i| &enc[i]).collect();
        let ys: Vec<i32> = idx.iter().map(|&i| labels[i]).collect();
        let out = model.gate_gradients(gpu, &refs, &ys, &vec![1.0; idx.len() * lh])?;
        let mut sum = vec![0f64; lh];
        for (e, &i) in idx.iter().enumerate() {
            let g = &out.dgates[e * lh..(e + 1) * lh];
            per_example[i * lh..(i + 1) * lh].copy_from_slice(g);
            for k in 0..lh {
                sum[k] += g[k] as f64;
                ent[k] += out.entropy_sum[e * lh + k] as f64;
            }
            loss += out.loss[e] as f64;
        }
        tokens += out.lengths.iter().sum::<usize>();
        for k in 0..lh {
            batch[k] += sum[k].abs() / batches.len() as f64;
        }
        if let Some(b) = &bar {
            b.inc(idx.len() as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut example = vec![0f32; lh];
    let mut fisher = vec![0f32; lh];
    for row in per_example.chunks(lh) {
        for k in 0..lh {
            example[k] += (row[k].abs() as f64 / n as f64) as f32;
            fisher[k] += (row[k] as f64 * row[k] as f64 / n as f64) as f32;
        }
    }
    Ok(Scores {
        layers: nl,
        heads: nh,
        examples: n,
        batches: batches.len(),
        per_example,
        example,
        batch: batch.iter().map(|&v| v as f32).collect(),
        fisher,
        entropy: ent
            .iter()
            .map(|&v| (v / tokens.max(1) as f64) as f32)
            .collect(),
        mean_loss: loss / n.max(1) as f64,
    })
}

/// bertology's per-layer ℓ2 normalisation: I / ((Σ_h I²)^½ + 1e-20), layer by layer.
pub fn normalize_per_layer(scores: &[f32], heads: usize) -> Vec<f32> {
    scores
        .chunks(heads)
        .flat_map(|row| {
            let norm = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt() + 1e-20;
            row.iter().map(move |v| (*v as f64 / norm) as f32)
        })
        .collect()
}

/// Global min-max normalisation to [0, 1] (all equal: all 0).
pub fn normalize_min_max(scores: &[f32]) -> Vec<f32> {
    let lo = scores.iter().cloned().fold(f32::INFINITY, f32::min);
    let hi = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    scores
        .iter()
        .map(|v| if hi > lo { (v - lo) / (hi - lo) } else { 0.0 })
        .collect()
}

/// Rank of each head, 1 = most important; ties keep head order.
pub fn ranks(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut r = vec![0; scores.len()];
    for (pos, &i) in order.iter().enumerate() {
        r[i] = pos + 1;
    }
    r
}
