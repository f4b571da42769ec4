//! A BERT encoder on the GPU: loading, and the forward graph as a plain sequence of kernel calls.

pub mod analysis;
pub mod backward;
pub mod batch;
pub mod config;
pub mod contrastive;
pub mod convert;
pub mod family;
pub mod mlm;
pub mod rtd;
pub mod sentence;
pub mod tokenizer;
pub mod train;
pub mod weights;

/// The optimiser's settings, part of [`TrainConfig`].
pub use crate::kernels::AdamW;
pub use crate::kernels::Pooling;
pub use analysis::AttentionStats;
pub use backward::GateGrads;
pub use batch::{progress_bar, run_forward, ForwardOptions, ForwardResult, Gates};
pub use config::Config;
pub use family::Family;
use family::PoolerActivation;
pub use mlm::{MlmPredictions, VOCAB_CHUNK};
pub use rtd::RtdPredictions;
pub use sentence::SentencePooling;
pub use tokenizer::{BertTokenizer, Encoded};
pub use train::{StepStats, TrainConfig, Trainer};

pub use weights::Weights;

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::kernels::{
    self, Act, AttnArgs, EmbedArgs, GatherSide, Gelu, HeadGather, LinearWeight, MatmulArgs,
};
use std::path::{Path, PathBuf};

/// The head a model is fine-tuned with.
#[derive(Clone, Copy, Debug)]
pub struct HeadSpec {
    pub task: TaskHead,
    pub labels: usize,
    /// Seed of a new head's initial weights.
    pub seed: u64,
}

/// Which task head the checkpoint carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskHead {
    /// BertModel: hidden states (and pooled output when a pooler is present).
    None,
    /// BertForSequenceClassification: pooler + classifier, logits [N, C].
    SequenceClassification,
    /// BertForTokenClassification: classifier on every token, logits [N, T, C].
    TokenClassification,
}

#[derive(Clone)]
struct Linear {
    w: LinearWeight,
    b: Tensor,
}

impl Linear {
    /// `backward`: also keep Wᵀ for input gradients (models that run the backward pass).
    fn new(
        gpu: &Gpu,
        label: &str,
        w: &[f32],
        b: Tensor,
        n: usize,
        k: usize,
        backward: bool,
    ) -> Result<Linear> {
        let w = if backward {
            LinearWeight::with_transpose(gpu, label, w, n, k)?
        } else {
            LinearWeight::new(gpu, label, w, n, k)?
        };
        Ok(Linear { w, b })
    }
}

/// One application of a layer: the layers of a family with shared layers (ALBERT) are clones
/// sharing their group's buffers.
#[derive(Clone)]
struct Layer {
    /// Original indices of the heads the checkpoint stores, ascending (config.json's
    /// `pruned_heads` removed the others). Empty when every head was pruned: the weights then
    /// hold one zero head whose gate is always 0, so the attention output is the bias alone.
    heads: Vec<u32>,
    qkv: Linear,
    attn_out: Linear,
    ln1: (Tensor, Tensor),
    inter: Linear,
    out: Linear,
    ln2: (Tensor, Tensor),
}

impl Layer {
    /// Heads in the weights: `heads.len()`, or 1 (the zero head).
    fn stored(&self) -> usize {
        self.heads.len().max(1)
    }
}

struct Embeddings {
    word_chunks: Vec<(u32, u32, Tensor)>,
    pos: Tensor,
    typ: Tensor,
    ln: (Tensor, Tensor),
    /// embedding width → hidden width, for factorised embeddings.
    project: Option<Linear>,
}

pub struct Model {
    pub dir: PathBuf,
    pub config: Config,
    pub task: TaskHead,
    pub num_labels: usize,
    pub tokenizer: BertTokenizer,
    emb: Embeddings,
    layers: Vec<Layer>,
    pooler: Option<Linear>,
    classifier: Option<Linear>,
    /// The masked-LM head, when loaded for that objective ([`Model::load_for_mlm`]).
    mlm: Option<mlm::MlmHead>,
    /// The relative position bias table [buckets, heads] every layer adds (MPNet).
    rel_bias: Option<Tensor>,
    /// The discriminator head, when loaded for replaced-token detection
    /// ([`Model::load_for_rtd`]).
    rtd: Option<rtd::RtdHead>,
}

/// A pre-training head to load with the encoder; its loss then replaces a classifier's.
#[derive(Clone, Copy, Debug)]
enum Pretraining {
    /// The masked-LM head, its decoder in chunks of this many vocabulary rows.
    MaskedLm(usize),
    /// ELECTRA's discriminator.
    ReplacedTokens,
}

/// (ids [B*T], token types [B*T], lengths [B], T) of a padded batch.
type PaddedBatch = (Vec<u32>, Vec<u32>, Vec<u32>, usize);

/// Dropout for a training step: the seed of each call site derives from (seed, step, site), so
/// a run is deterministic for a given seed and adapter and the backward pass replays the masks.
#[derive(Clone, Copy, Debug)]
pub struct Dropout {
    pub seed: u64,
    pub step: u64,
    pub p: f32,
}

impl Dropout {
    /// The mask seed of call site `site` (0: embeddings, 1 + 2l / 2 + 2l: layer l's attention
    /// and FFN branches, 1 + 2L: the classifier input).
    fn site(&self, site: u64) -> u32 {
        let mut z = self
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(self.step.wrapping_mul(0xBF58_476D_1CE4_E5B9))
            .wrapping_add(site.wrapping_mul(0x94D0_49BB_1331_11EB));
        z ^= z >> 31;
        z = z.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        (z ^ (z >> 32)) as u32
    }
}

/// Activations of one recorded forward pass (per layer when saved for the backward pass).
struct Activations {
    b: usize,
    t: usize,
    /// Host copies of the padded ids and token types (embedding gradients group rows by them).
    ids: Vec<u32>,
    type_ids: Vec<u32>,
    /// The pre-LayerNorm embedding sum, kept when training.
    emb_sum: Option<Tensor>,
    /// The input of the embedding projection (after the LayerNorm and dropout), kept when
    /// training a model with factorised embeddings.
    emb_projected: Option<Tensor>,
    /// The pooler's pre-activation, kept for the backward of a GELU pooler.
    pooled_pre: Option<Tensor>,
    /// The classifier's input after dropout (the pooled output, or the last hidden states),
    /// kept when training.
    head_in: Option<Tensor>,
    dropout: Option<Dropout>,
    /// Real tokens of each example.
    lengths: Vec<usize>,
    lens: Tensor,
    /// Gates in the kernels' layout (see [`HeadPlan`]).
    gates: Tensor,
    plan: HeadPlan,
    /// Layer inputs and the final output: L + 1 buffers when saved, else 1.
    hidden: Vec<Tensor>,
    /// Per layer when saved: the relative position bias its attention added (MPNet).
    rel_biases: Vec<Option<Tensor>>,
    layers: Vec<LayerActs>,
    pooled: Option<Tensor>,
    logits: Option<Tensor>,
}

struct LayerActs {
    qkv: Tensor,
    ctx: Tensor,
    lse: Tensor,
    attn_proj: Tensor,
    /// attn_proj and ffn_out after dropout (training only): the inputs of the residual LNs.
    attn_drop: Option<Tensor>,
    ffn_drop: Option<Tensor>,
    x1: Tensor,
    /// Pre-activation of the intermediate layer, kept only for the backward pass.
    pre: Option<Tensor>,
    inter: Tensor,
    ffn_out: Tensor,
}

impl LayerActs {
    fn new(
        gpu: &Gpu,
        bt: usize,
        h: usize,
        i: usize,
        lse: usize,
        save: bool,
        train: bool,
    ) -> Result<LayerActs> {
        let opt = |on: bool, label: &str, len: usize| -> Result<Option<Tensor>> {
            on.then(|| gpu.empty(label, len)).transpose()
        };
        Ok(LayerActs {
            attn_drop: opt(train, "attention.proj.dropout", bt * h)?,
            ffn_drop: opt(train, "ffn.out.dropout", bt * h)?,
            qkv: gpu.empty("qkv", bt * 3 * h)?,
            ctx: gpu.empty("context", bt * h)?,
            lse: gpu.empty("lse", lse)?,
            attn_proj: gpu.empty("attention.proj", bt * h)?,
            x1: gpu.empty("hidden.attn", bt * h)?,
            pre: opt(save, "intermediate.pre", bt * i)?,
            inter: gpu.empty("intermediate", bt * i)?,
            ffn_out: gpu.empty("ffn.out", bt * h)?,
        })
    }

    /// The first input of the attention residual's LayerNorm.
    fn attn_ln_in(&self) -> &Tensor {
        self.attn_drop.as_ref().unwrap_or(&self.attn_proj)
    }

    /// The first input of the FFN residual's LayerNorm.
    fn ffn_ln_in(&self) -> &Tensor {
        self.ffn_drop.as_ref().unwrap_or(&self.ffn_out)
    }
}

/// Which heads of each layer one pass computes, and where their gates sit in the rows of the
/// gate buffer the attention kernels read ([B, stride]).
pub(crate) struct HeadPlan {
    /// Per layer: indices among the layer's stored heads, ascending.
    active: Vec<Vec<u32>>,
    /// Per layer: the first gate column of its computed heads.
    offsets: Vec<usize>,
    stride: usize,
    /// Per layer where only some stored heads are computed: their indices on the device, for
    /// the projections' head gathers.
    lists: Vec<Option<Tensor>>,
}

/// The buffers one attention block writes.
struct AttnBuffers<'a> {
    qkv: &'a Tensor,
    ctx: &'a Tensor,
    lse: &'a Tensor,
    attn_proj: &'a Tensor,
}

/// How a forward pass treats heads whose gate is 0 for every example of the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HeadSkip {
    /// Skip them: their Q/K/V rows, attention and output-projection columns are not computed
    /// (the projections gather the active heads' weights; nothing is copied).
    #[default]
    Skip,
    /// Compute every stored head's projections (attention itself still skips gated-out heads).
    Dense,
}

/// What one batch produced, laid out [B, T, ...] with T the batch's own longest.
pub struct BatchOutput {
    pub batch: usize,
    pub seq: usize,
    pub logits: Option<Vec<f32>>,
    pub pooled: Option<Vec<f32>>,
    pub hidden: Option<Vec<f32>>,
    /// [B, H] sentence embeddings.
    pub sentence: Option<Vec<f32>>,
    /// [B, T, vocabulary] masked-LM prediction scores.
    pub mlm_logits: Option<Vec<f32>>,
}

/// What a forward pass reads back besides the logits and the pooled output.
#[derive(Clone, Copy, Debug, Default)]
pub struct Readback {
    /// The last hidden states [B, T, H].
    pub hidden: bool,
    /// Sentence embeddings [B, H], pooled as a sentence-transformers directory says.
    pub sentence: Option<SentencePooling>,
    /// The masked-LM head's scores [B, T, vocabulary] (a model loaded for the MLM objective).
    pub mlm_logits: bool,
}

/// The relative position bias of the last gathered set of heads (MPNet): a layer computing the
/// same heads as the one before reuses it instead of gathering it again.
#[derive(Default)]
struct RelBiasCache {
    heads: Vec<u32>,
    bias: Option<Tensor>,
    /// The bucket of each relative position, uploaded once per pass.
    buckets: Option<Tensor>,
}

/// The bucket of each relative position key − query of a length-`t` batch, from −(t − 1) on.
fn relative_buckets(t: usize) -> Vec<u32> {
    (0..2 * t as i64 - 1)
        .map(|r| config::relative_bucket(r - (t as i64 - 1)))
        .collect()
}

fn require_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    if !p.is_file() {
        if !dir.is_dir() {
            return Err(Error::input(dir, "no such model directory"));
        }
        return Err(Error::input(&p, "missing from the model directory"));
    }
    Ok(p)
}

impl TaskHead {
    /// The CLI's name of the task.
    pub fn name(self) -> &'static str {
        match self {
            TaskHead::None => "base (no task head)",
            TaskHead::SequenceClassification => "seq-cls",
            TaskHead::TokenClassification => "token-cls",
        }
    }
}

impl Model {
    /// Loads an HF model directory (config.json, model.safetensors, tokenizer.json).
    pub fn load(gpu: &Gpu, dir: &Path) -> Result<Model> {
        Model::load_with(gpu, dir, false, None, None)
    }

    /// Loads the model with the transposed weights its backward pass needs (gate gradients).
    pub fn load_for_gradients(gpu: &Gpu, dir: &Path) -> Result<Model> {
        Model::load_with(gpu, dir, true, None, None)
    }

    /// Loads an ELECTRA discriminator (`ElectraForPreTraining`) with its head, whose
    /// replaced-token-detection loss then replaces a classifier's in
    /// [`Model::gate_gradients`]; `backward` as for gate gradients.
    pub fn load_for_rtd(gpu: &Gpu, dir: &Path, backward: bool) -> Result<Model> {
        Model::load_with(gpu, dir, backward, None, Some(Pretraining::ReplacedTokens))
    }

    /// Loads a `*ForMaskedLM` checkpoint with its masked-LM head, whose loss then replaces a
    /// classifier's in [`Model::gate_gradients`]; `backward` as for gate gradients. The
    /// decoder runs in chunks of `vocab_chunk` vocabulary rows ([`VOCAB_CHUNK`] unless a test
    /// wants several chunks of a tiny vocabulary).
    pub fn load_for_mlm(
        gpu: &Gpu,
        dir: &Path,
        backward: bool,
        vocab_chunk: usize,
    ) -> Result<Model> {
        let head = Pretraining::MaskedLm(vocab_chunk);
        Model::load_with(gpu, dir, backward, None, Some(head))
    }

    /// Loads a model to fine-tune for `head`: a checkpoint's own classifier when it has one
    /// (its task and label count must match), else a new one initialised as transformers
    /// does (normal with `initializer_range`, zero bias), and a new pooler where a sequence
    /// classifier needs one and the checkpoint has none.
    pub fn load_for_training(gpu: &Gpu, dir: &Path, head: &HeadSpec) -> Result<Model> {
        Model::load_with(gpu, dir, true, Some(head), None)
    }

    fn load_with(
        gpu: &Gpu,
        dir: &Path,
        backward: bool,
        head: Option<&HeadSpec>,
        pretraining: Option<Pretraining>,
    ) -> Result<Model> {
        let config = Config::load(&require_file(dir, "config.json")?)?;
        let weights = Weights::open(&require_file(dir, "model.safetensors")?, config.family)?;
        let tokenizer = BertTokenizer::load(
            &require_file(dir, "tokenizer.json")?,
            config.max_tokens(),
            config.type_vocab_size == 1,
        )?;
        // every id the tokenizer can produce must have a row in the word table
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::input(
                tokenizer.path(),
                format!(
                    "the tokenizer has {} tokens but config.json's vocab_size is {}: they belong to different models",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            ));
        }
        // the padding token decides where RoBERTa-style positions start: the two must agree
        if let (Some((id, text)), Some(pad)) = (tokenizer.pad_token(), config.pad_token_id) {
            if id as usize != pad {
                return Err(Error::input(
                    tokenizer.path(),
                    format!(
                        "the padding token {text} is id {id} but config.json's pad_token_id is {pad}: they belong to different models"
                    ),
                ));
            }
        }
        let c = &config;
        let f = c.family;
        let (h, i, p) = (c.hidden_size, c.intermediate_size, &weights.prefix);
        let up = |name: &str, data: &[f32]| gpu.upload_f32(name, data);
        let get = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let full = format!("{p}{name}");
            let v = weights.get(&full, shape)?;
            up(&full, &v).map_err(|e| Error::input(weights.path(), e.to_string()))
        };
        let linear = |name: &str, n_out: usize, n_in: usize| -> Result<Linear> {
            let wname = format!("{p}{name}.weight");
            let w = weights.get(&wname, &[n_out, n_in])?;
            let b = get(&format!("{name}.bias"), &[n_out])?;
            Linear::new(gpu, &wname, &w, b, n_out, n_in, backward)
        };
        let ln_of = |name: &str, width: usize| -> Result<(Tensor, Tensor)> {
            Ok((
                get(&format!("{name}.weight"), &[width])?,
                get(&format!("{name}.bias"), &[width])?,
            ))
        };
        let ln = |name: &str| ln_of(name, h);

        // The word table may exceed one binding (250k × 768 f32 is 732 MiB; lavapipe binds at
        // most 128 MiB): split it into chunks of whole rows.
        // The tables are e wide: the hidden width, or a factorised width that a projection
        // widens after the LayerNorm.
        let e = c.embedding_size;
        let word_name = format!("{p}{}.weight", f.word_embeddings);
        let word = weights.get(&word_name, &[c.vocab_size, e])?;
        let rows_per_chunk = ((gpu.max_binding() / 4) as usize / e).max(1);
        let mut word_chunks = Vec::new();
        for (ci, chunk) in word.chunks(rows_per_chunk * e).enumerate() {
            let row0 = (ci * rows_per_chunk) as u32;
            let t = up(&word_name, chunk)?;
            word_chunks.push((row0, (chunk.len() / e) as u32, t));
        }
        drop(word);
        let project = match f.embeddings_project {
            Some(name) if e != h || weights.has(&format!("{p}{name}.weight")) => {
                Some(linear(name, h, e)?)
            }
            _ => None,
        };
        let emb = Embeddings {
            word_chunks,
            pos: get(
                &format!("{}.weight", f.position_embeddings),
                &[c.max_position_embeddings, e],
            )?,
            // a family without token types adds one zero row to every token
            typ: match f.token_type_embeddings {
                Some(name) => get(&format!("{name}.weight"), &[c.type_vocab_size, e])?,
                None => up("token_type_embeddings.zero", &vec![0.0; e])?,
            },
            ln: ln_of(f.embeddings_layer_norm, e)?,
            project,
        };

        let mut stored_layers = Vec::with_capacity(c.stored_layers);
        let d = c.head_dim();
        for l in 0..c.stored_layers {
            let part = |name: &str| f.layer(l, name);
            // A pruned layer stores the kept heads' rows of Q, K and V and the matching
            // columns of the output projection; a layer with none left gets one zero head.
            let heads: Vec<u32> = c.kept_stored_heads(l).iter().map(|&x| x as u32).collect();
            let stored = heads.len().max(1);
            let (kept, sw) = (heads.len() * d, stored * d);
            // Q, K and V are one [3·sw, H] projection.
            let mut wqkv = Vec::with_capacity(3 * sw * h);
            let mut bqkv = Vec::with_capacity(3 * sw);
            for proj in f.query_key_value {
                let name = format!("{p}{}", part(proj));
                wqkv.extend(weights.get(&format!("{name}.weight"), &[kept, h])?);
                bqkv.extend(weights.get(&format!("{name}.bias"), &[kept])?);
                if kept == 0 {
                    wqkv.extend(std::iter::repeat_n(0.0, d * h));
                    bqkv.extend(std::iter::repeat_n(0.0, d));
                }
            }
            let label = f.layer(l, "qkv");
            let bq = up(&format!("{label}.bias"), &bqkv)?;
            let qkv = Linear::new(
                gpu,
                &format!("{label}.weight"),
                &wqkv,
                bq,
                3 * sw,
                h,
                backward,
            )?;
            let oname = format!("{p}{}", part(f.attention_output));
            let mut wo = weights.get(&format!("{oname}.weight"), &[h, kept])?;
            if kept == 0 {
                wo = vec![0.0; h * d];
            }
            let bo = get(&format!("{}.bias", part(f.attention_output)), &[h])?;
            let attn_out = Linear::new(gpu, &format!("{oname}.weight"), &wo, bo, h, sw, backward)?;
            stored_layers.push(Layer {
                heads,
                qkv,
                attn_out,
                ln1: ln(&part(f.attention_layer_norm))?,
                inter: linear(&part(f.intermediate), i, h)?,
                out: linear(&part(f.output), h, i)?,
                ln2: ln(&part(f.output_layer_norm))?,
            });
        }
        // every application of the encoder; shared layers (ALBERT) are handles on their group's
        let layers: Vec<Layer> = (0..c.num_hidden_layers)
            .map(|l| stored_layers[c.stored_layer(l)].clone())
            .collect();

        let pooler_name = f.pooler_name(p);
        let has_pooler = weights.has(&format!("{pooler_name}.weight"));
        let mut pooler = if has_pooler {
            let w = weights.get(&format!("{pooler_name}.weight"), &[h, h])?;
            let b = up(
                &format!("{pooler_name}.bias"),
                &weights.get(&format!("{pooler_name}.bias"), &[h])?,
            )?;
            Some(Linear::new(gpu, &pooler_name, &w, b, h, h, backward)?)
        } else {
            None
        };
        let std = c.initializer_range as f32;

        // Task heads live outside the encoder's prefix: which one the checkpoint has
        let stored_task = |t: TaskHead| weights.has(&format!("{}.weight", f.classifier(t)));
        let stored = match (
            stored_task(TaskHead::SequenceClassification),
            stored_task(TaskHead::TokenClassification),
        ) {
            (false, false) => None,
            // one name for both heads (BERT): architectures tell, else the pooler does
            (true, true) if f.seq_classifier == f.token_classifier => {
                let named = |t: TaskHead| c.architectures.contains(&f.architecture(t));
                let token = named(TaskHead::TokenClassification);
                let seq = named(TaskHead::SequenceClassification);
                Some(if token || (!seq && pooler.is_none()) {
                    TaskHead::TokenClassification
                } else {
                    TaskHead::SequenceClassification
                })
            }
            (true, _) => Some(TaskHead::SequenceClassification),
            (false, true) => Some(TaskHead::TokenClassification),
        };
        let (task, classifier, num_labels) = match stored {
            None => match head {
                None => (TaskHead::None, None, 0),
                Some(spec) => {
                    let n = spec.labels;
                    let cname = |what: &str| format!("{}.{what}", f.classifier(spec.task));
                    let w = train::normal_init(n * h, std, spec.seed);
                    let b = up(&cname("bias"), &vec![0.0; n])?;
                    let cls = Linear::new(gpu, &cname("weight"), &w, b, n, h, backward)?;
                    if spec.task == TaskHead::SequenceClassification && pooler.is_none() {
                        let w = train::normal_init(h * h, std, spec.seed ^ 0x5EED);
                        let b = up(&format!("{pooler_name}.bias"), &vec![0.0; h])?;
                        pooler = Some(Linear::new(
                            gpu,
                            &format!("{pooler_name}.weight"),
                            &w,
                            b,
                            h,
                            h,
                            backward,
                        )?);
                    }
                    (spec.task, Some(cls), n)
                }
            },
            Some(task) => {
                let cname = |what: &str| format!("{}.{what}", f.classifier(task));
                let shape = weights.shape(&cname("weight")).unwrap_or_default();
                if shape.len() != 2 || shape[1] != h {
                    return Err(Error::input(
                        weights.path(),
                        format!(
                            "tensor {} has shape {shape:?}; expected [num_labels, {h}]",
                            cname("weight")
                        ),
                    ));
                }
                let n = shape[0];
                let cw = weights.get(&cname("weight"), &[n, h])?;
                let cb = up(&cname("bias"), &weights.get(&cname("bias"), &[n])?)?;
                let cls = Linear::new(gpu, &cname("weight"), &cw, cb, n, h, backward)?;
                if task == TaskHead::SequenceClassification && pooler.is_none() {
                    return Err(Error::input(
                        weights.path(),
                        format!(
                            "missing tensor {pooler_name}.weight (a sequence classifier needs it)"
                        ),
                    ));
                }
                if let Some(spec) = head {
                    if spec.task != task {
                        return Err(Error::input(
                            dir,
                            format!(
                                "the checkpoint is a {} model, not {}",
                                task.name(),
                                spec.task.name()
                            ),
                        ));
                    }
                    if spec.labels != n {
                        return Err(Error::input(
                            weights.path(),
                            format!("the checkpoint's classifier has {n} labels but the training data has {}", spec.labels),
                        ));
                    }
                }
                (task, Some(cls), n)
            }
        };
        if !config.id2label.is_empty() && num_labels > 0 && config.id2label.len() != num_labels {
            eprintln!(
                "warning: {}: id2label names {} labels but classifier.weight has {num_labels}",
                dir.join("config.json").display(),
                config.id2label.len()
            );
        }
        let rel_bias = match f.relative_attention_bias {
            Some(name) => Some(get(
                &format!("{name}.weight"),
                &[c.relative_buckets, c.num_attention_heads],
            )?),
            None => None,
        };
        let mlm = match pretraining {
            Some(Pretraining::MaskedLm(rows)) => {
                Some(mlm::MlmHead::load(gpu, &weights, &config, backward, rows)?)
            }
            _ => None,
        };
        let rtd = match pretraining {
            Some(Pretraining::ReplacedTokens) => {
                Some(rtd::RtdHead::load(gpu, &weights, &config, backward)?)
            }
            _ => None,
        };
        Ok(Model {
            dir: dir.to_path_buf(),
            config,
            task,
            num_labels,
            tokenizer,
            emb,
            layers,
            pooler,
            classifier,
            mlm,
            rel_bias,
            rtd,
        })
    }

    /// The layers the checkpoint stores, each once (every application, unless layers are
    /// shared), in order.
    fn stored_layers(&self) -> impl Iterator<Item = &Layer> + '_ {
        let c = &self.config;
        (0..self.layers.len())
            .filter(move |&l| l == 0 || c.stored_layer(l) != c.stored_layer(l - 1))
            .map(move |l| &self.layers[l])
    }

    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// Device memory a batch of `tokens` rows needs in its largest single buffer, in elements.
    pub fn widest_row(&self) -> usize {
        let c = &self.config;
        (3 * c.hidden_size)
            .max(c.intermediate_size)
            .max(self.num_labels)
    }

    /// Pads a batch on the host.
    fn pad_batch(&self, examples: &[&Encoded]) -> Result<PaddedBatch> {
        let c = &self.config;
        let b = examples.len();
        let t = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        if b == 0 || t == 0 {
            return Err(Error::Usage("empty batch".into()));
        }
        if t > c.max_tokens() {
            return Err(Error::Usage(format!(
                "a sequence of {t} tokens is longer than the model's {} positions",
                c.max_tokens()
            )));
        }
        let mut ids = vec![0u32; b * t];
        let mut tts = vec![0u32; b * t];
        let mut lens = Vec::with_capacity(b);
        for (e, ex) in examples.iter().enumerate() {
            for (j, (&id, &tt)) in ex.ids.iter().zip(&ex.type_ids).enumerate() {
                if id as usize >= c.vocab_size {
                    return Err(Error::Usage(format!(
                        "token id {id} is outside the model's vocabulary of {} (tokenizer and model disagree)",
                        c.vocab_size
                    )));
                }
                ids[e * t + j] = id;
                tts[e * t + j] = tt.min(c.type_vocab_size as u32 - 1);
            }
            lens.push(ex.ids.len() as u32);
        }
        Ok((ids, tts, lens, t))
    }

    fn lin(&self, rec: &mut Recorder, l: &Linear, a: &Tensor, m: u32, act: Act, out: &Tensor) {
        let args = MatmulArgs {
            a,
            w: &l.w,
            bias: Some(&l.b),
            m,
            lda: l.w.k,
            act,
            gather: None,
        };
        kernels::matmul(rec, &args, out);
    }

    /// The heads one pass computes and the gates in the kernels' layout. With `skip`, a
    /// stored head whose gate is 0 for every example is left out (and a layer's zero head
    /// always is); otherwise every stored head is computed. `gates` is [B, L, heads].
    fn head_plan(
        &self,
        gpu: &Gpu,
        gates: &[f32],
        b: usize,
        skip: HeadSkip,
    ) -> Result<(HeadPlan, Vec<f32>)> {
        let (nl, nh) = (
            self.config.num_hidden_layers,
            self.config.num_attention_heads,
        );
        let gate = |e: usize, l: usize, head: u32| gates[(e * nl + l) * nh + head as usize];
        let mut active = Vec::with_capacity(nl);
        let mut offsets = Vec::with_capacity(nl);
        let mut stride = 0;
        for (l, layer) in self.layers.iter().enumerate() {
            let a: Vec<u32> = (0..layer.stored() as u32)
                .filter(|&j| {
                    skip == HeadSkip::Dense
                        || layer
                            .heads
                            .get(j as usize)
                            .is_some_and(|&hd| (0..b).any(|e| gate(e, l, hd) != 0.0))
                })
                .collect();
            offsets.push(stride);
            stride += a.len();
            active.push(a);
        }
        // At least one column: a buffer binding is never empty.
        let stride = stride.max(1);
        let mut kernel_gates = vec![0f32; b * stride];
        for e in 0..b {
            for (l, layer) in self.layers.iter().enumerate() {
                for (i, &j) in active[l].iter().enumerate() {
                    if let Some(&hd) = layer.heads.get(j as usize) {
                        kernel_gates[e * stride + offsets[l] + i] = gate(e, l, hd);
                    }
                }
            }
        }
        let lists = self
            .layers
            .iter()
            .zip(&active)
            .map(|(layer, a)| {
                (!a.is_empty() && a.len() < layer.stored())
                    .then(|| gpu.upload_u32("active_heads", a))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        let plan = HeadPlan {
            active,
            offsets,
            stride,
            lists,
        };
        Ok((plan, kernel_gates))
    }

    /// Per-head values in the kernels' layout [B, stride] back to [B, L, heads], 0 for heads
    /// the checkpoint does not store or the pass did not compute.
    fn expand_heads(&self, plan: &HeadPlan, v: &[f32], b: usize) -> Vec<f32> {
        let (nl, nh) = (
            self.config.num_hidden_layers,
            self.config.num_attention_heads,
        );
        let mut out = vec![0f32; b * nl * nh];
        for e in 0..b {
            for (l, layer) in self.layers.iter().enumerate() {
                for (i, &j) in plan.active[l].iter().enumerate() {
                    if let Some(&hd) = layer.heads.get(j as usize) {
                        out[(e * nl + l) * nh + hd as usize] =
                            v[e * plan.stride + plan.offsets[l] + i];
                    }
                }
            }
        }
        out
    }

    /// [L·H] 1 for each head the checkpoint stores, 0 for those `pruned_heads` removed.
    pub fn present_mask(&self) -> Vec<f32> {
        let nh = self.config.num_attention_heads;
        let mut m = vec![0f32; self.layers.len() * nh];
        for (l, layer) in self.layers.iter().enumerate() {
            for &h in &layer.heads {
                m[l * nh + h as usize] = 1.0;
            }
        }
        m
    }

    /// Runs only the attention block of every layer (Q|K|V projection, attention, output
    /// projection: what head pruning shrinks) on zero hidden states shaped like the batch, and
    /// waits for it. `headroom bench` times it apart from the whole encoder.
    pub fn run_attention_blocks(
        &self,
        gpu: &Gpu,
        examples: &[&Encoded],
        gates: &[f32],
        skip: HeadSkip,
    ) -> Result<()> {
        let c = &self.config;
        let b = examples.len();
        let (_, _, lens, t) = self.pad_batch(examples)?;
        let (h, bt) = (c.hidden_size, b * t);
        let (plan, kernel_gates) = self.head_plan(gpu, gates, b, skip)?;
        let gates = gpu.upload_f32("gates", &kernel_gates)?;
        let lens = gpu.upload_u32("lengths", &lens)?;
        let x = gpu.empty("hidden", bt * h)?;
        let width = self.layers.iter().map(Layer::stored).max().unwrap_or(1) * c.head_dim();
        let qkv = gpu.empty("qkv", bt * 3 * width)?;
        let ctx = gpu.empty("context", bt * width)?;
        let lse = gpu.empty("lse", b * c.num_attention_heads * t)?;
        let proj = gpu.empty("attention.proj", bt * h)?;
        let mut rec = gpu.recorder();
        let mut rel_cache = RelBiasCache::default();
        for li in 0..self.layers.len() {
            let bufs = AttnBuffers {
                qkv: &qkv,
                ctx: &ctx,
                lse: &lse,
                attn_proj: &proj,
            };
            let dims = (b, t);
            self.record_attention(
                &mut rec,
                li,
                &x,
                bufs,
                &lens,
                &gates,
                &plan,
                dims,
                &mut rel_cache,
            )?;
        }
        rec.finish();
        gpu.wait();
        Ok(())
    }

    /// Original head indices each layer stores (all of them unless config.json prunes some).
    pub fn stored_heads(&self) -> Vec<Vec<usize>> {
        self.layers
            .iter()
            .map(|l| l.heads.iter().map(|&x| x as usize).collect())
            .collect()
    }

    /// The original indices of the heads `plan` computes in layer `li` (0 for a layer's zero
    /// head).
    fn computed_head_ids(&self, plan: &HeadPlan, li: usize) -> Vec<u32> {
        let layer = &self.layers[li];
        plan.active[li]
            .iter()
            .map(|&j| layer.heads.get(j as usize).copied().unwrap_or(0))
            .collect()
    }

    /// The relative position bias [heads, T, T] of the heads `plan` computes in layer `li`
    /// (MPNet), gathered from the table on the device unless `cache` holds it for the same
    /// heads; None for a family without one.
    fn record_relative_bias(
        &self,
        rec: &mut Recorder,
        plan: &HeadPlan,
        li: usize,
        t: usize,
        cache: &mut RelBiasCache,
    ) -> Result<Option<Tensor>> {
        let Some(table) = &self.rel_bias else {
            return Ok(None);
        };
        let heads = self.computed_head_ids(plan, li);
        if let Some(bias) = cache.bias.as_ref().filter(|_| cache.heads == heads) {
            return Ok(Some(bias.clone()));
        }
        let gpu = rec.gpu();
        let buckets = match &cache.buckets {
            Some(b) => b.clone(),
            None => gpu.upload_u32("relative_buckets", &relative_buckets(t))?,
        };
        let out = gpu.empty("attention.relative_bias", heads.len() * t * t)?;
        let head_ids = gpu.upload_u32("relative_bias.heads", &heads)?;
        let width = self.config.num_attention_heads as u32;
        let (n, t) = (heads.len() as u32, t as u32);
        kernels::relative_bias(rec, table, width, &buckets, &head_ids, n, t, &out);
        *cache = RelBiasCache {
            heads,
            bias: Some(out.clone()),
            buckets: Some(buckets),
        };
        Ok(Some(out))
    }

    /// The attention block of layer `li`: the Q|K|V projection, attention and the output
    /// projection into `s.attn_proj`, over the heads `plan` computes. A layer that computes
    /// none outputs the projection's bias. Returns the relative position bias the attention
    /// added, if the family has one (the backward pass reads it again).
    #[allow(clippy::too_many_arguments)]
    fn record_attention(
        &self,
        rec: &mut Recorder,
        li: usize,
        x_in: &Tensor,
        s: AttnBuffers,
        lens: &Tensor,
        gates: &Tensor,
        plan: &HeadPlan,
        (b, t): (usize, usize),
        rel_cache: &mut RelBiasCache,
    ) -> Result<Option<Tensor>> {
        let layer = &self.layers[li];
        let (h, d) = (self.config.hidden_size, self.config.head_dim());
        let bt32 = (b * t) as u32;
        let active = &plan.active[li];
        if active.is_empty() {
            kernels::bias_rows(rec, &layer.attn_out.b, bt32, h as u32, s.attn_proj);
            return Ok(None);
        }
        let rel_bias = self.record_relative_bias(rec, plan, li, t, rel_cache)?;
        let gather = |side| {
            plan.lists[li].as_ref().map(|heads| HeadGather {
                heads,
                side,
                active: active.len() as u32,
                stored: layer.stored() as u32,
                head_dim: d as u32,
            })
        };
        let qkv = MatmulArgs {
            a: x_in,
            w: &layer.qkv.w,
            bias: Some(&layer.qkv.b),
            m: bt32,
            lda: h as u32,
            act: Act::None,
            gather: gather(GatherSide::Rows),
        };
        kernels::matmul(rec, &qkv, s.qkv);
        let mut args = self.attn_args(s.qkv, lens, gates, plan, b, t, li);
        args.rel_bias = rel_bias.as_ref();
        kernels::attention_fwd(rec, &args, s.ctx, s.lse);
        let out = MatmulArgs {
            a: s.ctx,
            w: &layer.attn_out.w,
            bias: Some(&layer.attn_out.b),
            m: bt32,
            lda: (active.len() * d) as u32,
            act: Act::None,
            gather: gather(GatherSide::Cols),
        };
        kernels::matmul(rec, &out, s.attn_proj);
        Ok(rel_bias)
    }

    /// Records embeddings, every layer and the heads. With `save`, every activation the
    /// backward pass needs is kept in its own buffer; without, buffers are reused across layers.
    /// `dropout` (training; implies `save`) applies dropout after the embeddings, on each
    /// residual branch and before the classifier, as BERT does; attention probabilities are
    /// not dropped (the fused kernel keeps no probability matrix to drop from).
    #[allow(clippy::too_many_arguments)]
    fn record_forward(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        examples: &[&Encoded],
        gates: &[f32],
        save: bool,
        dropout: Option<Dropout>,
        skip: HeadSkip,
    ) -> Result<Activations> {
        let train = dropout.is_some();
        let save = save || train;
        let c = &self.config;
        let (nl, nh) = (c.num_hidden_layers, c.num_attention_heads);
        let b = examples.len();
        assert_eq!(gates.len(), b * nl * nh, "gates must be [B, L, H]");
        let (ids_host, tts_host, lens, t) = self.pad_batch(examples)?;
        let (h, i, e) = (c.hidden_size, c.intermediate_size, c.embedding_size);
        let bt = b * t;
        let ids = gpu.upload_u32("input_ids", &ids_host)?;
        let tts = gpu.upload_u32("token_type_ids", &tts_host)?;
        let lens = gpu.upload_u32("lengths", &lens)?;
        // The backward pass wants every head's gate gradient: it never skips.
        let skip = if save { HeadSkip::Dense } else { skip };
        let (plan, kernel_gates) = self.head_plan(gpu, gates, b, skip)?;
        let gates = gpu.upload_f32("gates", &kernel_gates)?;
        let n_hidden = if save { nl + 1 } else { 1 };
        let hidden = (0..n_hidden)
            .map(|_| gpu.empty("hidden", bt * h))
            .collect::<Result<Vec<_>>>()?;
        let layers = (0..if save { nl } else { 1 })
            .map(|_| LayerActs::new(gpu, bt, h, i, b * nh * t, save, train))
            .collect::<Result<Vec<_>>>()?;
        let eps = c.layer_norm_eps as f32;
        let (bt32, t32, h32) = (bt as u32, t as u32, h as u32);
        let drop = |rec: &mut Recorder, site: u64, x: &Tensor, n: usize, y: &Tensor| {
            let d = dropout.expect("dropout buffers exist only when training");
            kernels::dropout(rec, x, n as u32, d.site(site), d.p, y);
        };
        let emb_args = EmbedArgs {
            ids: &ids,
            type_ids: &tts,
            word_chunks: &self.emb.word_chunks,
            pos: &self.emb.pos,
            typ: &self.emb.typ,
            n_types: c.type_vocab_size as u32,
            gamma: &self.emb.ln.0,
            beta: &self.emb.ln.1,
            eps,
            n_rows: bt32,
            seq_len: t32,
            pos_offset: c.position_offset as u32,
            hidden: e as u32,
        };
        // factorised embeddings are written e wide, then projected into hidden[0]
        let emb_out = match &self.emb.project {
            Some(_) => Some(gpu.empty("embeddings.out", bt * e)?),
            None => None,
        };
        let emb_target = emb_out.as_ref().unwrap_or(&hidden[0]);
        let emb_sum = if train {
            let u = gpu.empty("embeddings.sum", bt * e)?;
            kernels::embed_sum(rec, &emb_args, &u);
            let ln = gpu.empty("embeddings.ln", bt * e)?;
            kernels::embed_ln(rec, &emb_args, &ln);
            drop(rec, 0, &ln, bt * e, emb_target);
            Some(u)
        } else {
            kernels::embed_ln(rec, &emb_args, emb_target);
            None
        };
        if let (Some(pj), Some(x)) = (&self.emb.project, &emb_out) {
            self.lin(rec, pj, x, bt32, Act::None, &hidden[0]);
        }
        let emb_projected = if save { emb_out } else { None };
        // the bias of each layer (one buffer while the layers compute the same heads)
        let (mut rel_biases, mut rel_cache) = (Vec::new(), RelBiasCache::default());
        for (li, layer) in self.layers.iter().enumerate() {
            let s = &layers[if save { li } else { 0 }];
            let (x_in, x_out) = if save {
                (&hidden[li], &hidden[li + 1])
            } else {
                (&hidden[0], &hidden[0])
            };
            let bufs = AttnBuffers {
                qkv: &s.qkv,
                ctx: &s.ctx,
                lse: &s.lse,
                attn_proj: &s.attn_proj,
            };
            let dims = (b, t);
            let rel_bias = self.record_attention(
                rec,
                li,
                x_in,
                bufs,
                &lens,
                &gates,
                &plan,
                dims,
                &mut rel_cache,
            )?;
            if save {
                rel_biases.push(rel_bias);
            }
            if let Some(d) = &s.attn_drop {
                drop(rec, 1 + 2 * li as u64, &s.attn_proj, bt * h, d);
            }
            kernels::add_ln(
                rec,
                s.attn_ln_in(),
                x_in,
                &layer.ln1.0,
                &layer.ln1.1,
                eps,
                bt32,
                h32,
                &s.x1,
            );
            match &s.pre {
                Some(pre) => {
                    self.lin(rec, &layer.inter, &s.x1, bt32, Act::None, pre);
                    kernels::gelu_forward(rec, c.hidden_act, pre, (bt * i) as u32, &s.inter);
                }
                None => {
                    let act = c.hidden_act.act();
                    self.lin(rec, &layer.inter, &s.x1, bt32, act, &s.inter)
                }
            }
            self.lin(rec, &layer.out, &s.inter, bt32, Act::None, &s.ffn_out);
            if let Some(d) = &s.ffn_drop {
                drop(rec, 2 + 2 * li as u64, &s.ffn_out, bt * h, d);
            }
            // x_out may be x_in (no saving): x_in is not read by this dispatch.
            kernels::add_ln(
                rec,
                s.ffn_ln_in(),
                &s.x1,
                &layer.ln2.0,
                &layer.ln2.1,
                eps,
                bt32,
                h32,
                x_out,
            );
        }
        let last = hidden.last().expect("at least one hidden buffer");
        let mut pooled_pre = None;
        let pooled = match &self.pooler {
            Some(pl) => {
                let out = gpu.empty("pooled", b * h)?;
                // a GELU pooler whose backward will run keeps its pre-activation
                let act = c.family.pooler_activation;
                let keep_pre = save && act == PoolerActivation::Gelu;
                let pre = if keep_pre {
                    Some(gpu.empty("pooled.pre", b * h)?)
                } else {
                    None
                };
                // The [CLS] row of example e starts at e*T*H: a strided A.
                let args = MatmulArgs {
                    a: last,
                    w: &pl.w,
                    bias: Some(&pl.b),
                    m: b as u32,
                    lda: t32 * h32,
                    act: if keep_pre { Act::None } else { act.act() },
                    gather: None,
                };
                kernels::matmul(rec, &args, pre.as_ref().unwrap_or(&out));
                if let Some(x) = &pre {
                    kernels::gelu_forward(rec, Gelu::Erf, x, (b * h) as u32, &out);
                }
                pooled_pre = pre;
                Some(out)
            }
            None => None,
        };
        let site = 1 + 2 * nl as u64;
        let (logits, head_in) = match (&self.classifier, self.task) {
            (Some(cl), TaskHead::SequenceClassification) => {
                let out = gpu.empty("logits", b * cl.w.n as usize)?;
                let pooled = pooled.as_ref().expect("pooler checked at load");
                let head_in = if train {
                    let d = gpu.empty("pooled.dropout", b * h)?;
                    drop(rec, site, pooled, b * h, &d);
                    Some(d)
                } else {
                    None
                };
                let x = head_in.as_ref().unwrap_or(pooled);
                self.lin(rec, cl, x, b as u32, Act::None, &out);
                (Some(out), head_in)
            }
            (Some(cl), TaskHead::TokenClassification) => {
                let out = gpu.empty("logits", bt * cl.w.n as usize)?;
                let head_in = if train {
                    let d = gpu.empty("hidden.dropout", bt * h)?;
                    drop(rec, site, last, bt * h, &d);
                    Some(d)
                } else {
                    None
                };
                let x = head_in.as_ref().unwrap_or(last);
                self.lin(rec, cl, x, bt32, Act::None, &out);
                (Some(out), head_in)
            }
            _ => (None, None),
        };
        Ok(Activations {
            b,
            t,
            ids: ids_host,
            type_ids: tts_host,
            emb_sum,
            emb_projected,
            pooled_pre,
            head_in,
            dropout,
            lengths: examples.iter().map(|e| e.ids.len()).collect(),
            lens,
            gates,
            plan,
            hidden,
            rel_biases,
            layers,
            pooled,
            logits,
        })
    }

    /// Records an inference forward pass: nothing kept for a backward pass, heads gated out for
    /// the whole batch skipped.
    fn record_inference(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        examples: &[&Encoded],
        gates: &[f32],
    ) -> Result<Activations> {
        self.record_forward(gpu, rec, examples, gates, false, None, HeadSkip::Skip)
    }

    #[allow(clippy::too_many_arguments)]
    fn attn_args<'a>(
        &self,
        qkv: &'a Tensor,
        lens: &'a Tensor,
        gates: &'a Tensor,
        plan: &HeadPlan,
        b: usize,
        t: usize,
        layer: usize,
    ) -> AttnArgs<'a> {
        AttnArgs {
            qkv,
            lens,
            gates,
            batch: b as u32,
            seq: t as u32,
            heads: plan.active[layer].len() as u32,
            head_dim: self.config.head_dim() as u32,
            gate_off: plan.offsets[layer] as u32,
            gate_stride: plan.stride as u32,
            rel_bias: None,
        }
    }

    /// Runs one padded batch. `gates` is [B, L, heads]; `examples` are unpadded.
    pub fn forward_batch(
        &self,
        gpu: &Gpu,
        examples: &[&Encoded],
        gates: &[f32],
        want_hidden: bool,
    ) -> Result<BatchOutput> {
        self.forward_batch_with(gpu, examples, gates, want_hidden, HeadSkip::Skip)
    }

    /// As [`Model::forward_batch`], choosing how heads gated out for the whole batch are
    /// treated (benches and tests compare the two).
    pub fn forward_batch_with(
        &self,
        gpu: &Gpu,
        examples: &[&Encoded],
        gates: &[f32],
        want_hidden: bool,
        skip: HeadSkip,
    ) -> Result<BatchOutput> {
        let readback = Readback {
            hidden: want_hidden,
            ..Readback::default()
        };
        self.forward_batch_reading(gpu, examples, gates, &readback, skip)
    }

    /// As [`Model::forward_batch_with`], reading back what `readback` asks for.
    pub fn forward_batch_reading(
        &self,
        gpu: &Gpu,
        examples: &[&Encoded],
        gates: &[f32],
        readback: &Readback,
        skip: HeadSkip,
    ) -> Result<BatchOutput> {
        let mut rec = gpu.recorder();
        let acts = self.record_forward(gpu, &mut rec, examples, gates, false, None, skip)?;
        let last = acts.hidden.last().expect("hidden");
        let sentence = match &readback.sentence {
            Some(sp) => {
                let (b, t, h) = (acts.b, acts.t, self.config.hidden_size);
                let out = gpu.empty("sentence_embedding", b * h)?;
                let dims = (b as u32, t as u32, h as u32);
                kernels::pool(
                    &mut rec,
                    last,
                    &acts.lens,
                    dims,
                    sp.mode,
                    sp.normalize,
                    &out,
                );
                Some(out)
            }
            None => None,
        };
        let mlm_logits = if readback.mlm_logits {
            Some(self.read_mlm_logits(gpu, rec, last, acts.b * acts.t)?)
        } else {
            rec.finish();
            None
        };
        Ok(BatchOutput {
            batch: acts.b,
            seq: acts.t,
            logits: acts.logits.as_ref().map(|t| gpu.read_f32(t)),
            pooled: acts.pooled.as_ref().map(|t| gpu.read_f32(t)),
            hidden: readback.hidden.then(|| gpu.read_f32(last)),
            sentence: sentence.as_ref().map(|t| gpu.read_f32(t)),
            mlm_logits,
        })
    }
}
