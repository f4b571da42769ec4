//! The `eval` job: a classifier's metrics on a labelled file, optionally under a head mask.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::{Gates, Model, TaskHead};
use std::path::PathBuf;

pub struct EvalArgs {
    pub model: PathBuf,
    pub data: PathBuf,
    pub head_mask: Option<PathBuf>,
    pub batch_size: usize,
}

/// `headroom eval`: accuracy of a sequence classifier on a labelled TSV, or entity-level
/// precision / recall / F1 (seqeval) and token accuracy of a token classifier on CoNLL,
/// optionally with a head mask. Returns the JSON report.
pub fn eval(gpu: &Gpu, args: &EvalArgs) -> Result<serde_json::Value> {
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
    let heads_kept = match &gates {
        Gates::Broadcast(m) => m.iter().filter(|&&v| v != 0.0).count(),
        _ => c.total_heads(),
    };
    let mut report = serde_json::json!({
        "task": model.task.name(),
        "examples": m.examples,
        "loss": m.loss,
        "truncated": split.truncated,
        "heads_kept": heads_kept,
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
