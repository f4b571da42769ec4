//! The `eval` job: a classifier's metrics on a labelled file, or a masked-LM head's on masked
//! text, optionally under a head mask.

use super::mlm::{self, Objective};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::{Gates, Model, TaskHead, VOCAB_CHUNK};
use std::path::PathBuf;

pub struct EvalArgs {
    pub model: PathBuf,
    pub data: PathBuf,
    pub head_mask: Option<PathBuf>,
    pub batch_size: usize,
    pub objective: Objective,
    /// The masked-LM objective's masking seed.
    pub mask_seed: u64,
}

/// `headroom eval`: accuracy of a sequence classifier on a labelled TSV, or entity-level
/// precision / recall / F1 (seqeval) and token accuracy of a token classifier on CoNLL,
/// optionally with a head mask. Returns the JSON report.
pub fn eval(gpu: &Gpu, args: &EvalArgs) -> Result<serde_json::Value> {
    if args.objective == Objective::Mlm {
        return eval_mlm(gpu, args);
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
    Ok(report)
}

fn heads_kept(gates: &Gates, total: usize) -> usize {
    match gates {
        Gates::Broadcast(m) => m.iter().filter(|&&v| v != 0.0).count(),
        _ => total,
    }
}

/// `eval --objective mlm`: the masked-LM head's loss, perplexity and accuracy.
fn eval_mlm(gpu: &Gpu, args: &EvalArgs) -> Result<serde_json::Value> {
    let model = Model::load_for_mlm(gpu, &args.model, false, VOCAB_CHUNK)?;
    let gates = super::data::head_mask_gates(&model, args.head_mask.as_deref())?;
    let split = mlm::load(&model, &args.data, args.mask_seed)?;
    super::warn_truncated(&args.data, &split, model.tokenizer.max_len());
    let start = std::time::Instant::now();
    let m = mlm::evaluate(gpu, &model, &split, &gates, args.batch_size, true)?;
    let total = model.config.total_heads();
    Ok(serde_json::json!({
        "objective": args.objective.name(),
        "examples": m.examples,
        "masked_tokens": m.masked_tokens,
        "mask_seed": args.mask_seed,
        "loss": m.loss,
        "perplexity": m.perplexity,
        "accuracy": m.accuracy,
        "truncated": split.truncated,
        "heads_kept": heads_kept(&gates, total),
        "heads_total": total,
        "model": args.model.display().to_string(),
        "data": args.data.display().to_string(),
        "head_mask": args.head_mask.as_ref().map(|p| p.display().to_string()),
        "adapter": gpu.describe(),
        "wall_seconds": start.elapsed().as_secs_f64(),
    }))
}
