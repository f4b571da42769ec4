//! `shaders/contrastive.wgsl`: the in-batch contrastive loss over B pairs of unit sentence
//! embeddings (MultipleNegativesRankingLoss, optionally symmetric) and its backward through the
//! normalisation and the pooling to the last hidden states.

use super::Pooling;
use crate::gpu::{Recorder, Shader, Tensor};

/// The kernels' workgroup-memory bounds.
pub const MAX_PAIRS: usize = 256;
pub const MAX_HIDDEN: usize = 1024;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    pairs: u32,
    hidden: u32,
    seq: u32,
    scale: f32,
}

/// The shape and settings of one contrastive batch: rows 0..B of the embeddings are the first
/// sentences, B..2B the second.
#[derive(Clone, Copy, Debug)]
pub struct ContrastiveArgs {
    pub pairs: u32,
    pub hidden: u32,
    /// The padded length of the batch's hidden states (backward).
    pub seq: u32,
    /// Similarities are cosine × scale (sentence-transformers: 20).
    pub scale: f32,
    /// Also the loss of each second sentence against the first ones; each direction weighs 1/2.
    pub symmetric: bool,
    /// The pooling the embeddings came from (not Max).
    pub pooling: Pooling,
}

impl ContrastiveArgs {
    /// Rows of `loss` and of `probs` ([anchors, B]).
    pub fn anchors(&self) -> usize {
        self.pairs as usize * if self.symmetric { 2 } else { 1 }
    }

    fn check(&self) {
        assert!(
            (self.pairs as usize) <= MAX_PAIRS && (self.hidden as usize) <= MAX_HIDDEN,
            "the contrastive kernels take at most {MAX_PAIRS} pairs of {MAX_HIDDEN} units"
        );
        assert!(
            self.pooling != Pooling::Max,
            "max pooling has no backward here"
        );
    }

    fn params(&self) -> Params {
        Params {
            pairs: self.pairs,
            hidden: self.hidden,
            seq: self.seq,
            scale: self.scale,
        }
    }

    fn constants(&self, rec: &Recorder) -> [(&'static str, f64); 3] {
        [
            ("SYMMETRIC", if self.symmetric { 1.0 } else { 0.0 }),
            ("MODE", self.pooling as u32 as f64),
            ("ROW_WG", rec.gpu().tuning.row_wg as f64),
        ]
    }
}

/// loss [anchors] and each anchor's softmax over its candidates, probs [anchors, B], from the
/// unit embeddings [2B, H].
pub fn contrastive_loss(
    rec: &mut Recorder,
    a: &ContrastiveArgs,
    unit: &Tensor,
    loss: &Tensor,
    probs: &Tensor,
) {
    a.check();
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(Shader::Contrastive, "contrastive_loss", &a.constants(rec));
    let params = gpu.uniform("contrastive.params", &a.params());
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            unit.binding(),
            loss.binding(),
            probs.binding(),
        ],
    );
    rec.dispatch("contrastive_loss", &pipe, &bg, a.anchors() as u32);
}

/// dx [2B, T, H]: the gradient of the summed losses with respect to the last hidden states,
/// from the unit embeddings, the pooled ones before normalisation [2B, H], the softmax rows
/// and each sequence's length [2B].
pub fn contrastive_backward(
    rec: &mut Recorder,
    a: &ContrastiveArgs,
    unit: &Tensor,
    probs: &Tensor,
    pooled: &Tensor,
    lens: &Tensor,
    dx: &Tensor,
) {
    a.check();
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(
        Shader::Contrastive,
        "contrastive_backward",
        &a.constants(rec),
    );
    let params = gpu.uniform("contrastive.params", &a.params());
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, params.as_entire_binding()),
            (1, unit.binding()),
            (3, probs.binding()),
            (4, pooled.binding()),
            (5, lens.binding()),
            (6, dx.binding()),
        ],
    );
    rec.dispatch("contrastive_backward", &pipe, &bg, 2 * a.pairs);
}
