//! `shaders/matmul.wgsl`: y = act(x·Wᵀ + b) in PyTorch Linear layout.

use crate::gpu::{MatmulVariant, Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    lda: u32,
    ldc: u32,
    tiles_n: u32,
    total: u32,
    _pad: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    None = 0,
    Gelu = 1,
    Tanh = 2,
}

pub struct MatmulArgs<'a> {
    /// Rows of A start every `lda` elements (lda = k for a dense [M, K]).
    pub a: &'a Tensor,
    /// [N, K].
    pub w: &'a Tensor,
    pub bias: Option<&'a Tensor>,
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub lda: u32,
    pub act: Act,
}

/// c[M, N] = act(a·wᵀ + bias).
pub fn matmul(rec: &mut Recorder, args: &MatmulArgs, c: &Tensor) {
    let gpu = rec.gpu();
    let _variant = gpu.tuning.matmul;
    let _ = MatmulVariant::Tiled;
    let (tm, tn) = (64u32, 64u32);
    let tiles_n = args.n.div_ceil(tn);
    let total = args.m.div_ceil(tm) * tiles_n;
    let constants = [
        ("ACT", args.act as u32 as f64),
        ("HAS_BIAS", args.bias.is_some() as u32 as f64),
    ];
    let pipe = gpu.pipeline(Shader::Matmul, "matmul_tiled", &constants);
    let params = gpu.uniform(
        "matmul.params",
        &Params {
            m: args.m,
            n: args.n,
            k: args.k,
            lda: args.lda,
            ldc: args.n,
            tiles_n,
            total,
            _pad: 0,
        },
    );
    // An unused bias binding still needs a buffer: bind W (never read when HAS_BIAS is false).
    let bias = args.bias.unwrap_or(args.w);
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            args.a.binding(),
            args.w.binding(),
            bias.binding(),
            c.binding(),
        ],
    );
    rec.dispatch(label(args.act), &pipe, &bg, total);
}

fn label(act: Act) -> &'static str {
    match act {
        Act::None => "matmul",
        Act::Gelu => "matmul+gelu",
        Act::Tanh => "matmul+tanh",
    }
}
