//! The backward graph for head-gate gradients (Michel et al.'s importance): activation
//! gradients only, written out layer by layer as kernel calls, mirroring the forward.

use super::{Activations, Encoded, Linear, Model, TaskHead};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::kernels::{self, AttnBackwardArgs, GateOutputs, MatmulOut};

/// Per-example losses and gate gradients of one batch.
pub struct GateGrads {
    /// Cross-entropy of each example (summed over its labelled tokens for token classification).
    pub loss: Vec<f32>,
    /// ∂ℓ_b/∂ξ[b, l, h]: [B, L, H]. Gates are per example, so each row is that example's own
    /// gradient even though the batch runs as one pass.
    pub dgates: Vec<f32>,
    /// Attention entropy −Σ_j p log p of each head, summed over each example's real query
    /// tokens: [B, L, H] (divide by the token count for bertology's average).
    pub entropy_sum: Vec<f32>,
    /// Real tokens of each example.
    pub lengths: Vec<usize>,
}

/// dY·W for y = x·Wᵀ (no bias).
fn input_grad(rec: &mut Recorder, dy: &Tensor, lin: &Linear, m: u32, out: &Tensor, o: MatmulOut) {
    kernels::input_grad(rec, dy, &lin.w, m, out, o);
}

fn copy(rec: &mut Recorder, src: &Tensor, dst: &Tensor) {
    rec.encoder()
        .copy_buffer_to_buffer(&src.buffer, 0, &dst.buffer, 0, src.bytes());
}

impl Model {
    /// One forward and one backward pass over a padded batch. `labels` holds one class index
    /// per example (sequence classification) or one per token of the padded batch, −100 to
    /// ignore (token classification). `gates` is [B, L, H].
    pub fn gate_gradients(
        &self,
        gpu: &Gpu,
        examples: &[&Encoded],
        labels: &[i32],
        gates: &[f32],
    ) -> Result<GateGrads> {
        let c = &self.config;
        let classifier = self.classifier.as_ref().ok_or_else(|| {
            Error::Usage(format!(
                "{}: gate gradients need a classifier head",
                self.dir.display()
            ))
        })?;
        let (nl, nh, h, i) = (
            c.num_hidden_layers,
            c.num_attention_heads,
            c.hidden_size,
            c.intermediate_size,
        );
        let mut rec = gpu.recorder();
        let acts: Activations = self.record_forward(gpu, &mut rec, examples, gates, true)?;
        let (b, t) = (acts.b, acts.t);
        let (bt, ncls) = (b * t, classifier.w.n as usize);
        let rows = match self.task {
            TaskHead::SequenceClassification => b,
            TaskHead::TokenClassification => bt,
            TaskHead::None => unreachable!("a classifier implies a task head"),
        };
        if labels.len() != rows {
            return Err(Error::Usage(format!(
                "{} labels for {rows} rows",
                labels.len()
            )));
        }
        if let Some(bad) = labels
            .iter()
            .find(|&&y| y != -100 && (y < 0 || y as usize >= ncls))
        {
            return Err(Error::Usage(format!(
                "label {bad} is outside the model's {ncls} classes"
            )));
        }
        let labels_t = gpu.upload_u32(
            "labels",
            &labels.iter().map(|&y| y as u32).collect::<Vec<_>>(),
        )?;
        let loss = gpu.empty("loss", rows)?;
        let dlogits = gpu.empty("dlogits", rows * ncls)?;
        let logits = acts.logits.as_ref().expect("classifier logits");
        kernels::cross_entropy(
            &mut rec,
            logits,
            &labels_t,
            rows as u32,
            ncls as u32,
            1.0,
            &loss,
            &dlogits,
        );

        let (bt32, b32) = (bt as u32, b as u32);
        let dx = gpu.empty("grad.hidden", bt * h)?;
        match self.task {
            TaskHead::SequenceClassification => {
                let pooler = self.pooler.as_ref().expect("pooler checked at load");
                let pooled = acts.pooled.as_ref().expect("pooled");
                let dpooled = gpu.empty("grad.pooled", b * h)?;
                input_grad(
                    &mut rec,
                    &dlogits,
                    classifier,
                    b32,
                    &dpooled,
                    MatmulOut::default(),
                );
                let dpre = gpu.empty("grad.pooler.pre", b * h)?;
                kernels::tanh_backward(&mut rec, pooled, &dpooled, (b * h) as u32, &dpre);
                // Only [CLS] rows feed the pooler: zero the rest, write rows e*T.
                rec.encoder().clear_buffer(&dx.buffer, 0, None);
                let out = MatmulOut {
                    ldc: (t * h) as u32,
                    accumulate: false,
                };
                input_grad(&mut rec, &dpre, pooler, b32, &dx, out);
            }
            _ => input_grad(
                &mut rec,
                &dlogits,
                classifier,
                bt32,
                &dx,
                MatmulOut::default(),
            ),
        }

        let eps = c.layer_norm_eps as f32;
        let h32 = h as u32;
        let da2 = gpu.empty("grad.ln2", bt * h)?;
        let dinter = gpu.empty("grad.inter", bt * i)?;
        let dpre = gpu.empty("grad.inter.pre", bt * i)?;
        let dx1 = gpu.empty("grad.hidden.attn", bt * h)?;
        let da1 = gpu.empty("grad.ln1", bt * h)?;
        let dctx = gpu.empty("grad.context", bt * h)?;
        let dqkv = gpu.empty("grad.qkv", bt * 3 * h)?;
        let dgates = gpu.empty("grad.gates", b * nl * nh)?;
        let entropy_sum = gpu.empty("attention.entropy", b * nl * nh)?;
        let acc = MatmulOut {
            ldc: 0,
            accumulate: true,
        };
        // Attention-backward scratch: the same shape at every layer.
        let stats_len = kernels::attention_backward::stats_len(&self.attn_args(
            &acts.layers[0].qkv,
            &acts.lens,
            &acts.gates,
            b,
            t,
            0,
        ));
        let stats = gpu.empty("attention.stats", stats_len)?;
        for (li, layer) in self.layers.iter().enumerate().rev() {
            let s = &acts.layers[li];
            let x_in = &acts.hidden[li];
            kernels::ln_backward(
                &mut rec,
                &s.ffn_out,
                &s.x1,
                &dx,
                &layer.ln2.0,
                eps,
                bt32,
                h32,
                &da2,
            );
            input_grad(
                &mut rec,
                &da2,
                &layer.out,
                bt32,
                &dinter,
                MatmulOut::default(),
            );
            let pre = s.pre.as_ref().expect("saved pre-activation");
            kernels::gelu_backward(&mut rec, pre, &dinter, (bt * i) as u32, &dpre);
            copy(&mut rec, &da2, &dx1);
            input_grad(&mut rec, &dpre, &layer.inter, bt32, &dx1, acc);
            kernels::ln_backward(
                &mut rec,
                &s.attn_proj,
                x_in,
                &dx1,
                &layer.ln1.0,
                eps,
                bt32,
                h32,
                &da1,
            );
            input_grad(
                &mut rec,
                &da1,
                &layer.attn_out,
                bt32,
                &dctx,
                MatmulOut::default(),
            );
            let fwd = self.attn_args(&s.qkv, &acts.lens, &acts.gates, b, t, li);
            let args = AttnBackwardArgs {
                fwd,
                out: &s.ctx,
                lse: &s.lse,
                dout: &dctx,
            };
            let outs = GateOutputs {
                dgates: &dgates,
                entropy_sum: &entropy_sum,
            };
            kernels::attention_bwd(&mut rec, &args, &dqkv, &stats, &outs);
            if li > 0 {
                copy(&mut rec, &da1, &dx);
                input_grad(&mut rec, &dqkv, &layer.qkv, bt32, &dx, acc);
            }
        }
        rec.finish();
        Ok(GateGrads {
            loss: gpu.read_f32(&loss),
            dgates: gpu.read_f32(&dgates),
            entropy_sum: gpu.read_f32(&entropy_sum),
            lengths: examples.iter().map(|e| e.ids.len()).collect(),
        })
    }
}
