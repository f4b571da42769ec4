//! `shaders/loss.wgsl`: softmax cross-entropy with ignored label −100 over a few classes, and
//! `shaders/vocab_loss.wgsl`: the same over a vocabulary, one chunk of columns at a time.

use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    classes: u32,
    scale: f32,
    _pad: u32,
}

/// Per-row loss and dlogits = scale · (softmax − onehot); rows labelled −100 give 0 and 0.
/// `labels` holds i32 values.
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy(
    rec: &mut Recorder,
    logits: &Tensor,
    labels: &Tensor,
    rows: u32,
    classes: u32,
    scale: f32,
    loss: &Tensor,
    dlogits: &Tensor,
) {
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(Shader::Loss, "cross_entropy", &[]);
    let params = gpu.uniform(
        "cross_entropy.params",
        &Params {
            rows,
            classes,
            scale,
            _pad: 0,
        },
    );
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            logits.binding(),
            labels.binding(),
            loss.binding(),
            dlogits.binding(),
        ],
    );
    rec.dispatch("cross_entropy", &pipe, &bg, rows.div_ceil(64));
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct VocabParams {
    rows: u32,
    cols: u32,
    col0: u32,
    first: u32,
    scale: f32,
    _p: [u32; 3],
}

/// Rows of state a vocabulary cross-entropy keeps per logits row (see `vocab_loss.wgsl`).
pub const VOCAB_STATE_ROWS: usize = 6;

/// The running state of a softmax cross-entropy over vocabulary chunks, for `rows` rows with
/// labels `labels` (i32, −100 ignored): fold each chunk of logits in ascending ids with
/// [`VocabLoss::fold`], then [`VocabLoss::finish`] writes the losses; afterwards
/// [`VocabLoss::grad`] turns a chunk (recomputed) into its dlogits.
pub struct VocabLoss<'a> {
    pub labels: &'a Tensor,
    /// [6, rows]: max, sum, label logit, best logit, best id, lse.
    pub state: &'a Tensor,
    pub rows: u32,
}

impl VocabLoss<'_> {
    fn params(&self, rec: &Recorder, cols: u32, col0: u32, scale: f32) -> wgpu::Buffer {
        rec.gpu().uniform(
            "vocab_loss.params",
            &VocabParams {
                rows: self.rows,
                cols,
                col0,
                first: (col0 == 0) as u32,
                scale,
                _p: [0; 3],
            },
        )
    }

    /// Folds `logits` [rows, cols], the scores of ids col0 .. col0 + cols, into the state
    /// (the chunk at col0 = 0 starts it).
    pub fn fold(&self, rec: &mut Recorder, logits: &Tensor, cols: u32, col0: u32) {
        self.chunk_pass(rec, "vocab_lse", logits, cols, col0, 0.0);
    }

    /// One pass over a chunk of logits: `vocab_lse` or `vocab_grad`.
    fn chunk_pass(
        &self,
        rec: &mut Recorder,
        entry: &'static str,
        logits: &Tensor,
        cols: u32,
        col0: u32,
        scale: f32,
    ) {
        let gpu = rec.gpu();
        let pipe = gpu.pipeline(Shader::VocabLoss, entry, &[]);
        let params = self.params(rec, cols, col0, scale);
        let bg = gpu.bind_at(
            &pipe,
            &[
                (0, params.as_entire_binding()),
                (1, logits.binding()),
                (2, self.labels.binding()),
                (3, self.state.binding()),
            ],
        );
        rec.dispatch(entry, &pipe, &bg, self.rows);
    }

    /// After every chunk: each row's loss (0 where the label is −100) into `loss` [rows].
    pub fn finish(&self, rec: &mut Recorder, loss: &Tensor) {
        let gpu = rec.gpu();
        let pipe = gpu.pipeline(Shader::VocabLoss, "vocab_finish", &[]);
        let params = self.params(rec, 0, 0, 0.0);
        let bg = gpu.bind_at(
            &pipe,
            &[
                (0, params.as_entire_binding()),
                (2, self.labels.binding()),
                (3, self.state.binding()),
                (4, loss.binding()),
            ],
        );
        rec.dispatch("vocab_finish", &pipe, &bg, self.rows.div_ceil(64));
    }

    /// After `finish`: overwrites the chunk `logits` [rows, cols] at col0 with
    /// scale · (softmax − onehot), 0 on rows labelled −100.
    pub fn grad(&self, rec: &mut Recorder, logits: &Tensor, cols: u32, col0: u32, scale: f32) {
        self.chunk_pass(rec, "vocab_grad", logits, cols, col0, scale);
    }
}
