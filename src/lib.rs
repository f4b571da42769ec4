//! headroom: score, prune and analyse the attention heads of BERT-family encoders on any GPU,
//! through wgpu and hand-written WGSL compute shaders.

pub mod error;
pub mod gpu;
pub mod kernels;

pub use error::{Error, Result};
pub mod bench;
pub mod commands;
pub mod compare;
pub mod conllu;
pub mod data;
pub mod export;
pub mod finetune;
pub mod importance;
pub mod model;
pub mod mst;
pub mod output;
pub mod plot;
pub mod prune;
pub mod rng;
pub mod roles;
pub mod stats;
pub mod syntax;
pub mod tasks;
