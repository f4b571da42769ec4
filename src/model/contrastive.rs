//! In-batch contrastive objectives on a bare encoder: sentence-transformers'
//! MultipleNegativesRankingLoss over pairs (optionally symmetric), and SimCSE (each sentence
//! twice, under different dropout masks). A batch of B pairs runs as one forward pass over 2B
//! sequences, the first sentences then the second ones; each is pooled as the model's
//! sentence-transformers Pooling module says (mean by default) and L2-normalised, and every
//! first sentence is scored against every second one (cosine × scale), cross-entropy towards its
//! partner. The backward starts from the last hidden states (`kernels::contrastive_backward`)
//! and runs the encoder's own backward pass.
//!
//! With in-batch negatives one example's loss depends on the rest of its batch, so the gate
//! gradient of a sequence is the gradient of its batch's summed loss.

use super::backward::{GateBuffers, GateGrads, HeadGrad};
use super::{Dropout, Encoded, HeadSkip, Model};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{self, ContrastiveArgs, Pooling};

/// How the sentences of a contrastive batch are embedded and compared.
#[derive(Clone, Copy, Debug)]
pub struct ContrastiveSpec {
    pub pooling: Pooling,
    /// Cosine similarities are multiplied by this (sentence-transformers: 20).
    pub scale: f32,
    /// Also each second sentence against the first ones; each direction then weighs 1/2.
    pub symmetric: bool,
    /// SimCSE's dropout on both copies (seeded per batch); None for pairs.
    pub dropout: Option<Dropout>,
}

impl ContrastiveSpec {
    /// The spec of batch `k` of a run: SimCSE's dropout masks differ from batch to batch.
    pub fn for_batch(&self, k: u64) -> ContrastiveSpec {
        let dropout = self.dropout.map(|d| Dropout { step: k, ..d });
        ContrastiveSpec { dropout, ..*self }
    }
}

impl GateGrads {
    /// The rows of a contrastive pass's 2B sequences folded into B pairs: a pair's gates are
    /// both its sentences' (tied), so its gate gradient, token sums, entropy and confidence
    /// sums, loss and length are the sums of its two rows.
    pub fn fold_pairs(&self) -> GateGrads {
        let b = self.loss.len() / 2;
        let lh = self.dgates.len() / (2 * b).max(1);
        let fold = |v: &[f32]| -> Vec<f32> { (0..b * lh).map(|j| v[j] + v[b * lh + j]).collect() };
        GateGrads {
            loss: (0..b).map(|i| self.loss[i] + self.loss[b + i]).collect(),
            dgates: fold(&self.dgates),
            entropy_sum: fold(&self.entropy_sum),
            token_abs: fold(&self.token_abs),
            confidence_sum: fold(&self.confidence_sum),
            lengths: (0..b)
                .map(|i| self.lengths[i] + self.lengths[b + i])
                .collect(),
        }
    }
}

/// One contrastive batch's forward results.
pub struct ContrastiveOut {
    /// Per pair: its anchors' losses (the first sentence's; with `symmetric`, the mean of both
    /// directions).
    pub loss: Vec<f32>,
    /// Per pair: whether the first sentence's most similar second sentence is its partner.
    pub top1: Vec<bool>,
}

impl Model {
    /// Checks that `spec` can run on this model with `--batch-size` `batch_size` (a lone last
    /// pair joins the batch before it, so a batch may hold one pair more).
    pub fn check_contrastive(&self, spec: &ContrastiveSpec, batch_size: usize) -> Result<()> {
        let most = kernels::contrastive::MAX_PAIRS - 1;
        if batch_size < 2 {
            return Err(Error::Usage(
                "an in-batch contrastive objective needs at least 2 pairs a batch (--batch-size)"
                    .into(),
            ));
        }
        if batch_size > most {
            return Err(Error::Usage(format!(
                "--batch-size {batch_size}: a contrastive batch holds at most {most} pairs (and one more when a lone last pair joins it)"
            )));
        }
        self.check_contrastive_model(spec)
    }

    /// What the contrastive kernels need of the model and the pooling.
    fn check_contrastive_model(&self, spec: &ContrastiveSpec) -> Result<()> {
        if self.config.hidden_size > kernels::contrastive::MAX_HIDDEN {
            return Err(Error::Usage(format!(
                "{}: the contrastive kernels take hidden sizes up to {} (this model: {})",
                self.dir.display(),
                kernels::contrastive::MAX_HIDDEN,
                self.config.hidden_size
            )));
        }
        if spec.pooling == Pooling::Max {
            return Err(Error::Usage(format!(
                "{}: max pooling has no backward in headroom; the contrastive objectives take mean, CLS or mean-sqrt-len pooling",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// The contrastive loss of the pairs (`first[i]`, `second[i]`) with `gates` [2B, L, H] (the
    /// first sentences' rows, then the second ones'), and with `backward` the gate gradients
    /// of the batch's summed loss, one row per sequence (2B rows; `loss` holds the first
    /// sentences' anchor losses, then the second ones' with `symmetric`, else 0).
    pub fn contrastive_pass(
        &self,
        gpu: &Gpu,
        first: &[&Encoded],
        second: &[&Encoded],
        gates: &[f32],
        spec: &ContrastiveSpec,
        backward: bool,
    ) -> Result<(ContrastiveOut, Option<GateGrads>)> {
        let b = first.len();
        assert_eq!(second.len(), b, "pairs");
        if !(2..=kernels::contrastive::MAX_PAIRS).contains(&b) {
            return Err(Error::Usage(format!(
                "a contrastive batch needs 2 to {} pairs (this one: {b})",
                kernels::contrastive::MAX_PAIRS
            )));
        }
        self.check_contrastive_model(spec)?;
        let h = self.config.hidden_size;
        let seqs: Vec<&Encoded> = first.iter().chain(second).copied().collect();
        let mut rec = gpu.recorder();
        let acts = self.record_forward(
            gpu,
            &mut rec,
            &seqs,
            gates,
            backward,
            spec.dropout,
            HeadSkip::Dense,
        )?;
        let last = acts.hidden.last().expect("hidden");
        let shape = ((2 * b) as u32, acts.t as u32, h as u32);
        let pooled = gpu.empty("contrastive.pooled", 2 * b * h)?;
        let unit = gpu.empty("contrastive.unit", 2 * b * h)?;
        kernels::pool(
            &mut rec,
            last,
            &acts.lens,
            shape,
            spec.pooling,
            false,
            &pooled,
        );
        // the unit rows from the pooled ones: each a one-token "sequence", normalised
        let rows = ((2 * b) as u32, 1, h as u32);
        kernels::pool(
            &mut rec,
            &pooled,
            &acts.lens,
            rows,
            Pooling::First,
            true,
            &unit,
        );
        let args = ContrastiveArgs {
            pairs: b as u32,
            hidden: h as u32,
            seq: acts.t as u32,
            scale: spec.scale,
            symmetric: spec.symmetric,
            pooling: spec.pooling,
        };
        let loss = gpu.empty("contrastive.loss", args.anchors())?;
        let probs = gpu.empty("contrastive.probs", args.anchors() * b)?;
        kernels::contrastive_loss(&mut rec, &args, &unit, &loss, &probs);
        let grads = if backward {
            let dx = gpu.empty("grad.hidden", 2 * b * acts.t * h)?;
            kernels::contrastive_backward(&mut rec, &args, &unit, &probs, &pooled, &acts.lens, &dx);
            let gb = GateBuffers::new(gpu, 2 * b * acts.plan.stride)?;
            self.record_backward(gpu, &mut rec, &acts, HeadGrad::Hidden(dx), &gb, None)?;
            Some(gb)
        } else {
            None
        };
        rec.finish();
        let anchor_loss = gpu.read_f32(&loss);
        let probs = gpu.read_f32(&probs);
        let weight = if spec.symmetric { 0.5 } else { 1.0 };
        let pair_loss = (0..b)
            .map(|i| {
                let back = if spec.symmetric {
                    anchor_loss[b + i]
                } else {
                    0.0
                };
                weight * (anchor_loss[i] + back)
            })
            .collect();
        let top1 = (0..b)
            .map(|i| {
                let row = &probs[i * b..(i + 1) * b];
                (0..b).all(|j| j == i || row[j] < row[i])
            })
            .collect();
        let out = ContrastiveOut {
            loss: pair_loss,
            top1,
        };
        let grads = grads.map(|gb| {
            // per sequence: its anchor's weighted loss (a second sentence's is 0 unless symmetric)
            let mut loss: Vec<f32> = anchor_loss.iter().map(|l| weight * l).collect();
            loss.resize(2 * b, 0.0);
            self.read_gate_grads(gpu, &acts.plan, &gb, loss, &seqs)
        });
        Ok((out, grads))
    }
}
