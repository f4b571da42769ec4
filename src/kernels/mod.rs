//! One thin typed wrapper per shader entry point. Nothing else in headroom dispatches.

pub mod activation;
pub mod attention;
pub mod attention_analysis;
pub mod attention_backward;
pub mod contrastive;
pub mod embed;
pub mod layernorm;
pub mod loss;
pub mod matmul;
pub mod optimizer;
pub mod pool;
pub mod segment;

pub use activation::{dropout, gelu_backward, gelu_forward, relu_backward, tanh_backward, Gelu};
pub use attention::{attention_fwd, attention_fwd_variant, AttnArgs};
pub use attention_analysis::{attention_analysis, token_info, AnalysisArgs};
pub use attention_backward::{
    attention_bwd, attention_bwd_variant, relative_bias_grad, AttnBackwardArgs, GateOutputs,
};
pub use contrastive::{contrastive_backward, contrastive_loss, ContrastiveArgs};
pub use embed::{embed_ln, embed_sum, EmbedArgs};
pub use layernorm::{add_ln, ln_backward, ln_param_grad};
pub use loss::{cross_entropy, VocabLoss, VOCAB_STATE_ROWS};
pub use matmul::{
    bias_grad, bias_rows, input_grad, input_grad_variant, linear_grads, linear_grads_variant,
    matmul, matmul_into, matmul_variant, weight_grad, Act, BiasGrad, GatherSide, HeadGather,
    LinearWeight, MatmulArgs, MatmulOut,
};
pub use optimizer::{adamw_step, sum_squares, AdamW};
pub use pool::{pool, Pooling};
pub use segment::{gather_rows, relative_bias, scatter_add_rows};

/// A kernel in its two forms, a scalar entry point and its vec4 twin (a lane per 4 elements,
/// loading and storing whole vectors): the twin runs when the length or row width is a
/// multiple of 4, the scalar form otherwise (`activation.wgsl`, `layernorm.wgsl`).
#[derive(Clone, Copy)]
pub(crate) struct Vec4Twin {
    /// Also the dispatch's name (`--profile`), whichever form runs.
    pub scalar: &'static str,
    pub vec4: &'static str,
}

impl Vec4Twin {
    /// The entry point for a length or row width `n`.
    pub fn pick(self, n: u32) -> &'static str {
        if n.is_multiple_of(4) {
            self.vec4
        } else {
            self.scalar
        }
    }

    /// How many lanes `n` elements take: one per vector, or per element.
    pub fn lanes(self, n: u32) -> u32 {
        if n.is_multiple_of(4) {
            n / 4
        } else {
            n
        }
    }
}
