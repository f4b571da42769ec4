//! Learned head gates on a frozen model (issue 11, pipelined): differentiable subset pruning
//! (Li, Cotterell & Sachan) — one logit w_h per stored head, exactly K heads kept through a
//! Gumbel soft top-K, or its straight-through variant — and Voita et al.'s hard-concrete gates
//! with an L0 penalty. Each step is one forward and one gate backward of the model with
//! per-example gates (no weight changes); ∂ℓ/∂gate reaches the logits through the host maths in
//! `maths::gates`.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::maths::gates::{anneal, gumbel, hard_top_k, soft_top_k, HardConcrete};
use crate::maths::rng::SplitMix64;
use crate::model::batch::plan_for;
use crate::model::{progress_bar, Encoded, Model, TaskHead};
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
        Ok(())
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

/// The mask the logits stand for now, over the stored heads `present`.
fn current_kept(args: &LearnArgs, w: &[f64], hc: &HardConcrete) -> Vec<usize> {
    match args.method {
        Method::HardConcrete => (0..w.len())
            .filter(|&i| hc.deterministic(w[i]) > 0.0)
            .collect(),
        _ => {
            let m = hard_top_k(w, args.heads);
            (0..w.len()).filter(|&i| m[i] == 1.0).collect()
        }
    }
}

/// Learns the gate logits of `model` (frozen) on `data`, `sc.epochs` passes in batches of
/// examples of similar length, shuffled per epoch with `args.seed`.
pub fn learn(
    gpu: &Gpu,
    model: &Model,
    data: &TaskData,
    args: &LearnArgs,
    progress: bool,
) -> Result<Learned> {
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
    let sc = &args.schedule;
    let lh = model.config.total_heads();
    let n_heads = present.len();
    let enc: &[Encoded] = &data.examples;
    let lengths: Vec<usize> = enc.iter().map(|e| e.ids.len()).collect();
    let batches = plan_for(gpu, model, &lengths, args.batch_size)?;
    let total_steps = sc.epochs * batches.len();
    let anneal_steps = sc.anneal_steps.unwrap_or(total_steps);
    let hc = HardConcrete::default();
    let mut rng = SplitMix64::new(args.seed);
    // w over the stored heads: DSP starts uniform (every subset equally likely); hard-concrete
    // starts with every gate open (log α = 3: P(z ≠ 0) ≈ 1), so the L0 penalty closes heads
    // from the full model
    let init = if args.method == Method::HardConcrete {
        3.0
    } else {
        0.0
    };
    let mut w = vec![init; n_heads];
    let mut adam = Adam {
        m: vec![0.0; n_heads],
        v: vec![0.0; n_heads],
        t: 0,
    };
    let bar = progress.then(|| progress_bar(total_steps));
    let mut steps = Vec::with_capacity(total_steps);
    let mut order: Vec<usize> = (0..batches.len()).collect();
    let mut prev_kept = current_kept(args, &w, &hc);
    for epoch in 0..sc.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for (s, &bi) in order.iter().enumerate() {
            let step = epoch * batches.len() + s;
            let idx = &batches[bi];
            let b = idx.len();
            let refs: Vec<&Encoded> = idx.iter().map(|&i| &enc[i]).collect();
            let ys = data.batch_labels(idx);
            let tau = anneal(sc.tau0, sc.tau_final, step, anneal_steps);
            // one relaxation per sample: the gates it sets, and how to take ∂/∂w back
            let draws = if sc.samples == Samples::PerExample {
                b
            } else {
                1
            };
            let mut gates = vec![0f32; b * lh];
            let mut softs = Vec::with_capacity(draws);
            let mut dz = Vec::with_capacity(draws);
            for d in 0..draws {
                let g: Vec<f64> = match args.method {
                    Method::Dsp | Method::DspSte => {
                        let r: Vec<f64> = w.iter().map(|&x| x + gumbel(&mut rng)).collect();
                        let soft = soft_top_k(&r, args.heads, tau);
                        let g = if args.method == Method::DspSte {
                            hard_top_k(&r, args.heads)
                        } else {
                            soft.gates.clone()
                        };
                        softs.push(soft);
                        g
                    }
                    Method::HardConcrete => {
                        let (z, d): (Vec<f64>, Vec<f64>) =
                            w.iter().map(|&la| hc.sample(la, rng.uniform())).unzip();
                        dz.push(d);
                        z
                    }
                };
                let rows = if draws == 1 { 0..b } else { d..d + 1 };
                for e in rows {
                    for (k, &h) in present.iter().enumerate() {
                        gates[e * lh + h] = g[k] as f32;
                    }
                }
            }
            let out = model.gate_gradients(gpu, &refs, &ys, &gates)?;
            // ∂(mean loss)/∂w, through each draw's relaxation
            let mut grad = vec![0f64; n_heads];
            for d in 0..draws {
                let rows = if draws == 1 { 0..b } else { d..d + 1 };
                let mut dgate = vec![0f64; n_heads];
                for e in rows {
                    for (k, &h) in present.iter().enumerate() {
                        dgate[k] += out.dgates[e * lh + h] as f64 / b as f64;
                    }
                }
                let dw = match args.method {
                    Method::HardConcrete => dgate.iter().zip(&dz[d]).map(|(a, b)| a * b).collect(),
                    _ => softs[d].backward(&dgate),
                };
                for k in 0..n_heads {
                    grad[k] += dw[k];
                }
            }
            let mut loss = out.loss.iter().map(|&v| v as f64).sum::<f64>() / b as f64;
            if args.method == Method::HardConcrete {
                for k in 0..n_heads {
                    let (p, dp) = hc.l0(w[k]);
                    loss += args.l0_lambda * p;
                    grad[k] += args.l0_lambda * dp;
                }
            }
            if !loss.is_finite() || grad.iter().any(|g| !g.is_finite()) {
                return Err(Error::Usage(format!(
                    "step {step}: the loss or a logit gradient is not finite (loss {loss}); \
                     try a lower --lr or a higher --tau-final"
                )));
            }
            adam.step(&mut w, &grad, sc.lr);
            let kept = current_kept(args, &w, &hc);
            let overlap = if prev_kept.is_empty() {
                1.0
            } else {
                kept.iter().filter(|i| prev_kept.contains(i)).count() as f64
                    / prev_kept.len() as f64
            };
            steps.push(Step {
                step,
                loss,
                tau: (args.method != Method::HardConcrete).then_some(tau),
                kept: kept.iter().map(|&k| present[k]).collect(),
                overlap,
            });
            prev_kept = kept;
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut logits = vec![f64::NEG_INFINITY; lh];
    let mut mask = vec![0f32; lh];
    for &k in &current_kept(args, &w, &hc) {
        mask[present[k]] = 1.0;
    }
    for (k, &h) in present.iter().enumerate() {
        logits[h] = w[k];
    }
    Ok(Learned {
        logits,
        mask,
        steps,
    })
}
