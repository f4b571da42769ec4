//! Labelled task data (sequence classification from TSV, token classification from CoNLL),
//! encoded for one model, and its label sets. Masked-LM data lives in `mlm.rs`.

use crate::error::{Error, Result};
use crate::io::input::{self, TaggedSentence, Texts};

use crate::model::{Encoded, Gates, Model, TaskHead};
use std::collections::BTreeSet;
use std::path::Path;

/// A sentence's gold tag ids per word, and each word's first token.
pub type WordGold = (Vec<usize>, Vec<Option<usize>>);

/// A labelled split encoded for one model.
pub struct TaskData {
    pub examples: Vec<Encoded>,
    /// Sequence classification: one label per example. Token classification: one per token
    /// of the example, the tag of the word it starts, −100 elsewhere.
    pub labels: Vec<Vec<i32>>,
    /// Token classification: gold tag ids per word and each word's first token (None when
    /// truncated away).
    pub words: Option<Vec<WordGold>>,
    /// Labels are per token (token classification, masked LM), not per example.
    pub token_labels: bool,
    pub truncated: usize,
}

impl TaskData {
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Labels of a batch as the loss kernel wants them: per example, or per token of the batch
    /// padded to its longest (padding −100).
    pub fn batch_labels(&self, idx: &[usize]) -> Vec<i32> {
        if !self.token_labels {
            return idx.iter().map(|&i| self.labels[i][0]).collect();
        }
        let t = idx
            .iter()
            .map(|&i| self.examples[i].ids.len())
            .max()
            .unwrap_or(0);
        let mut out = vec![-100; idx.len() * t];
        for (e, &i) in idx.iter().enumerate() {
            out[e * t..e * t + self.labels[i].len()].copy_from_slice(&self.labels[i]);
        }
        out
    }
}

/// Parses `seq-cls` / `token-cls`.
pub fn parse_task(s: &str) -> Result<TaskHead> {
    match s {
        "seq-cls" => Ok(TaskHead::SequenceClassification),
        "token-cls" => Ok(TaskHead::TokenClassification),
        _ => Err(Error::Usage(format!(
            "unknown task {s:?} (expected seq-cls or token-cls)"
        ))),
    }
}

/// The label names of a training split. Sequence classification: integer labels become
/// `LABEL_i` for i below the largest plus one (as transformers names them); other labels are
/// sorted names. Token classification: the sorted tag set.
pub fn label_names(task: TaskHead, path: &Path) -> Result<Vec<String>> {
    match task {
        TaskHead::TokenClassification => {
            let sents = input::read_conll(path)?;
            let set: BTreeSet<&str> = sents
                .iter()
                .flat_map(|s| s.tags.iter().map(|t| t.as_str()))
                .collect();
            Ok(set.into_iter().map(String::from).collect())
        }
        _ => {
            let (_, raw) = input::read_labelled_raw(path)?;
            if raw.is_empty() {
                return Err(Error::input(path, "no examples (the split is empty)"));
            }
            if raw.iter().all(|(_, l)| l.parse::<usize>().is_ok()) {
                let max = raw
                    .iter()
                    .map(|(_, l)| l.parse::<usize>().expect("checked"))
                    .max()
                    .expect("non-empty");
                Ok((0..=max.max(1)).map(|i| format!("LABEL_{i}")).collect())
            } else {
                let set: BTreeSet<&str> = raw.iter().map(|(_, l)| l.as_str()).collect();
                Ok(set.into_iter().map(String::from).collect())
            }
        }
    }
}

/// The gates of a `--head-mask` file ([L, H], read against the model's shape), or every head
/// open without one.
pub fn head_mask_gates(model: &Model, path: Option<&Path>) -> Result<Gates> {
    let c = &model.config;
    Ok(match path {
        Some(p) => Gates::Broadcast(input::read_head_mask(
            p,
            c.num_hidden_layers,
            c.num_attention_heads,
        )?),
        None => Gates::Ones,
    })
}

/// The label names of a task model (its `id2label`, else `LABEL_i`).
pub fn model_labels(model: &Model) -> Vec<String> {
    (0..model.num_labels)
        .map(|i| model.config.label(i))
        .collect()
}

/// One warning line when a split had examples truncated to the tokenizer's limit.
pub fn warn_truncated(path: &Path, data: &TaskData, max_len: usize) {
    if data.truncated > 0 {
        eprintln!(
            "warning: {}: {} of {} examples truncated to {max_len} tokens",
            path.display(),
            data.truncated,
            data.len()
        );
    }
}

/// Reads and encodes a split for `model` (whose task is set) with label names `labels`. An
/// empty split is an error naming the file.
pub fn load(model: &Model, path: &Path, labels: &[String]) -> Result<TaskData> {
    let data = load_split(model, path, labels)?;
    if data.is_empty() {
        return Err(Error::input(path, "no examples (the split is empty)"));
    }
    Ok(data)
}

fn load_split(model: &Model, path: &Path, labels: &[String]) -> Result<TaskData> {
    match model.task {
        TaskHead::TokenClassification => {
            let sents = input::read_conll(path)?;
            load_tagged(model, path, &sents, labels)
        }
        TaskHead::SequenceClassification => {
            let id2label = labels.iter().cloned().enumerate().collect();
            let (texts, ys) = input::read_labelled(path, &id2label, labels.len())?;
            let (examples, truncated) = encode(model, &texts, path)?;
            Ok(TaskData {
                examples,
                labels: ys.into_iter().map(|y| vec![y]).collect(),
                words: None,
                token_labels: false,
                truncated,
            })
        }
        TaskHead::None => Err(Error::Usage(format!(
            "{}: the model has no task head",
            model.dir.display()
        ))),
    }
}

/// Tokenises `texts` read from `path`; returns the encodings and how many were truncated.
pub fn encode(model: &Model, texts: &Texts, path: &Path) -> Result<(Vec<Encoded>, usize)> {
    model
        .tokenizer
        .encode_all(texts)
        .map_err(|e| Error::input(path, e.to_string()))
}

fn load_tagged(
    model: &Model,
    path: &Path,
    sents: &[TaggedSentence],
    labels: &[String],
) -> Result<TaskData> {
    let index = |tag: &str, sent: usize| -> Result<usize> {
        labels.iter().position(|l| l == tag).ok_or_else(|| {
            Error::input(
                path,
                format!(
                    "sentence {}: tag {tag:?} is not one of the model's labels ({})",
                    sent + 1,
                    labels.join(", ")
                ),
            )
        })
    };
    let words: Vec<Vec<String>> = sents.iter().map(|s| s.words.clone()).collect();
    let (examples, firsts, truncated) = model.tokenizer.encode_words(&words)?;
    let mut all_labels = Vec::with_capacity(sents.len());
    let mut gold = Vec::with_capacity(sents.len());
    for (si, ((s, enc), first)) in sents.iter().zip(&examples).zip(firsts).enumerate() {
        let tags = s
            .tags
            .iter()
            .map(|t| index(t, si))
            .collect::<Result<Vec<_>>>()?;
        let mut y = vec![-100; enc.ids.len()];
        for (w, f) in first.iter().enumerate() {
            if let Some(j) = f {
                y[*j] = tags[w] as i32;
            }
        }
        all_labels.push(y);
        gold.push((tags, first));
    }
    Ok(TaskData {
        examples,
        labels: all_labels,
        words: Some(gold),
        token_labels: true,
        truncated,
    })
}
