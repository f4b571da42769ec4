//! `headroom finetune`: trains a task head (and the encoder) on the device, evaluates on dev
//! after each epoch and keeps the best epoch as a Hugging Face directory.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::AdamW;
use crate::model::{progress_bar, Gates, HeadSpec, Model, TaskHead, TrainConfig};
use crate::tasks::{self, Metrics, TaskData};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the weights train: AdamW at `lr` with linear warm-up over `warmup_ratio` of the steps
/// and linear decay to 0, global-norm clipping and hidden dropout. Shared by `finetune` and
/// learned gates trained jointly with the weights.
#[derive(Clone, Debug)]
pub struct Optimiser {
    /// Peak learning rate.
    pub lr: f32,
    pub warmup_ratio: f32,
    /// Decoupled weight decay (not on biases and LayerNorm parameters).
    pub weight_decay: f32,
    pub max_grad_norm: f32,
    /// None: the checkpoint's hidden_dropout_prob.
    pub dropout: Option<f32>,
    pub freeze_embeddings: bool,
}

impl Optimiser {
    /// Refuses a rate or warm-up the schedule cannot use; `lr_flag` names the rate's flag.
    pub fn check(&self, lr_flag: &str) -> Result<()> {
        let lr_ok = self.lr.is_finite() && self.lr > 0.0;
        if !(lr_ok && (0.0..1.0).contains(&self.warmup_ratio)) {
            return Err(Error::Usage(format!(
                "{lr_flag} must be positive and --warmup in [0, 1)"
            )));
        }
        if self.dropout.is_some_and(|p| !(0.0..1.0).contains(&p)) {
            return Err(Error::Usage("--dropout must be in [0, 1)".into()));
        }
        Ok(())
    }

    /// The trainer's settings for `model`, dropout masks seeded by `seed`.
    pub fn train_config(&self, model: &Model, seed: u64) -> TrainConfig {
        TrainConfig {
            adamw: AdamW {
                lr: self.lr,
                weight_decay: self.weight_decay,
                ..AdamW::default()
            },
            max_grad_norm: self.max_grad_norm,
            dropout: self
                .dropout
                .unwrap_or(model.config.hidden_dropout_prob as f32),
            seed,
            freeze_embeddings: self.freeze_embeddings,
        }
    }

    /// Warm-up steps of a run of `total` steps.
    pub fn warmup_steps(&self, total: usize) -> usize {
        (self.warmup_ratio as f64 * total as f64).ceil() as usize
    }

    /// The learning rate at 0-based step `step` of `total`.
    pub fn lr_at(&self, step: usize, total: usize) -> f32 {
        linear_schedule(self.lr, step, self.warmup_steps(total), total)
    }
}

#[derive(Clone, Debug)]
pub struct FinetuneArgs {
    pub model: PathBuf,
    pub task: TaskHead,
    pub train: PathBuf,
    pub dev: PathBuf,
    pub out: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimiser: Optimiser,
    pub seed: u64,
    pub max_len: usize,
    /// Batch examples of similar length (transformers' `group_by_length`): less padding.
    pub group_by_length: bool,
    /// Stop after this many optimizer steps (quick runs and tests).
    pub max_steps: Option<usize>,
    pub force: bool,
}

/// One epoch's record.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub steps: usize,
    pub train_loss: f64,
    pub dev: Metrics,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub best: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct FinetuneReport {
    pub model: String,
    pub task: String,
    pub labels: Vec<String>,
    pub train_examples: usize,
    pub dev_examples: usize,
    pub train_truncated: usize,
    pub epochs: Vec<EpochLog>,
    pub best_epoch: usize,
    pub best_dev: f64,
    pub adapter: String,
    pub settings: serde_json::Value,
    pub wall_seconds: f64,
}

/// HF's linear schedule with warm-up, evaluated at 0-based optimizer step `step`.
pub fn linear_schedule(lr: f32, step: usize, warmup: usize, total: usize) -> f32 {
    if step < warmup {
        lr * step as f32 / warmup.max(1) as f32
    } else {
        lr * ((total - step.min(total)) as f32 / (total - warmup).max(1) as f32).max(0.0)
    }
}

/// A seeded Fisher–Yates shuffle (splitmix64).
fn shuffle(v: &mut [usize], seed: u64) {
    let mut rng = crate::maths::rng::SplitMix64::new(seed);
    for i in (1..v.len()).rev() {
        let j = rng.below(i + 1);
        v.swap(i, j);
    }
}

/// Refuses an output directory that exists (unless `force`) or is an input.
fn check_out(args: &FinetuneArgs) -> Result<()> {
    crate::io::output::check_not_input(&args.out, &[&args.train, &args.dev])?;
    crate::io::output::check_out_dir(&args.out, &args.model, args.force)
}

/// Writes the model into `out` atomically (see [`crate::io::output::write_dir_atomic`]).
fn save(
    gpu: &Gpu,
    model: &Model,
    out: &Path,
    labels: &[String],
    report: &FinetuneReport,
) -> Result<()> {
    crate::io::output::write_dir_atomic(out, |tmp| {
        model.save_pretrained(gpu, tmp, labels)?;
        let log = serde_json::to_string_pretty(report).expect("report serialises");
        crate::io::output::write_atomic(&tmp.join("finetune.json"), log.as_bytes())
    })
}

pub fn finetune(gpu: &Gpu, args: &FinetuneArgs) -> Result<FinetuneReport> {
    let start = Instant::now();
    check_out(args)?;
    if args.epochs == 0 || args.batch_size == 0 {
        return Err(Error::Usage(
            "--epochs and --batch-size must be at least 1".into(),
        ));
    }
    let opt = &args.optimiser;
    opt.check("--lr")?;
    // Label names: the checkpoint's own when it has a head, else the training split's.
    let cfg = crate::model::Config::load(&args.model.join("config.json"))?;
    let mut labels = tasks::label_names(args.task, &args.train)?;
    let has_head = !cfg.id2label.is_empty()
        && cfg
            .architectures
            .iter()
            .any(|a| a.starts_with("BertFor") && a.ends_with("Classification"));
    if has_head {
        labels = cfg.id2label.values().cloned().collect();
    }
    let spec = HeadSpec {
        task: args.task,
        labels: labels.len(),
        seed: args.seed,
    };
    let mut model = Model::load_for_training(gpu, &args.model, &spec)?;
    model.tokenizer.limit_length(args.max_len);
    let train = tasks::load(&model, &args.train, &labels)?;
    let dev = tasks::load(&model, &args.dev, &labels)?;
    tasks::warn_truncated(&args.train, &train, model.tokenizer.max_len());
    tasks::warn_truncated(&args.dev, &dev, model.tokenizer.max_len());
    let tcfg = opt.train_config(&model, args.seed);
    let dropout = tcfg.dropout;
    let mut tr = model.trainer(gpu, tcfg)?;
    let per_epoch = train.len().div_ceil(args.batch_size);
    let mut total = per_epoch * args.epochs;
    if let Some(m) = args.max_steps {
        total = total.min(m.max(1));
    }
    let warmup = opt.warmup_steps(total);
    let settings = serde_json::json!({
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": opt.lr,
        "warmup_ratio": opt.warmup_ratio, "warmup_steps": warmup, "total_steps": total,
        "weight_decay": opt.weight_decay, "max_grad_norm": opt.max_grad_norm,
        "dropout": dropout, "attention_dropout": 0.0, "seed": args.seed,
        "max_len": model.tokenizer.max_len(), "freeze_embeddings": opt.freeze_embeddings,
        "train": args.train.display().to_string(), "dev": args.dev.display().to_string(),
    });
    let mut report = FinetuneReport {
        model: args.model.display().to_string(),
        task: args.task.name().into(),
        labels: labels.clone(),
        train_examples: train.len(),
        dev_examples: dev.len(),
        train_truncated: train.truncated,
        epochs: Vec::new(),
        best_epoch: 0,
        best_dev: f64::NEG_INFINITY,
        adapter: gpu.describe(),
        settings,
        wall_seconds: 0.0,
    };
    let mut step = 0usize;
    'epochs: for epoch in 1..=args.epochs {
        let t0 = Instant::now();
        let batches = epoch_batches(&train, args, args.seed.wrapping_add(epoch as u64));
        let bar = progress_bar(train.len());
        let (mut loss_sum, mut steps) = (0f64, 0usize);
        for idx in &batches {
            if step >= total {
                break;
            }
            if batch_has_no_labels(&train, idx) {
                continue;
            }
            let lr = opt.lr_at(step, total);
            let exs: Vec<_> = idx.iter().map(|&i| &train.examples[i]).collect();
            let ys = train.batch_labels(idx);
            let stats = match model.train_step(gpu, &mut tr, &exs, &ys, lr) {
                Ok(s) => s,
                Err(e) => {
                    bar.finish_and_clear();
                    let kept = if report.epochs.iter().any(|e| e.best) {
                        format!(
                            "the best checkpoint so far (epoch {}) is kept in {}",
                            report.best_epoch,
                            args.out.display()
                        )
                    } else {
                        "no epoch finished, so no checkpoint was written".into()
                    };
                    return Err(Error::Usage(format!("{e}; {kept}")));
                }
            };
            step += 1;
            steps += 1;
            loss_sum += stats.loss;
            bar.set_message(format!(
                "epoch {epoch} step {step}/{total} loss {:.4} lr {lr:.2e}",
                loss_sum / steps as f64
            ));
            bar.inc(idx.len() as u64);
            if bar.is_hidden() && (step.is_multiple_of(25) || step == 1) {
                // no terminal (a log file): a line now and then instead of the bar
                eprintln!(
                    "epoch {epoch} step {step}/{total}: loss {:.4} (epoch mean), lr {lr:.2e}, {:.0} s",
                    loss_sum / steps as f64,
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        bar.finish_and_clear();
        let train_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let metrics = tasks::evaluate(gpu, &model, &dev, &labels, &Gates::Ones, 64, true)?;
        let eval_seconds = t1.elapsed().as_secs_f64();
        let best = metrics.main > report.best_dev;
        eprintln!(
            "epoch {epoch}: train loss {:.4}, dev {} {:.4} (loss {:.4}), {:.0} s train + {:.0} s eval{}",
            loss_sum / steps.max(1) as f64,
            if args.task == TaskHead::TokenClassification { "F1" } else { "accuracy" },
            metrics.main,
            metrics.loss,
            train_seconds,
            eval_seconds,
            if best { " (best)" } else { "" }
        );
        if best {
            report.best_dev = metrics.main;
            report.best_epoch = epoch;
        }
        report.epochs.push(EpochLog {
            epoch,
            steps,
            train_loss: loss_sum / steps.max(1) as f64,
            dev: metrics,
            train_seconds,
            eval_seconds,
            best,
        });
        report.wall_seconds = start.elapsed().as_secs_f64();
        if best {
            save(gpu, &model, &args.out, &labels, &report)?;
        }
        if step >= total {
            break 'epochs;
        }
    }
    report.wall_seconds = start.elapsed().as_secs_f64();
    // the log of every epoch beside the best checkpoint
    let log = serde_json::to_string_pretty(&report).expect("report serialises");
    crate::io::output::write_atomic(&args.out.join("finetune.json"), log.as_bytes())?;
    Ok(report)
}

/// One epoch's batches: a seeded shuffle cut into batches or, with `group_by_length`, as
/// transformers' LengthGroupedSampler: megabatches of 50 batches sorted by length (longest
/// first) and cut into batches, so each batch pads little and the order stays random.
fn epoch_batches(data: &TaskData, args: &FinetuneArgs, seed: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    shuffle(&mut order, seed);
    let bs = args.batch_size;
    if args.group_by_length {
        for mega in order.chunks_mut(50 * bs) {
            mega.sort_by_key(|&i| std::cmp::Reverse(data.examples[i].ids.len()));
        }
    }
    order.chunks(bs).map(|c| c.to_vec()).collect()
}

fn batch_has_no_labels(data: &TaskData, idx: &[usize]) -> bool {
    idx.iter()
        .all(|&i| data.labels[i].iter().all(|&y| y == -100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_transformers_linear_warmup() {
        // get_linear_schedule_with_warmup(warmup=3, total=10) at lr 1
        let want = [
            0.0,
            1.0 / 3.0,
            2.0 / 3.0,
            1.0,
            6.0 / 7.0,
            5.0 / 7.0,
            4.0 / 7.0,
            3.0 / 7.0,
            2.0 / 7.0,
            1.0 / 7.0,
        ];
        for (s, w) in want.iter().enumerate() {
            assert!(
                (linear_schedule(1.0, s, 3, 10) - w).abs() < 1e-6,
                "step {s}"
            );
        }
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut a: Vec<usize> = (0..100).collect();
        let mut b = a.clone();
        shuffle(&mut a, 7);
        shuffle(&mut b, 7);
        assert_eq!(a, b);
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(a, (0..100).collect::<Vec<_>>());
    }
}
