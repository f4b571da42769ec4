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
    /// What each example adds to the main metric, for a paired bootstrap.
    #[serde(skip)]
    pub per_example: PerExample,
}

/// What each example adds to the main metric: enough to recompute it on a resample.
#[derive(Clone, Debug)]
pub enum PerExample {
    /// Sequence classification: whether each prediction is right.
    Correct(Vec<bool>),
    /// Token classification: each sentence's entity counts.
    Entities(Vec<EntityCounts>),
}

/// One sentence's entities: correct predictions, predictions, gold entities.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EntityCounts {
    pub correct: usize,
    pub predicted: usize,
    pub gold: usize,
}

impl PerExample {
    pub fn len(&self) -> usize {
        match self {
            PerExample::Correct(v) => v.len(),
            PerExample::Entities(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The main metric over the examples `draw` names (repeats count again): accuracy, or
    /// micro-averaged entity F1 = 2·correct / (predicted + gold), 0 when both are 0 (what
    /// 2PR/(P+R) comes to, with seqeval's zeros).
    pub fn metric(&self, draw: impl Iterator<Item = usize>) -> f64 {
        match self {
            PerExample::Correct(v) => {
                let (mut right, mut n) = (0usize, 0usize);
                for i in draw {
                    right += v[i] as usize;
                    n += 1;
                }
                right as f64 / n.max(1) as f64
            }
            PerExample::Entities(v) => {
                let mut t = EntityCounts::default();
                for c in draw.map(|i| v[i]) {
                    t.correct += c.correct;
                    t.predicted += c.predicted;
                    t.gold += c.gold;
                }
                let denominator = t.predicted + t.gold;
                if denominator == 0 {
                    0.0
                } else {
                    2.0 * t.correct as f64 / denominator as f64
                }
            }
        }
    }
}

/// The difference of the main metric between two runs over the same examples, with a paired
/// bootstrap: each resample draws examples with replacement and scores both runs on it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PairedDifference {
    /// `b` − `a` on every example.
    pub difference: f64,
    /// 95 % percentile interval of the resampled differences.
    pub ci95: Option<(f64, f64)>,
    /// Share of resamples where `b` does not beat `a` (difference ≤ 0): a one-sided p-value
    /// for "b is better".
    pub fraction_not_above_zero: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// [`PairedDifference`] of `b` against `a`, which must hold the same examples.
pub fn paired_bootstrap(
    a: &PerExample,
    b: &PerExample,
    resamples: usize,
    seed: u64,
) -> PairedDifference {
    assert_eq!(
        a.len(),
        b.len(),
        "a paired bootstrap needs the same examples"
    );
    let n = a.len();
    let mut rng = crate::maths::rng::SplitMix64::new(seed ^ 0xB007);
    let mut diffs = Vec::with_capacity(resamples);
    let mut draw = vec![0usize; n];
    for _ in 0..resamples {
        draw.iter_mut().for_each(|d| *d = rng.below(n));
        diffs.push(b.metric(draw.iter().copied()) - a.metric(draw.iter().copied()));
    }
    let not_above = diffs.iter().filter(|&&d| d <= 0.0).count();
    PairedDifference {
        difference: b.metric(0..n) - a.metric(0..n),
        fraction_not_above_zero: not_above as f64 / resamples.max(1) as f64,
        ci95: crate::maths::stats::ci95(&mut diffs),
        resamples,
        seed,
    }
}

/// The name of a task's main metric ([`Metrics::main`]).
pub fn main_metric_name(task: TaskHead) -> &'static str {
    match task {
        TaskHead::TokenClassification => "entity F1",
        _ => "accuracy",
    }
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
            let (mut right, mut loss) = (Vec::with_capacity(data.len()), 0f64);
            for (row, y) in logits.chunks(k).zip(&data.labels) {
                let y = y[0] as usize;
                right.push(argmax(row) == y);
                loss += xent(row, y);
            }
            let n = data.len();
            let correct = right.iter().filter(|&&r| r).count();
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
                per_example: PerExample::Correct(right),
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
                per_example: PerExample::Entities(entity_counts(&gold_all, &pred_all)),
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
    for c in entity_counts(gold, pred) {
        tp += c.correct;
        np += c.predicted;
        ng += c.gold;
    }
    let (mut same, mut tokens) = (0usize, 0usize);
    for (g, p) in gold.iter().zip(pred) {
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

/// Each sentence's entity counts, as [`seqeval`] sums them.
pub fn entity_counts(gold: &[Vec<String>], pred: &[Vec<String>]) -> Vec<EntityCounts> {
    gold.iter()
        .zip(pred)
        .map(|(g, p)| {
            let (gc, pc) = (chunks(g), chunks(p));
            EntityCounts {
                correct: pc.iter().filter(|c| gc.contains(c)).count(),
                predicted: pc.len(),
                gold: gc.len(),
            }
        })
        .collect()
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
        // the per-sentence counts give the same F1
        let per = PerExample::Entities(entity_counts(&gold, &pred));
        assert!((per.metric(0..2) - s.f1).abs() < 1e-12);
        // the second sentence twice: 2 right of 2 predicted, 2 gold
        assert!((per.metric([1, 1].into_iter()) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn paired_bootstrap_of_a_uniform_gain() {
        // b is right on every example a is, and on 10 more of 100
        let a: Vec<bool> = (0..100).map(|i| i % 2 == 0).collect();
        let b: Vec<bool> = (0..100).map(|i| i % 2 == 0 || i % 10 == 1).collect();
        let (a, b) = (PerExample::Correct(a), PerExample::Correct(b));
        let d = paired_bootstrap(&a, &b, 400, 3);
        assert!((d.difference - 0.10).abs() < 1e-12);
        let (lo, hi) = d.ci95.unwrap();
        // the difference is a binomial share of 10 %: its interval is about ±0.06 and above 0
        assert!(0.0 < lo && lo < 0.1 && 0.1 < hi && hi < 0.2, "{lo} {hi}");
        assert_eq!(d.fraction_not_above_zero, 0.0);
        // against itself: exactly zero in every resample
        let same = paired_bootstrap(&a, &a, 50, 3);
        assert_eq!((same.difference, same.ci95), (0.0, Some((0.0, 0.0))));
        assert_eq!(same.fraction_not_above_zero, 1.0);
        // the other way round: the same resamples, negated
        let (rlo, rhi) = paired_bootstrap(&b, &a, 400, 3).ci95.unwrap();
        assert!((rlo + hi).abs() < 1e-12 && (rhi + lo).abs() < 1e-12);
    }
}
