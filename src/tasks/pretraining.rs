//! The pre-training objectives: text from any split, corrupted as pre-training corrupts it, and
//! the pre-training head's metrics on it.
//!
//! - Masked LM (BERT and its kin): each real, non-special token is chosen with probability
//!   15 %; a chosen token becomes the mask token (80 %), a uniformly random id (10 %) or stays
//!   (10 %), and is labelled with its original id.
//! - Replaced-token detection (ELECTRA's discriminator): each real, non-special token is
//!   replaced with probability 15 % by a uniformly random other id (ELECTRA's generator would
//!   propose plausible ones; none is at hand); every real token is labelled 1 if replaced,
//!   else 0.
//!
//! The draws of example i come from a stream seeded by (seed, i) alone, so every run with one
//! seed corrupts the same tokens, whatever the batching or the model's head mask.

use super::data::{encode, TaskData};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::{conllu, input};
use crate::maths::rng::SplitMix64;
use crate::model::batch::{plan_for, progress_bar};
use crate::model::contrastive::{ContrastiveOut, ContrastiveSpec};
use crate::model::{
    BertTokenizer, Dropout, Encoded, GateGrads, Gates, Model, Pooling, SentencePooling, VOCAB_CHUNK,
};
use std::path::Path;

/// The share of real tokens an example corrupts.
pub const MASK_PROB: f64 = 0.15;

/// The loss `score` and `eval` measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Objective {
    /// The checkpoint's classifier on a labelled split.
    #[default]
    Task,
    /// The masked-LM head on masked text.
    Mlm,
    /// ELECTRA's discriminator on text with replaced tokens.
    Rtd,
    /// In-batch contrastive loss over sentence pairs (MultipleNegativesRankingLoss).
    Contrastive,
    /// The same loss over each sentence and itself under other dropout (SimCSE).
    Simcse,
}

impl Objective {
    pub fn parse(s: &str) -> Result<Objective> {
        match s {
            "task" => Ok(Objective::Task),
            "mlm" => Ok(Objective::Mlm),
            "rtd" => Ok(Objective::Rtd),
            "contrastive" => Ok(Objective::Contrastive),
            "simcse" => Ok(Objective::Simcse),
            _ => Err(Error::Usage(format!(
                "unknown objective {s:?} (expected task, mlm, rtd, contrastive or simcse)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Objective::Task => "task",
            Objective::Mlm => "mlm",
            Objective::Rtd => "rtd",
            Objective::Contrastive => "contrastive",
            Objective::Simcse => "simcse",
        }
    }

    /// An in-batch objective: one example's loss depends on its batch.
    pub fn in_batch(self) -> bool {
        matches!(self, Objective::Contrastive | Objective::Simcse)
    }
}

/// Loads `dir` with the head of a pre-training `objective` (`backward` for gate gradients).
pub fn load_model(gpu: &Gpu, dir: &Path, objective: Objective, backward: bool) -> Result<Model> {
    match objective {
        Objective::Mlm => Model::load_for_mlm(gpu, dir, backward, VOCAB_CHUNK),
        Objective::Rtd => Model::load_for_rtd(gpu, dir, backward),
        Objective::Contrastive | Objective::Simcse if backward => {
            Model::load_for_gradients(gpu, dir)
        }
        Objective::Contrastive | Objective::Simcse => Model::load(gpu, dir),
        Objective::Task => Err(Error::Usage(
            "the task objective is not a pre-training objective".into(),
        )),
    }
}

/// Reads the text of `path` (a CoNLL-U file by its `.conllu` extension: its surface tokens; a
/// CoNLL file by `.conll`: its words; otherwise a TSV with a `sentence` column, and
/// `sentence2` for pairs), encodes it for `model` and corrupts it for the pre-training
/// `objective` with `seed`.
pub fn load(model: &Model, path: &Path, objective: Objective, seed: u64) -> Result<TaskData> {
    let (examples, truncated) = read_text(model, path)?;
    let vocab = model.config.vocab_size;
    let (examples, labels) = match objective {
        Objective::Mlm => mask(&model.tokenizer, vocab, examples, seed)?,
        Objective::Rtd => replace(&model.tokenizer, vocab, examples, seed),
        _ => {
            return Err(Error::Usage(format!(
            "the {} objective does not read corrupted text (tasks::load, pretraining::load_pairs)",
            objective.name()
        )))
        }
    };
    Ok(TaskData {
        examples,
        labels,
        words: None,
        token_labels: true,
        truncated,
    })
}

/// The text of `path`, encoded for `model`, and how many examples were truncated: CoNLL-U
/// surface tokens (`.conllu`), CoNLL words (`.conll`), or a TSV's `sentence` column (with
/// `sentence2`, each line one pair sequence).
fn read_text(model: &Model, path: &Path) -> Result<(Vec<Encoded>, usize)> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let (examples, truncated) = match ext {
        "conllu" => {
            let words: Vec<Vec<String>> =
                conllu::read(path)?.into_iter().map(|s| s.units).collect();
            let (enc, _, truncated) = model.tokenizer.encode_words(&words)?;
            (enc, truncated)
        }
        "conll" => {
            let words: Vec<Vec<String>> = input::read_conll(path)?
                .into_iter()
                .map(|s| s.words)
                .collect();
            let (enc, _, truncated) = model.tokenizer.encode_words(&words)?;
            (enc, truncated)
        }
        _ => encode(model, &input::read_sentences(path)?, path)?,
    };
    if examples.is_empty() {
        return Err(Error::input(path, "no examples (the split is empty)"));
    }
    Ok((examples, truncated))
}

/// The settings of the in-batch objectives, as the user gives them.
#[derive(Clone, Copy, Debug)]
pub struct InBatch {
    /// Cosine similarities are multiplied by this (sentence-transformers: 20).
    pub scale: f32,
    /// Also the second sentences against the first ones (each direction weighs 1/2).
    pub symmetric: bool,
    /// SimCSE's dropout (default: the model's hidden dropout).
    pub dropout: Option<f32>,
}

/// The sentence pairs of an in-batch objective, each sentence encoded alone.
pub struct Pairs {
    pub first: Vec<Encoded>,
    pub second: Vec<Encoded>,
    pub truncated: usize,
}

impl Pairs {
    pub fn len(&self) -> usize {
        self.first.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// The pairs in batches of `size` (at least 2), in an order drawn from `seed`; a last
    /// batch of one pair joins the one before it (a lone pair has no negatives).
    pub fn batches(&self, size: usize, seed: u64) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = SplitMix64::new(seed ^ 0xC0_47A5);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut batches: Vec<Vec<usize>> =
            order.chunks(size.max(1)).map(<[usize]>::to_vec).collect();
        if batches.len() > 1 && batches.last().is_some_and(|b| b.len() == 1) {
            let lone = batches.pop().expect("a last batch");
            batches.last_mut().expect("a batch before").extend(lone);
        }
        batches
    }
}

/// Warns, naming `path`, when sentences of `pairs` were truncated.
pub fn warn_truncated_pairs(path: &Path, pairs: &Pairs, max_len: usize) {
    if pairs.truncated > 0 {
        eprintln!(
            "warning: {}: {} of {} sentences truncated to {max_len} tokens",
            path.display(),
            pairs.truncated,
            2 * pairs.len()
        );
    }
}

/// How [`Pairs::run`] runs each batch: the model, the objective, the gates (one row per pair,
/// given to both its sentences), and whether to run the backward pass too.
pub struct PairPasses<'a> {
    pub gpu: &'a Gpu,
    pub model: &'a Model,
    pub spec: &'a ContrastiveSpec,
    pub gates: &'a Gates,
    pub backward: bool,
    pub progress: bool,
}

impl Pairs {
    /// One contrastive pass per batch of `batches` (from [`Pairs::batches`]); `f` gets the
    /// batch's pair indices, its losses and, with `backward`, its gate gradients (2B rows).
    pub fn run(
        &self,
        batches: &[Vec<usize>],
        how: &PairPasses,
        mut f: impl FnMut(&[usize], ContrastiveOut, Option<GateGrads>),
    ) -> Result<()> {
        let lh = how.model.config.total_heads();
        let bar = how.progress.then(|| progress_bar(self.len()));
        for (k, idx) in batches.iter().enumerate() {
            let first: Vec<&Encoded> = idx.iter().map(|&i| &self.first[i]).collect();
            let second: Vec<&Encoded> = idx.iter().map(|&i| &self.second[i]).collect();
            let g = how.gates.for_batch(idx, lh);
            let both = [g.as_slice(), g.as_slice()].concat();
            let spec = how.spec.for_batch(k as u64);
            let (out, grads) =
                how.model
                    .contrastive_pass(how.gpu, &first, &second, &both, &spec, how.backward)?;
            f(idx, out, grads);
            if let Some(b) = &bar {
                b.inc(idx.len() as u64);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(())
    }
}

/// The pairs of an in-batch `objective` from `path`: `contrastive` reads a TSV's `sentence`
/// and `sentence2` columns, each encoded alone; `simcse` pairs every sentence of any text file
/// (as [`load`] reads it) with itself.
pub fn load_pairs(model: &Model, path: &Path, objective: Objective) -> Result<Pairs> {
    match objective {
        Objective::Contrastive => {
            let texts = input::read_sentences(path)?;
            if let Some(line) = texts.iter().position(|t| t.1.is_none()) {
                return Err(Error::input(
                    path,
                    format!(
                        "line {}: --objective contrastive needs a TSV of pairs (a `sentence2` column)",
                        line + 2
                    ),
                ));
            }
            let (firsts, seconds): (input::Texts, input::Texts) = texts
                .into_iter()
                .map(|(a, b)| ((a, None), (b.unwrap_or_default(), None)))
                .unzip();
            let (first, t1) = encode(model, &firsts, path)?;
            let (second, t2) = encode(model, &seconds, path)?;
            if first.is_empty() {
                return Err(Error::input(path, "no examples (the split is empty)"));
            }
            Ok(Pairs {
                first,
                second,
                truncated: t1 + t2,
            })
        }
        Objective::Simcse => {
            let (first, truncated) = read_text(model, path)?;
            Ok(Pairs {
                second: first.clone(),
                first,
                // both copies of a sentence
                truncated: 2 * truncated,
            })
        }
        _ => Err(Error::Usage(format!(
            "the {} objective is not an in-batch one",
            objective.name()
        ))),
    }
}

/// How an in-batch `objective` embeds and compares sentences for `model`: its
/// sentence-transformers pooling (mean when its directory has none), and `settings`, SimCSE's
/// dropout seeded by `seed`.
pub fn contrastive_spec(
    model: &Model,
    objective: Objective,
    settings: InBatch,
    seed: u64,
) -> Result<ContrastiveSpec> {
    let InBatch {
        scale,
        symmetric,
        dropout,
    } = settings;
    let pooling = if model.dir.join("modules.json").is_file() {
        SentencePooling::load(&model.dir)?.mode
    } else {
        Pooling::Mean
    };
    let dropout = match objective {
        Objective::Simcse => {
            let p = dropout.unwrap_or(model.config.hidden_dropout_prob as f32);
            if !(p > 0.0 && p < 1.0) {
                return Err(Error::Usage(format!(
                    "--objective simcse needs a dropout in (0, 1) to tell a sentence's two copies apart (got {p})"
                )));
            }
            Some(Dropout { seed, step: 0, p })
        }
        _ => {
            if dropout.is_some() {
                return Err(Error::Usage(
                    "--dropout applies to --objective simcse only".into(),
                ));
            }
            None
        }
    };
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::Usage(format!(
            "--scale must be positive (got {scale})"
        )));
    }
    Ok(ContrastiveSpec {
        pooling,
        scale,
        symmetric,
        dropout,
    })
}

/// Masks `examples` of a model with `vocab` word embeddings and tokenizer `tok` with `seed`:
/// the corrupted examples and, per example, each token's label (its original id where chosen,
/// −100 elsewhere).
pub fn mask(
    tok: &BertTokenizer,
    vocab: usize,
    mut examples: Vec<Encoded>,
    seed: u64,
) -> Result<(Vec<Encoded>, Vec<Vec<i32>>)> {
    let mask_id = tok.mask_id().ok_or_else(|| {
        Error::input(
            tok.path(),
            "has no mask token ([MASK] or <mask>), which the masked-LM objective needs",
        )
    })?;
    let vocab = tok.vocab_size().min(vocab);
    let labels = corrupt(tok, &mut examples, seed, -100, |id, rng| {
        let label = *id as i32;
        let u = rng.uniform();
        if u < 0.8 {
            *id = mask_id;
        } else if u < 0.9 {
            *id = rng.below(vocab) as u32;
        }
        label
    });
    Ok((examples, labels))
}

/// Chooses each real, non-special token of `examples` with probability [`MASK_PROB`], from
/// each example's own stream; `change` corrupts a chosen token and returns its label. Returns
/// each example's labels (`unchosen` where not chosen).
fn corrupt(
    tok: &BertTokenizer,
    examples: &mut [Encoded],
    seed: u64,
    unchosen: i32,
    mut change: impl FnMut(&mut u32, &mut SplitMix64) -> i32,
) -> Vec<Vec<i32>> {
    let special = tok.special_ids();
    let mut labels = Vec::with_capacity(examples.len());
    for (i, ex) in examples.iter_mut().enumerate() {
        let mut rng = SplitMix64::new(seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let mut y = vec![unchosen; ex.ids.len()];
        for (j, id) in ex.ids.iter_mut().enumerate() {
            if special.binary_search(id).is_ok() || rng.uniform() >= MASK_PROB {
                continue;
            }
            y[j] = change(id, &mut rng);
        }
        labels.push(y);
    }
    labels
}

/// Replaces tokens of `examples` (a model with `vocab` word embeddings and tokenizer `tok`)
/// with `seed`: the corrupted examples and, per example, each token's label (1 replaced,
/// 0 kept).
pub fn replace(
    tok: &BertTokenizer,
    vocab: usize,
    mut examples: Vec<Encoded>,
    seed: u64,
) -> (Vec<Encoded>, Vec<Vec<i32>>) {
    let vocab = tok.vocab_size().min(vocab).max(2);
    let labels = corrupt(tok, &mut examples, seed, 0, |id, rng| {
        // a uniformly random id other than the original
        let shift = 1 + rng.below(vocab - 1) as u32;
        *id = (*id + shift) % vocab as u32;
        1
    });
    (examples, labels)
}

/// Runs `f` on each batch of `data` (its examples, labels padded to the batch's longest, and
/// gates [B, L, H]), with a progress bar when asked.
fn for_each_batch(
    gpu: &Gpu,
    model: &Model,
    data: &TaskData,
    gates: &Gates,
    batch_size: usize,
    progress: bool,
    mut f: impl FnMut(&[&Encoded], &[i32], &[f32]) -> Result<()>,
) -> Result<()> {
    let lengths: Vec<usize> = data.examples.iter().map(|e| e.ids.len()).collect();
    let lh = model.config.total_heads();
    let bar = progress.then(|| progress_bar(data.len()));
    for idx in plan_for(gpu, model, &lengths, batch_size)? {
        let refs: Vec<&Encoded> = idx.iter().map(|&i| &data.examples[i]).collect();
        f(&refs, &data.batch_labels(&idx), &gates.for_batch(&idx, lh))?;
        if let Some(b) = &bar {
            b.inc(idx.len() as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(())
}

/// The masked-LM head's scores on masked data.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MlmMetrics {
    pub examples: usize,
    pub masked_tokens: usize,
    /// Mean cross-entropy per masked token (nats).
    pub loss: f64,
    /// exp(loss).
    pub perplexity: f64,
    /// Share of masked tokens whose original id scores highest.
    pub accuracy: f64,
}

/// Runs `model` (loaded with its masked-LM head) over masked `data` under `gates`.
pub fn evaluate_mlm(
    gpu: &Gpu,
    model: &Model,
    data: &TaskData,
    gates: &Gates,
    batch_size: usize,
    progress: bool,
) -> Result<MlmMetrics> {
    let (mut loss, mut correct, mut count) = (0f64, 0usize, 0usize);
    for_each_batch(
        gpu,
        model,
        data,
        gates,
        batch_size,
        progress,
        |refs, ys, g| {
            let p = model.mlm_predict(gpu, refs, ys, g)?;
            for ((&pos, &l), &best) in p.positions.iter().zip(&p.loss).zip(&p.predicted) {
                loss += l as f64;
                correct += (ys[pos] == best as i32) as usize;
                count += 1;
            }
            Ok(())
        },
    )?;
    let mean = loss / count.max(1) as f64;
    Ok(MlmMetrics {
        examples: data.len(),
        masked_tokens: count,
        loss: mean,
        perplexity: mean.exp(),
        accuracy: correct as f64 / count.max(1) as f64,
    })
}

/// The discriminator's scores on data with replaced tokens.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RtdMetrics {
    pub examples: usize,
    /// Real tokens, and those replaced.
    pub tokens: usize,
    pub replaced_tokens: usize,
    /// Mean binary cross-entropy per real token (nats), as transformers averages it.
    pub loss: f64,
    /// Share of real tokens judged right (logit > 0: replaced).
    pub accuracy: f64,
    /// Of the tokens judged replaced, the share that were; of those replaced, the share found.
    pub replaced_precision: f64,
    pub replaced_recall: f64,
}

/// Runs `model` (loaded with its discriminator head) over `data` with replaced tokens under
/// `gates`.
pub fn evaluate_rtd(
    gpu: &Gpu,
    model: &Model,
    data: &TaskData,
    gates: &Gates,
    batch_size: usize,
    progress: bool,
) -> Result<RtdMetrics> {
    let (mut loss, mut tokens, mut correct) = (0f64, 0usize, 0usize);
    let (mut replaced, mut flagged, mut found) = (0usize, 0usize, 0usize);
    for_each_batch(
        gpu,
        model,
        data,
        gates,
        batch_size,
        progress,
        |refs, ys, g| {
            let p = model.rtd_predict(gpu, refs, ys, g)?;
            for ((&y, &z), &l) in ys.iter().zip(&p.logits).zip(&p.loss) {
                if y < 0 {
                    continue;
                }
                let said = z > 0.0;
                loss += l as f64;
                tokens += 1;
                correct += (said == (y == 1)) as usize;
                replaced += (y == 1) as usize;
                flagged += said as usize;
                found += (said && y == 1) as usize;
            }
            Ok(())
        },
    )?;
    let share = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    Ok(RtdMetrics {
        examples: data.len(),
        tokens,
        replaced_tokens: replaced,
        loss: loss / tokens.max(1) as f64,
        accuracy: share(correct, tokens),
        replaced_precision: share(found, flagged),
        replaced_recall: share(found, replaced),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> BertTokenizer {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-bert-mlm");
        BertTokenizer::load(&dir.join("tokenizer.json"), 64, false).unwrap()
    }

    #[test]
    fn masking_follows_bert_and_depends_on_the_seed_and_position_alone() {
        let tok = tokenizer();
        let special = tok.special_ids();
        let mask_id = tok.mask_id().unwrap();
        assert_eq!(
            (mask_id, special.len()),
            (103, 5),
            "[MASK] among five specials"
        );
        // 400 examples of 60 ids: [CLS] 58 ordinary ids [SEP]
        let examples: Vec<Encoded> = (0..400u32)
            .map(|i| {
                let mut ids = vec![101];
                ids.extend((0..58).map(|j| 1000 + (i * 7 + j) % 1500));
                ids.push(102);
                Encoded {
                    type_ids: vec![0; ids.len()],
                    ids,
                }
            })
            .collect();
        let (masked, labels) = mask(&tok, 3000, examples.clone(), 5).unwrap();
        let (mut chosen, mut as_mask, mut kept, mut total) = (0, 0, 0, 0);
        for ((ex, m), y) in examples.iter().zip(&masked).zip(&labels) {
            assert_eq!((y[0], y[59]), (-100, -100), "specials are never chosen");
            for ((&id, &new), &label) in ex.ids.iter().zip(&m.ids).zip(y) {
                total += 1;
                if label < 0 {
                    assert_eq!(new, id, "an unchosen token is unchanged");
                    continue;
                }
                chosen += 1;
                assert_eq!(label, id as i32, "the label is the original id");
                as_mask += (new == mask_id) as usize;
                kept += (new == id) as usize;
            }
        }
        let share = |k: usize, n: usize| k as f64 / n as f64;
        // 23 200 real tokens: binomial deviations are well inside these bounds
        assert!(
            (share(chosen, total - 800) - 0.15).abs() < 0.01,
            "{chosen} of {total}"
        );
        assert!(
            (share(as_mask, chosen) - 0.8).abs() < 0.03,
            "{as_mask} of {chosen}"
        );
        assert!(
            (share(kept, chosen) - 0.1).abs() < 0.03,
            "{kept} of {chosen}"
        );
        // the first eight examples mask as they do among 400; another seed masks otherwise
        let (first, _) = mask(&tok, 3000, examples[..8].to_vec(), 5).unwrap();
        assert_eq!(first, masked[..8]);
        let (other, _) = mask(&tok, 3000, examples[..8].to_vec(), 6).unwrap();
        assert_ne!(other, first);
    }

    #[test]
    fn replacement_swaps_a_sixth_of_the_tokens_for_other_ids() {
        let tok = tokenizer();
        let examples: Vec<Encoded> = (0..300u32)
            .map(|i| {
                let mut ids = vec![101];
                ids.extend((0..40).map(|j| 1000 + (i * 11 + j) % 1500));
                ids.push(102);
                Encoded {
                    type_ids: vec![0; ids.len()],
                    ids,
                }
            })
            .collect();
        let (out, labels) = replace(&tok, 3000, examples.clone(), 9);
        let (mut replaced, mut total) = (0, 0);
        for ((ex, o), y) in examples.iter().zip(&out).zip(&labels) {
            assert_eq!(
                (y[0], y[41]),
                (0, 0),
                "specials are labelled 0, never replaced"
            );
            for ((&id, &new), &label) in ex.ids.iter().zip(&o.ids).zip(y) {
                total += 1;
                assert_eq!(
                    label == 1,
                    new != id,
                    "label 1 exactly where the id changed"
                );
                assert!(new < 3000);
                replaced += label as usize;
            }
        }
        let share = replaced as f64 / (total - 600) as f64;
        assert!((share - 0.15).abs() < 0.012, "{replaced} of {total}");
        let (again, _) = replace(&tok, 3000, examples[..5].to_vec(), 9);
        assert_eq!(again, out[..5]);
    }
}

/// An in-batch objective's metrics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ContrastiveMetrics {
    pub examples: usize,
    pub batches: usize,
    /// Mean over pairs of the pair's loss (its first sentence's cross-entropy; with
    /// symmetric, the mean of both directions).
    pub loss: f64,
    /// Share of first sentences whose most similar second sentence in the batch is their
    /// partner.
    pub in_batch_top1: f64,
}

/// The in-batch loss and top-1 retrieval of `pairs` under `gates` (one row per pair, given
/// to both its sentences), batched as [`Pairs::batches`] with `seed`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_contrastive(
    gpu: &Gpu,
    model: &Model,
    pairs: &Pairs,
    spec: &ContrastiveSpec,
    gates: &Gates,
    batch_size: usize,
    seed: u64,
    progress: bool,
) -> Result<ContrastiveMetrics> {
    model.check_contrastive(spec, batch_size)?;
    let batches = pairs.batches(batch_size, seed);
    let (mut loss, mut top1) = (0f64, 0usize);
    let run = PairPasses {
        gpu,
        model,
        spec,
        gates,
        backward: false,
        progress,
    };
    pairs.run(&batches, &run, |_, out, _| {
        loss += out.loss.iter().map(|&l| l as f64).sum::<f64>();
        top1 += out.top1.iter().filter(|&&t| t).count();
    })?;
    let n = pairs.len().max(1) as f64;
    Ok(ContrastiveMetrics {
        examples: pairs.len(),
        batches: batches.len(),
        loss: loss / n,
        in_batch_top1: top1 as f64 / n,
    })
}
