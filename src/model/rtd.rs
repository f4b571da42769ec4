//! The replaced-token-detection head of an ELECTRA discriminator (`ElectraForPreTraining`): a
//! dense layer with `hidden_act`, then one logit per token (was this token replaced?), and its
//! binary cross-entropy over the real tokens.
//!
//! The logit layer is held as two rows, the first zero: the two-class softmax cross-entropy of
//! logits (0, z) is exactly the binary cross-entropy of z, so the loss is the classifier's kernel.

use super::backward::RowLosses;
use super::{Activations, Config, Linear, Model, Weights};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::kernels::{self, Act, MatmulArgs, MatmulOut};

pub(super) struct RtdHead {
    dense: Linear,
    /// [2, H]: a zero row, then `dense_prediction`.
    out: Linear,
}

/// The head's activations over a batch's B·T rows: the dense layer's pre-activation (its
/// backward reads it) and the logits [B·T, 2].
struct RtdActs {
    pre: Tensor,
    logits: Tensor,
}

/// The discriminator's logit at every position of a padded batch [B·T] and, where labelled,
/// the binary cross-entropy (0 elsewhere).
pub struct RtdPredictions {
    pub logits: Vec<f32>,
    pub loss: Vec<f32>,
}

impl RtdHead {
    /// Loads the family's discriminator head; the error names what is missing.
    pub(super) fn load(
        gpu: &Gpu,
        weights: &Weights,
        config: &Config,
        backward: bool,
    ) -> Result<RtdHead> {
        let f = config.family;
        let [dense, pred] = f.discriminator.ok_or_else(|| {
            Error::input(
                weights.path(),
                format!(
                    "replaced-token detection needs an ELECTRA discriminator (ElectraForPreTraining); this is a {} checkpoint",
                    f.model_type
                ),
            )
        })?;
        let names = [
            format!("{dense}.weight"),
            format!("{dense}.bias"),
            format!("{pred}.weight"),
            format!("{pred}.bias"),
        ];
        let missing: Vec<&str> = names
            .iter()
            .filter(|n| !weights.has(n))
            .map(|n| n.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::input(
                weights.path(),
                format!(
                    "no discriminator head: missing {} (an ElectraForPreTraining checkpoint has them)",
                    missing.join(", ")
                ),
            ));
        }
        let h = config.hidden_size;
        let dense = Linear::new(
            gpu,
            &names[0],
            &weights.get(&names[0], &[h, h])?,
            gpu.upload_f32(&names[1], &weights.get(&names[1], &[h])?)?,
            h,
            h,
            backward,
        )?;
        let mut w = vec![0f32; h];
        w.extend(weights.get(&names[2], &[1, h])?);
        let mut b = vec![0f32];
        b.extend(weights.get(&names[3], &[1])?);
        let out = Linear::new(
            gpu,
            &names[2],
            &w,
            gpu.upload_f32(&names[3], &b)?,
            2,
            h,
            backward,
        )?;
        Ok(RtdHead { dense, out })
    }
}

impl Model {
    fn rtd_head(&self) -> Result<&RtdHead> {
        self.rtd.as_ref().ok_or_else(|| {
            Error::Usage(format!(
                "{}: the model was not loaded with its discriminator head",
                self.dir.display()
            ))
        })
    }

    /// Whether the model was loaded with its discriminator head (its loss is then the
    /// replaced-token-detection loss).
    pub fn has_rtd_head(&self) -> bool {
        self.rtd.is_some()
    }

    /// Records the head on every position of the last hidden states: logits [B·T, 2].
    fn record_rtd(&self, gpu: &Gpu, rec: &mut Recorder, acts: &Activations) -> Result<RtdActs> {
        let head = self.rtd_head()?;
        let h = self.config.hidden_size;
        let bt = acts.b * acts.t;
        let last = acts.hidden.last().expect("hidden");
        let pre = gpu.empty("rtd.pre", bt * h)?;
        let act = gpu.empty("rtd.act", bt * h)?;
        let logits = gpu.empty("rtd.logits", bt * 2)?;
        let lin = |rec: &mut Recorder, l: &Linear, x: &Tensor, out: &Tensor| {
            let args = MatmulArgs {
                a: x,
                w: &l.w,
                bias: Some(&l.b),
                m: bt as u32,
                lda: h as u32,
                act: Act::None,
                gather: None,
            };
            kernels::matmul(rec, &args, out);
        };
        lin(rec, &head.dense, last, &pre);
        kernels::gelu_forward(rec, self.config.hidden_act, &pre, (bt * h) as u32, &act);
        lin(rec, &head.out, &act, &logits);
        Ok(RtdActs { pre, logits })
    }

    /// Labels of a padded batch [B·T] (1 replaced, 0 original, −100 unlabelled) on the device.
    fn rtd_labels(&self, gpu: &Gpu, labels: &[i32], rows: usize) -> Result<Tensor> {
        if labels.len() != rows {
            return Err(Error::Usage(format!(
                "{} replaced-token labels for {rows} padded tokens",
                labels.len()
            )));
        }
        if let Some(bad) = labels.iter().find(|&&y| !matches!(y, -100 | 0 | 1)) {
            return Err(Error::Usage(format!(
                "replaced-token label {bad} is not 0, 1 or -100"
            )));
        }
        gpu.upload_u32(
            "rtd.labels",
            &labels.iter().map(|&y| y as u32).collect::<Vec<_>>(),
        )
    }

    /// Records the head's loss on a recorded forward pass and its gradient with respect to the
    /// last hidden states into `dx` [B·T, H]. Returns the loss of each row, to read after the
    /// pass.
    pub(super) fn record_rtd_backward(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        acts: &Activations,
        labels: &[i32],
        dx: &Tensor,
    ) -> Result<RowLosses> {
        let head = self.rtd_head()?;
        let h = self.config.hidden_size;
        let bt = acts.b * acts.t;
        let labels = self.rtd_labels(gpu, labels, bt)?;
        let s = self.record_rtd(gpu, rec, acts)?;
        let loss = gpu.empty("rtd.loss", bt)?;
        let dlogits = gpu.empty("rtd.dlogits", bt * 2)?;
        kernels::cross_entropy(rec, &s.logits, &labels, bt as u32, 2, 1.0, &loss, &dlogits);
        let dact = gpu.empty("grad.rtd.act", bt * h)?;
        let (bt32, n) = (bt as u32, (bt * h) as u32);
        kernels::input_grad(
            rec,
            &dlogits,
            &head.out.w,
            bt32,
            &dact,
            MatmulOut::default(),
        );
        let dpre = gpu.empty("grad.rtd.pre", bt * h)?;
        kernels::gelu_backward(rec, self.config.hidden_act, &s.pre, &dact, n, &dpre);
        kernels::input_grad(rec, &dpre, &head.dense.w, bt32, dx, MatmulOut::default());
        Ok(RowLosses {
            t: acts.t,
            parts: vec![((0..bt as u32).collect(), loss)],
        })
    }

    /// The discriminator's logits and losses on a padded batch (`labels` [B·T]: 1 replaced,
    /// 0 original, −100 unlabelled) under `gates` [B, L, H].
    pub fn rtd_predict(
        &self,
        gpu: &Gpu,
        examples: &[&super::Encoded],
        labels: &[i32],
        gates: &[f32],
    ) -> Result<RtdPredictions> {
        let mut rec = gpu.recorder();
        let acts = self.record_inference(gpu, &mut rec, examples, gates)?;
        let bt = acts.b * acts.t;
        let labels = self.rtd_labels(gpu, labels, bt)?;
        let s = self.record_rtd(gpu, &mut rec, &acts)?;
        let loss = gpu.empty("rtd.loss", bt)?;
        let dlogits = gpu.empty("rtd.dlogits", bt * 2)?;
        kernels::cross_entropy(
            &mut rec, &s.logits, &labels, bt as u32, 2, 1.0, &loss, &dlogits,
        );
        rec.finish();
        let pairs = gpu.read_f32(&s.logits);
        Ok(RtdPredictions {
            logits: pairs.chunks(2).map(|p| p[1] - p[0]).collect(),
            loss: gpu.read_f32(&loss),
        })
    }
}
