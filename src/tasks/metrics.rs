//! Evaluation of a classifier on labelled task data: per-example losses, accuracy, and
//! entity-level precision / recall / F1 over BIO tags as seqeval computes them.

use super::data::TaskData;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::model::{run_forward, Encoded, ForwardOptions, Gates, Model, TaskHead};

/// Dev-set metrics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Metrics {
    /// Accuracy (sequence classification) or entity F1 (token classification): what
    /// fine-tuning keeps the best epoch by.
    pub main: f64,
    pub accuracy: Option<f64>,
    /// Correct predictions (sequence classification).
    pub correct: Option<usize>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub token_accuracy: Option<f64>,
    pub examples: usize,
    pub loss: f64,
}

/// Each example's loss under `gates` (examples may repeat with different per-example gates):
/// cross-entropy of its label, or the sum over its labelled tokens — the ℓ_x of scoring.
pub fn example_losses(
    gpu: &Gpu,
    model: &Model,
    examples: &[Encoded],
    labels: &[&[i32]],
    gates: &Gates,
    batch_size: usize,
) -> Result<Vec<f64>> {
    let opts = ForwardOptions {
        batch_size,
        hidden: false,
        progress: false,
        sentence: None,
        mlm_logits: false,
    };
    let res = run_forward(gpu, model, examples, gates, &opts)?;
    let logits = res.logits.as_ref().expect("a task model has logits");
    let k = res.num_labels;
    let token = model.task == TaskHead::TokenClassification;
    Ok(labels
        .iter()
        .enumerate()
        .map(|(i, ys)| {
            ys.iter()
                .enumerate()
                .filter(|(_, &y)| y >= 0)
                .map(|(j, &y)| {
                    let row = if token {
                        &logits[(i * res.seq + j) * k..][..k]
                    } else {
                        &logits[i * k..][..k]
                    };
                    xent(row, y as usize)
                })
                .sum()
        })
        .collect())
}

fn xent(row: &[f32], y: usize) -> f64 {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
    lse - row[y] as f64
}

/// Runs the model over a split with `gates` and scores it.
pub fn evaluate(
    gpu: &Gpu,
    model: &Model,
    data: &TaskData,
    labels: &[String],
    gates: &Gates,
    batch_size: usize,
    progress: bool,
) -> Result<Metrics> {
    let opts = ForwardOptions {
        batch_size,
        hidden: false,
        progress,
        sentence: None,
        mlm_logits: false,
    };
    let res = run_forward(gpu, model, &data.examples, gates, &opts)?;
    let logits = res.logits.as_ref().expect("a task model has logits");
    let k = res.num_labels;
    let argmax = |row: &[f32]| {
        row.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|x| x.0)
            .unwrap_or(0)
    };
    match &data.words {
        None => {
            let (mut correct, mut loss) = (0usize, 0f64);
            for (row, y) in logits.chunks(k).zip(&data.labels) {
                let y = y[0] as usize;
                correct += (argmax(row) == y) as usize;
                loss += xent(row, y);
            }
            let n = data.len();
            let acc = correct as f64 / n as f64;
            Ok(Metrics {
                main: acc,
                accuracy: Some(acc),
                correct: Some(correct),
                precision: None,
                recall: None,
                f1: None,
                token_accuracy: None,
                examples: n,
                loss: loss / n as f64,
            })
        }
        Some(words) => {
            let seq = res.seq;
            let (mut gold_all, mut pred_all) = (Vec::new(), Vec::new());
            let (mut loss, mut counted) = (0f64, 0usize);
            for (i, (tags, first)) in words.iter().enumerate() {
                let mut pred = Vec::with_capacity(tags.len());
                for (w, f) in first.iter().enumerate() {
                    match f {
                        Some(j) => {
                            let row = &logits[(i * seq + j) * k..][..k];
                            pred.push(argmax(row));
                            loss += xent(row, tags[w]);
                            counted += 1;
                        }
                        // a word truncation cut off is predicted outside any entity
                        None => pred.push(usize::MAX),
                    }
                }
                let name = |t: usize| labels.get(t).map(|s| s.as_str()).unwrap_or("O");
                gold_all.push(
                    tags.iter()
                        .map(|&t| name(t).to_string())
                        .collect::<Vec<_>>(),
                );
                pred_all.push(
                    pred.iter()
                        .map(|&t| name(t).to_string())
                        .collect::<Vec<_>>(),
                );
            }
            let s = seqeval(&gold_all, &pred_all);
            Ok(Metrics {
                main: s.f1,
                accuracy: None,
                correct: None,
                precision: Some(s.precision),
                recall: Some(s.recall),
                f1: Some(s.f1),
                token_accuracy: Some(s.token_accuracy),
                examples: data.len(),
                loss: loss / counted.max(1) as f64,
            })
        }
    }
}

/// Entity-level scores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EntityScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub token_accuracy: f64,
}

/// seqeval's default (conlleval) scoring of BIO/IOB tags: an entity is a maximal chunk of one
/// type begun by B-X, or by I-X after a tag of another type or O; it counts when start, end
/// and type all match. Micro-averaged; 0 where a denominator is 0.
pub fn seqeval(gold: &[Vec<String>], pred: &[Vec<String>]) -> EntityScores {
    let (mut tp, mut np, mut ng) = (0usize, 0usize, 0usize);
    let (mut same, mut tokens) = (0usize, 0usize);
    for (g, p) in gold.iter().zip(pred) {
        let gc = chunks(g);
        let pc = chunks(p);
        ng += gc.len();
        np += pc.len();
        tp += pc.iter().filter(|c| gc.contains(c)).count();
        same += g.iter().zip(p).filter(|(a, b)| a == b).count();
        tokens += g.len();
    }
    let div = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (precision, recall) = (div(tp, np), div(tp, ng));
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    EntityScores {
        precision,
        recall,
        f1,
        token_accuracy: div(same, tokens),
    }
}

/// (type, start, end inclusive) chunks of a tag sequence, conlleval rules.
fn chunks(tags: &[String]) -> Vec<(String, usize, usize)> {
    let split = |t: &str| -> (char, String) {
        match t.split_once('-') {
            Some((p, ty)) if !p.is_empty() => (p.chars().next().unwrap_or('O'), ty.to_string()),
            _ => (t.chars().next().unwrap_or('O'), String::new()),
        }
    };
    let mut out = Vec::new();
    let mut cur: Option<(String, usize)> = None;
    let (mut prev_tag, mut prev_type) = ('O', String::new());
    for (i, t) in tags.iter().enumerate() {
        let (tag, ty) = split(t);
        // end of a chunk
        let end = matches!(
            (prev_tag, tag),
            ('E', _)
                | ('S', _)
                | ('B', 'B')
                | ('B', 'S')
                | ('B', 'O')
                | ('I', 'B')
                | ('I', 'S')
                | ('I', 'O')
        ) || (prev_tag != 'O' && prev_tag != '.' && prev_type != ty);
        if end {
            if let Some((cty, s)) = cur.take() {
                out.push((cty, s, i - 1));
            }
        }
        // start of a chunk
        let start = matches!(
            (prev_tag, tag),
            (_, 'B')
                | (_, 'S')
                | ('E', 'E')
                | ('E', 'I')
                | ('S', 'E')
                | ('S', 'I')
                | ('O', 'E')
                | ('O', 'I')
        ) || (tag != 'O' && tag != '.' && prev_type != ty);
        if start {
            if let Some((cty, s)) = cur.take() {
                out.push((cty, s, i - 1));
            }
            cur = Some((ty.clone(), i));
        }
        prev_tag = tag;
        prev_type = ty;
    }
    if let Some((cty, s)) = cur {
        out.push((cty, s, tags.len() - 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn chunks_follow_conlleval() {
        // I- after O starts an entity; a type change splits; B- after B- splits.
        let c = chunks(&v("O I-PER I-PER O B-LOC I-ORG B-LOC B-LOC"));
        assert_eq!(
            c,
            vec![
                ("PER".into(), 1, 2),
                ("LOC".into(), 4, 4),
                ("ORG".into(), 5, 5),
                ("LOC".into(), 6, 6),
                ("LOC".into(), 7, 7),
            ]
        );
    }

    #[test]
    fn seqeval_scores_exact_spans() {
        // seqeval's README example: precision 0.5, recall 0.5, f1 0.5
        let gold = vec![v("O O O B-MISC I-MISC I-MISC O"), v("B-PER I-PER O")];
        let pred = vec![v("O O B-MISC I-MISC I-MISC I-MISC O"), v("B-PER I-PER O")];
        let s = seqeval(&gold, &pred);
        assert!((s.precision - 0.5).abs() < 1e-12);
        assert!((s.recall - 0.5).abs() < 1e-12);
        assert!((s.f1 - 0.5).abs() < 1e-12);
        // tokens: 5 of 7 and 3 of 3 equal
        assert!((s.token_accuracy - 8.0 / 10.0).abs() < 1e-12);
    }
}
