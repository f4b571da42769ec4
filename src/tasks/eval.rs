//! The `eval` job: a classifier's metrics on a labelled file, or a masked-LM head's on masked
//! text, optionally under a head mask.

use super::pretraining::{self, Objective};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::{Gates, Model, TaskHead};
use std::path::PathBuf;

pub struct EvalArgs {
    pub model: PathBuf,
    pub data: PathBuf,
    pub head_mask: Option<PathBuf>,
    pub batch_size: usize,
    pub objective: Objective,
    /// The pre-training objectives' corruption seed (the in-batch ones' batch order and
    /// dropout).
    pub mask_seed: u64,
    /// The in-batch objectives' settings.
    pub in_batch: pretraining::InBatch,
    /// With a head mask: also evaluate every head and compare the two runs by a paired
    /// bootstrap over examples with this many resamples (0: not).
    pub paired_bootstrap: usize,
    /// The bootstrap's seed.
    pub seed: u64,
}

/// `headroom eval`: accuracy of a sequence classifier on a labelled TSV, or entity-level
/// precision / recall / F1 (seqeval) and token accuracy of a token classifier on CoNLL,
/// optionally with a head mask. Returns the JSON report.
pub fn eval(gpu: &Gpu, args: &EvalArgs) -> Result<serde_json::Value> {
    if args.objective != Objective::Task {
        if args.paired_bootstrap > 0 {
            return Err(Error::Usage(
                "--paired-bootstrap compares a task metric: use it with --objective task".into(),
            ));
        }
        return eval_pretraining(gpu, args);
    }
    if args.paired_bootstrap > 0 && args.head_mask.is_none() {
        return Err(Error::Usage(
            "--paired-bootstrap compares a --head-mask run with every head: give --head-mask"
                .into(),
        ));
    }
    let model = Model::load(gpu, &args.model)?;
    if model.task == TaskHead::None {
        return Err(Error::Usage(format!(
            "{}: eval needs a sequence or token classifier (this checkpoint has no task head)",
            args.model.display()
        )));
    }
    let c = &model.config;
    let labels = super::model_labels(&model);
    let gates = super::data::head_mask_gates(&model, args.head_mask.as_deref())?;
    let split = super::load(&model, &args.data, &labels)?;
    super::warn_truncated(&args.data, &split, model.tokenizer.max_len());
    let start = std::time::Instant::now();
    let m = super::evaluate(gpu, &model, &split, &labels, &gates, args.batch_size, true)?;
    let mut report = serde_json::json!({
        "task": model.task.name(),
        "objective": args.objective.name(),
        "examples": m.examples,
        "loss": m.loss,
        "truncated": split.truncated,
        "heads_kept": heads_kept(&gates, c.total_heads()),
        "heads_total": c.total_heads(),
        "model": args.model.display().to_string(),
        "data": args.data.display().to_string(),
        "head_mask": args.head_mask.as_ref().map(|p| p.display().to_string()),
        "adapter": gpu.describe(),
        "wall_seconds": start.elapsed().as_secs_f64(),
    });
    let obj = report.as_object_mut().expect("an object");
    for (k, v) in [
        ("accuracy", m.accuracy),
        ("precision", m.precision),
        ("recall", m.recall),
        ("f1", m.f1),
        ("token_accuracy", m.token_accuracy),
    ] {
        if let Some(v) = v {
            obj.insert(k.into(), v.into());
        }
    }
    if let Some(n) = m.correct {
        obj.insert("correct".into(), n.into());
    }
    if args.paired_bootstrap > 0 {
        // the same examples with every head the checkpoint holds
        let all = super::evaluate(
            gpu,
            &model,
            &split,
            &labels,
            &Gates::Ones,
            args.batch_size,
            true,
        )?;
        let d = super::metrics::paired_bootstrap(
            &all.per_example,
            &m.per_example,
            args.paired_bootstrap,
            args.seed,
        );
        let mut paired = serde_json::to_value(&d).expect("a difference serialises");
        let p = paired.as_object_mut().expect("an object");
        p.insert(
            "metric".into(),
            super::metrics::main_metric_name(model.task).into(),
        );
        p.insert("with_head_mask".into(), m.main.into());
        p.insert("every_head".into(), all.main.into());
        obj.insert("paired_bootstrap".into(), paired);
    }
    Ok(report)
}

fn heads_kept(gates: &Gates, total: usize) -> usize {
    match gates {
        Gates::Broadcast(m) => m.iter().filter(|&&v| v != 0.0).count(),
        _ => total,
    }
}

/// `eval --objective mlm|rtd|contrastive|simcse`: the masked-LM head's loss, perplexity and
/// accuracy, the discriminator's loss, accuracy and replaced-token precision and recall, or an
/// in-batch objective's loss and top-1 retrieval within each batch.
fn eval_pretraining(gpu: &Gpu, args: &EvalArgs) -> Result<serde_json::Value> {
    let model = pretraining::load_model(gpu, &args.model, args.objective, false)?;
    let gates = super::data::head_mask_gates(&model, args.head_mask.as_deref())?;
    let start = std::time::Instant::now();
    let (bs, seed, total) = (args.batch_size, args.mask_seed, model.config.total_heads());
    let (metrics, truncated) = match args.objective {
        objective if objective.in_batch() => {
            let pairs = pretraining::load_pairs(&model, &args.data, objective)?;
            let spec = pretraining::contrastive_spec(&model, objective, args.in_batch, seed)?;
            pretraining::warn_truncated_pairs(&args.data, &pairs, model.tokenizer.max_len());
            let m = pretraining::evaluate_contrastive(
                gpu, &model, &pairs, &spec, &gates, bs, seed, true,
            )?;
            (serde_json::to_value(m), pairs.truncated)
        }
        objective => {
            let split = pretraining::load(&model, &args.data, objective, seed)?;
            super::warn_truncated(&args.data, &split, model.tokenizer.max_len());
            let m = match objective {
                Objective::Mlm => serde_json::to_value(pretraining::evaluate_mlm(
                    gpu, &model, &split, &gates, bs, true,
                )?),
                _ => serde_json::to_value(pretraining::evaluate_rtd(
                    gpu, &model, &split, &gates, bs, true,
                )?),
            };
            (m, split.truncated)
        }
    };
    let mut report = metrics.expect("metrics serialise");
    let obj = report.as_object_mut().expect("an object");
    let head_mask = args.head_mask.as_ref().map(|p| p.display().to_string());
    for (k, v) in [
        ("objective", args.objective.name().into()),
        ("mask_seed", args.mask_seed.into()),
        ("truncated", truncated.into()),
        ("heads_kept", heads_kept(&gates, total).into()),
        ("heads_total", total.into()),
        ("model", args.model.display().to_string().into()),
        ("data", args.data.display().to_string().into()),
        ("head_mask", head_mask.into()),
        ("adapter", gpu.describe().into()),
        ("wall_seconds", start.elapsed().as_secs_f64().into()),
    ] {
        obj.insert(k.to_string(), v);
    }
    Ok(report)
}
