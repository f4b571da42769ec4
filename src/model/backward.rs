//! The backward graph, written out layer by layer as kernel calls mirroring the forward: with
//! activation gradients only for head-gate gradients (Michel et al.'s importance), and with
//! weight gradients as well for fine-tuning (`train.rs`).

use super::family::PoolerActivation;
use super::train::{Grads, LinGrad};
use super::{Activations, Encoded, Linear, Model, TaskHead};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::kernels::{self, AttnBackwardArgs, GateOutputs, Gelu, MatmulOut};

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
    /// Σ_t |⟨O_t, dO_t⟩| per example and head: [B, L, H] (token-level importance).
    pub token_abs: Vec<f32>,
    /// Largest attention weight per query, summed over real query tokens: [B, L, H].
    pub confidence_sum: Vec<f32>,
    /// Real tokens of each example.
    pub lengths: Vec<usize>,
}

/// dY·W for y = x·Wᵀ (no bias).
fn input_grad(rec: &mut Recorder, dy: &Tensor, lin: &Linear, m: u32, out: &Tensor, o: MatmulOut) {
    kernels::input_grad(rec, dy, &lin.w, m, out, o);
}

pub(super) fn copy(rec: &mut Recorder, src: &Tensor, dst: &Tensor) {
    rec.encoder()
        .copy_buffer_to_buffer(&src.buffer, 0, &dst.buffer, 0, src.bytes());
}

/// The loss of a recorded forward pass: per-row losses and dlogits (scaled by `scale`).
pub(super) struct LossOut {
    pub loss: Tensor,
    pub dlogits: Tensor,
}

/// Where the backward pass starts.
pub(super) enum HeadGrad<'a> {
    /// The task head's dlogits.
    Logits(&'a Tensor),
    /// The gradient of the last hidden states [B·T, H], from a head with a backward of its
    /// own (the masked-LM head).
    Hidden(Tensor),
}

/// The losses a pre-training head records for some rows of a padded batch [B·T], to read
/// once the pass has run.
pub(super) struct RowLosses {
    /// T of the batch.
    pub t: usize,
    /// Rows (indices into [B·T]) and, on the device, each row's loss.
    pub parts: Vec<(Vec<u32>, Tensor)>,
}

impl RowLosses {
    /// Each of the batch's `b` examples' loss, summed over its rows.
    pub fn per_example(&self, gpu: &Gpu, b: usize) -> Vec<f32> {
        let mut out = vec![0f32; b];
        for (rows, t) in &self.parts {
            for (&r, l) in rows.iter().zip(gpu.read_f32(t)) {
                out[r as usize / self.t] += l;
            }
        }
        out
    }
}

/// What the backward pass's weight-gradient and dropout calls share.
struct GradCtx {
    /// A column of ones for bias gradients (training only).
    ones: Option<Tensor>,
    dropout: Option<super::Dropout>,
}

impl GradCtx {
    /// dW and db of y = x·Wᵀ + b over `m` rows (x rows `ldx` apart), when training; added to
    /// `g` with `acc` (a shared layer's later application already wrote it).
    #[allow(clippy::too_many_arguments)]
    fn param_grads(
        &self,
        rec: &mut Recorder,
        acc: bool,
        g: &LinGrad,
        dy: &Tensor,
        x: &Tensor,
        ldx: u32,
        m: u32,
    ) {
        let (n, k) = g.shape;
        let bias = kernels::BiasGrad {
            ones: self.ones.as_ref().expect("allocated with grads"),
            db: &g.b,
        };
        // one call: on texture adapters dW and db share the packed dYᵀ
        kernels::linear_grads(rec, dy, x, ldx, (m, n, k), acc, &g.w, Some(bias));
    }

    /// The gradient through dropout call site `site` (the forward's mask, replayed).
    fn drop(&self, rec: &mut Recorder, site: u64, x: &Tensor, n: usize, y: &Tensor) {
        let d = self
            .dropout
            .expect("dropout scratch exists only when training");
        kernels::dropout(rec, x, n as u32, d.site(site), d.p, y);
    }
}

/// Where the backward pass writes the gate gradients and attention entropy ([B, L, H] each).
pub(super) struct GateBuffers {
    pub dgates: Tensor,
    pub entropy_sum: Tensor,
    pub token_abs: Tensor,
    pub confidence_sum: Tensor,
}

impl GateBuffers {
    pub fn new(gpu: &Gpu, n: usize) -> Result<GateBuffers> {
        Ok(GateBuffers {
            dgates: gpu.empty("grad.gates", n)?,
            entropy_sum: gpu.empty("attention.entropy", n)?,
            token_abs: gpu.empty("grad.gates.token_abs", n)?,
            confidence_sum: gpu.empty("attention.confidence", n)?,
        })
    }
}

impl Model {
    /// Adds layer `li`'s gradient of the relative position bias table into `table_grad`
    /// [buckets · heads]: the attention backward's dS summed per relative offset, then per
    /// (bucket, original head) by a deterministic scatter-add.
    fn record_relative_bias_grad(
        &self,
        rec: &mut Recorder,
        args: &AttnBackwardArgs,
        stats: &Tensor,
        plan: &super::HeadPlan,
        li: usize,
        table_grad: &Tensor,
    ) -> Result<()> {
        let gpu = rec.gpu();
        let t = args.fwd.seq as usize;
        let span = 2 * t - 1;
        let heads = self.computed_head_ids(plan, li);
        let per_offset = gpu.empty("grad.relative_bias.offsets", heads.len() * span)?;
        kernels::relative_bias_grad(rec, args, stats, &per_offset);
        let width = self.config.num_attention_heads as u32;
        let buckets = super::relative_buckets(t);
        let keys: Vec<u32> = heads
            .iter()
            .flat_map(|&h| buckets.iter().map(move |&k| k * width + h))
            .collect();
        let rows = table_grad.len as u32;
        kernels::scatter_add_rows(rec, &per_offset, &keys, 0, rows, 1, table_grad)
    }

    /// Checks labels against the task and classifier and records the softmax cross-entropy.
    pub(super) fn record_loss(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        acts: &Activations,
        labels: &[i32],
        scale: f32,
    ) -> Result<LossOut> {
        let classifier = self.classifier.as_ref().ok_or_else(|| {
            Error::Usage(format!(
                "{}: gradients need a classifier head",
                self.dir.display()
            ))
        })?;
        let (b, t) = (acts.b, acts.t);
        let ncls = classifier.w.n as usize;
        let rows = match self.task {
            TaskHead::SequenceClassification => b,
            TaskHead::TokenClassification => b * t,
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
            rec,
            logits,
            &labels_t,
            rows as u32,
            ncls as u32,
            scale,
            &loss,
            &dlogits,
        );
        Ok(LossOut { loss, dlogits })
    }

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
        let b = examples.len();
        let mut rec = gpu.recorder();
        let acts = self.record_forward(
            gpu,
            &mut rec,
            examples,
            gates,
            true,
            None,
            super::HeadSkip::Dense,
        )?;
        let gb = GateBuffers::new(gpu, b * acts.plan.stride)?;
        let loss = if self.has_mlm_head() || self.has_rtd_head() {
            // a pre-training head: its own backward down to the last hidden states
            let dx = gpu.empty("grad.hidden", acts.b * acts.t * self.config.hidden_size)?;
            let losses = if self.has_mlm_head() {
                self.record_mlm_backward(gpu, &mut rec, &acts, labels, &dx)?
            } else {
                self.record_rtd_backward(gpu, &mut rec, &acts, labels, &dx)?
            };
            self.record_backward(gpu, &mut rec, &acts, HeadGrad::Hidden(dx), &gb, None)?;
            rec.finish();
            losses.per_example(gpu, b)
        } else {
            let loss = self.record_loss(gpu, &mut rec, &acts, labels, 1.0)?;
            let start = HeadGrad::Logits(&loss.dlogits);
            self.record_backward(gpu, &mut rec, &acts, start, &gb, None)?;
            rec.finish();
            // a token classifier's rows are the batch's tokens: sum each example's
            let rows = gpu.read_f32(&loss.loss);
            rows.chunks(rows.len() / b)
                .map(|r| r.iter().sum())
                .collect()
        };
        Ok(self.read_gate_grads(gpu, &acts.plan, &gb, loss, examples))
    }

    /// Reads the gate buffers of a backward pass over `examples` back as [`GateGrads`], per
    /// head of [B, L, heads] (heads a pruned checkpoint lacks read 0), with their `loss`.
    pub(super) fn read_gate_grads(
        &self,
        gpu: &Gpu,
        plan: &super::HeadPlan,
        gb: &GateBuffers,
        loss: Vec<f32>,
        examples: &[&Encoded],
    ) -> GateGrads {
        let b = examples.len();
        let heads = |t: &Tensor| self.expand_heads(plan, &gpu.read_f32(t), b);
        GateGrads {
            loss,
            dgates: heads(&gb.dgates),
            entropy_sum: heads(&gb.entropy_sum),
            token_abs: heads(&gb.token_abs),
            confidence_sum: heads(&gb.confidence_sum),
            lengths: examples.iter().map(|e| e.ids.len()).collect(),
        }
    }

    /// The task head's backward from `dlogits`: the classifier (and pooler) gradients when
    /// training, and the gradient of the last hidden states, which it returns.
    fn record_task_head_backward(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        acts: &Activations,
        dlogits: &Tensor,
        grads: Option<&Grads>,
        ctx: &GradCtx,
    ) -> Result<Tensor> {
        let h = self.config.hidden_size;
        let (b, t) = (acts.b, acts.t);
        let bt = b * t;
        let (bt32, b32, h32) = (bt as u32, b as u32, h as u32);
        let train = acts.dropout.is_some();
        let last = acts.hidden.last().expect("hidden");
        let site_head = 1 + 2 * self.config.num_hidden_layers as u64;
        let classifier = self.classifier.as_ref().expect("checked by record_loss");
        let dx = gpu.empty("grad.hidden", bt * h)?;
        match self.task {
            TaskHead::SequenceClassification => {
                let pooler = self.pooler.as_ref().expect("pooler checked at load");
                let pooled = acts.pooled.as_ref().expect("pooled");
                if let Some(g) = grads {
                    let x = acts.head_in.as_ref().unwrap_or(pooled);
                    ctx.param_grads(rec, false, &g.classifier, dlogits, x, h32, b32);
                }
                let dpooled = gpu.empty("grad.pooled", b * h)?;
                input_grad(
                    rec,
                    dlogits,
                    classifier,
                    b32,
                    &dpooled,
                    MatmulOut::default(),
                );
                let dpooled = if train {
                    let d = gpu.empty("grad.pooled.dropout", b * h)?;
                    ctx.drop(rec, site_head, &dpooled, b * h, &d);
                    d
                } else {
                    dpooled
                };
                let dpre = gpu.empty("grad.pooler.pre", b * h)?;
                let n = (b * h) as u32;
                match self.config.family.pooler_activation {
                    PoolerActivation::Tanh => {
                        kernels::tanh_backward(rec, pooled, &dpooled, n, &dpre)
                    }
                    PoolerActivation::Relu => {
                        kernels::relu_backward(rec, pooled, &dpooled, n, &dpre)
                    }
                    PoolerActivation::Gelu => {
                        let x = acts.pooled_pre.as_ref().expect("kept for a GELU pooler");
                        kernels::gelu_backward(rec, Gelu::Erf, x, &dpooled, n, &dpre)
                    }
                }
                if let Some(g) = grads {
                    let pg = g
                        .pooler
                        .as_ref()
                        .expect("pooler gradients for a sequence classifier");
                    // the pooler reads each example's [CLS] row: rows T·H apart
                    ctx.param_grads(rec, false, pg, &dpre, last, t as u32 * h32, b32);
                }
                // Only [CLS] rows feed the pooler: zero the rest, write rows e*T.
                rec.encoder().clear_buffer(&dx.buffer, 0, None);
                let out = MatmulOut {
                    ldc: (t * h) as u32,
                    accumulate: false,
                };
                input_grad(rec, &dpre, pooler, b32, &dx, out);
            }
            _ => {
                if let Some(g) = grads {
                    let x = acts.head_in.as_ref().unwrap_or(last);
                    ctx.param_grads(rec, false, &g.classifier, dlogits, x, h32, bt32);
                }
                if train {
                    let d = gpu.empty("grad.hidden.dropout", bt * h)?;
                    input_grad(rec, dlogits, classifier, bt32, &d, MatmulOut::default());
                    ctx.drop(rec, site_head, &d, bt * h, &dx);
                } else {
                    input_grad(rec, dlogits, classifier, bt32, &dx, MatmulOut::default());
                }
            }
        }
        Ok(dx)
    }

    /// Records the backward pass from `start`. Always yields gate gradients and entropy;
    /// with `grads`, also every weight gradient (written, not accumulated) and, unless the
    /// embeddings are frozen (`grads.emb` is None), the embedding-table gradients.
    pub(super) fn record_backward(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        acts: &Activations,
        start: HeadGrad,
        gb: &GateBuffers,
        grads: Option<&Grads>,
    ) -> Result<()> {
        let c = &self.config;
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let (b, t) = (acts.b, acts.t);
        let bt = b * t;
        let (bt32, h32, i32_) = (bt as u32, h as u32, i as u32);
        let ones = match grads {
            Some(_) => Some(gpu.upload_f32("ones", &vec![1.0; bt])?),
            None => None,
        };
        let ctx = GradCtx {
            ones,
            dropout: acts.dropout,
        };
        let train = acts.dropout.is_some();

        let dx = match start {
            HeadGrad::Hidden(dx) => dx,
            HeadGrad::Logits(dlogits) => {
                self.record_task_head_backward(gpu, rec, acts, dlogits, grads, &ctx)?
            }
        };

        let eps = c.layer_norm_eps as f32;
        let da2 = gpu.empty("grad.ln2", bt * h)?;
        let dinter = gpu.empty("grad.inter", bt * i)?;
        let dpre = gpu.empty("grad.inter.pre", bt * i)?;
        let dx1 = gpu.empty("grad.hidden.attn", bt * h)?;
        let da1 = gpu.empty("grad.ln1", bt * h)?;
        let dctx = gpu.empty("grad.context", bt * h)?;
        let dqkv = gpu.empty("grad.qkv", bt * 3 * h)?;
        // gradients through dropout on the residual branches (training only)
        let dbranch = if train {
            Some(gpu.empty("grad.branch", bt * h)?)
        } else {
            None
        };
        let row_stats = match grads {
            Some(_) => Some(gpu.empty("ln.row_stats", 2 * bt)?),
            None => None,
        };
        let ln_params =
            |rec: &mut Recorder, acc: bool, g: &LinGrad, x: &Tensor, res: &Tensor, dy: &Tensor| {
                let rs = row_stats.as_ref().expect("allocated with grads");
                kernels::ln_param_grad(rec, x, res, dy, eps, bt32, h32, rs, acc, &g.w, &g.b);
            };
        let acc = MatmulOut {
            ldc: 0,
            accumulate: true,
        };
        // Attention-backward scratch: the same shape at every layer.
        let widest = (0..self.layers.len())
            .max_by_key(|&l| acts.plan.active[l].len())
            .unwrap_or(0);
        let stats_len = kernels::attention_backward::stats_len(&self.attn_args(
            &acts.layers[0].qkv,
            &acts.lens,
            &acts.gates,
            &acts.plan,
            b,
            t,
            widest,
        ));
        let stats = gpu.empty("attention.stats", stats_len)?;
        let emb_grads = grads.and_then(|g| g.emb.as_ref());
        // every layer adds its share of the shared relative position bias's gradient
        if let Some(g) = grads.and_then(|g| g.rel_bias.as_ref()) {
            rec.encoder().clear_buffer(&g.buffer, 0, None);
        }
        for (li, layer) in self.layers.iter().enumerate().rev() {
            let s = &acts.layers[li];
            // a shared layer's gradients are the sum over its applications: the last one
            // (first going back) writes them, the earlier ones add theirs
            let stored = c.stored_layer(li);
            let lg = grads.map(|g| &g.layers[stored]);
            let shared = li + 1 < c.num_hidden_layers && c.stored_layer(li + 1) == stored;
            let x_in = &acts.hidden[li];
            let site = 1 + 2 * li as u64;
            kernels::ln_backward(
                rec,
                s.ffn_ln_in(),
                &s.x1,
                &dx,
                &layer.ln2.0,
                eps,
                bt32,
                h32,
                &da2,
            );
            if let Some(g) = lg {
                ln_params(rec, shared, &g.ln2, s.ffn_ln_in(), &s.x1, &dx);
            }
            let dffn = match &dbranch {
                Some(d) => {
                    ctx.drop(rec, site + 1, &da2, bt * h, d);
                    d
                }
                None => &da2,
            };
            input_grad(rec, dffn, &layer.out, bt32, &dinter, MatmulOut::default());
            if let Some(g) = lg {
                ctx.param_grads(rec, shared, &g.out, dffn, &s.inter, i32_, bt32);
            }
            let pre = s.pre.as_ref().expect("saved pre-activation");
            kernels::gelu_backward(rec, c.hidden_act, pre, &dinter, (bt * i) as u32, &dpre);
            if let Some(g) = lg {
                ctx.param_grads(rec, shared, &g.inter, &dpre, &s.x1, h32, bt32);
            }
            copy(rec, &da2, &dx1);
            input_grad(rec, &dpre, &layer.inter, bt32, &dx1, acc);
            kernels::ln_backward(
                rec,
                s.attn_ln_in(),
                x_in,
                &dx1,
                &layer.ln1.0,
                eps,
                bt32,
                h32,
                &da1,
            );
            if let Some(g) = lg {
                ln_params(rec, shared, &g.ln1, s.attn_ln_in(), x_in, &dx1);
            }
            let dattn = match &dbranch {
                Some(d) => {
                    ctx.drop(rec, site, &da1, bt * h, d);
                    d
                }
                None => &da1,
            };
            input_grad(
                rec,
                dattn,
                &layer.attn_out,
                bt32,
                &dctx,
                MatmulOut::default(),
            );
            if let Some(g) = lg {
                ctx.param_grads(
                    rec,
                    shared,
                    &g.attn_out,
                    dattn,
                    &s.ctx,
                    layer.attn_out.w.k,
                    bt32,
                );
            }
            let mut fwd = self.attn_args(&s.qkv, &acts.lens, &acts.gates, &acts.plan, b, t, li);
            fwd.rel_bias = acts.rel_biases[li].as_ref();
            let args = AttnBackwardArgs {
                fwd,
                out: &s.ctx,
                lse: &s.lse,
                dout: &dctx,
            };
            let outs = GateOutputs {
                dgates: &gb.dgates,
                entropy_sum: &gb.entropy_sum,
                token_abs: &gb.token_abs,
                confidence_sum: &gb.confidence_sum,
            };
            kernels::attention_bwd(rec, &args, &dqkv, &stats, &outs);
            let table_grad = grads.and_then(|g| g.rel_bias.as_ref());
            if let (Some(g), Some(_)) = (table_grad, args.fwd.rel_bias) {
                self.record_relative_bias_grad(rec, &args, &stats, &acts.plan, li, g)?;
            }
            if let Some(g) = lg {
                ctx.param_grads(rec, shared, &g.qkv, &dqkv, x_in, h32, bt32);
            }
            if li > 0 || emb_grads.is_some() {
                copy(rec, &da1, &dx);
                input_grad(rec, &dqkv, &layer.qkv, bt32, &dx, acc);
            }
        }
        if let Some(eg) = emb_grads {
            // factorised embeddings: back through the projection to the embedding width
            let demb = match (&self.emb.project, &eg.project) {
                (Some(pj), Some(pg)) => {
                    let x = acts.emb_projected.as_ref().expect("kept when training");
                    let e32 = self.config.embedding_size as u32;
                    ctx.param_grads(rec, false, pg, &dx, x, e32, bt32);
                    let d = gpu.empty("grad.embeddings.out", bt * e32 as usize)?;
                    input_grad(rec, &dx, pj, bt32, &d, MatmulOut::default());
                    d
                }
                _ => dx,
            };
            self.record_embedding_backward(
                gpu,
                rec,
                acts,
                &demb,
                eg,
                row_stats.as_ref().expect("grads"),
            )?;
        }
        Ok(())
    }
}
