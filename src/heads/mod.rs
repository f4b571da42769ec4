//! Head importance and pruning: gate-gradient and ablation scores, the `score` job and its
//! shards, learned gates (DSP, hard-concrete), the pruning strategies, physical export and the
//! head-skipping benchmark. Calls the model (and `tasks` for labelled data and metrics), never
//! the kernels.

pub mod bench;
pub mod export;
pub mod importance;
pub mod learned;
pub mod prune;
pub mod score;
pub mod shard;
