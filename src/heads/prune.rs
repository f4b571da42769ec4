//! `headroom prune`: the papers' head-pruning strategies over head masks — one-shot and
//! iterative (Michel et al.; bertology's `mask_heads`), a metric threshold (bertology's
//! `masking_threshold`), a few trials (Ma et al.), and learned gates (DSP, DSP-STE,
//! hard-concrete; `learned`, on the frozen model or jointly with its weights) — giving a curve
//! of heads kept against the eval metric. Calls the model through `importance`, `learned` and
//! `tasks`, never kernels.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::heads::importance::{self, Granularity};
use crate::heads::learned::{self, LearnArgs, Method, Schedule};
use crate::model::{Gates, HeadSpec, Model, TaskHead};
use crate::tasks::pretraining::{self, InBatch};
use crate::tasks::{self, Objective, ObjectiveData, TaskData};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    OneShot,
    Iterative,
    Threshold,
    Trials,
    /// Learned gates: DSP, DSP-STE or hard-concrete (`--heads`, `--seeds`, `--l0-lambda`).
    Learned(Method),
}

impl Strategy {
    pub fn parse(s: &str) -> Result<Strategy> {
        match s {
            "oneshot" => Ok(Strategy::OneShot),
            "iterative" => Ok(Strategy::Iterative),
            "threshold" => Ok(Strategy::Threshold),
            "trials" => Ok(Strategy::Trials),
            "dsp" => Ok(Strategy::Learned(Method::Dsp)),
            "dsp-ste" => Ok(Strategy::Learned(Method::DspSte)),
            "hard-concrete" => Ok(Strategy::Learned(Method::HardConcrete)),
            _ => Err(Error::Usage(format!(
                "unknown --strategy {s:?} (oneshot, iterative, threshold, trials, dsp, dsp-ste, hard-concrete)"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Strategy::OneShot => "oneshot",
            Strategy::Iterative => "iterative",
            Strategy::Threshold => "threshold",
            Strategy::Trials => "trials",
            Strategy::Learned(Method::Dsp) => "dsp",
            Strategy::Learned(Method::DspSte) => "dsp-ste",
            Strategy::Learned(Method::HardConcrete) => "hard-concrete",
        }
    }
}

/// What ranks the heads (lowest pruned first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Importance {
    Gradient(Granularity),
    /// Attention entropy: the most uniform (highest-entropy) heads go first.
    Entropy,
    /// A seeded random order.
    Random,
    /// The loss increase when the head alone is gated out (the oracle).
    Ablation,
}

impl Importance {
    pub fn parse(s: &str) -> Result<Importance> {
        match s {
            "entropy" => Ok(Importance::Entropy),
            "random" => Ok(Importance::Random),
            "ablation" => Ok(Importance::Ablation),
            g => Granularity::parse(g)
                .map(Importance::Gradient)
                .map_err(|_| {
                    Error::Usage(format!(
                    "unknown --importance {s:?} (example, batch, token, fisher, ablation, entropy, random)"
                ))
                }),
        }
    }
    pub fn name(self) -> String {
        match self {
            Importance::Gradient(g) => g.name().to_string(),
            Importance::Entropy => "entropy".into(),
            Importance::Random => "random".into(),
            Importance::Ablation => "ablation".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct PruneArgs {
    pub model: PathBuf,
    pub score_data: PathBuf,
    pub eval_data: PathBuf,
    pub out: PathBuf,
    pub strategy: Strategy,
    pub importance: Importance,
    /// Per-layer ℓ2 normalisation of gradient scores before ranking (bertology's default).
    pub normalize_layers: bool,
    /// Heads pruned per step, as a fraction of all heads.
    pub step: f64,
    pub keep: f64,
    pub trials: Vec<usize>,
    pub min_heads_per_layer: usize,
    pub baselines: bool,
    pub seed: u64,
    pub batch_size: usize,
    /// Also write the chosen mask's physically pruned checkpoint here.
    pub export: Option<PathBuf>,
    /// Replace an existing `export` directory.
    pub force: bool,
    /// How the learned strategies train their logits.
    pub schedule: Schedule,
    /// K for dsp and dsp-ste: one run per budget and seed; for oneshot and iterative, the
    /// one head count to prune down to (the chosen mask).
    pub budgets: Vec<usize>,
    pub seeds: Vec<u64>,
    /// λ for hard-concrete: one run per λ and seed.
    pub l0_lambdas: Vec<f64>,
    /// Learned strategies: train every weight with the logits (each run from the checkpoint's
    /// weights).
    pub joint: Option<crate::tasks::finetune::Optimiser>,
    /// With `joint`: the task of the head to add to a bare encoder (a checkpoint with a head
    /// must match it).
    pub task: Option<TaskHead>,
    /// The loss heads are ranked by and the masks judged on (the pre-training ones rank by
    /// gradients, entropy or at random).
    pub objective: Objective,
    /// The pre-training objectives' corruption seed, and the in-batch ones' batch order and
    /// dropout seed.
    pub mask_seed: u64,
    /// The in-batch objectives' settings.
    pub in_batch: InBatch,
}

impl PruneArgs {
    /// One learned-gate run of this call: its method, budget (K, or λ) and seed.
    fn learn_args(&self, method: Method, heads: usize, l0_lambda: f64, seed: u64) -> LearnArgs {
        LearnArgs {
            method,
            heads,
            l0_lambda,
            seed,
            batch_size: self.batch_size,
            schedule: self.schedule.clone(),
            joint: self.joint.clone(),
        }
    }
}

/// One evaluated mask.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Point {
    pub heads_kept: usize,
    pub pruned: usize,
    pub metric: f64,
    pub loss: f64,
    /// [L][H], 1 kept, 0 pruned.
    pub mask: Vec<Vec<f32>>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Curve {
    pub importance: String,
    pub strategy: String,
    pub points: Vec<Point>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PruneReport {
    pub strategy: String,
    pub importance: String,
    /// The loss heads were ranked by and masks judged on, and (for the pre-training ones) the
    /// seed of their corruption or batch order and dropout.
    pub objective: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_seed: Option<u64>,
    pub metric: String,
    pub unpruned_metric: f64,
    pub keep: f64,
    pub curve: Curve,
    pub baselines: Vec<Curve>,
    /// Index into `curve.points` of the chosen mask.
    pub chosen: usize,
    /// With `--importance ablation`: Spearman of each gradient granularity against the
    /// ablation loss increase (all heads on), with 95% bootstrap intervals.
    pub agreement: Option<Vec<importance::Agreement>>,
    /// Learned strategies: every run (budget or λ, seed) with its training log, and the mean
    /// and spread of the metric per budget.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub learned: Vec<LearnedRun>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<Budget>,
    pub notes: Vec<String>,
    pub model: String,
    pub score_data: String,
    pub eval_data: String,
    pub adapter: String,
    pub wall_seconds: f64,
}

struct Ctx<'a> {
    gpu: &'a Gpu,
    model: &'a Model,
    labels: Vec<String>,
    score: ObjectiveData,
    eval: ObjectiveData,
    args: &'a PruneArgs,
    shape: (usize, usize),
    /// The unpruned mask: 1 for every head the checkpoint stores (a pruned checkpoint's
    /// removed heads start at 0).
    start: Vec<f32>,
    /// The ablation under `start`, once computed: the first ranking of every strategy and the
    /// agreement report share it (it costs one pass over the score data per head).
    start_ablation: std::cell::OnceCell<importance::Ablation>,
}

impl Ctx<'_> {
    fn evaluate(&self, mask: &[f32]) -> Result<Point> {
        self.evaluate_model(self.model, mask)
    }

    /// `mask` on another copy of the model (a joint run's trained weights).
    fn evaluate_model(&self, model: &Model, mask: &[f32]) -> Result<Point> {
        let gates = Gates::Broadcast(mask.to_vec());
        let m = self.eval.evaluate(
            self.gpu,
            model,
            &self.labels,
            &gates,
            self.args.batch_size,
            false,
        )?;
        let (_, nh) = self.shape;
        let kept = mask.iter().filter(|&&v| v != 0.0).count();
        Ok(Point {
            heads_kept: kept,
            pruned: mask.len() - kept,
            metric: m.metric,
            loss: m.loss,
            mask: mask.chunks(nh).map(|r| r.to_vec()).collect(),
        })
    }

    /// The task objective's score split (`prune` refuses the strategies that need it under
    /// another objective before any data is read).
    fn task_split(&self) -> Result<&TaskData> {
        self.score.task_split().ok_or_else(|| {
            Error::Usage(format!(
                "--objective {}: this step needs the task objective",
                self.args.objective.name()
            ))
        })
    }

    fn ablation(&self, mask: &[f32], progress: bool) -> Result<importance::Ablation> {
        importance::ablation(
            self.gpu,
            self.model,
            self.task_split()?,
            Some(mask),
            self.args.batch_size,
            progress,
        )
    }

    /// The ablation under the unpruned mask, computed once.
    fn ablation_at_start(&self, progress: bool) -> Result<&importance::Ablation> {
        if self.start_ablation.get().is_none() {
            let a = self.ablation(&self.start, progress)?;
            let _ = self.start_ablation.set(a);
        }
        Ok(self.start_ablation.get().expect("set above"))
    }

    /// Scores under `mask`, higher = more important.
    fn scores(&self, imp: Importance, mask: &[f32], round: u64) -> Result<Vec<f32>> {
        let (nl, nh) = self.shape;
        match imp {
            Importance::Random => Ok(random_scores(nl * nh, self.args.seed ^ round)),
            // heads already pruned rank last among the candidates anyway (they are skipped)
            Importance::Ablation if mask == self.start.as_slice() => {
                Ok(self.ablation_at_start(true)?.increase.clone())
            }
            Importance::Ablation => Ok(self.ablation(mask, true)?.increase),
            _ => {
                let s = importance::score_objective(
                    self.gpu,
                    self.model,
                    &self.score,
                    Some(mask),
                    self.args.batch_size,
                    false,
                )?;
                Ok(match imp {
                    Importance::Gradient(g) if self.args.normalize_layers => {
                        importance::normalize_per_layer(s.get(g), nh)
                    }
                    Importance::Gradient(g) => s.get(g).to_vec(),
                    _ => s.entropy.iter().map(|e| -e).collect(),
                })
            }
        }
    }
}

fn random_scores(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = crate::maths::rng::SplitMix64::new(seed ^ 0x0DD_BA11);
    (0..n).map(|_| (rng.next_u64() >> 40) as f32).collect()
}

/// Prunes up to `k` more heads from `mask`, lowest score first, keeping at least
/// `min_per_layer` heads in every layer. Returns how many were pruned.
pub fn prune_lowest(
    mask: &mut [f32],
    scores: &[f32],
    heads: usize,
    k: usize,
    min_per_layer: usize,
) -> usize {
    let mut order: Vec<usize> = (0..mask.len()).filter(|&i| mask[i] != 0.0).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    let mut left: Vec<usize> = mask
        .chunks(heads)
        .map(|r| r.iter().filter(|&&v| v != 0.0).count())
        .collect();
    let mut done = 0;
    for i in order {
        if done == k {
            break;
        }
        let l = i / heads;
        if left[l] > min_per_layer {
            mask[i] = 0.0;
            left[l] -= 1;
            done += 1;
        }
    }
    done
}

/// Prunes step by step from the unpruned mask, evaluating each: until nothing is left to prune,
/// until the metric falls below `stop_below`, or down to `target` heads kept (the last step
/// prunes only what is left).
fn curve_of(
    ctx: &Ctx,
    imp: Importance,
    iterative: bool,
    stop_below: Option<f64>,
    target: Option<usize>,
) -> Result<Curve> {
    let (nl, nh) = ctx.shape;
    let total = nl * nh;
    // Rankings prune the layers the checkpoint stores: with shared layers (ALBERT) a head is
    // pruned from every application of its group at once (so that the mask can be exported),
    // ranked by its scores summed over the applications. A step prunes this many stored heads.
    let c = &ctx.model.config;
    let per = c.applications_per_stored_layer();
    let per_step = ((ctx.args.step * total as f64 / per as f64).round() as usize).max(1);
    let mut kept = c.fold_to_stored(&ctx.start, false);
    // stored heads to keep (`prune` checks that the target is a whole number of them)
    let target = target.map(|k| k / per);
    let mut mask = c.expand_stored(&kept);
    let mut points = vec![ctx.evaluate(&mask)?];
    let mut scores = c.fold_to_stored(&ctx.scores(imp, &mask, 0)?, true);
    let bar = crate::model::progress_bar(total);
    for round in 1.. {
        let left = kept.iter().filter(|&&v| v != 0.0).count();
        let k = match target {
            Some(t) if left <= t => break,
            Some(t) => per_step.min(left - t),
            None => per_step,
        };
        if iterative && round > 1 {
            scores = c.fold_to_stored(&ctx.scores(imp, &mask, round)?, true);
        }
        if prune_lowest(&mut kept, &scores, nh, k, ctx.args.min_heads_per_layer) == 0 {
            break;
        }
        mask = c.expand_stored(&kept);
        let p = ctx.evaluate(&mask)?;
        bar.set_position(p.pruned as u64);
        let below = stop_below.is_some_and(|t| p.metric < t);
        points.push(p);
        if below {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(Curve {
        importance: imp.name(),
        strategy: if iterative { "iterative" } else { "oneshot" }.into(),
        points,
    })
}

/// The largest pruning whose metric stays ≥ `threshold` (the unpruned point always does when
/// the threshold is below it).
fn choose(points: &[Point], threshold: f64) -> usize {
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.metric >= threshold)
        .max_by_key(|(_, p)| p.pruned)
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// One learned-gate run and what its mask scored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LearnedRun {
    /// K (dsp, dsp-ste); None for hard-concrete.
    pub heads: Option<usize>,
    pub l0_lambda: Option<f64>,
    pub seed: u64,
    pub heads_kept: usize,
    pub metric: f64,
    pub loss: f64,
    /// The learned logits w (or log α) over [L][H]; null where the checkpoint stores no head.
    pub logits: Vec<Vec<Option<f64>>>,
    pub steps: Vec<learned::Step>,
    pub wall_seconds: f64,
}

/// The metric of one budget (K, or λ) over its seeds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Budget {
    pub heads: Option<usize>,
    pub l0_lambda: Option<f64>,
    /// Heads kept, mean over seeds (hard-concrete's count varies with the seed).
    pub heads_kept: f64,
    pub mean: f64,
    /// Sample standard deviation over seeds (0 for one seed).
    pub sd: f64,
    pub seeds: usize,
}

/// What the learned runs of a call give back.
struct LearnedRuns {
    curve: Curve,
    runs: Vec<LearnedRun>,
    budgets: Vec<Budget>,
    /// A joint call's last run's model, with its trained weights (the one exported: an export
    /// takes a single run).
    trained: Option<Model>,
}

/// Every (budget, seed) run of a learned strategy, its curve point, and the per-budget spread.
/// A joint run trains a fresh copy of the checkpoint, its new head (if any) drawn from the
/// run's seed.
fn learned_runs(ctx: &Ctx, method: Method) -> Result<LearnedRuns> {
    let a = ctx.args;
    let (_, nh) = ctx.shape;
    let settings: Vec<(Option<usize>, Option<f64>)> = match method {
        Method::HardConcrete => a.l0_lambdas.iter().map(|&l| (None, Some(l))).collect(),
        _ => a.budgets.iter().map(|&k| (Some(k), None)).collect(),
    };
    let mut runs = Vec::new();
    let mut points = Vec::new();
    let mut budgets = Vec::new();
    let mut trained = None;
    for (heads, lambda) in settings {
        let mut metrics = Vec::new();
        let mut kept = Vec::new();
        for &seed in &a.seeds {
            let t0 = std::time::Instant::now();
            let la = a.learn_args(method, heads.unwrap_or(0), lambda.unwrap_or(0.0), seed);
            let (r, p) = if a.joint.is_some() {
                let spec = HeadSpec {
                    task: ctx.model.task,
                    labels: ctx.labels.len(),
                    seed,
                };
                let model = Model::load_for_training(ctx.gpu, &a.model, &spec)?;
                let r = learned::learn(ctx.gpu, &model, ctx.task_split()?, &la, true)?;
                let p = ctx.evaluate_model(&model, &r.mask)?;
                trained = Some(model);
                (r, p)
            } else {
                let r = learned::learn(ctx.gpu, ctx.model, ctx.task_split()?, &la, true)?;
                let p = ctx.evaluate(&r.mask)?;
                (r, p)
            };
            metrics.push(p.metric);
            kept.push(p.heads_kept as f64);
            runs.push(LearnedRun {
                heads,
                l0_lambda: lambda,
                seed,
                heads_kept: p.heads_kept,
                metric: p.metric,
                loss: p.loss,
                logits: r
                    .logits
                    .chunks(nh)
                    .map(|row| row.iter().map(|&v| v.is_finite().then_some(v)).collect())
                    .collect(),
                steps: r.steps,
                wall_seconds: t0.elapsed().as_secs_f64(),
            });
            points.push(p);
        }
        let n = metrics.len() as f64;
        let mean = metrics.iter().sum::<f64>() / n;
        let sd = if metrics.len() > 1 {
            (metrics.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        budgets.push(Budget {
            heads,
            l0_lambda: lambda,
            heads_kept: kept.iter().sum::<f64>() / n,
            mean,
            sd,
            seeds: metrics.len(),
        });
    }
    let curve = Curve {
        importance: "learned".into(),
        strategy: a.strategy.name().into(),
        points,
    };
    Ok(LearnedRuns {
        curve,
        runs,
        budgets,
        trained,
    })
}

/// The learned run to keep: the largest pruning whose metric stays ≥ `threshold`, else the
/// best metric (a learned strategy's mask is never the unpruned one).
fn choose_learned(points: &[Point], threshold: f64) -> usize {
    if points.iter().any(|p| p.metric >= threshold) {
        return choose(points, threshold);
    }
    (0..points.len())
        .max_by(|&a, &b| {
            points[a]
                .metric
                .total_cmp(&points[b].metric)
                .then(b.cmp(&a))
        })
        .unwrap_or(0)
}

pub fn prune(gpu: &Gpu, args: &PruneArgs) -> Result<PruneReport> {
    let start = std::time::Instant::now();
    if !(args.keep > 0.0 && args.keep <= 1.0) {
        return Err(Error::Usage(format!(
            "--keep {} is outside (0, 1]",
            args.keep
        )));
    }
    if !(args.step > 0.0 && args.step <= 1.0) {
        return Err(Error::Usage(format!(
            "--step {} is outside (0, 1]",
            args.step
        )));
    }
    if args.strategy == Strategy::Trials && args.trials.is_empty() {
        return Err(Error::Usage(
            "--strategy trials needs --trials k1,k2,...".into(),
        ));
    }
    if let Strategy::Learned(method) = args.strategy {
        let (what, empty) = match method {
            Method::HardConcrete => ("--l0-lambda λ1,λ2,...", args.l0_lambdas.is_empty()),
            _ => ("--heads K1,K2,...", args.budgets.is_empty()),
        };
        if empty || args.seeds.is_empty() {
            return Err(Error::Usage(format!(
                "--strategy {} needs {what} and --seeds",
                args.strategy.name()
            )));
        }
        let runs = args.seeds.len() * args.budgets.len().max(args.l0_lambdas.len());
        if args.joint.is_some() && args.export.is_some() && runs > 1 {
            return Err(Error::Usage(format!(
                "--joint with --export exports one run's weights: give one budget and one seed (not {runs} runs)"
            )));
        }
    } else if args.joint.is_some() {
        return Err(Error::Usage(
            "--joint trains learned gates: use it with --strategy dsp, dsp-ste or hard-concrete"
                .into(),
        ));
    } else if !args.budgets.is_empty() {
        if !matches!(args.strategy, Strategy::OneShot | Strategy::Iterative) {
            return Err(Error::Usage(format!(
                "--heads applies to --strategy oneshot, iterative, dsp and dsp-ste (not {})",
                args.strategy.name()
            )));
        }
        if args.budgets.len() > 1 {
            return Err(Error::Usage(format!(
                "--strategy {} prunes down to one --heads count (got {}): run once per count",
                args.strategy.name(),
                args.budgets.len()
            )));
        }
    }
    if args.objective != Objective::Task {
        let learned = matches!(args.strategy, Strategy::Learned(_));
        if learned || args.importance == Importance::Ablation || args.task.is_some() {
            return Err(Error::Usage(format!(
                "--objective {} ranks heads by gate gradients, entropy or at random with --strategy oneshot, iterative, threshold or trials; the learned strategies, --importance ablation and --task need the task objective",
                args.objective.name()
            )));
        }
    }
    crate::io::output::check_not_input(
        &args.out,
        &[&args.model, &args.score_data, &args.eval_data],
    )?;
    if args.out.exists() && !args.out.is_dir() {
        return Err(Error::output(&args.out, "exists and is not a directory"));
    }
    if let Some(e) = &args.export {
        crate::io::output::check_out_dir(e, &args.model, args.force)?;
    }
    let mut notes = Vec::new();
    if crate::io::output::same_file(&args.score_data, &args.eval_data) {
        let w = "--score-data and --eval-data are the same file: heads are chosen on the data they are judged on (a known flaw of the reference scripts); the curve is optimistic".to_string();
        eprintln!("warning: {w}");
        notes.push(w);
    }
    let (model, labels) = load_model(gpu, args)?;
    let c = &model.config;
    let shape = (c.num_hidden_layers, c.num_attention_heads);
    let total = shape.0 * shape.1;
    if let Some(&k) = args.trials.iter().find(|&&k| k > total) {
        return Err(Error::Usage(format!(
            "--trials {k} is more than the model's {total} heads"
        )));
    }
    // oneshot and iterative with --heads K: the head count to prune down to
    let target = match args.strategy {
        Strategy::OneShot | Strategy::Iterative => args.budgets.first().copied(),
        _ => None,
    };
    if let Some(k) = target {
        let present = model.present_mask().iter().filter(|&&v| v != 0.0).count();
        let per = c.applications_per_stored_layer();
        if k >= present || k % per != 0 {
            return Err(Error::Usage(format!(
                "--heads {k}: give fewer than the {present} heads the checkpoint holds{}",
                if per > 1 {
                    format!(", in multiples of {per} (each stored layer runs {per} times)")
                } else {
                    String::new()
                }
            )));
        }
    }
    if let Strategy::Learned(method) = args.strategy {
        // every setting checked before any data is read or any run starts
        let stored = model.present_mask().iter().filter(|&&v| v != 0.0).count();
        for &heads in &args.budgets {
            args.learn_args(method, heads, 0.0, args.seed)
                .check(stored)?;
        }
        for &l0_lambda in &args.l0_lambdas {
            args.learn_args(method, 0, l0_lambda, args.seed)
                .check(stored)?;
        }
    }
    let load = |path: &Path| {
        ObjectiveData::load(
            &model,
            path,
            args.objective,
            &labels,
            args.mask_seed,
            args.in_batch,
        )
    };
    let score = load(&args.score_data)?;
    let eval = load(&args.eval_data)?;
    let ctx = Ctx {
        gpu,
        model: &model,
        labels,
        score,
        eval,
        args,
        shape,
        start: model.present_mask(),
        start_ablation: std::cell::OnceCell::new(),
    };
    let base = ctx.evaluate(&ctx.start)?;
    let threshold = args.keep * base.metric;
    let (mut runs, mut budgets, mut trained) = (Vec::new(), Vec::new(), None);
    let curve = match args.strategy {
        Strategy::Learned(method) => {
            let l = learned_runs(&ctx, method)?;
            runs = l.runs;
            budgets = l.budgets;
            trained = l.trained;
            l.curve
        }
        Strategy::OneShot => curve_of(&ctx, args.importance, false, None, target)?,
        Strategy::Iterative => curve_of(&ctx, args.importance, true, None, target)?,
        Strategy::Threshold => {
            let mut c = curve_of(&ctx, args.importance, true, Some(threshold), None)?;
            c.strategy = "threshold".into();
            c
        }
        Strategy::Trials => {
            let (_, nh) = shape;
            let scores = ctx.scores(args.importance, &ctx.start, 0)?;
            let mut points = vec![base.clone()];
            for &k in &args.trials {
                let mut mask = ctx.start.clone();
                prune_lowest(&mut mask, &scores, nh, k, args.min_heads_per_layer);
                points.push(ctx.evaluate(&mask)?);
            }
            Curve {
                importance: args.importance.name(),
                strategy: "trials".into(),
                points,
            }
        }
    };
    let chosen = match args.strategy {
        // the best trial on the eval data (more pruning wins a tie)
        Strategy::Trials => (0..curve.points.len())
            .max_by(|&a, &b| {
                let (pa, pb) = (&curve.points[a], &curve.points[b]);
                pa.metric
                    .total_cmp(&pb.metric)
                    .then(pa.pruned.cmp(&pb.pruned))
            })
            .unwrap_or(0),
        Strategy::Learned(_) => choose_learned(&curve.points, threshold),
        // --heads K: the mask that keeps K heads, whatever its metric
        _ if target.is_some() => curve.points.len() - 1,
        _ => choose(&curve.points, threshold),
    };
    if let Some(k) = target {
        let reached = curve.points[chosen].heads_kept;
        if reached != k {
            return Err(Error::Usage(format!(
                "--heads {k}: pruning stopped at {reached} heads (--min-heads-per-layer {} keeps more)",
                args.min_heads_per_layer
            )));
        }
    }
    let best = &curve.points[chosen];
    if args.strategy == Strategy::Trials && best.metric > base.metric {
        let w = format!(
            "pruning {} heads raises the eval metric from {:.4} to {:.4}",
            best.pruned, base.metric, best.metric
        );
        eprintln!("note: {w}");
        notes.push(w);
    }
    if best.heads_kept == 0 {
        eprintln!("warning: the chosen mask prunes every head");
    }
    let mut baselines = Vec::new();
    if args.baselines {
        for imp in [Importance::Random, Importance::Entropy] {
            if imp != args.importance {
                baselines.push(curve_of(&ctx, imp, false, None, target)?);
            }
        }
    }
    let agreement = if args.importance == Importance::Ablation {
        let s = importance::score_objective(
            gpu,
            &model,
            &ctx.score,
            Some(&ctx.start),
            args.batch_size,
            false,
        )?;
        let a = ctx.ablation_at_start(false)?;
        Some(importance::agreement(&s, a, 1000, args.seed))
    } else {
        None
    };
    let metric = ctx.eval.metric_name(&model);
    let report = PruneReport {
        strategy: args.strategy.name().into(),
        importance: curve.importance.clone(),
        objective: args.objective.name().into(),
        mask_seed: (args.objective != Objective::Task).then_some(args.mask_seed),
        metric: metric.into(),
        unpruned_metric: base.metric,
        keep: args.keep,
        chosen,
        agreement,
        learned: runs,
        budgets,
        curve,
        baselines,
        notes,
        model: args.model.display().to_string(),
        score_data: args.score_data.display().to_string(),
        eval_data: args.eval_data.display().to_string(),
        adapter: gpu.describe(),
        wall_seconds: start.elapsed().as_secs_f64(),
    };
    write_outputs(&args.out, &report, shape)?;
    if let Some(dir) = &args.export {
        let p = &report.curve.points[report.chosen];
        // a joint run's weights are written beside the outputs first, and exported from there
        let weights = args.out.join(".joint-weights");
        let from = match &trained {
            Some(m) => {
                crate::io::output::write_dir_atomic(&weights, |tmp| {
                    m.save_pretrained(gpu, tmp, &ctx.labels)
                })?;
                weights.clone()
            }
            None => args.model.clone(),
        };
        let e = crate::heads::export::export(&crate::heads::export::ExportArgs {
            model: from,
            mask: p.mask.concat(),
            mask_path: args.out.join("mask.json"),
            out: dir.clone(),
            force: args.force,
        });
        if trained.is_some() {
            let _ = std::fs::remove_dir_all(&weights);
        }
        let e = e?;
        eprintln!(
            "exported {} of {} heads ({} → {} parameters) to {}",
            e.heads_left,
            e.heads_total,
            e.params_before,
            e.params_after,
            dir.display()
        );
    }
    Ok(report)
}

/// The checkpoint and its label names. A joint call loads it for training, adding a head
/// (`args.task`, labels from the score data) to a bare encoder.
fn load_model(gpu: &Gpu, args: &PruneArgs) -> Result<(Model, Vec<String>)> {
    if args.objective != Objective::Task {
        let model = pretraining::load_model(gpu, &args.model, args.objective, true)?;
        return Ok((model, Vec::new()));
    }
    let model = Model::load_for_gradients(gpu, &args.model)?;
    if args.joint.is_none() {
        let labels = tasks::model_labels(&model);
        return Ok((model, labels));
    }
    let task = match (model.task, args.task) {
        (TaskHead::None, None) => {
            return Err(Error::Usage(format!(
            "{}: a bare encoder; --joint needs --task seq-cls or token-cls for the head it adds",
            args.model.display()
        )))
        }
        // a checkpoint's own head must match --task (load_for_training checks)
        (have, t) => t.unwrap_or(have),
    };
    let labels = if model.task == TaskHead::None {
        tasks::label_names(task, &args.score_data)?
    } else {
        tasks::model_labels(&model)
    };
    drop(model);
    let spec = HeadSpec {
        task,
        labels: labels.len(),
        seed: args.seed,
    };
    Ok((Model::load_for_training(gpu, &args.model, &spec)?, labels))
}

fn write_outputs(out: &Path, r: &PruneReport, (nl, nh): (usize, usize)) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::output(out, format!("cannot create: {e}")))?;
    let json = serde_json::to_vec_pretty(r).expect("report serialises");
    crate::io::output::write_atomic(&out.join("curve.json"), &json)?;
    let mask = &r.curve.points[r.chosen].mask;
    debug_assert_eq!(mask.len(), nl);
    debug_assert!(mask.iter().all(|row| row.len() == nh));
    let mask_json = serde_json::to_vec(mask).expect("mask serialises");
    crate::io::output::write_atomic(&out.join("mask.json"), &mask_json)?;
    if let Some(chosen) = r.learned.get(r.chosen) {
        let logits: Vec<f32> = chosen
            .logits
            .concat()
            .iter()
            .map(|v| v.map_or(f32::NAN, |x| x as f32))
            .collect();
        crate::io::output::write_atomic(
            &out.join("learned_importance.npy"),
            &crate::io::output::npy_f32(&[nl, nh], &logits),
        )?;
    }
    plot_curve(out)?;
    Ok(())
}

/// What the plot reads back from curve.json.
#[derive(serde::Deserialize)]
struct SavedReport {
    strategy: String,
    importance: String,
    metric: String,
    unpruned_metric: f64,
    curve: SavedCurve,
    baselines: Vec<SavedCurve>,
    #[serde(default)]
    budgets: Vec<SavedBudget>,
}

#[derive(serde::Deserialize)]
struct SavedCurve {
    importance: String,
    strategy: String,
    points: Vec<SavedPoint>,
}

#[derive(serde::Deserialize)]
struct SavedPoint {
    heads_kept: usize,
    metric: f64,
    mask: Vec<Vec<f32>>,
}

#[derive(serde::Deserialize)]
struct SavedBudget {
    heads_kept: f64,
    mean: f64,
}

/// Draws `out/curve.svg` and `out/curve.png` from `out/curve.json`: the curve and its
/// baselines as (heads kept, metric), or for a learned strategy the mean over seeds per budget
/// beside the unpruned model. `prune` calls it after writing curve.json, and
/// `examples/replot.rs` redraws saved results with it.
pub fn plot_curve(out: &Path) -> Result<Vec<PathBuf>> {
    let file = out.join("curve.json");
    let bytes =
        std::fs::read(&file).map_err(|e| Error::input(&file, format!("cannot read: {e}")))?;
    let r: SavedReport = serde_json::from_slice(&bytes)
        .map_err(|e| Error::input(&file, format!("not a prune curve.json: {e}")))?;
    let mut series: Vec<(String, Vec<(f64, f64)>)> = std::iter::once(&r.curve)
        .chain(&r.baselines)
        .map(|c| {
            let points = c
                .points
                .iter()
                .map(|p| (p.heads_kept as f64, p.metric))
                .collect();
            (format!("{} ({})", c.importance, c.strategy), points)
        })
        .collect();
    if !r.budgets.is_empty() {
        let mut means: Vec<(f64, f64)> = r.budgets.iter().map(|b| (b.heads_kept, b.mean)).collect();
        means.sort_by(|a, b| b.0.total_cmp(&a.0));
        let all_heads = r
            .curve
            .points
            .first()
            .map_or(0, |p| p.mask.iter().map(Vec::len).sum());
        series = vec![
            (format!("{} (mean over seeds)", r.strategy), means),
            (
                "unpruned".into(),
                vec![(all_heads as f64, r.unpruned_metric)],
            ),
        ];
    }
    crate::io::plot::curve(
        out,
        "curve",
        &series,
        ("heads kept", &format!("eval {}", r.metric)),
        &format!("{} pruning, {} importance", r.strategy, r.importance),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_lowest_respects_order_and_the_per_layer_minimum() {
        // 2 layers x 3 heads; layer 0 holds the three lowest scores
        let scores = [0.1, 0.2, 0.3, 0.9, 0.8, 0.05];
        let mut mask = vec![1.0; 6];
        assert_eq!(prune_lowest(&mut mask, &scores, 3, 2, 0), 2);
        assert_eq!(mask, vec![0.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        // at least 2 heads per layer: layer 1 is full (2 left), so layer 0's next goes
        let mut mask = vec![1.0; 6];
        assert_eq!(prune_lowest(&mut mask, &scores, 3, 3, 2), 2);
        assert_eq!(mask, vec![0.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        // already pruned heads are skipped
        let mut mask = vec![0.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        assert_eq!(prune_lowest(&mut mask, &scores, 3, 1, 0), 1);
        assert_eq!(mask, vec![0.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn choose_takes_the_largest_pruning_above_the_threshold() {
        let p = |pruned, metric| Point {
            heads_kept: 10 - pruned,
            pruned,
            metric,
            loss: 0.0,
            mask: vec![],
        };
        let pts = [p(0, 0.9), p(2, 0.89), p(4, 0.85), p(6, 0.7), p(8, 0.82)];
        // non-monotone curves: the largest pruning above the line wins
        assert_eq!(choose(&pts, 0.81), 4);
        assert_eq!(choose(&pts, 0.86), 1);
        assert_eq!(choose(&pts, 0.95), 0);
    }
}
