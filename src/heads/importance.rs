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
    Ok(score_part(gpu, model, data, mask, batch_size, progress, None)?.finish())
}

/// Which part of a run a shard holds: the `index`-th of `count` slices of the batch plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl ShardSpec {
    /// `I/N` with 0 ≤ I < N (Slurm's `$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`).
    pub fn parse(s: &str) -> Result<ShardSpec> {
        let bad = || Error::Usage(format!("--shard {s:?}: expected I/N with 0 <= I < N"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index = i.trim().parse::<usize>().map_err(|_| bad())?;
        let count = n.trim().parse::<usize>().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(ShardSpec { index, count })
    }

    /// The batches of a plan of `batches` that this shard runs: a contiguous slice; the slices
    /// of 0..count are disjoint and cover the plan.
    pub fn batches(self, batches: usize) -> std::ops::Range<usize> {
        self.index * batches / self.count..(self.index + 1) * batches / self.count
    }
}

/// [`score`] over the whole plan, or over `shard`'s slice of it: the sums before the means.
pub fn score_part(
    gpu: &Gpu,
    model: &Model,
    data: &TaskData,
    mask: Option<&[f32]>,
    batch_size: usize,
    progress: bool,
    shard: Option<ShardSpec>,
) -> Result<Partial> {
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
    let part = shard.map_or(0..batches.len(), |s| s.batches(batches.len()));
    let mine = &batches[part.clone()];
    let bar = progress.then(|| progress_bar(mine.iter().map(Vec::len).sum()));
    let plan = plan_fingerprint(&batches);
    let mut acc = Partial::new(n, nl, nh, batches.len(), plan, part.clone());
    for idx in mine {
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
    Ok(acc)
}

/// FNV-1a over a batch plan: shards merge only when they cut the same plan.
fn plan_fingerprint(batches: &[Vec<usize>]) -> u64 {
    let mut h = FNV_OFFSET;
    for b in batches {
        for &i in b {
            h = fnv1a(h, &(i as u64).to_le_bytes());
        }
        h = fnv1a(h, &u64::MAX.to_le_bytes());
    }
    h
}

/// FNV-1a's starting value.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a 64 of `bytes`, continued from `h` ([`FNV_OFFSET`] to start).
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
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
///
/// Returns the sums before the means ([`Partial::finish`] gives the scores); never sharded,
/// since the batches are drawn across the whole file.
#[allow(clippy::too_many_arguments)]
pub fn score_pairs_part(
    gpu: &Gpu,
    model: &Model,
    pairs: &Pairs,
    spec: &ContrastiveSpec,
    mask: Option<&[f32]>,
    batch_size: usize,
    seed: u64,
    progress: bool,
) -> Result<Partial> {
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
    let mut acc = Partial::new(pairs.len(), nl, nh, batches.len(), 0, 0..batches.len());
    pairs.run(&batches, &run, |idx, _, grads| {
        acc.add(
            idx,
            &grads.expect("a backward pass was asked for").fold_pairs(),
        );
    })?;
    Ok(acc)
}

/// Head importance under whichever objective `data` was loaded for ([`score`], or
/// [`score_pairs_part`] for the in-batch objectives).
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
        ObjectiveData::InBatch { pairs, spec, seed } => Ok(score_pairs_part(
            gpu, model, pairs, spec, mask, batch_size, *seed, progress,
        )?
        .finish()),
    }
}

/// The sums of a run (or of a shard's part of it) before the means: each batch's gate
/// gradients as they come, turned into [`Scores`] by [`Partial::finish`]. The shards of one
/// plan add up ([`Partial::merge`]) to the unsharded sums, but for the order of f64 additions.
#[derive(Clone, Debug, PartialEq)]
pub struct Partial {
    pub layers: usize,
    pub heads: usize,
    /// Examples and batches of the whole run (not of this part).
    pub examples: usize,
    pub batches: usize,
    /// The batch plan's fingerprint, and the batches of it this part ran.
    pub plan: u64,
    pub ran: std::ops::Range<usize>,
    /// Input indices of the examples this part ran, in the order run, and their rows
    /// (per-example gate gradients and Σ_t |⟨O_t, dO_t⟩|, [L·H] each).
    pub indices: Vec<usize>,
    pub per_example: Vec<f32>,
    pub per_example_token: Vec<f32>,
    /// Σ over the batches run of |Σ over the batch of g| / batches (the batch granularity).
    pub batch: Vec<f64>,
    /// Entropy and confidence summed over real query tokens, and the count of those tokens.
    pub entropy: Vec<f64>,
    pub confidence: Vec<f64>,
    pub tokens: usize,
    /// Σ of the examples' losses.
    pub loss: f64,
}

impl Partial {
    fn new(
        examples: usize,
        layers: usize,
        heads: usize,
        batches: usize,
        plan: u64,
        ran: std::ops::Range<usize>,
    ) -> Partial {
        let lh = layers * heads;
        Partial {
            layers,
            heads,
            examples,
            batches,
            plan,
            ran,
            indices: Vec::new(),
            per_example: Vec::new(),
            per_example_token: Vec::new(),
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
            self.indices.push(i);
            self.per_example.extend_from_slice(g);
            self.per_example_token
                .extend_from_slice(&out.token_abs[e * lh..(e + 1) * lh]);
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

    /// The parts of one run as one, given in the order of the batches they ran; `Err` says
    /// what does not fit (another plan, a batch in two parts or in none).
    pub fn merge(parts: Vec<Partial>) -> std::result::Result<Partial, String> {
        let mut it = parts.into_iter();
        let mut all = it.next().ok_or("no shards")?;
        for p in it {
            if (p.layers, p.heads, p.examples, p.batches, p.plan)
                != (all.layers, all.heads, all.examples, all.batches, all.plan)
            {
                return Err(
                    "the shards cut different batch plans (another adapter or batch size)".into(),
                );
            }
            if p.ran.start != all.ran.end {
                return Err(if p.ran.start < all.ran.end {
                    format!("batches {}..{} are in two shards", p.ran.start, all.ran.end)
                } else {
                    format!("batches {}..{} are in no shard", all.ran.end, p.ran.start)
                });
            }
            all.ran.end = p.ran.end;
            all.indices.extend(p.indices);
            all.per_example.extend(p.per_example);
            all.per_example_token.extend(p.per_example_token);
            let add = |a: &mut [f64], b: &[f64]| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            add(&mut all.batch, &p.batch);
            add(&mut all.entropy, &p.entropy);
            add(&mut all.confidence, &p.confidence);
            all.tokens += p.tokens;
            all.loss += p.loss;
        }
        if all.ran != (0..all.batches) {
            return Err(format!(
                "the shards cover batches {}..{} of 0..{}",
                all.ran.start, all.ran.end, all.batches
            ));
        }
        Ok(all)
    }

    /// The means, with the per-example rows in input order (an example no batch ran reads 0;
    /// a whole run runs each once).
    pub fn finish(self) -> Scores {
        let lh = self.layers * self.heads;
        let n = self.examples;
        let mut per_example = vec![0.0; n * lh];
        let mut per_example_token = vec![0.0; n * lh];
        for (r, &i) in self.indices.iter().enumerate() {
            let (to, from) = (i * lh..(i + 1) * lh, r * lh..(r + 1) * lh);
            per_example[to.clone()].copy_from_slice(&self.per_example[from.clone()]);
            per_example_token[to].copy_from_slice(&self.per_example_token[from]);
        }
        let mean = |f: &dyn Fn(usize) -> f64| -> Vec<f32> {
            (0..lh)
                .map(|k| ((0..n).map(|i| f(i * lh + k)).sum::<f64>() / n.max(1) as f64) as f32)
                .collect()
        };
        let example = mean(&|j| per_example[j].abs() as f64);
        let fisher = mean(&|j| (per_example[j] as f64).powi(2));
        let token = mean(&|j| per_example_token[j] as f64);
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
            per_example,
            per_example_token,
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
