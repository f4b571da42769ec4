//! The data of any objective, loaded for one model, and the metric it is judged by: what
//! `prune --objective` ranks heads on and evaluates its masks with.

use super::pretraining::{self, InBatch, Objective, Pairs};
use super::TaskData;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::model::contrastive::ContrastiveSpec;
use crate::model::{Gates, Model};
use std::path::Path;

/// One file's examples under one objective.
pub enum ObjectiveData {
    /// A labelled split for the checkpoint's classifier.
    Task(TaskData),
    /// Text with 15 % of its tokens masked, for the masked-LM head.
    Mlm(TaskData),
    /// Text with replaced tokens, for ELECTRA's discriminator.
    Rtd(TaskData),
    /// Sentence pairs under an in-batch loss, batched in an order drawn from `seed`.
    InBatch {
        pairs: Pairs,
        spec: ContrastiveSpec,
        seed: u64,
    },
}

/// An evaluation's headline: the metric (higher is better) and the mean loss.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub metric: f64,
    pub loss: f64,
}

impl ObjectiveData {
    /// `path` read for `objective` and `model` (loaded with that objective's head): a labelled
    /// split with `labels`, text corrupted with `seed`, or pairs batched and (SimCSE) dropped
    /// out with `seed`. Warns about truncated examples.
    pub fn load(
        model: &Model,
        path: &Path,
        objective: Objective,
        labels: &[String],
        seed: u64,
        in_batch: InBatch,
    ) -> Result<ObjectiveData> {
        let max_len = model.tokenizer.max_len();
        if objective.in_batch() {
            let pairs = pretraining::load_pairs(model, path, objective)?;
            let spec = pretraining::contrastive_spec(model, objective, in_batch, seed)?;
            pretraining::warn_truncated_pairs(path, &pairs, max_len);
            return Ok(ObjectiveData::InBatch { pairs, spec, seed });
        }
        let split = match objective {
            Objective::Task => super::load(model, path, labels)?,
            _ => pretraining::load(model, path, objective, seed)?,
        };
        super::warn_truncated(path, &split, max_len);
        Ok(match objective {
            Objective::Task => ObjectiveData::Task(split),
            Objective::Mlm => ObjectiveData::Mlm(split),
            _ => ObjectiveData::Rtd(split),
        })
    }

    /// The labelled split of the task objective (None for the pre-training ones).
    pub fn task_split(&self) -> Option<&TaskData> {
        match self {
            ObjectiveData::Task(d) => Some(d),
            _ => None,
        }
    }

    /// What [`ObjectiveData::evaluate`]'s metric is, for `model`.
    pub fn metric_name(&self, model: &Model) -> &'static str {
        match self {
            ObjectiveData::Task(_) => super::metrics::main_metric_name(model.task),
            ObjectiveData::Mlm(_) => "masked-token accuracy",
            ObjectiveData::Rtd(_) => "replaced-token detection accuracy",
            ObjectiveData::InBatch { .. } => "in-batch top-1",
        }
    }

    /// `model` under `gates` on these examples: the task's main metric, the masked-LM head's
    /// or the discriminator's token accuracy, or in-batch top-1 retrieval; and the mean loss.
    pub fn evaluate(
        &self,
        gpu: &Gpu,
        model: &Model,
        labels: &[String],
        gates: &Gates,
        batch_size: usize,
        progress: bool,
    ) -> Result<Measured> {
        let bs = batch_size;
        Ok(match self {
            ObjectiveData::Task(d) => {
                let m = super::evaluate(gpu, model, d, labels, gates, bs, progress)?;
                Measured {
                    metric: m.main,
                    loss: m.loss,
                }
            }
            ObjectiveData::Mlm(d) => {
                let m = pretraining::evaluate_mlm(gpu, model, d, gates, bs, progress)?;
                Measured {
                    metric: m.accuracy,
                    loss: m.loss,
                }
            }
            ObjectiveData::Rtd(d) => {
                let m = pretraining::evaluate_rtd(gpu, model, d, gates, bs, progress)?;
                Measured {
                    metric: m.accuracy,
                    loss: m.loss,
                }
            }
            ObjectiveData::InBatch { pairs, spec, seed } => {
                let m = pretraining::evaluate_contrastive(
                    gpu, model, pairs, spec, gates, bs, *seed, progress,
                )?;
                Measured {
                    metric: m.in_batch_top1,
                    loss: m.loss,
                }
            }
        })
    }
}
