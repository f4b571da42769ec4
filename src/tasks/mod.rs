//! Tasks: labelled data encoded for a model, metrics, and the jobs that run a model over a
//! data file: `forward`, `eval` and fine-tuning. Calls the model, never the kernels.

pub mod data;
pub mod eval;
pub mod finetune;
pub mod forward;
pub mod metrics;
pub mod objective;
pub mod pretraining;

pub use data::{label_names, load, model_labels, parse_task, warn_truncated, TaskData, WordGold};
pub use metrics::{evaluate, example_losses, seqeval, EntityScores, Metrics};
pub use objective::ObjectiveData;
pub use pretraining::Objective;
