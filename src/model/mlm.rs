//! The masked-LM head of a `*ForMaskedLM` checkpoint and its loss: a dense layer with GELU, a
//! LayerNorm and a decoder onto the vocabulary (the word embedding table unless the checkpoint
//! stores its own), as each family names them in [`super::family::MlmNames`].
//!
//! The vocabulary-sized logits are never held whole for the loss: the head reads only the
//! labelled rows, in slabs, and the decoder runs one chunk of vocabulary rows at a time, folded
//! into a running log-sum-exp (`kernels::VocabLoss`); the backward pass recomputes each chunk.
//! Memory beyond the hidden states is O(rows · chunk), not O(rows · vocabulary).

use super::backward::RowLosses;
use super::{Activations, Config, Linear, Model, Weights};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::kernels::{self, Act, Gelu, LinearWeight, MatmulArgs, MatmulOut, VocabLoss};

/// Vocabulary rows per decoder chunk unless a caller picks another.
pub const VOCAB_CHUNK: usize = 4096;

pub(super) struct MlmHead {
    transform: Linear,
    ln: (Tensor, Tensor),
    /// The decoder in chunks of vocabulary rows: (first id, weight [rows, width], bias [rows]).
    decoder: Vec<(u32, LinearWeight, Tensor)>,
    /// The width the decoder reads (the hidden width, or ELECTRA's embedding width).
    width: usize,
    /// The transform's activation.
    act: Gelu,
}

/// What the head produced for the labelled positions of one batch, in row-major order of the
/// padded batch.
pub struct MlmPredictions {
    /// Index into the padded batch [B·T] of each labelled position.
    pub positions: Vec<usize>,
    /// Cross-entropy of each labelled position.
    pub loss: Vec<f32>,
    /// The highest-scoring vocabulary id at each labelled position.
    pub predicted: Vec<u32>,
}

impl MlmHead {
    /// Loads the head named by the family; the error names every missing tensor.
    pub(super) fn load(
        gpu: &Gpu,
        weights: &Weights,
        config: &Config,
        backward: bool,
        chunk_rows: usize,
    ) -> Result<MlmHead> {
        let f = config.family;
        let names = &f.mlm;
        let tw = format!("{}.weight", names.transform);
        let bias_name = [names.bias.to_string(), format!("{}.bias", names.decoder)]
            .into_iter()
            .find(|n| weights.has(n))
            .unwrap_or_else(|| names.bias.to_string());
        let required = [
            tw.clone(),
            format!("{}.bias", names.transform),
            format!("{}.weight", names.layer_norm),
            format!("{}.bias", names.layer_norm),
            bias_name.clone(),
        ];
        let missing: Vec<&str> = required
            .iter()
            .filter(|n| !weights.has(n))
            .map(|n| n.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::input(
                weights.path(),
                format!(
                    "no masked-LM head: missing {} (a {}ForMaskedLM checkpoint has them)",
                    missing.join(", "),
                    f.class_prefix
                ),
            ));
        }
        let h = config.hidden_size;
        let width = match weights.shape(&tw).as_deref() {
            Some([w, hh]) if *hh == h => *w,
            other => {
                return Err(Error::input(
                    weights.path(),
                    format!("tensor {tw} has shape {other:?}; expected [width, {h}]"),
                ))
            }
        };
        let v = config.vocab_size;
        let up = |name: &str, shape: &[usize]| -> Result<Tensor> {
            gpu.upload_f32(name, &weights.get(name, shape)?)
        };
        let transform = Linear::new(
            gpu,
            &tw,
            &weights.get(&tw, &[width, h])?,
            up(&format!("{}.bias", names.transform), &[width])?,
            width,
            h,
            backward,
        )?;
        let ln = (
            up(&format!("{}.weight", names.layer_norm), &[width])?,
            up(&format!("{}.bias", names.layer_norm), &[width])?,
        );
        // the decoder is tied to the word table unless the checkpoint stores its own weight
        let own = format!("{}.weight", names.decoder);
        let table = if weights.has(&own) {
            own
        } else {
            format!("{}{}.weight", weights.prefix, f.word_embeddings)
        };
        let w = weights.get(&table, &[v, width])?;
        let b = weights.get(&bias_name, &[v])?;
        let rows = chunk_rows.clamp(1, v.max(1));
        let mut decoder = Vec::with_capacity(v.div_ceil(rows));
        for row0 in (0..v).step_by(rows) {
            let n = rows.min(v - row0);
            let data = &w[row0 * width..(row0 + n) * width];
            let lw = if backward {
                LinearWeight::with_transpose(gpu, &table, data, n, width)?
            } else {
                LinearWeight::new(gpu, &table, data, n, width)?
            };
            let bias = gpu.upload_f32(&bias_name, &b[row0..row0 + n])?;
            decoder.push((row0 as u32, lw, bias));
        }
        Ok(MlmHead {
            transform,
            ln,
            decoder,
            width,
            act: if names.hidden_act {
                config.hidden_act
            } else {
                Gelu::Erf
            },
        })
    }

    fn widest_chunk(&self) -> usize {
        self.decoder
            .iter()
            .map(|d| d.1.n as usize)
            .max()
            .unwrap_or(1)
    }
}

/// The head's activations over one slab of rows.
struct SlabActs {
    rows: u32,
    /// The transform's pre-activation and GELU output, and the LayerNorm's output [rows, width].
    pre: Tensor,
    act: Tensor,
    zeros: Tensor,
    normed: Tensor,
}

impl Model {
    fn mlm_head(&self) -> Result<&MlmHead> {
        self.mlm.as_ref().ok_or_else(|| {
            Error::Usage(format!(
                "{}: the model was not loaded with its masked-LM head",
                self.dir.display()
            ))
        })
    }

    /// Whether the model was loaded with its masked-LM head (its loss is then the MLM loss).
    pub fn has_mlm_head(&self) -> bool {
        self.mlm.is_some()
    }

    /// Rows of one slab: every buffer of the head stays within one binding.
    fn mlm_slab(&self, gpu: &Gpu) -> Result<usize> {
        let head = self.mlm_head()?;
        let widest = head
            .widest_chunk()
            .max(head.width)
            .max(self.config.hidden_size);
        Ok(((gpu.max_binding() / 4) as usize / widest).max(1))
    }

    /// Records the head's transform and LayerNorm on the rows `positions` of `last` [B·T, H].
    fn record_mlm_transform(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        last: &Tensor,
        positions: &[u32],
    ) -> Result<SlabActs> {
        let head = self.mlm_head()?;
        let (h, w) = (self.config.hidden_size, head.width);
        let m = positions.len();
        let idx = gpu.upload_u32("mlm.positions", positions)?;
        let x = gpu.empty("mlm.rows", m * h)?;
        kernels::gather_rows(rec, last, &idx, m as u32, h as u32, &x);
        let pre = gpu.empty("mlm.transform.pre", m * w)?;
        let act = gpu.empty("mlm.transform", m * w)?;
        let args = MatmulArgs {
            a: &x,
            w: &head.transform.w,
            bias: Some(&head.transform.b),
            m: m as u32,
            lda: h as u32,
            act: Act::None,
            gather: None,
        };
        kernels::matmul(rec, &args, &pre);
        kernels::gelu_forward(rec, head.act, &pre, (m * w) as u32, &act);
        let zeros = gpu.empty("mlm.zeros", m * w)?;
        rec.encoder().clear_buffer(&zeros.buffer, 0, None);
        let normed = gpu.empty("mlm.normed", m * w)?;
        let eps = self.config.layer_norm_eps as f32;
        let (ln_w, ln_b) = &head.ln;
        kernels::add_ln(
            rec, &act, &zeros, ln_w, ln_b, eps, m as u32, w as u32, &normed,
        );
        Ok(SlabActs {
            rows: m as u32,
            pre,
            act,
            zeros,
            normed,
        })
    }

    /// Records decoder chunk `c` on a slab into `out` [rows, chunk rows].
    fn record_decoder_chunk(&self, rec: &mut Recorder, s: &SlabActs, c: usize, out: &Tensor) {
        let head = self.mlm.as_ref().expect("checked by mlm_head");
        let (_, w, b) = &head.decoder[c];
        let args = MatmulArgs {
            a: &s.normed,
            w,
            bias: Some(b),
            m: s.rows,
            lda: head.width as u32,
            act: Act::None,
            gather: None,
        };
        kernels::matmul(rec, &args, out);
    }

    /// Records the transform of the rows `positions` of `last` and their loss against `ys`:
    /// every decoder chunk folded into the running state, then the loss of each row.
    fn record_slab_loss(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        last: &Tensor,
        positions: &[u32],
        ys: &[i32],
    ) -> Result<SlabLoss> {
        let head = self.mlm_head()?;
        let acts = self.record_mlm_transform(gpu, rec, last, positions)?;
        let m = positions.len();
        let ys: Vec<u32> = ys.iter().map(|&y| y as u32).collect();
        let slab = SlabLoss {
            labels: gpu.upload_u32("mlm.labels", &ys)?,
            state: gpu.empty("mlm.state", kernels::VOCAB_STATE_ROWS * m)?,
            loss: gpu.empty("mlm.loss", m)?,
            scratch: gpu.empty("mlm.logits.chunk", m * head.widest_chunk())?,
            acts,
        };
        for (c, (row0, w, _)) in head.decoder.iter().enumerate() {
            self.record_decoder_chunk(rec, &slab.acts, c, &slab.scratch);
            slab.running().fold(rec, &slab.scratch, w.n, *row0);
        }
        slab.running().finish(rec, &slab.loss);
        Ok(slab)
    }

    /// The labelled positions of a padded batch's labels [B·T] and their labels, checked
    /// against the vocabulary.
    fn mlm_targets(&self, labels: &[i32], rows: usize) -> Result<(Vec<u32>, Vec<i32>)> {
        if labels.len() != rows {
            return Err(Error::Usage(format!(
                "{} masked-LM labels for {rows} padded tokens",
                labels.len()
            )));
        }
        let v = self.config.vocab_size;
        if let Some(bad) = labels
            .iter()
            .find(|&&y| y != -100 && (y < 0 || y as usize >= v))
        {
            return Err(Error::Usage(format!(
                "masked-LM label {bad} is outside the vocabulary of {v}"
            )));
        }
        Ok(labels
            .iter()
            .enumerate()
            .filter(|(_, &y)| y >= 0)
            .map(|(i, &y)| (i as u32, y))
            .unzip())
    }

    /// Records the masked-LM loss of a recorded forward pass and its gradient with respect to
    /// the last hidden states, `dx` [B·T, H] (zero at unlabelled positions). Returns the loss
    /// of each labelled position, to read after the pass.
    pub(super) fn record_mlm_backward(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        acts: &Activations,
        labels: &[i32],
        dx: &Tensor,
    ) -> Result<RowLosses> {
        let head = self.mlm_head()?;
        let (b, t) = (acts.b, acts.t);
        let (h, w) = (self.config.hidden_size, head.width);
        let (positions, targets) = self.mlm_targets(labels, b * t)?;
        let last = acts.hidden.last().expect("hidden");
        rec.encoder().clear_buffer(&dx.buffer, 0, None);
        let mut losses = Vec::new();
        let slab = self.mlm_slab(gpu)?;
        for (pos, ys) in positions.chunks(slab).zip(targets.chunks(slab)) {
            let sl = self.record_slab_loss(gpu, rec, last, pos, ys)?;
            let (s, scratch) = (&sl.acts, &sl.scratch);
            let m = s.rows as usize;
            // back through the decoder, one recomputed chunk at a time
            let dnormed = gpu.empty("grad.mlm.normed", m * w)?;
            for (c, (row0, cw, _)) in head.decoder.iter().enumerate() {
                self.record_decoder_chunk(rec, s, c, scratch);
                sl.running().grad(rec, scratch, cw.n, *row0, 1.0);
                let out = MatmulOut {
                    ldc: 0,
                    accumulate: c > 0,
                };
                kernels::input_grad(rec, scratch, cw, s.rows, &dnormed, out);
            }
            let eps = self.config.layer_norm_eps as f32;
            let dact = gpu.empty("grad.mlm.transform", m * w)?;
            kernels::ln_backward(
                rec, &s.act, &s.zeros, &dnormed, &head.ln.0, eps, s.rows, w as u32, &dact,
            );
            let dpre = gpu.empty("grad.mlm.transform.pre", m * w)?;
            kernels::gelu_backward(rec, head.act, &s.pre, &dact, (m * w) as u32, &dpre);
            let dxm = gpu.empty("grad.mlm.rows", m * h)?;
            kernels::input_grad(
                rec,
                &dpre,
                &head.transform.w,
                s.rows,
                &dxm,
                MatmulOut::default(),
            );
            kernels::scatter_add_rows(rec, &dxm, pos, 0, (b * t) as u32, h as u32, dx)?;
            losses.push((pos.to_vec(), sl.loss));
        }
        Ok(RowLosses { t, parts: losses })
    }

    /// The masked-LM loss and prediction at every labelled position of a padded batch
    /// (`labels` [B·T], −100 elsewhere), under `gates` [B, L, H].
    pub fn mlm_predict(
        &self,
        gpu: &Gpu,
        examples: &[&super::Encoded],
        labels: &[i32],
        gates: &[f32],
    ) -> Result<MlmPredictions> {
        let mut rec = gpu.recorder();
        let acts = self.record_inference(gpu, &mut rec, examples, gates)?;
        let (positions, targets) = self.mlm_targets(labels, acts.b * acts.t)?;
        let last = acts.hidden.last().expect("hidden");
        let slab = self.mlm_slab(gpu)?;
        let slabs = positions
            .chunks(slab)
            .zip(targets.chunks(slab))
            .map(|(pos, ys)| self.record_slab_loss(gpu, &mut rec, last, pos, ys))
            .collect::<Result<Vec<_>>>()?;
        rec.finish();
        let (mut loss, mut predicted) = (Vec::new(), Vec::new());
        for sl in &slabs {
            let m = sl.acts.rows as usize;
            loss.extend(gpu.read_f32(&sl.loss));
            let state = gpu.read_f32(&sl.state);
            predicted.extend(state[4 * m..5 * m].iter().map(|&v| v as u32));
        }
        Ok(MlmPredictions {
            positions: positions.iter().map(|&p| p as usize).collect(),
            loss,
            predicted,
        })
    }

    /// Reads back the prediction scores at every position of `last` [B·T, H] after `rec`
    /// (which computes it) has run: [B·T, vocabulary]. One chunk of scores is on the device at
    /// a time.
    pub(super) fn read_mlm_logits(
        &self,
        gpu: &Gpu,
        rec: Recorder,
        last: &Tensor,
        rows: usize,
    ) -> Result<Vec<f32>> {
        let head = self.mlm_head()?;
        let v = self.config.vocab_size;
        let all: Vec<u32> = (0..rows as u32).collect();
        let mut logits = vec![0f32; rows * v];
        let mut first = Some(rec);
        for pos in all.chunks(self.mlm_slab(gpu)?) {
            let mut rec = first.take().unwrap_or_else(|| gpu.recorder());
            let s = self.record_mlm_transform(gpu, &mut rec, last, pos)?;
            rec.finish();
            let m = pos.len();
            let r0 = pos[0] as usize;
            let scratch = gpu.empty("mlm_logits", m * head.widest_chunk())?;
            for (c, (c0, w, _)) in head.decoder.iter().enumerate() {
                let mut rec = gpu.recorder();
                self.record_decoder_chunk(&mut rec, &s, c, &scratch);
                rec.finish();
                let (c0, n) = (*c0 as usize, w.n as usize);
                let chunk = gpu.read_f32(&scratch);
                for r in 0..m {
                    logits[(r0 + r) * v + c0..][..n].copy_from_slice(&chunk[r * n..(r + 1) * n]);
                }
            }
        }
        Ok(logits)
    }
}

/// One slab's head activations and the running state of its loss.
struct SlabLoss {
    acts: SlabActs,
    labels: Tensor,
    state: Tensor,
    loss: Tensor,
    /// One decoder chunk's scores (and, going back, its dlogits).
    scratch: Tensor,
}

impl SlabLoss {
    fn running(&self) -> VocabLoss<'_> {
        VocabLoss {
            labels: &self.labels,
            state: &self.state,
            rows: self.acts.rows,
        }
    }
}
