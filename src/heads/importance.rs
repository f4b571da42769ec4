//! Head importance (Michel et al. 2019): I_h from gate gradients ∂ℓ/∂ξ_h of the model's
//! backward pass, in the granularities the literature uses, with attention entropy from the
//! same pass. Calls the model, never kernels.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::batch::{plan_for, progress_bar};
use crate::model::contrastive::ContrastiveSpec;
use crate::model::{Encoded, GateGrads, Gates, Model, TaskHead};
use crate::tasks::pretraining::{PairPasses, Pairs};
use crate::tasks::{ObjectiveData, TaskData};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// Mean over examples of |∂ℓ_x/∂ξ_h| (the paper).
    Example,
    /// |Σ over a batch|, then the mean over batches (DSP code, HF bertology).
    Batch,
    /// Mean of the squared per-example gradient.
    Fisher,
    /// Mean over examples of Σ_t |⟨O_t, dO_t⟩| (Michel et al.'s released code).
    Token,
}

impl Granularity {
    pub fn parse(s: &str) -> Result<Granularity> {
        match s {
            "example" => Ok(Granularity::Example),
            "batch" => Ok(Granularity::Batch),
            "fisher" => Ok(Granularity::Fisher),
            "token" => Ok(Granularity::Token),
            _ => Err(Error::Usage(format!(
                "unknown --granularity {s:?} (example, batch, token, fisher)"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Example => "example",
            Granularity::Batch => "batch",
            Granularity::Fisher => "fisher",
            Granularity::Token => "token",
        }
    }

    pub const ALL: [Granularity; 4] = [
        Granularity::Example,
        Granularity::Batch,
        Granularity::Token,
        Granularity::Fisher,
    ];
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
    pub token: Vec<f32>,
    /// Per-example Σ_t |⟨O_t, dO_t⟩| [N, L, H], input order.
    pub per_example_token: Vec<f32>,
    /// Attention entropy averaged over real query tokens [L, H].
    pub entropy: Vec<f32>,
    /// Mean over real query tokens of the largest attention weight [L, H] (Voita et al.).
    pub confidence: Vec<f32>,
    pub mean_loss: f64,
}

impl Scores {
    pub fn get(&self, g: Granularity) -> &[f32] {
        match g {
            Granularity::Example => &self.example,
            Granularity::Batch => &self.batch,
            Granularity::Fisher => &self.fisher,
            Granularity::Token => &self.token,
        }
    }

    /// Per-example values whose mean is granularity `g` (None for `batch`, which is not a
    /// mean over examples).
    pub fn per_example_values(&self, g: Granularity, i: usize) -> Option<Vec<f32>> {
        let lh = self.layers * self.heads;
        let row = |v: &[f32]| v[i * lh..(i + 1) * lh].to_vec();
        match g {
            Granularity::Example => Some(row(&self.per_example).iter().map(|v| v.abs()).collect()),
            Granularity::Fisher => Some(row(&self.per_example).iter().map(|v| v * v).collect()),
            Granularity::Token => Some(row(&self.per_example_token)),
            Granularity::Batch => None,
        }
    }
}

/// One forward and one backward pass per batch, every gate at 1, or at `mask` [L, H] (a head
/// gated to 0 still gets its exact gradient). Sequence classification: ℓ_x is the example's
/// cross-entropy; token classification and masked LM: the sum over its labelled tokens.
pub fn score(
    gpu: &Gpu,
    model: &Model,
    data: &TaskData,
    mask: Option<&[f32]>,
    batch_size: usize,
    progress: bool,
) -> Result<Scores> {
    if model.task == TaskHead::None && !model.has_mlm_head() && !model.has_rtd_head() {
        return Err(Error::Usage(format!(
            "{}: scoring needs a classifier head (this checkpoint is a bare encoder)",
            model.dir.display()
        )));
    }
    let enc: &[Encoded] = &data.examples;
    let c = &model.config;
    let (nl, nh) = (c.num_hidden_layers, c.num_attention_heads);
    let lh = nl * nh;
    let n = enc.len();
    if let Some(m) = mask {
        assert_eq!(m.len(), lh, "a head mask is [L, H]");
    }
    let lengths: Vec<usize> = enc.iter().map(|e| e.ids.len()).collect();
    // Every buffer of the backward pass is one of the forward's shapes: the same plan holds.
    let batches = plan_for(gpu, model, &lengths, batch_size)?;
    let bar = progress.then(|| progress_bar(n));
    let mut acc = Accumulator::new(n, nl, nh, batches.len());
    for idx in &batches {
        let refs: Vec<&Encoded> = idx.iter().map(|&i| &enc[i]).collect();
        let ys = data.batch_labels(idx);
        let out = model.gate_gradients(gpu, &refs, &ys, &gates_for(mask, idx.len(), lh))?;
        acc.add(idx, &out);
        if let Some(b) = &bar {
            b.inc(idx.len() as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(acc.finish())
}

/// `rows` gate rows: every gate at 1, or `mask` [L, H] in each.
fn gates_for(mask: Option<&[f32]>, rows: usize, lh: usize) -> Vec<f32> {
    match mask {
        Some(m) => m.iter().cycle().take(rows * lh).copied().collect(),
        None => vec![1.0; rows * lh],
    }
}

/// Head importance under an in-batch contrastive objective (`contrastive` pairs, or
/// `simcse`: each sentence and itself under other dropout), with `mask` as [`score`]. Pairs are
/// batched in an order drawn from `seed`; a pair's gate gradient is that of its batch's summed
/// loss with respect to the gates of both its sentences (tied), so the per-example values are
/// per batch.
#[allow(clippy::too_many_arguments)]
pub fn score_pairs(
    gpu: &Gpu,
    model: &Model,
    pairs: &Pairs,
    spec: &ContrastiveSpec,
    mask: Option<&[f32]>,
    batch_size: usize,
    seed: u64,
    progress: bool,
) -> Result<Scores> {
    let c = &model.config;
    let (nl, nh) = (c.num_hidden_layers, c.num_attention_heads);
    let batches = pairs.batches(batch_size, seed);
    model.check_contrastive(spec, batch_size)?;
    let gates = match mask {
        Some(m) => Gates::Broadcast(m.to_vec()),
        None => Gates::Ones,
    };
    let run = PairPasses {
        gpu,
        model,
        spec,
        gates: &gates,
        backward: true,
        progress,
    };
    let mut acc = Accumulator::new(pairs.len(), nl, nh, batches.len());
    pairs.run(&batches, &run, |idx, _, grads| {
        acc.add(
            idx,
            &grads.expect("a backward pass was asked for").fold_pairs(),
        );
    })?;
    Ok(acc.finish())
}

/// Head importance under whichever objective `data` was loaded for ([`score`], or
/// [`score_pairs`] for the in-batch objectives).
pub fn score_objective(
    gpu: &Gpu,
    model: &Model,
    data: &ObjectiveData,
    mask: Option<&[f32]>,
    batch_size: usize,
    progress: bool,
) -> Result<Scores> {
    match data {
        ObjectiveData::Task(d) | ObjectiveData::Mlm(d) | ObjectiveData::Rtd(d) => {
            score(gpu, model, d, mask, batch_size, progress)
        }
        ObjectiveData::InBatch { pairs, spec, seed } => {
            score_pairs(gpu, model, pairs, spec, mask, batch_size, *seed, progress)
        }
    }
}

/// Gathers each batch's gate gradients into [`Scores`].
struct Accumulator {
    layers: usize,
    heads: usize,
    batches: usize,
    per_example: Vec<f32>,
    per_example_token: Vec<f32>,
    batch: Vec<f64>,
    entropy: Vec<f64>,
    confidence: Vec<f64>,
    tokens: usize,
    loss: f64,
}

impl Accumulator {
    fn new(examples: usize, layers: usize, heads: usize, batches: usize) -> Accumulator {
        let lh = layers * heads;
        Accumulator {
            layers,
            heads,
            batches,
            per_example: vec![0.0; examples * lh],
            per_example_token: vec![0.0; examples * lh],
            batch: vec![0.0; lh],
            entropy: vec![0.0; lh],
            confidence: vec![0.0; lh],
            tokens: 0,
            loss: 0.0,
        }
    }

    /// One batch: `out`'s rows are the examples `idx`.
    fn add(&mut self, idx: &[usize], out: &GateGrads) {
        let lh = self.layers * self.heads;
        let mut sum = vec![0f64; lh];
        for (e, &i) in idx.iter().enumerate() {
            let g = &out.dgates[e * lh..(e + 1) * lh];
            self.per_example[i * lh..(i + 1) * lh].copy_from_slice(g);
            self.per_example_token[i * lh..(i + 1) * lh]
                .copy_from_slice(&out.token_abs[e * lh..(e + 1) * lh]);
            for k in 0..lh {
                sum[k] += g[k] as f64;
                self.entropy[k] += out.entropy_sum[e * lh + k] as f64;
                self.confidence[k] += out.confidence_sum[e * lh + k] as f64;
            }
            self.loss += out.loss[e] as f64;
        }
        self.tokens += out.lengths.iter().sum::<usize>();
        for (total, s) in self.batch.iter_mut().zip(&sum) {
            *total += s.abs() / self.batches as f64;
        }
    }

    fn finish(self) -> Scores {
        let lh = self.layers * self.heads;
        let n = self.per_example.len() / lh.max(1);
        let mean = |f: &dyn Fn(usize) -> f64| -> Vec<f32> {
            (0..lh)
                .map(|k| ((0..n).map(|i| f(i * lh + k)).sum::<f64>() / n.max(1) as f64) as f32)
                .collect()
        };
        let example = mean(&|j| self.per_example[j].abs() as f64);
        let fisher = mean(&|j| (self.per_example[j] as f64).powi(2));
        let token = mean(&|j| self.per_example_token[j] as f64);
        let per_token = |v: &[f64]| -> Vec<f32> {
            v.iter()
                .map(|&x| (x / self.tokens.max(1) as f64) as f32)
                .collect()
        };
        Scores {
            layers: self.layers,
            heads: self.heads,
            examples: n,
            batches: self.batches,
            example,
            batch: self.batch.iter().map(|&v| v as f32).collect(),
            fisher,
            token,
            entropy: per_token(&self.entropy),
            confidence: per_token(&self.confidence),
            mean_loss: self.loss / n.max(1) as f64,
            per_example: self.per_example,
            per_example_token: self.per_example_token,
        }
    }
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

/// A 95% bootstrap interval (2.5th and 97.5th percentiles) of each head's score and rank,
/// resampling examples with replacement `n` times (seeded).
pub struct Bootstrap {
    pub resamples: usize,
    pub score_lo: Vec<f32>,
    pub score_hi: Vec<f32>,
    pub rank_lo: Vec<usize>,
    pub rank_hi: Vec<usize>,
}

pub fn bootstrap(s: &Scores, g: Granularity, n: usize, seed: u64) -> Option<Bootstrap> {
    let lh = s.layers * s.heads;
    let m = s.examples;
    if n == 0 || m == 0 {
        return None;
    }
    let rows: Vec<Vec<f32>> = (0..m)
        .map(|i| s.per_example_values(g, i))
        .collect::<Option<_>>()?;
    let mut rng = crate::maths::rng::SplitMix64::new(seed ^ 0xB007_57A9);
    let mut scores = vec![Vec::with_capacity(n); lh];
    let mut rnks = vec![Vec::with_capacity(n); lh];
    for _ in 0..n {
        let mut acc = vec![0f64; lh];
        for _ in 0..m {
            let r = &rows[rng.below(m)];
            for k in 0..lh {
                acc[k] += r[k] as f64;
            }
        }
        let v: Vec<f32> = acc.iter().map(|a| (a / m as f64) as f32).collect();
        for (k, r) in ranks(&v).into_iter().enumerate() {
            scores[k].push(v[k]);
            rnks[k].push(r);
        }
    }
    use crate::maths::stats::quantile;
    for v in scores.iter_mut() {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    for v in rnks.iter_mut() {
        v.sort();
    }
    Some(Bootstrap {
        resamples: n,
        score_lo: scores.iter().map(|v| quantile(v, 0.025)).collect(),
        score_hi: scores.iter().map(|v| quantile(v, 0.975)).collect(),
        rank_lo: rnks.iter().map(|v| quantile(v, 0.025)).collect(),
        rank_hi: rnks.iter().map(|v| quantile(v, 0.975)).collect(),
    })
}

/// Ablation importance (Michel et al.'s oracle): the loss increase when one head alone is gated
/// out, per head and per example. Per-example gates let one batch carry many masks: the
/// examples are repeated once per head with that head's gate at 0.
pub struct Ablation {
    /// Mean over examples of ℓ_x(head off) − ℓ_x(all on): [L, H].
    pub increase: Vec<f32>,
    /// [N, L, H].
    pub per_example: Vec<f32>,
}

/// With `mask`, the base is the masked model and each head still on is gated out in turn
/// (heads already off score 0).
pub fn ablation(
    gpu: &Gpu,
    model: &Model,
    data: &TaskData,
    mask: Option<&[f32]>,
    batch_size: usize,
    progress: bool,
) -> Result<Ablation> {
    use crate::model::Gates;
    let c = &model.config;
    let lh = c.num_hidden_layers * c.num_attention_heads;
    let n = data.len();
    let labels: Vec<&[i32]> = data.labels.iter().map(|v| v.as_slice()).collect();
    let ones = vec![1f32; lh];
    let mask = mask.unwrap_or(&ones);
    let base = crate::tasks::example_losses(
        gpu,
        model,
        &data.examples,
        &labels,
        &Gates::Broadcast(mask.to_vec()),
        batch_size,
    )?;
    let mut per_example = vec![0f32; n * lh];
    let live: Vec<usize> = (0..lh).filter(|&k| mask[k] != 0.0).collect();
    // heads per pass: keep each pass near 4096 examples
    let per_pass = (4096 / n.max(1)).clamp(1, lh);
    let bar = progress.then(|| progress_bar(live.len()));
    for heads in live.chunks(per_pass) {
        let mut exs = Vec::with_capacity(heads.len() * n);
        let mut ys = Vec::with_capacity(heads.len() * n);
        let mut gates = Vec::with_capacity(heads.len() * n * lh);
        for &k in heads {
            for (ex, &y) in data.examples.iter().zip(&labels) {
                exs.push(ex.clone());
                ys.push(y);
                gates.extend((0..lh).map(|j| if j == k { 0.0 } else { mask[j] }));
            }
        }
        let losses = crate::tasks::example_losses(
            gpu,
            model,
            &exs,
            &ys,
            &Gates::PerExample(gates),
            batch_size,
        )?;
        for (hi, &k) in heads.iter().enumerate() {
            for i in 0..n {
                per_example[i * lh + k] = (losses[hi * n + i] - base[i]) as f32;
            }
        }
        if let Some(b) = &bar {
            b.inc(heads.len() as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let increase = (0..lh)
        .map(|k| {
            ((0..n).map(|i| per_example[i * lh + k] as f64).sum::<f64>() / n.max(1) as f64) as f32
        })
        .collect();
    Ok(Ablation {
        increase,
        per_example,
    })
}

/// Agreement of one gradient granularity with ablation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Agreement {
    pub granularity: String,
    pub spearman: f64,
    /// 95% bootstrap interval over resampled examples (None for `batch`).
    pub ci95: Option<(f64, f64)>,
}

/// Spearman between each granularity's importance and the ablation loss increase, with a 95%
/// interval from `resamples` bootstrap resamples of the examples (same examples on both sides).
pub fn agreement(s: &Scores, a: &Ablation, resamples: usize, seed: u64) -> Vec<Agreement> {
    let lh = s.layers * s.heads;
    let n = s.examples;
    let abl: Vec<f64> = a.increase.iter().map(|&v| v as f64).collect();
    let mut rng = crate::maths::rng::SplitMix64::new(seed ^ 0xA61E);
    let draws: Vec<Vec<usize>> = (0..resamples)
        .map(|_| (0..n).map(|_| rng.below(n)).collect())
        .collect();
    Granularity::ALL
        .iter()
        .map(|&g| {
            let imp: Vec<f64> = s.get(g).iter().map(|&v| v as f64).collect();
            let rows: Option<Vec<Vec<f32>>> = (0..n).map(|i| s.per_example_values(g, i)).collect();
            let ci95 = rows.filter(|_| resamples > 0 && n > 0).map(|rows| {
                let mut rho: Vec<f64> = draws
                    .iter()
                    .map(|d| {
                        let mut gi = vec![0f64; lh];
                        let mut ab = vec![0f64; lh];
                        for &i in d {
                            for k in 0..lh {
                                gi[k] += rows[i][k] as f64;
                                ab[k] += a.per_example[i * lh + k] as f64;
                            }
                        }
                        crate::maths::stats::spearman(&gi, &ab)
                    })
                    .collect();
                crate::maths::stats::ci95(&mut rho).expect("at least one resample")
            });
            Agreement {
                granularity: g.name().into(),
                spearman: crate::maths::stats::spearman(&imp, &abl),
                ci95,
            }
        })
        .collect()
}
