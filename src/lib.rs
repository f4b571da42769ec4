//! headroom: score, prune and analyse the attention heads of BERT-family encoders on any GPU,
//! through wgpu and hand-written WGSL compute shaders.
//!
//! The modules are layers (ARCHITECTURE.md); each uses only those below it:
//! `tasks`, `heads`, `analysis` (methods) → `model` → `kernels` → `gpu`, with `io` and `maths`
//! beneath whatever uses them. The command line (`src/cli/`) is the binary's and sits on top.

pub mod analysis;
pub mod error;
pub mod gpu;
pub mod heads;
pub mod io;
pub mod kernels;
pub mod maths;
pub mod model;
pub mod selftest;
pub mod tasks;

pub use error::{Error, Result};
