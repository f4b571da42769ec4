//! Fine-tuning on the device: weight gradients (the backward graph in `backward.rs` with
//! `grads`), embedding-table gradients, AdamW with decoupled weight decay and global-norm
//! clipping, and writing the result as a Hugging Face directory.

use super::backward::{copy, GateBuffers};
use super::{Activations, Dropout, Encoded, Model, TaskHead};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::io::output::OutTensor;
use crate::kernels::{self, AdamW, LinearWeight};
use std::path::Path;

/// Gradient buffers of one Linear (or a LayerNorm's γ, β as `w`, `b`).
pub(crate) struct LinGrad {
    pub w: Tensor,
    pub b: Tensor,
    /// (N, K) of W (for a LayerNorm: (H, 1)).
    pub shape: (u32, u32),
}

pub(crate) struct EmbGrads {
    pub word: Vec<Tensor>,
    pub pos: Tensor,
    /// None for a family without token types.
    pub typ: Option<Tensor>,
    pub ln: LinGrad,
    /// The projection of factorised embeddings, trained and frozen with them.
    pub project: Option<LinGrad>,
}

pub(crate) struct LayerGrads {
    pub qkv: LinGrad,
    pub attn_out: LinGrad,
    pub ln1: LinGrad,
    pub inter: LinGrad,
    pub out: LinGrad,
    pub ln2: LinGrad,
}

/// Gradients of every trained parameter, laid out like the model.
pub(crate) struct Grads {
    /// None when the embeddings are frozen.
    pub emb: Option<EmbGrads>,
    /// The relative position bias table's [buckets · heads] (MPNet).
    pub rel_bias: Option<Tensor>,
    pub layers: Vec<LayerGrads>,
    /// Only for sequence classification.
    pub pooler: Option<LinGrad>,
    pub classifier: LinGrad,
}

/// One trained parameter: its buffer, the weight whose textures follow it, and whether
/// weight decay applies (not to biases and LayerNorm parameters, as the HF Trainer).
struct Param<'a> {
    tensor: &'a Tensor,
    weight: Option<&'a LinearWeight>,
    decay: bool,
}

impl Grads {
    /// Gradient buffers in the order of [`Model::trained_params`].
    fn list(&self) -> Vec<&Tensor> {
        let mut v = Vec::new();
        if let Some(e) = &self.emb {
            v.extend(e.word.iter());
            v.push(&e.pos);
            v.extend(&e.typ);
            v.extend([&e.ln.w, &e.ln.b]);
            if let Some(pj) = &e.project {
                v.extend([&pj.w, &pj.b]);
            }
        }
        v.extend(&self.rel_bias);
        for l in &self.layers {
            for g in [&l.qkv, &l.attn_out, &l.ln1, &l.inter, &l.out, &l.ln2] {
                v.extend([&g.w, &g.b]);
            }
        }
        if let Some(p) = &self.pooler {
            v.extend([&p.w, &p.b]);
        }
        v.extend([&self.classifier.w, &self.classifier.b]);
        v
    }
}

/// One Hugging Face tensor: its name, shape, and the device ranges it is read from.
struct HfEntry<'a> {
    name: String,
    shape: Vec<usize>,
    parts: Vec<(&'a Tensor, std::ops::Range<usize>)>,
}

/// Fine-tuning settings fixed for a run.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub adamw: AdamW,
    pub max_grad_norm: f32,
    pub dropout: f32,
    pub seed: u64,
    pub freeze_embeddings: bool,
}

/// Optimizer state: gradients, AdamW moments and the step count.
pub struct Trainer {
    cfg: TrainConfig,
    grads: Grads,
    moments: Vec<(Tensor, Tensor)>,
    step: u32,
}

/// What one optimizer step saw.
#[derive(Clone, Copy, Debug)]
pub struct StepStats {
    /// Mean loss over the labelled rows of the batch.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

impl Trainer {
    pub fn step(&self) -> u32 {
        self.step
    }
}

impl Model {
    /// Every trained parameter, in a fixed order matched by [`Grads::list`].
    fn trained_params(&self, freeze_embeddings: bool) -> Vec<Param<'_>> {
        let mut v = Vec::new();
        let p = |tensor, weight, decay| Param {
            tensor,
            weight,
            decay,
        };
        if !freeze_embeddings {
            v.extend(
                self.emb
                    .word_chunks
                    .iter()
                    .map(|(_, _, t)| p(t, None, true)),
            );
            v.push(p(&self.emb.pos, None, true));
            if self.config.family.token_type_embeddings.is_some() {
                v.push(p(&self.emb.typ, None, true));
            }
            v.push(p(&self.emb.ln.0, None, false));
            v.push(p(&self.emb.ln.1, None, false));
            if let Some(pj) = &self.emb.project {
                v.push(p(&pj.w.buffer, Some(&pj.w), true));
                v.push(p(&pj.b, None, false));
            }
        }
        // decayed, as the HF Trainer decays every weight but biases and LayerNorms
        if let Some(table) = &self.rel_bias {
            v.push(p(table, None, true));
        }
        for l in self.stored_layers() {
            for lin in [&l.qkv, &l.attn_out] {
                v.push(p(&lin.w.buffer, Some(&lin.w), true));
                v.push(p(&lin.b, None, false));
            }
            v.push(p(&l.ln1.0, None, false));
            v.push(p(&l.ln1.1, None, false));
            for lin in [&l.inter, &l.out] {
                v.push(p(&lin.w.buffer, Some(&lin.w), true));
                v.push(p(&lin.b, None, false));
            }
            v.push(p(&l.ln2.0, None, false));
            v.push(p(&l.ln2.1, None, false));
        }
        if self.task == TaskHead::SequenceClassification {
            let pl = self.pooler.as_ref().expect("pooler checked at load");
            v.push(p(&pl.w.buffer, Some(&pl.w), true));
            v.push(p(&pl.b, None, false));
        }
        let cl = self.classifier.as_ref().expect("checked by trainer()");
        v.push(p(&cl.w.buffer, Some(&cl.w), true));
        v.push(p(&cl.b, None, false));
        v
    }

    /// Allocates gradients and zeroed AdamW moments. The model must have been loaded with
    /// [`Model::load_for_training`] (or [`Model::load_for_gradients`]).
    pub fn trainer(&self, gpu: &Gpu, cfg: TrainConfig) -> Result<Trainer> {
        let c = &self.config;
        let cl = self.classifier.as_ref().ok_or_else(|| {
            Error::Usage(format!(
                "{}: fine-tuning needs a task head",
                self.dir.display()
            ))
        })?;
        let h = c.hidden_size as u32;
        let lin = |label: &str, n: u32, k: u32| -> Result<LinGrad> {
            Ok(LinGrad {
                w: gpu.empty(&format!("grad.{label}.w"), (n * k) as usize)?,
                b: gpu.empty(&format!("grad.{label}.b"), n as usize)?,
                shape: (n, k),
            })
        };
        let emb = if cfg.freeze_embeddings {
            None
        } else {
            Some(EmbGrads {
                word: self
                    .emb
                    .word_chunks
                    .iter()
                    .map(|(_, _, t)| gpu.empty("grad.word", t.len))
                    .collect::<Result<_>>()?,
                pos: gpu.empty("grad.pos", self.emb.pos.len)?,
                typ: match c.family.token_type_embeddings {
                    Some(_) => Some(gpu.empty("grad.type", self.emb.typ.len)?),
                    None => None,
                },
                ln: lin("emb.ln", c.embedding_size as u32, 1)?,
                project: match self.emb.project {
                    Some(_) => Some(lin("emb.project", h, c.embedding_size as u32)?),
                    None => None,
                },
            })
        };
        let i = c.intermediate_size as u32;
        let layers = self
            .stored_layers()
            .map(|l| {
                // a pruned layer's projections cover its stored heads only
                let sw = l.attn_out.w.k;
                Ok(LayerGrads {
                    qkv: lin("qkv", 3 * sw, h)?,
                    attn_out: lin("attn_out", h, sw)?,
                    ln1: lin("ln1", h, 1)?,
                    inter: lin("inter", i, h)?,
                    out: lin("out", h, i)?,
                    ln2: lin("ln2", h, 1)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pooler = if self.task == TaskHead::SequenceClassification {
            Some(lin("pooler", h, h)?)
        } else {
            None
        };
        let rel_bias = match &self.rel_bias {
            Some(t) => Some(gpu.empty("grad.relative_attention_bias", t.len)?),
            None => None,
        };
        let grads = Grads {
            emb,
            rel_bias,
            layers,
            pooler,
            classifier: lin("classifier", cl.w.n, h)?,
        };
        let params = self.trained_params(cfg.freeze_embeddings);
        let glist = grads.list();
        assert_eq!(
            params.len(),
            glist.len(),
            "parameter and gradient lists disagree"
        );
        let mut moments = Vec::with_capacity(params.len());
        for (p, g) in params.iter().zip(&glist) {
            assert_eq!(p.tensor.len, g.len, "parameter and gradient sizes disagree");
            let m = gpu.empty("adam.m", p.tensor.len)?;
            let v = gpu.empty("adam.v", p.tensor.len)?;
            gpu.fill_f32(&m, 0.0);
            gpu.fill_f32(&v, 0.0);
            moments.push((m, v));
        }
        Ok(Trainer {
            cfg,
            grads,
            moments,
            step: 0,
        })
    }

    /// One optimizer step on a batch at learning rate `lr`: [`Model::compute_gradients`]
    /// with dropout, then global-norm clipping and AdamW. A non-finite loss or gradient norm
    /// is an error and leaves the parameters untouched.
    pub fn train_step(
        &self,
        gpu: &Gpu,
        tr: &mut Trainer,
        examples: &[&Encoded],
        labels: &[i32],
        lr: f32,
    ) -> Result<StepStats> {
        Ok(self.step_with(gpu, tr, examples, labels, None, lr)?.0)
    }

    /// [`Model::train_step`] with every head of every example scaled by `gates` [B, L, H]
    /// (learned gates trained with the weights). Also returns ∂(mean loss)/∂gate [B, L, H],
    /// taken before the weights move; heads a pruned checkpoint lacks read 0.
    pub fn train_step_gated(
        &self,
        gpu: &Gpu,
        tr: &mut Trainer,
        examples: &[&Encoded],
        labels: &[i32],
        gates: &[f32],
        lr: f32,
    ) -> Result<(StepStats, Vec<f32>)> {
        let (stats, dgates) = self.step_with(gpu, tr, examples, labels, Some(gates), lr)?;
        Ok((
            stats,
            dgates.expect("gate gradients read back when gates are given"),
        ))
    }

    fn step_with(
        &self,
        gpu: &Gpu,
        tr: &mut Trainer,
        examples: &[&Encoded],
        labels: &[i32],
        gates: Option<&[f32]>,
        lr: f32,
    ) -> Result<(StepStats, Option<Vec<f32>>)> {
        let step = tr.step + 1;
        let (loss, dgates) = self.gradients(gpu, tr, examples, labels, gates, true)?;
        if !loss.is_finite() {
            return Err(Error::Usage(format!(
                "training diverged: the loss is {loss} at step {step}"
            )));
        }
        let norm = kernels::sum_squares(gpu, &tr.grads.list())?.sqrt();
        if !norm.is_finite() {
            return Err(Error::Usage(format!(
                "training diverged: the gradient norm is {norm} at step {step}"
            )));
        }
        let clip = (tr.cfg.max_grad_norm as f64 / (norm + 1e-6)).min(1.0) as f32;
        let mut rec = gpu.recorder();
        let params = self.trained_params(tr.cfg.freeze_embeddings);
        for ((p, g), (m, v)) in params.iter().zip(tr.grads.list()).zip(&tr.moments) {
            let opt = AdamW {
                lr,
                weight_decay: if p.decay {
                    tr.cfg.adamw.weight_decay
                } else {
                    0.0
                },
                ..tr.cfg.adamw
            };
            kernels::adamw_step(&mut rec, &opt, step, clip, p.tensor, g, m, v);
        }
        for w in params.iter().filter_map(|p| p.weight) {
            w.refresh(&mut rec);
        }
        rec.finish();
        tr.step = step;
        let stats = StepStats {
            loss,
            grad_norm: norm,
        };
        Ok((stats, dgates))
    }

    /// Forward (with the trainer's dropout when `dropout`), mean cross-entropy over the
    /// labelled rows, and the full backward into the trainer's gradient buffers. Returns the
    /// mean loss.
    pub fn compute_gradients(
        &self,
        gpu: &Gpu,
        tr: &Trainer,
        examples: &[&Encoded],
        labels: &[i32],
        dropout: bool,
    ) -> Result<f64> {
        Ok(self.gradients(gpu, tr, examples, labels, None, dropout)?.0)
    }

    /// [`Model::compute_gradients`] under `gates` [B, L, H] (None: every head at 1), with
    /// the gate gradients read back when gates are given.
    fn gradients(
        &self,
        gpu: &Gpu,
        tr: &Trainer,
        examples: &[&Encoded],
        labels: &[i32],
        gates: Option<&[f32]>,
        dropout: bool,
    ) -> Result<(f64, Option<Vec<f32>>)> {
        let c = &self.config;
        let b = examples.len();
        let ones;
        let gate_values = match gates {
            Some(g) => g,
            None => {
                ones = vec![1f32; b * c.num_hidden_layers * c.num_attention_heads];
                &ones
            }
        };
        let counted = labels.iter().filter(|&&y| y != -100).count();
        if counted == 0 {
            return Err(Error::Usage(
                "a training batch without labelled rows".into(),
            ));
        }
        // without dropout the masks are all ones (p = 0): the same graph, deterministic
        let dropout = Some(Dropout {
            seed: tr.cfg.seed,
            step: tr.step as u64,
            p: if dropout { tr.cfg.dropout } else { 0.0 },
        });
        let mut rec = gpu.recorder();
        let acts = self.record_forward(
            gpu,
            &mut rec,
            examples,
            gate_values,
            true,
            dropout,
            super::HeadSkip::Dense,
        )?;
        let loss = self.record_loss(gpu, &mut rec, &acts, labels, 1.0 / counted as f32)?;
        let gb = GateBuffers::new(gpu, b * acts.plan.stride)?;
        let start = super::backward::HeadGrad::Logits(&loss.dlogits);
        self.record_backward(gpu, &mut rec, &acts, start, &gb, Some(&tr.grads))?;
        rec.finish();
        let sum: f64 = gpu.read_f32(&loss.loss).iter().map(|&v| v as f64).sum();
        let dgates = gates.map(|_| self.expand_heads(&acts.plan, &gpu.read_f32(&gb.dgates), b));
        Ok((sum / counted as f64, dgates))
    }

    /// Embedding backward from `dh0`, the gradient at the embeddings' output (embedding_size
    /// wide): through the embedding dropout and LayerNorm to u = word + pos + type, then row
    /// scatter-adds into the three tables (padding rows skipped).
    pub(super) fn record_embedding_backward(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        acts: &Activations,
        dh0: &Tensor,
        g: &EmbGrads,
        row_stats: &Tensor,
    ) -> Result<()> {
        let c = &self.config;
        // the embeddings' own width (the hidden width unless factorised)
        let (b, t, h) = (acts.b, acts.t, c.embedding_size);
        let bt = b * t;
        let (bt32, h32) = (bt as u32, h as u32);
        let eps = c.layer_norm_eps as f32;
        let u = acts
            .emb_sum
            .as_ref()
            .expect("embedding sum kept when training");
        let dln = gpu.empty("grad.embeddings.ln", bt * h)?;
        match acts.dropout {
            Some(d) => kernels::dropout(rec, dh0, (bt * h) as u32, d.site(0), d.p, &dln),
            None => copy(rec, dh0, &dln),
        }
        let zeros = gpu.empty("zeros", bt * h)?;
        rec.encoder().clear_buffer(&zeros.buffer, 0, None);
        let du = gpu.empty("grad.embeddings.sum", bt * h)?;
        kernels::ln_backward(rec, u, &zeros, &dln, &self.emb.ln.0, eps, bt32, h32, &du);
        kernels::ln_param_grad(
            rec, u, &zeros, &dln, eps, bt32, h32, row_stats, false, &g.ln.w, &g.ln.b,
        );
        let real = |r: usize| r % t < acts.lengths[r / t];
        let keys = |f: &dyn Fn(usize) -> u32| -> Vec<u32> {
            (0..bt)
                .map(|r| if real(r) { f(r) } else { u32::MAX })
                .collect()
        };
        let word_keys = keys(&|r| acts.ids[r]);
        for ((row0, rows, _), gw) in self.emb.word_chunks.iter().zip(&g.word) {
            rec.encoder().clear_buffer(&gw.buffer, 0, None);
            kernels::scatter_add_rows(rec, &du, &word_keys, *row0, *rows, h32, gw)?;
        }
        let pos_rows = c.max_position_embeddings as u32;
        rec.encoder().clear_buffer(&g.pos.buffer, 0, None);
        kernels::scatter_add_rows(
            rec,
            &du,
            &keys(&|r| (r % t + c.position_offset) as u32),
            0,
            pos_rows,
            h32,
            &g.pos,
        )?;
        if let Some(typ) = &g.typ {
            rec.encoder().clear_buffer(&typ.buffer, 0, None);
            let types = c.type_vocab_size as u32;
            let type_keys = keys(&|r| acts.type_ids[r]);
            kernels::scatter_add_rows(rec, &du, &type_keys, 0, types, h32, typ)?;
        }
        Ok(())
    }

    /// The model's tensors under their Hugging Face names (Q, K and V split again; the word
    /// table joined), read back from the device.
    pub fn hf_tensors(&self, gpu: &Gpu) -> Vec<OutTensor> {
        self.read_hf(gpu, &self.hf_layout(None))
    }

    /// The gradients of the last [`Model::compute_gradients`] under the parameters' Hugging
    /// Face names (frozen embeddings left out).
    pub fn hf_gradients(&self, gpu: &Gpu, tr: &Trainer) -> Vec<OutTensor> {
        self.read_hf(gpu, &self.hf_layout(Some(&tr.grads)))
    }

    fn read_hf(&self, gpu: &Gpu, layout: &[HfEntry]) -> Vec<OutTensor> {
        layout
            .iter()
            .map(|e| {
                let mut v = Vec::new();
                for (t, range) in &e.parts {
                    let all = gpu.read_f32(t);
                    v.extend_from_slice(&all[range.clone()]);
                }
                OutTensor::f32(&e.name, e.shape.clone(), &v)
            })
            .collect()
    }

    /// Where each Hugging Face tensor lives: in the parameters, or with `grads` in their
    /// gradients (same shapes, same order).
    fn hf_layout<'a>(&'a self, grads: Option<&'a Grads>) -> Vec<HfEntry<'a>> {
        let c = &self.config;
        let f = c.family;
        let h = c.hidden_size;
        let pre = match self.task {
            TaskHead::None => "",
            _ => f.prefix,
        };
        let mut out = Vec::new();
        let whole = |t: &'a Tensor| vec![(t, 0..t.len)];
        fn entry<'a>(
            name: String,
            shape: Vec<usize>,
            parts: Vec<(&'a Tensor, std::ops::Range<usize>)>,
        ) -> HfEntry<'a> {
            HfEntry { name, shape, parts }
        }
        let pair = |p: &'a (Tensor, Tensor), g: Option<&'a LinGrad>| match g {
            Some(g) => (&g.w, &g.b),
            None => (&p.0, &p.1),
        };
        let lin = |l: &'a super::Linear, g: Option<&'a LinGrad>| match g {
            Some(g) => (&g.w, &g.b),
            None => (&l.w.buffer, &l.b),
        };
        let emb = match grads {
            Some(g) => g.emb.as_ref().map(|e| {
                let word: Vec<&Tensor> = e.word.iter().collect();
                (
                    word,
                    &e.pos,
                    e.typ.as_ref(),
                    Some(&e.ln),
                    e.project.as_ref(),
                )
            }),
            None => {
                let word: Vec<&Tensor> = self.emb.word_chunks.iter().map(|(_, _, t)| t).collect();
                let typ = f.token_type_embeddings.map(|_| &self.emb.typ);
                Some((word, &self.emb.pos, typ, None, None))
            }
        };
        // a Linear's or a LayerNorm's two tensors: [n, k] and [n], or [h] and [h]
        let pair_entries = |name: String, (w, b): (&'a Tensor, &'a Tensor), wshape: Vec<usize>| {
            let n = wshape[0];
            [
                entry(format!("{name}.weight"), wshape, whole(w)),
                entry(format!("{name}.bias"), vec![n], whole(b)),
            ]
        };
        let linear = |name: String, l: &'a super::Linear, g: Option<&'a LinGrad>| {
            let (n, k) = (l.w.n as usize, l.w.k as usize);
            pair_entries(name, lin(l, g), vec![n, k])
        };
        let norm = |name: String, p: &'a (Tensor, Tensor), g: Option<&'a LinGrad>| {
            let width = p.0.len;
            pair_entries(name, pair(p, g), vec![width])
        };
        // the tables are embedding_size wide (the hidden width unless factorised)
        let e = c.embedding_size;
        if let Some((word, pos, typ, ln, project)) = emb {
            let parts = word.into_iter().map(|t| (t, 0..t.len)).collect();
            out.push(entry(
                format!("{pre}{}.weight", f.word_embeddings),
                vec![c.vocab_size, e],
                parts,
            ));
            out.push(entry(
                format!("{pre}{}.weight", f.position_embeddings),
                vec![c.max_position_embeddings, e],
                whole(pos),
            ));
            if let (Some(name), Some(typ)) = (f.token_type_embeddings, typ) {
                out.push(entry(
                    format!("{pre}{name}.weight"),
                    vec![c.type_vocab_size, e],
                    whole(typ),
                ));
            }
            out.extend(norm(
                format!("{pre}{}", f.embeddings_layer_norm),
                &self.emb.ln,
                ln,
            ));
            if let (Some(pj), Some(name)) = (&self.emb.project, f.embeddings_project) {
                out.extend(linear(format!("{pre}{name}"), pj, project));
            }
        }
        if let (Some(table), Some(name)) = (&self.rel_bias, f.relative_attention_bias) {
            let t = match grads {
                Some(g) => g.rel_bias.as_ref().expect("allocated with the table"),
                None => table,
            };
            let shape = vec![c.relative_buckets, c.num_attention_heads];
            out.push(entry(format!("{pre}{name}.weight"), shape, whole(t)));
        }
        for (li, l) in self.stored_layers().enumerate() {
            let lg = grads.map(|g| &g.layers[li]);
            let part = |name: &str| format!("{pre}{}", f.layer(li, name));
            let (w, b) = lin(&l.qkv, lg.map(|g| &g.qkv));
            // a pruned layer: the kept heads' rows (none for a layer that kept no head; its
            // zero head is not written)
            let (kept, sw) = (l.heads.len() * c.head_dim(), l.attn_out.w.k as usize);
            for (j, proj) in f.query_key_value.iter().enumerate() {
                let name = part(proj);
                out.push(entry(
                    format!("{name}.weight"),
                    vec![kept, h],
                    vec![(w, j * sw * h..(j * sw + kept) * h)],
                ));
                out.push(entry(
                    format!("{name}.bias"),
                    vec![kept],
                    vec![(b, j * sw..j * sw + kept)],
                ));
            }
            let (w, b) = lin(&l.attn_out, lg.map(|g| &g.attn_out));
            let name = part(f.attention_output);
            let wparts = if kept == 0 { vec![(w, 0..0)] } else { whole(w) };
            out.push(entry(format!("{name}.weight"), vec![h, kept], wparts));
            out.push(entry(format!("{name}.bias"), vec![h], whole(b)));
            out.extend(norm(
                part(f.attention_layer_norm),
                &l.ln1,
                lg.map(|g| &g.ln1),
            ));
            out.extend(linear(part(f.intermediate), &l.inter, lg.map(|g| &g.inter)));
            out.extend(linear(part(f.output), &l.out, lg.map(|g| &g.out)));
            out.extend(norm(part(f.output_layer_norm), &l.ln2, lg.map(|g| &g.ln2)));
        }
        // a token classifier has no pooler
        if let (Some(p), false) = (&self.pooler, self.task == TaskHead::TokenClassification) {
            let g = grads.and_then(|g| g.pooler.as_ref());
            out.extend(linear(f.pooler_name(pre), p, g));
        }
        if let Some(cl) = &self.classifier {
            let g = grads.map(|g| &g.classifier);
            out.extend(linear(f.classifier(self.task).to_string(), cl, g));
        }
        out
    }

    /// Writes config.json (the original keys, with `architectures`, `id2label` and
    /// `label2id` for the task), model.safetensors and the tokenizer files into `dir`, which
    /// must exist. The caller makes the directory appear atomically.
    pub fn save_pretrained(&self, gpu: &Gpu, dir: &Path, labels: &[String]) -> Result<()> {
        let mut cfg = self.config.json.clone();
        let obj = cfg.as_object_mut().ok_or_else(|| {
            Error::output(dir, "config.json of the source model is not an object")
        })?;
        let arch = self.config.family.architecture(self.task);
        obj.insert("architectures".into(), serde_json::json!([arch]));
        if self.task != TaskHead::None {
            let id2label: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), l.clone().into()))
                .collect();
            let label2id: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.clone(), i.into()))
                .collect();
            obj.insert("id2label".into(), id2label.into());
            obj.insert("label2id".into(), label2id.into());
        }
        let text = serde_json::to_string_pretty(&cfg).expect("JSON value serialises");
        crate::io::output::write_atomic(&dir.join("config.json"), text.as_bytes())?;
        let tensors = self.hf_tensors(gpu);
        let meta = [("format", "pt".to_string())];
        crate::io::output::write_safetensors(&dir.join("model.safetensors"), &tensors, &meta)?;
        crate::io::output::copy_files(&self.dir, dir, crate::io::output::TOKENIZER_FILES)
    }
}

/// Normal(0, std) values from a seeded splitmix64 stream through Box–Muller (a new head's
/// initial weights; host math on a few thousand values).
pub(crate) fn normal_init(n: usize, std: f32, seed: u64) -> Vec<f32> {
    let mut rng = crate::maths::rng::SplitMix64::new(seed ^ 0x853C_49E6_748F_EA9B);
    (0..n)
        .map(|_| {
            let (u1, u2) = (rng.uniform(), rng.uniform());
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32 * std
        })
        .collect()
}
