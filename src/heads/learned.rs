//! Learned head gates on a frozen model (issue 11, pipelined): differentiable subset pruning
//! (Li, Cotterell & Sachan) — one logit w_h per stored head, exactly K heads kept through a
//! Gumbel soft top-K, or its straight-through variant — and Voita et al.'s hard-concrete gates
//! with an L0 penalty. A pipelined step is one forward and one gate backward of the frozen
//! model with per-example gates; a joint step (`LearnArgs::joint`) is a fine-tuning step of every weight
//! under the same gates. Either way ∂ℓ/∂gate reaches the logits through the host maths in
//! `maths::gates`.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::maths::gates::{anneal, gumbel, hard_top_k, soft_top_k, HardConcrete, SoftTopK};
use crate::maths::rng::SplitMix64;
use crate::model::batch::plan_for;
use crate::model::{progress_bar, Encoded, Model, TaskHead};
use crate::tasks::finetune::Optimiser;
use crate::tasks::TaskData;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Gates are the soft top-K m of w + Gumbel noise.
    Dsp,
    /// Forward through the hard top-K of w + Gumbel noise, backward through the soft m.
    DspSte,
    /// Hard-concrete gates z(log α, u) with the L0 penalty λ Σ P(z ≠ 0).
    HardConcrete,
}

/// Whether each example draws its own noise or the whole batch shares one draw (the DSP and
/// Voita reference code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Samples {
    PerExample,
    PerBatch,
}

impl Samples {
    pub fn parse(s: &str) -> Result<Samples> {
        match s {
            "per-example" => Ok(Samples::PerExample),
            "per-batch" => Ok(Samples::PerBatch),
            _ => Err(Error::Usage(format!(
                "unknown --samples {s:?} (per-example, per-batch)"
            ))),
        }
    }
}

/// How the logits are trained, shared by every run of a `prune` call.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub epochs: usize,
    /// Adam's step size for the logits.
    pub lr: f64,
    pub tau0: f64,
    pub tau_final: f64,
    /// Steps over which τ anneals from τ₀ to τ_f; None: the whole run.
    pub anneal_steps: Option<usize>,
    pub samples: Samples,
}

/// One run.
#[derive(Clone, Debug)]
pub struct LearnArgs {
    pub method: Method,
    /// K, the heads DSP keeps (among the stored heads); unused by hard-concrete.
    pub heads: usize,
    /// λ of hard-concrete's L0 penalty; unused by DSP.
    pub l0_lambda: f64,
    pub seed: u64,
    pub batch_size: usize,
    pub schedule: Schedule,
    /// Some: train every weight with the logits (`prune --joint`), as `finetune` does, over
    /// the run's steps (the model must have been loaded with [`Model::load_for_training`]);
    /// None: the model stays frozen.
    pub joint: Option<Optimiser>,
}

impl LearnArgs {
    /// Refuses what the method cannot run with, naming the flag.
    pub fn check(&self, stored_heads: usize) -> Result<()> {
        let bad = |m: String| Err(Error::Usage(m));
        if self.method != Method::HardConcrete && (self.heads == 0 || self.heads > stored_heads) {
            return bad(format!(
                "--heads {} must be between 1 and the {stored_heads} heads the checkpoint stores",
                self.heads
            ));
        }
        let sc = &self.schedule;
        if !(sc.tau0 > 0.0 && sc.tau_final > 0.0) {
            return bad(format!(
                "--tau0 {} and --tau-final {} must be above 0",
                sc.tau0, sc.tau_final
            ));
        }
        if sc.tau_final > sc.tau0 {
            return bad(format!(
                "--tau-final {} is above --tau0 {}: the temperature anneals downwards",
                sc.tau_final, sc.tau0
            ));
        }
        if self.l0_lambda.is_nan() || self.l0_lambda < 0.0 {
            return bad(format!("--l0-lambda {} must be 0 or more", self.l0_lambda));
        }
        if sc.lr.is_nan() || sc.lr <= 0.0 || sc.epochs == 0 || self.batch_size == 0 {
            return bad("--lr, --epochs and --batch-size must be above 0".into());
        }
        match &self.joint {
            Some(j) => j.check("--weight-lr"),
            None => Ok(()),
        }
    }
}

/// One optimisation step's record.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Step {
    pub step: usize,
    /// Mean example loss of the batch under the sampled gates (plus the L0 term for
    /// hard-concrete).
    pub loss: f64,
    /// The temperature (DSP) of this step.
    pub tau: Option<f64>,
    /// Heads of the current mask (top K of w, or the hard-concrete test-time gates), as
    /// indices into [L·H].
    pub kept: Vec<usize>,
    /// Fraction of this step's kept heads that the previous step also kept.
    pub overlap: f64,
}

pub struct Learned {
    /// w (DSP) or log α (hard-concrete) over [L·H]; heads the checkpoint does not store are −∞.
    pub logits: Vec<f64>,
    /// The final 0/1 mask over [L·H]: the top K of w, or the heads whose test-time gate is > 0.
    pub mask: Vec<f32>,
    pub steps: Vec<Step>,
}

/// Adam over the logits (β = 0.9, 0.999): the soft top-K's gradients scale with 1/τ, which the
/// annealing moves over many orders of magnitude; Adam's step does not.
struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    fn step(&mut self, w: &mut [f64], g: &[f64], lr: f64) {
        self.t += 1;
        let (b1, b2) = (0.9f64, 0.999f64);
        for i in 0..w.len() {
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g[i];
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g[i] * g[i];
            let mh = self.m[i] / (1.0 - b1.powi(self.t));
            let vh = self.v[i] / (1.0 - b2.powi(self.t));
            w[i] -= lr * mh / (vh.sqrt() + 1e-8);
        }
    }
}

/// How one sample's gates are taken back to the logits.
enum Relaxation {
    /// The soft top-K the gates came from (DSP; DSP-STE's backward).
    Soft(SoftTopK),
    /// ∂z/∂log α of each hard-concrete gate.
    Concrete(Vec<f64>),
}

/// One step's sampled gates.
pub struct Draw {
    /// [B, L·H]: the gates each example runs under (0 for heads the checkpoint does not
    /// store).
    pub gates: Vec<f32>,
    pub tau: f64,
    /// One relaxation per sample: every example's own, or one for the whole batch.
    samples: Vec<Relaxation>,
}

/// The logits of one run and their optimiser: draws each step's gates and takes the step's
/// gate gradients back to the logits. [`learn`] drives it; it is public so that a test can
/// take a step by hand.
pub struct GateLearner {
    args: LearnArgs,
    /// Indices into [L·H] of the heads the checkpoint stores: the heads the logits cover.
    present: Vec<usize>,
    lh: usize,
    w: Vec<f64>,
    adam: Adam,
    hc: HardConcrete,
    rng: SplitMix64,
    prev_kept: Vec<usize>,
    steps: Vec<Step>,
}

impl GateLearner {
    /// Logits at their start for `model`'s stored heads: DSP uniform (every subset equally
    /// likely), hard-concrete with every gate open (log α = 3: P(z ≠ 0) ≈ 1), so that the L0
    /// penalty closes heads from the full model.
    pub fn new(model: &Model, args: &LearnArgs) -> Result<GateLearner> {
        if model.task == TaskHead::None {
            return Err(Error::Usage(format!(
                "{}: learning gates needs a classifier head (this checkpoint is a bare encoder)",
                model.dir.display()
            )));
        }
        let present: Vec<usize> = model
            .present_mask()
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 0.0)
            .map(|(i, _)| i)
            .collect();
        args.check(present.len())?;
        let n = present.len();
        let init = if args.method == Method::HardConcrete {
            3.0
        } else {
            0.0
        };
        let mut learner = GateLearner {
            args: args.clone(),
            present,
            lh: model.config.total_heads(),
            w: vec![init; n],
            adam: Adam {
                m: vec![0.0; n],
                v: vec![0.0; n],
                t: 0,
            },
            hc: HardConcrete::default(),
            rng: SplitMix64::new(args.seed),
            prev_kept: Vec::new(),
            steps: Vec::new(),
        };
        learner.prev_kept = learner.current_kept();
        Ok(learner)
    }

    /// The mask the logits stand for now, as indices into the stored heads.
    fn current_kept(&self) -> Vec<usize> {
        let w = &self.w;
        match self.args.method {
            Method::HardConcrete => (0..w.len())
                .filter(|&i| self.hc.deterministic(w[i]) > 0.0)
                .collect(),
            _ => {
                let m = hard_top_k(w, self.args.heads);
                (0..w.len()).filter(|&i| m[i] == 1.0).collect()
            }
        }
    }

    /// A seeded shuffle of an epoch's batch order, from the run's own stream.
    fn shuffle(&mut self, order: &mut [usize]) {
        for i in (1..order.len()).rev() {
            order.swap(i, self.rng.below(i + 1));
        }
    }

    /// The rows of a batch of `b` that sample `d` of `n` gates.
    fn rows(b: usize, n: usize, d: usize) -> std::ops::Range<usize> {
        if n == 1 {
            0..b
        } else {
            d..d + 1
        }
    }

    /// Samples the gates of a batch of `b` examples at temperature `tau`.
    pub fn draw(&mut self, b: usize, tau: f64) -> Draw {
        let a = &self.args;
        let n = if a.schedule.samples == Samples::PerExample {
            b
        } else {
            1
        };
        let mut gates = vec![0f32; b * self.lh];
        let mut samples = Vec::with_capacity(n);
        for d in 0..n {
            let g: Vec<f64> = match a.method {
                Method::Dsp | Method::DspSte => {
                    let r: Vec<f64> = self.w.iter().map(|&x| x + gumbel(&mut self.rng)).collect();
                    let soft = soft_top_k(&r, a.heads, tau);
                    let g = if a.method == Method::DspSte {
                        hard_top_k(&r, a.heads)
                    } else {
                        soft.gates.clone()
                    };
                    samples.push(Relaxation::Soft(soft));
                    g
                }
                Method::HardConcrete => {
                    let (z, dz): (Vec<f64>, Vec<f64>) = self
                        .w
                        .iter()
                        .map(|&la| self.hc.sample(la, self.rng.uniform()))
                        .unzip();
                    samples.push(Relaxation::Concrete(dz));
                    z
                }
            };
            for e in Self::rows(b, n, d) {
                for (k, &h) in self.present.iter().enumerate() {
                    gates[e * self.lh + h] = g[k] as f32;
                }
            }
        }
        Draw {
            gates,
            tau,
            samples,
        }
    }

    /// One Adam step of the logits from the step's gate gradients `dgates` [B, L·H] times
    /// `scale` (which makes them those of the batch's mean loss), and the step's record.
    /// `loss` is the batch's mean loss; hard-concrete adds its L0 term.
    pub fn update(
        &mut self,
        step: usize,
        draw: &Draw,
        loss: f64,
        dgates: &[f32],
        scale: f64,
    ) -> Result<()> {
        let n_heads = self.present.len();
        let b = dgates.len() / self.lh;
        let n = draw.samples.len();
        let mut grad = vec![0f64; n_heads];
        for (d, relax) in draw.samples.iter().enumerate() {
            let mut dgate = vec![0f64; n_heads];
            for e in Self::rows(b, n, d) {
                for (k, &h) in self.present.iter().enumerate() {
                    dgate[k] += dgates[e * self.lh + h] as f64 * scale;
                }
            }
            let dw = match relax {
                Relaxation::Concrete(dz) => dgate.iter().zip(dz).map(|(a, b)| a * b).collect(),
                Relaxation::Soft(soft) => soft.backward(&dgate),
            };
            for k in 0..n_heads {
                grad[k] += dw[k];
            }
        }
        let mut loss = loss;
        if self.args.method == Method::HardConcrete {
            for (g, &w) in grad.iter_mut().zip(&self.w) {
                let (p, dp) = self.hc.l0(w);
                loss += self.args.l0_lambda * p;
                *g += self.args.l0_lambda * dp;
            }
        }
        if !loss.is_finite() || grad.iter().any(|g| !g.is_finite()) {
            return Err(Error::Usage(format!(
                "step {step}: the loss or a logit gradient is not finite (loss {loss}); \
                 try a lower --lr or a higher --tau-final"
            )));
        }
        self.adam.step(&mut self.w, &grad, self.args.schedule.lr);
        let kept = self.current_kept();
        let overlap = if self.prev_kept.is_empty() {
            1.0
        } else {
            kept.iter().filter(|i| self.prev_kept.contains(i)).count() as f64
                / self.prev_kept.len() as f64
        };
        self.steps.push(Step {
            step,
            loss,
            tau: (self.args.method != Method::HardConcrete).then_some(draw.tau),
            kept: kept.iter().map(|&k| self.present[k]).collect(),
            overlap,
        });
        self.prev_kept = kept;
        Ok(())
    }

    /// The logits over [L·H] (−∞ where no head is stored) and the mask they stand for.
    pub fn finish(self) -> Learned {
        let mut logits = vec![f64::NEG_INFINITY; self.lh];
        let mut mask = vec![0f32; self.lh];
        for &k in &self.current_kept() {
            mask[self.present[k]] = 1.0;
        }
        for (k, &h) in self.present.iter().enumerate() {
            logits[h] = self.w[k];
        }
        Learned {
            logits,
            mask,
            steps: self.steps,
        }
    }
}

/// Learns the gate logits of `model` on `data`, `sc.epochs` passes in batches of examples of
/// similar length, shuffled per epoch with `args.seed`: on the frozen model, or, with
/// `args.joint`, together with every weight of `model` (which then holds the trained weights).
pub fn learn(
    gpu: &Gpu,
    model: &Model,
    data: &TaskData,
    args: &LearnArgs,
    progress: bool,
) -> Result<Learned> {
    let mut learner = GateLearner::new(model, args)?;
    let sc = &args.schedule;
    let enc: &[Encoded] = &data.examples;
    let lengths: Vec<usize> = enc.iter().map(|e| e.ids.len()).collect();
    let batches = plan_for(gpu, model, &lengths, args.batch_size)?;
    let total_steps = sc.epochs * batches.len();
    let anneal_steps = sc.anneal_steps.unwrap_or(total_steps);
    let mut trainer = match &args.joint {
        Some(j) => Some((j, model.trainer(gpu, j.train_config(model, args.seed))?)),
        None => None,
    };
    let bar = progress.then(|| progress_bar(total_steps));
    let mut order: Vec<usize> = (0..batches.len()).collect();
    for epoch in 0..sc.epochs {
        learner.shuffle(&mut order);
        for (s, &bi) in order.iter().enumerate() {
            let step = epoch * batches.len() + s;
            let idx = &batches[bi];
            let b = idx.len();
            let refs: Vec<&Encoded> = idx.iter().map(|&i| &enc[i]).collect();
            let ys = data.batch_labels(idx);
            let draw = learner.draw(b, anneal(sc.tau0, sc.tau_final, step, anneal_steps));
            match &mut trainer {
                Some((j, tr)) => {
                    let lr = j.lr_at(step, total_steps);
                    let (stats, dgates) =
                        model.train_step_gated(gpu, tr, &refs, &ys, &draw.gates, lr)?;
                    // the gradients are already those of the batch's mean loss
                    learner.update(step, &draw, stats.loss, &dgates, 1.0)?;
                }
                None => {
                    let out = model.gate_gradients(gpu, &refs, &ys, &draw.gates)?;
                    let loss = out.loss.iter().map(|&v| v as f64).sum::<f64>() / b as f64;
                    learner.update(step, &draw, loss, &out.dgates, 1.0 / b as f64)?;
                }
            }
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(learner.finish())
}
