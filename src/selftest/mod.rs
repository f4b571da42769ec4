//! `headroom selftest`: the kernels on this adapter against the CPU oracle ([`reference`]) at
//! awkward sizes, so that a user on a new GPU or driver sees at once whether headroom computes
//! correctly there. Outputs are poisoned with NaN before each run, so an element a kernel
//! leaves unwritten fails. Each check reports its largest error; the variants are those the
//! adapter's tuning chooses, or with [`Variants::Every`] every variant the adapter can run.

pub mod reference;

use crate::error::Result;
use crate::gpu::{AttnBwdVariant, Gpu, MatmulVariant, Tensor};
use crate::kernels::attention_backward::{self, stats_len};
use crate::kernels::matmul::texture_variant_available;
use crate::kernels::{
    self, attention, Act, AttnArgs, AttnBackwardArgs, ContrastiveArgs, GateOutputs,
};
use crate::kernels::{
    AdamW, BiasGrad, EmbedArgs, Gelu, LinearWeight, MatmulArgs, MatmulOut, Pooling,
};
use crate::maths::rng::SplitMix64;
use reference::AttnShape;

/// Which variants of each kernel run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variants {
    /// The ones this adapter's tuning picks (what headroom runs here).
    Chosen,
    /// Every variant the adapter can run (the GPU ones too, where it has SUBGROUP).
    Every,
}

/// One kernel variant checked over its cases.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    pub kernel: &'static str,
    pub variant: String,
    pub cases: usize,
    /// Largest |got − want| over every checked element of every case.
    pub max_abs_error: f64,
    /// Largest |got − want| / (atol + rtol·|want|): the check passes at 1 or below.
    pub worst_ratio: f64,
    /// The case and element of the worst ratio.
    pub worst_at: String,
    pub pass: bool,
}

/// Accumulates one check's comparisons.
struct Tally {
    kernel: &'static str,
    variant: String,
    cases: usize,
    max_abs: f64,
    worst: f64,
    at: String,
}

impl Tally {
    fn new(kernel: &'static str, variant: impl Into<String>) -> Tally {
        Tally {
            kernel,
            variant: variant.into(),
            cases: 0,
            max_abs: 0.0,
            worst: 0.0,
            at: String::new(),
        }
    }

    /// Compares `got` with `want` element by element (NaN or a length mismatch fails).
    fn compare(&mut self, case: &str, what: &str, got: &[f32], want: &[f64], tol: Tol) {
        if got.len() != want.len() {
            self.worst = f64::INFINITY;
            self.at = format!(
                "{case}: {what} has {} elements, want {}",
                got.len(),
                want.len()
            );
            return;
        }
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let diff = (g as f64 - w).abs();
            let ratio = if diff.is_nan() {
                f64::INFINITY
            } else {
                diff / (tol.atol + tol.rtol * w.abs())
            };
            if diff.is_finite() {
                self.max_abs = self.max_abs.max(diff);
            }
            if ratio > self.worst || (ratio.is_infinite() && self.at.is_empty()) {
                self.worst = ratio;
                self.at = format!("{case}: {what}[{i}] = {g}, want {w}");
            }
        }
    }

    /// Fails on any element that is not finite (left unwritten over the NaN poison).
    fn finite(&mut self, case: &str, what: &str, got: &[f32]) {
        if let Some(i) = got.iter().position(|v| !v.is_finite()) {
            self.worst = f64::INFINITY;
            self.at = format!("{case}: {what}[{i}] = {} (unwritten?)", got[i]);
        }
    }

    fn done(self) -> Check {
        Check {
            kernel: self.kernel,
            variant: self.variant,
            cases: self.cases,
            max_abs_error: self.max_abs,
            worst_ratio: self.worst,
            worst_at: self.at,
            pass: self.worst <= 1.0,
        }
    }
}

/// |got − want| ≤ atol + rtol·|want|.
#[derive(Clone, Copy, Debug)]
struct Tol {
    atol: f64,
    rtol: f64,
}

/// The test inputs: uniform in [−scale, scale).
struct Inputs(SplitMix64);

impl Inputs {
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.0.uniform() * 2.0 - 1.0) as f32) * scale)
            .collect()
    }
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A buffer of `len` NaNs, so that an element a kernel leaves unwritten fails.
fn poisoned(gpu: &Gpu, len: usize) -> Result<Tensor> {
    let t = gpu.empty("selftest.out", len)?;
    gpu.fill_f32(&t, f32::NAN);
    Ok(t)
}

/// Runs every check on `gpu`; the report lists each kernel variant with its worst error.
pub fn run(gpu: &Gpu, variants: Variants) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    for v in matmul_variants(gpu, variants) {
        checks.push(matmul(gpu, v)?);
        checks.push(input_grad(gpu, v)?);
        checks.push(linear_grads(gpu, v)?);
    }
    checks.extend(attention_forward(gpu, variants)?);
    checks.extend(attention_backward(gpu, variants)?);
    checks.push(add_layernorm(gpu)?);
    checks.push(layernorm_backward(gpu)?);
    checks.extend(activations(gpu)?);
    checks.push(cross_entropy(gpu)?);
    checks.push(embedding(gpu)?);
    checks.push(pooling(gpu)?);
    checks.push(rows(gpu)?);
    checks.push(adamw(gpu)?);
    checks.push(contrastive(gpu)?);
    Ok(checks)
}

fn matmul_variants(gpu: &Gpu, variants: Variants) -> Vec<MatmulVariant> {
    match variants {
        Variants::Chosen => vec![gpu.tuning.matmul],
        Variants::Every if texture_variant_available(gpu) => {
            vec![MatmulVariant::Tiled, MatmulVariant::Texture]
        }
        Variants::Every => vec![MatmulVariant::Tiled],
    }
}

fn name(v: MatmulVariant) -> String {
    format!("{v:?}").to_lowercase()
}

/// c = act(a·wᵀ + b) at awkward shapes (not multiples of any tile), every epilogue, strided
/// rows (as the pooler reads each example's first row).
fn matmul(gpu: &Gpu, variant: MatmulVariant) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(1));
    let mut t = Tally::new("matmul", name(variant));
    let plain = [
        (1, 1, 1),
        (3, 5, 7),
        (65, 63, 17),
        (130, 96, 384),
        (7, 200, 33),
        (9, 129, 6),
    ];
    let mut cases: Vec<(usize, usize, usize, usize, Act, bool)> = plain
        .iter()
        .map(|&(m, n, k)| (m, n, k, k, Act::None, true))
        .collect();
    for act in [Act::Gelu, Act::GeluTanh, Act::Tanh, Act::Relu] {
        cases.push((37, 70, 50, 50, act, true));
    }
    cases.push((29, 33, 40, 40, Act::None, false));
    cases.push((5, 24, 32, 32 * 9, Act::Tanh, true));
    for (m, n, k, lda, act, bias) in cases {
        let a = rng.vec((m - 1) * lda + k, 1.0);
        let w = rng.vec(n * k, 0.5);
        let b = rng.vec(n, 0.5);
        let want = reference::matmul_ref(&a, lda, &w, bias.then_some(&b[..]), m, n, k, act as u32);
        let ta = gpu.upload_f32("a", &a)?;
        let tw = LinearWeight::new(gpu, "w", &w, n, k)?;
        let tb = gpu.upload_f32("b", &b)?;
        let c = poisoned(gpu, m * n)?;
        let mut rec = gpu.recorder();
        let args = MatmulArgs {
            a: &ta,
            w: &tw,
            bias: bias.then_some(&tb),
            m: m as u32,
            lda: lda as u32,
            act,
            gather: None,
        };
        kernels::matmul_variant(&mut rec, &args, &c, variant);
        rec.finish();
        let case = format!("m={m} n={n} k={k} lda={lda} {act:?} bias={bias}");
        let tol = Tol {
            atol: 2e-5 * (k as f64).sqrt(),
            rtol: 1e-4,
        };
        t.compare(&case, "c", &gpu.read_f32(&c), &widen(&want), tol);
        t.cases += 1;
    }
    Ok(t.done())
}

/// dx = dy·w, written and accumulated.
fn input_grad(gpu: &Gpu, variant: MatmulVariant) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(2));
    let mut t = Tally::new("matmul.dX", name(variant));
    for (m, n, k, accumulate) in [
        (1, 1, 1, false),
        (3, 5, 7, false),
        (65, 63, 17, true),
        (130, 96, 384, false),
        (9, 129, 6, true),
    ] {
        let dy = rng.vec(m * n, 1.0);
        let w = rng.vec(n * k, 0.5);
        let start = rng.vec(m * k, 1.0);
        let mut want: Vec<f64> = if accumulate {
            widen(&start)
        } else {
            vec![0.0; m * k]
        };
        for i in 0..m {
            for kk in 0..k {
                want[i * k + kk] += (0..n)
                    .map(|j| dy[i * n + j] as f64 * w[j * k + kk] as f64)
                    .sum::<f64>();
            }
        }
        let tdy = gpu.upload_f32("dy", &dy)?;
        let tw = LinearWeight::with_transpose(gpu, "w", &w, n, k)?;
        let dx = if accumulate {
            gpu.upload_f32("dx", &start)?
        } else {
            poisoned(gpu, m * k)?
        };
        let mut rec = gpu.recorder();
        let out = MatmulOut {
            ldc: k as u32,
            accumulate,
        };
        kernels::input_grad_variant(&mut rec, &tdy, &tw, m as u32, &dx, out, variant);
        rec.finish();
        let case = format!("m={m} n={n} k={k} accumulate={accumulate}");
        let tol = Tol {
            atol: 2e-5 * (n as f64).sqrt(),
            rtol: 1e-4,
        };
        t.compare(&case, "dx", &gpu.read_f32(&dx), &want, tol);
        t.cases += 1;
    }
    Ok(t.done())
}

/// dW = dyᵀ·x and db = Σ_rows dy, written and accumulated, x with strided rows.
fn linear_grads(gpu: &Gpu, variant: MatmulVariant) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(3));
    let mut t = Tally::new("matmul.dW+db", name(variant));
    for (m, n, k, ldx, accumulate) in [
        (1, 1, 1, 1, false),
        (70, 33, 20, 20, false),
        (130, 96, 65, 65, true),
        (17, 40, 24, 24 * 3, false),
    ] {
        let x = rng.vec((m - 1) * ldx + k, 1.0);
        let dy = rng.vec(m * n, 1.0);
        let (start_w, start_b) = (rng.vec(n * k, 1.0), rng.vec(n, 1.0));
        let (mut want_w, mut want_b) = if accumulate {
            (widen(&start_w), widen(&start_b))
        } else {
            (vec![0.0; n * k], vec![0.0; n])
        };
        for j in 0..n {
            for kk in 0..k {
                want_w[j * k + kk] += (0..m)
                    .map(|i| dy[i * n + j] as f64 * x[i * ldx + kk] as f64)
                    .sum::<f64>();
            }
            want_b[j] += (0..m).map(|i| dy[i * n + j] as f64).sum::<f64>();
        }
        let (tx, tdy) = (gpu.upload_f32("x", &x)?, gpu.upload_f32("dy", &dy)?);
        let ones = gpu.upload_f32("ones", &vec![1.0; m])?;
        let (dw, db) = if accumulate {
            (
                gpu.upload_f32("dw", &start_w)?,
                gpu.upload_f32("db", &start_b)?,
            )
        } else {
            (poisoned(gpu, n * k)?, poisoned(gpu, n)?)
        };
        let mut rec = gpu.recorder();
        let bias = BiasGrad {
            ones: &ones,
            db: &db,
        };
        let mnk = (m as u32, n as u32, k as u32);
        kernels::linear_grads_variant(
            &mut rec,
            &tdy,
            &tx,
            ldx as u32,
            mnk,
            accumulate,
            &dw,
            Some(bias),
            variant,
        );
        rec.finish();
        let case = format!("m={m} n={n} k={k} ldx={ldx} accumulate={accumulate}");
        let tol = Tol {
            atol: 2e-5 * (m as f64).sqrt(),
            rtol: 1e-4,
        };
        t.compare(&case, "dW", &gpu.read_f32(&dw), &want_w, tol);
        t.compare(&case, "db", &gpu.read_f32(&db), &want_b, tol);
        t.cases += 1;
    }
    Ok(t.done())
}

/// One attention case: lengths, padded length, heads, head dim, gates, layer of layers.
struct AttnCase {
    lens: Vec<u32>,
    seq: usize,
    heads: usize,
    head_dim: usize,
    layer: usize,
    layers: usize,
    /// Gates cycle through these.
    gates: &'static [f32],
}

impl AttnCase {
    fn shape(&self) -> AttnShape {
        AttnShape {
            batch: self.lens.len(),
            seq: self.seq,
            heads: self.heads,
            head_dim: self.head_dim,
            layer: self.layer,
            layers: self.layers,
        }
    }

    fn gates(&self) -> Vec<f32> {
        let s = self.shape();
        (0..s.batch * s.layers * s.heads)
            .map(|i| self.gates[i % self.gates.len()])
            .collect()
    }

    fn describe(&self) -> String {
        format!(
            "lens={:?} t={} heads={} d={}",
            self.lens, self.seq, self.heads, self.head_dim
        )
    }
}

/// T = 1; lengths far apart with T off the block size and zero and fractional gates; many
/// heads over several query blocks; head dims that are not powers of two (6: not a multiple of
/// 4, where the texture variants cannot run; 20; 24) or take 8 lanes per row (80).
fn attention_cases() -> Vec<AttnCase> {
    let case = |lens: &[u32], seq, heads, head_dim, layer, layers, gates| AttnCase {
        lens: lens.to_vec(),
        seq,
        heads,
        head_dim,
        layer,
        layers,
        gates,
    };
    let mixed: &'static [f32] = &[1.0, 0.0, 0.5, 0.8, 1.0];
    vec![
        case(&[1], 1, 1, 32, 0, 1, &[1.0]),
        case(&[77, 3, 40, 1], 77, 3, 64, 1, 2, mixed),
        case(&[130, 129], 130, 12, 32, 0, 1, &[1.0]),
        case(&[37, 1, 20, 33], 37, 3, 64, 0, 2, mixed),
        case(&[17, 1, 9], 17, 2, 24, 0, 1, mixed),
        case(&[13, 4], 13, 2, 6, 0, 1, &[0.0, 1.0, 0.25]),
        case(&[11, 25], 25, 2, 80, 0, 1, mixed),
        case(&[9, 5], 9, 2, 20, 0, 1, &[1.0, 0.75, 0.0, 1.0]),
    ]
}

/// The case's tensors on the device and the arguments that read them.
struct AttnInputs {
    qkv: Vec<f32>,
    gates: Vec<f32>,
    t_qkv: Tensor,
    t_lens: Tensor,
    t_gates: Tensor,
}

impl AttnInputs {
    fn new(gpu: &Gpu, c: &AttnCase, rng: &mut Inputs) -> Result<AttnInputs> {
        let s = c.shape();
        let qkv = rng.vec(s.batch * s.seq * 3 * s.heads * s.head_dim, 1.5);
        let gates = c.gates();
        Ok(AttnInputs {
            t_qkv: gpu.upload_f32("qkv", &qkv)?,
            t_lens: gpu.upload_u32("lens", &c.lens)?,
            t_gates: gpu.upload_f32("gates", &gates)?,
            qkv,
            gates,
        })
    }

    fn args(&self, s: AttnShape) -> AttnArgs<'_> {
        AttnArgs {
            qkv: &self.t_qkv,
            lens: &self.t_lens,
            gates: &self.t_gates,
            batch: s.batch as u32,
            seq: s.seq as u32,
            heads: s.heads as u32,
            head_dim: s.head_dim as u32,
            gate_off: (s.layer * s.heads) as u32,
            gate_stride: (s.layers * s.heads) as u32,
            rel_bias: None,
        }
    }
}

/// The fused forward, storage and texture variants: the output, and the log-sum-exp of every
/// head that runs (a head gated to 0 writes 0).
fn attention_forward(gpu: &Gpu, variants: Variants) -> Result<Vec<Check>> {
    // as `kernels::attention_fwd` picks: texture on CPU adapters where the shapes allow
    let runs: Vec<bool> = match variants {
        Variants::Chosen => vec![gpu.tuning.cpu],
        Variants::Every => vec![false, true],
    };
    let mut checks = Vec::new();
    for texture in runs {
        let label = if texture { "texture" } else { "storage" };
        let mut t = Tally::new("attention", label);
        let mut rng = Inputs(SplitMix64::new(4));
        for c in attention_cases() {
            let s = c.shape();
            let inp = AttnInputs::new(gpu, &c, &mut rng)?;
            let args = inp.args(s);
            // with every variant, a case the texture variant cannot run is left to storage
            if variants == Variants::Every && texture && !attention::texture_possible(gpu, &args) {
                continue;
            }
            let (want, want_lse) = reference::attention_ref(
                &inp.qkv, &c.lens, &inp.gates, s.batch, s.seq, s.heads, s.head_dim, s.layer,
                s.layers,
            );
            let out = poisoned(gpu, s.batch * s.seq * s.heads * s.head_dim)?;
            let lse = poisoned(gpu, s.batch * s.heads * s.seq)?;
            let mut rec = gpu.recorder();
            kernels::attention_fwd_variant(&mut rec, &args, &out, &lse, texture);
            rec.finish();
            let tol = Tol {
                atol: 2e-5,
                rtol: 1e-4,
            };
            let case = c.describe();
            t.compare(&case, "out", &gpu.read_f32(&out), &widen(&want), tol);
            t.compare(&case, "lse", &gpu.read_f32(&lse), &widen(&want_lse), tol);
            t.cases += 1;
        }
        if t.cases > 0 {
            checks.push(t.done());
        }
    }
    Ok(checks)
}

/// The fused backward, every variant: dQ|dK|dV, the gate gradients, and the entropy,
/// confidence and token-level |⟨O, dO⟩| sums of the layer's gates, against the exact f64
/// backward.
fn attention_backward(gpu: &Gpu, variants: Variants) -> Result<Vec<Check>> {
    let wanted: Vec<AttnBwdVariant> = match variants {
        Variants::Chosen => vec![gpu.tuning.attn_bwd],
        Variants::Every => vec![
            AttnBwdVariant::Storage,
            AttnBwdVariant::Texture,
            AttnBwdVariant::Tiled,
        ],
    };
    let mut checks = Vec::new();
    for want_variant in wanted {
        let mut t = Tally::new(
            "attention backward",
            format!("{want_variant:?}").to_lowercase(),
        );
        let mut rng = Inputs(SplitMix64::new(5));
        for c in attention_cases() {
            let s = c.shape();
            let inp = AttnInputs::new(gpu, &c, &mut rng)?;
            let args = inp.args(s);
            let runs = attention_backward::effective_variant(gpu, &args, want_variant);
            // with every variant, a case the variant cannot run is left to the one that runs
            if variants == Variants::Every && runs != want_variant {
                continue;
            }
            let hid = s.heads * s.head_dim;
            let dout = rng.vec(s.batch * s.seq * hid, 1.0);
            let t_dout = gpu.upload_f32("dout", &dout)?;
            let out = poisoned(gpu, s.batch * s.seq * hid)?;
            let lse = poisoned(gpu, s.batch * s.heads * s.seq)?;
            let mut rec = gpu.recorder();
            kernels::attention_fwd(&mut rec, &args, &out, &lse);
            rec.finish();
            let n_gates = s.batch * s.layers * s.heads;
            let dqkv = poisoned(gpu, inp.qkv.len())?;
            let stats = poisoned(gpu, stats_len(&args))?;
            let (dgates, entropy) = (poisoned(gpu, n_gates)?, poisoned(gpu, n_gates)?);
            let (token_abs, confidence) = (poisoned(gpu, n_gates)?, poisoned(gpu, n_gates)?);
            let mut rec = gpu.recorder();
            let bwd = AttnBackwardArgs {
                fwd: inp.args(s),
                out: &out,
                lse: &lse,
                dout: &t_dout,
            };
            let outs = GateOutputs {
                dgates: &dgates,
                entropy_sum: &entropy,
                token_abs: &token_abs,
                confidence_sum: &confidence,
            };
            kernels::attention_bwd_variant(&mut rec, &bwd, &dqkv, &stats, &outs, want_variant);
            rec.finish();
            let want = reference::attention_backward_ref(&inp.qkv, &dout, &c.lens, &inp.gates, s);
            let case = format!("{} ({runs:?} ran)", c.describe());
            let tol = Tol {
                atol: 2e-4,
                rtol: 2e-4,
            };
            t.compare(&case, "dqkv", &gpu.read_f32(&dqkv), &want.dqkv, tol);
            // only this layer's entries are written
            let layer: Vec<usize> = (0..s.batch)
                .flat_map(|b| (0..s.heads).map(move |h| s.gate(b, h)))
                .collect();
            let pick = |v: &[f32]| -> Vec<f32> { layer.iter().map(|&k| v[k]).collect() };
            let pick64 = |v: &[f64]| -> Vec<f64> { layer.iter().map(|&k| v[k]).collect() };
            for (what, got, want) in [
                ("dgates", &dgates, &want.dgates),
                ("entropy", &entropy, &want.entropy),
                ("confidence", &confidence, &want.confidence),
                ("token |<O,dO>|", &token_abs, &want.token_abs),
            ] {
                t.compare(&case, what, &pick(&gpu.read_f32(got)), &pick64(want), tol);
            }
            t.cases += 1;
        }
        if t.cases > 0 {
            checks.push(t.done());
        }
    }
    Ok(checks)
}

/// out = LN(x + res)·γ + β over rows of awkward widths.
fn add_layernorm(gpu: &Gpu) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(6));
    let mut t = Tally::new("add_ln", "");
    for (rows, hidden) in [(1, 1), (3, 37), (7, 384), (17, 768), (13, 100), (2, 1031)] {
        let (x, res) = (rng.vec(rows * hidden, 2.0), rng.vec(rows * hidden, 2.0));
        let (gamma, beta) = (rng.vec(hidden, 1.0), rng.vec(hidden, 1.0));
        let eps = 1e-12f32;
        let want: Vec<f64> = (0..rows)
            .flat_map(|r| {
                let row: Vec<f64> = (0..hidden)
                    .map(|i| x[r * hidden + i] as f64 + res[r * hidden + i] as f64)
                    .collect();
                reference::layernorm_ref(&row, &gamma, &beta, eps as f64)
            })
            .map(|v| v as f64)
            .collect();
        let tx = gpu.upload_f32("x", &x)?;
        let tr = gpu.upload_f32("res", &res)?;
        let (tg, tb) = (
            gpu.upload_f32("gamma", &gamma)?,
            gpu.upload_f32("beta", &beta)?,
        );
        let out = poisoned(gpu, rows * hidden)?;
        let mut rec = gpu.recorder();
        kernels::add_ln(
            &mut rec,
            &tx,
            &tr,
            &tg,
            &tb,
            eps,
            rows as u32,
            hidden as u32,
            &out,
        );
        rec.finish();
        let case = format!("rows={rows} hidden={hidden}");
        let tol = Tol {
            atol: 1e-4,
            rtol: 1e-4,
        };
        t.compare(&case, "out", &gpu.read_f32(&out), &want, tol);
        t.cases += 1;
    }
    Ok(t.done())
}

/// The rows' LayerNorm statistics of u = x + res: (x̂ [rows·hidden], rstd per row).
fn normalised(
    x: &[f32],
    res: &[f32],
    rows: usize,
    hidden: usize,
    eps: f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut xhat = vec![0.0; rows * hidden];
    let mut rstd = vec![0.0; rows];
    for r in 0..rows {
        let u: Vec<f64> = (0..hidden)
            .map(|i| x[r * hidden + i] as f64 + res[r * hidden + i] as f64)
            .collect();
        let mean = u.iter().sum::<f64>() / hidden as f64;
        let var = u.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / hidden as f64;
        rstd[r] = 1.0 / (var + eps).sqrt();
        for i in 0..hidden {
            xhat[r * hidden + i] = (u[i] - mean) * rstd[r];
        }
    }
    (xhat, rstd)
}

/// The LayerNorm backward: du = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ, and the
/// parameter gradients dγ = Σ_rows dy·x̂, dβ = Σ_rows dy (written, then accumulated).
fn layernorm_backward(gpu: &Gpu) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(7));
    let mut t = Tally::new("ln_backward+params", "");
    let eps = 1e-12f32;
    for (rows, hidden) in [(1, 2), (3, 32), (7, 384), (13, 100), (2, 1031)] {
        let n = rows * hidden;
        let (x, res, dy) = (rng.vec(n, 2.0), rng.vec(n, 2.0), rng.vec(n, 1.0));
        let gamma = rng.vec(hidden, 1.0);
        let start = (rng.vec(hidden, 1.0), rng.vec(hidden, 1.0));
        let (xhat, rstd) = normalised(&x, &res, rows, hidden, eps as f64);
        let mut want_dx = vec![0.0; n];
        let (mut want_dg, mut want_db) = (widen(&start.0), widen(&start.1));
        for r in 0..rows {
            let row = r * hidden..(r + 1) * hidden;
            let g: Vec<f64> = row
                .clone()
                .map(|i| dy[i] as f64 * gamma[i - r * hidden] as f64)
                .collect();
            let mean_g = g.iter().sum::<f64>() / hidden as f64;
            let mean_gx = g
                .iter()
                .zip(&xhat[row.clone()])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / hidden as f64;
            for (j, i) in row.enumerate() {
                want_dx[i] = rstd[r] * (g[j] - mean_g - xhat[i] * mean_gx);
                want_dg[j] += dy[i] as f64 * xhat[i];
                want_db[j] += dy[i] as f64;
            }
        }
        let up = |name: &str, v: &[f32]| gpu.upload_f32(name, v);
        let (tx, tr, tdy, tg) = (
            up("x", &x)?,
            up("res", &res)?,
            up("dy", &dy)?,
            up("gamma", &gamma)?,
        );
        let dx = poisoned(gpu, n)?;
        let stats = poisoned(gpu, 2 * rows)?;
        let (dg, db) = (up("dgamma", &start.0)?, up("dbeta", &start.1)?);
        let mut rec = gpu.recorder();
        let (r32, h32) = (rows as u32, hidden as u32);
        kernels::ln_backward(&mut rec, &tx, &tr, &tdy, &tg, eps, r32, h32, &dx);
        kernels::ln_param_grad(
            &mut rec, &tx, &tr, &tdy, eps, r32, h32, &stats, true, &dg, &db,
        );
        rec.finish();
        let case = format!("rows={rows} hidden={hidden}");
        let tol = Tol {
            atol: 1e-4,
            rtol: 1e-4,
        };
        t.compare(&case, "dx", &gpu.read_f32(&dx), &want_dx, tol);
        t.compare(&case, "dgamma", &gpu.read_f32(&dg), &want_dg, tol);
        t.compare(&case, "dbeta", &gpu.read_f32(&db), &want_db, tol);
        t.cases += 1;
    }
    Ok(t.done())
}

/// A real function of one variable (an activation or its derivative).
type ScalarFn = fn(f64) -> f64;

/// GELU (both forms) forward and backward, and the tanh and ReLU backwards, over lengths that
/// are not multiples of the workgroup.
fn activations(gpu: &Gpu) -> Result<Vec<Check>> {
    let mut rng = Inputs(SplitMix64::new(8));
    let tol = Tol {
        atol: 1e-5,
        rtol: 1e-4,
    };
    let mut checks = Vec::new();
    for form in [Gelu::Erf, Gelu::Tanh] {
        let mut t = Tally::new("gelu fwd+bwd", format!("{form:?}").to_lowercase());
        for n in [1, 63, 1000] {
            let (x, dy) = (rng.vec(n, 4.0), rng.vec(n, 1.0));
            // the activation and its derivative
            let (f, df): (ScalarFn, ScalarFn) = match form {
                Gelu::Erf => (reference::gelu, reference::gelu_grad),
                Gelu::Tanh => (reference::gelu_tanh, reference::gelu_tanh_grad),
            };
            let want_y: Vec<f64> = x.iter().map(|&v| f(v as f64)).collect();
            let want_dx: Vec<f64> = x
                .iter()
                .zip(&dy)
                .map(|(&v, &d)| df(v as f64) * d as f64)
                .collect();
            let (tx, tdy) = (gpu.upload_f32("x", &x)?, gpu.upload_f32("dy", &dy)?);
            let (y, dx) = (poisoned(gpu, n)?, poisoned(gpu, n)?);
            let mut rec = gpu.recorder();
            kernels::gelu_forward(&mut rec, form, &tx, n as u32, &y);
            kernels::gelu_backward(&mut rec, form, &tx, &tdy, n as u32, &dx);
            rec.finish();
            let case = format!("n={n}");
            t.compare(&case, "y", &gpu.read_f32(&y), &want_y, tol);
            t.compare(&case, "dx", &gpu.read_f32(&dx), &want_dx, tol);
            t.cases += 1;
        }
        checks.push(t.done());
    }
    let mut t = Tally::new("tanh, relu bwd", "");
    for n in [1, 63, 1000] {
        let (x, dy) = (rng.vec(n, 3.0), rng.vec(n, 1.0));
        let tanh: Vec<f32> = x.iter().map(|&v| v.tanh()).collect();
        let relu: Vec<f32> = x.iter().map(|&v| v.max(0.0)).collect();
        let want_tanh: Vec<f64> = tanh
            .iter()
            .zip(&dy)
            .map(|(&y, &d)| (1.0 - (y as f64).powi(2)) * d as f64)
            .collect();
        let want_relu: Vec<f64> = relu
            .iter()
            .zip(&dy)
            .map(|(&y, &d)| if y > 0.0 { d as f64 } else { 0.0 })
            .collect();
        let tdy = gpu.upload_f32("dy", &dy)?;
        let (ttanh, trelu) = (
            gpu.upload_f32("tanh", &tanh)?,
            gpu.upload_f32("relu", &relu)?,
        );
        let (dx_tanh, dx_relu) = (poisoned(gpu, n)?, poisoned(gpu, n)?);
        let mut rec = gpu.recorder();
        kernels::tanh_backward(&mut rec, &ttanh, &tdy, n as u32, &dx_tanh);
        kernels::relu_backward(&mut rec, &trelu, &tdy, n as u32, &dx_relu);
        rec.finish();
        let case = format!("n={n}");
        t.compare(&case, "tanh dx", &gpu.read_f32(&dx_tanh), &want_tanh, tol);
        t.compare(&case, "relu dx", &gpu.read_f32(&dx_relu), &want_relu, tol);
        t.cases += 1;
    }
    checks.push(t.done());
    Ok(checks)
}

/// Softmax cross-entropy per row with ignored rows (label −100) and dlogits = scale ·
/// (softmax − onehot).
fn cross_entropy(gpu: &Gpu) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(9));
    let mut t = Tally::new("cross_entropy", "");
    for (rows, classes, scale) in [(1, 1, 1.0f32), (70, 2, 0.5), (9, 17, 1.0), (130, 9, 0.25)] {
        let logits = rng.vec(rows * classes, 5.0);
        let labels: Vec<i32> = (0..rows)
            .map(|r| {
                if r % 7 == 3 {
                    -100
                } else {
                    ((r * 5 + 1) % classes) as i32
                }
            })
            .collect();
        let mut want_loss = vec![0.0; rows];
        let mut want_d = vec![0.0; rows * classes];
        for r in 0..rows {
            if labels[r] < 0 {
                continue;
            }
            let z = &logits[r * classes..(r + 1) * classes];
            let m = z.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v as f64));
            let sum: f64 = z.iter().map(|&v| (v as f64 - m).exp()).sum();
            let y = labels[r] as usize;
            want_loss[r] = m + sum.ln() - z[y] as f64;
            for c in 0..classes {
                let p = (z[c] as f64 - m).exp() / sum;
                want_d[r * classes + c] = scale as f64 * (p - (c == y) as u32 as f64);
            }
        }
        let bits: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let (tz, ty) = (
            gpu.upload_f32("logits", &logits)?,
            gpu.upload_u32("labels", &bits)?,
        );
        let (loss, dlogits) = (poisoned(gpu, rows)?, poisoned(gpu, rows * classes)?);
        let mut rec = gpu.recorder();
        let (r32, c32) = (rows as u32, classes as u32);
        kernels::cross_entropy(&mut rec, &tz, &ty, r32, c32, scale, &loss, &dlogits);
        rec.finish();
        let case = format!("rows={rows} classes={classes} scale={scale}");
        let tol = Tol {
            atol: 1e-5,
            rtol: 1e-4,
        };
        t.compare(&case, "loss", &gpu.read_f32(&loss), &want_loss, tol);
        t.compare(&case, "dlogits", &gpu.read_f32(&dlogits), &want_d, tol);
        t.cases += 1;
    }
    Ok(t.done())
}

/// Word + position + token-type embeddings with LayerNorm, positions from 0 (BERT) and from
/// 2 (RoBERTa), the word table whole and split into uneven chunks (as a table over the binding
/// limit is).
fn embedding(gpu: &Gpu) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(10));
    let mut t = Tally::new("embed_ln", "");
    let (vocab, h, npos, ntypes, b, seq) = (50usize, 48usize, 16usize, 2usize, 3usize, 7usize);
    let word = rng.vec(vocab * h, 1.0);
    let (pos, typ) = (rng.vec(npos * h, 1.0), rng.vec(ntypes * h, 1.0));
    let (gamma, beta) = (rng.vec(h, 1.0), rng.vec(h, 1.0));
    let ids: Vec<u32> = (0..b * seq).map(|_| rng.0.below(vocab) as u32).collect();
    let types: Vec<u32> = (0..b * seq).map(|_| rng.0.below(ntypes) as u32).collect();
    let up = |name: &str, v: &[f32]| gpu.upload_f32(name, v);
    let (ti, tt) = (
        gpu.upload_u32("ids", &ids)?,
        gpu.upload_u32("types", &types)?,
    );
    let (tp, ty, tg, tb) = (
        up("pos", &pos)?,
        up("typ", &typ)?,
        up("gamma", &gamma)?,
        up("beta", &beta)?,
    );
    for offset in [0usize, 2] {
        let want: Vec<f64> = (0..b * seq)
            .flat_map(|r| {
                let v: Vec<f64> = (0..h)
                    .map(|j| {
                        word[ids[r] as usize * h + j] as f64
                            + pos[(r % seq + offset) * h + j] as f64
                            + typ[types[r] as usize * h + j] as f64
                    })
                    .collect();
                reference::layernorm_ref(&v, &gamma, &beta, 1e-12)
            })
            .map(|v| v as f64)
            .collect();
        for splits in [vec![vocab], vec![17, 17, 16], vec![1, 48, 1]] {
            let mut chunks = Vec::new();
            let mut row0 = 0usize;
            for rows in &splits {
                let table = up("word", &word[row0 * h..(row0 + rows) * h])?;
                chunks.push((row0 as u32, *rows as u32, table));
                row0 += rows;
            }
            let out = poisoned(gpu, b * seq * h)?;
            let mut rec = gpu.recorder();
            let args = EmbedArgs {
                ids: &ti,
                type_ids: &tt,
                word_chunks: &chunks,
                pos: &tp,
                typ: &ty,
                n_types: ntypes as u32,
                gamma: &tg,
                beta: &tb,
                eps: 1e-12,
                n_rows: (b * seq) as u32,
                seq_len: seq as u32,
                pos_offset: offset as u32,
                hidden: h as u32,
            };
            kernels::embed_ln(&mut rec, &args, &out);
            rec.finish();
            let case = format!("chunks={splits:?} position offset={offset}");
            let tol = Tol {
                atol: 2e-5,
                rtol: 1e-4,
            };
            t.compare(&case, "out", &gpu.read_f32(&out), &want, tol);
            t.cases += 1;
        }
    }
    Ok(t.done())
}

/// Sentence pooling in every mode, plain and L2-normalised, H off the workgroup size and an
/// example of one token.
fn pooling(gpu: &Gpu) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(11));
    let mut t = Tally::new("pool", "");
    let (b, seq, h) = (5usize, 9usize, 70usize);
    let x = rng.vec(b * seq * h, 2.0);
    let lens: Vec<u32> = vec![9, 1, 4, 7, 2];
    let (tx, tl) = (gpu.upload_f32("x", &x)?, gpu.upload_u32("lens", &lens)?);
    for mode in [
        Pooling::Mean,
        Pooling::First,
        Pooling::Max,
        Pooling::MeanSqrtLen,
    ] {
        for normalize in [false, true] {
            let want = reference::pool_ref(&x, &lens, (b, seq, h), mode, normalize);
            let out = poisoned(gpu, b * h)?;
            let mut rec = gpu.recorder();
            let shape = (b as u32, seq as u32, h as u32);
            kernels::pool(&mut rec, &tx, &tl, shape, mode, normalize, &out);
            rec.finish();
            let case = format!("{mode:?} normalize={normalize}");
            let tol = Tol {
                atol: 1e-5,
                rtol: 1e-5,
            };
            t.compare(&case, "out", &gpu.read_f32(&out), &want, tol);
            t.cases += 1;
        }
    }
    Ok(t.done())
}

/// Row gathers, and the scatter-add of embedding gradients into a table whole and in chunks.
fn rows(gpu: &Gpu) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(12));
    let mut t = Tally::new("gather/scatter rows", "");
    let tol = Tol {
        atol: 1e-5,
        rtol: 1e-5,
    };
    let (n, width, table) = (300usize, 37usize, 50usize);
    let src = rng.vec(n * width, 1.0);
    let keys: Vec<u32> = (0..n).map(|_| rng.0.below(table) as u32).collect();
    let start = rng.vec(table * width, 1.0);
    let tsrc = gpu.upload_f32("src", &src)?;
    // gather: out[r] = src[rows[r]], rows repeating and out of order
    let picks: Vec<u32> = (0..41).map(|i| ((i * 37 + 5) % n) as u32).collect();
    let want: Vec<f64> = picks
        .iter()
        .flat_map(|&r| {
            src[r as usize * width..(r as usize + 1) * width]
                .iter()
                .map(|&v| v as f64)
        })
        .collect();
    let (tp, out) = (
        gpu.upload_u32("rows", &picks)?,
        poisoned(gpu, picks.len() * width)?,
    );
    let mut rec = gpu.recorder();
    kernels::gather_rows(&mut rec, &tsrc, &tp, picks.len() as u32, width as u32, &out);
    rec.finish();
    t.compare(
        "41 rows of 300",
        "gathered",
        &gpu.read_f32(&out),
        &want,
        tol,
    );
    t.cases += 1;
    // scatter-add: table[key] += src[r] for every row r with that key
    let mut want = widen(&start);
    for (r, &k) in keys.iter().enumerate() {
        for c in 0..width {
            want[k as usize * width + c] += src[r * width + c] as f64;
        }
    }
    for chunks in [vec![(0, table)], vec![(0, 20), (20, 30)]] {
        let mut got = Vec::new();
        for &(key0, rows) in &chunks {
            let part = gpu.upload_f32("table", &start[key0 * width..(key0 + rows) * width])?;
            let mut rec = gpu.recorder();
            kernels::scatter_add_rows(
                &mut rec,
                &tsrc,
                &keys,
                key0 as u32,
                rows as u32,
                width as u32,
                &part,
            )?;
            rec.finish();
            got.extend(gpu.read_f32(&part));
        }
        t.compare(
            &format!("table chunks {chunks:?}"),
            "table",
            &got,
            &want,
            tol,
        );
        t.cases += 1;
    }
    Ok(t.done())
}

/// AdamW as torch computes it (decoupled decay, bias corrections), three steps with a gradient
/// scale, over a length off the workgroup size.
fn adamw(gpu: &Gpu) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(13));
    let mut t = Tally::new("adamw", "");
    let n = 1001;
    let opt = AdamW {
        lr: 1e-2,
        weight_decay: 0.1,
        ..AdamW::default()
    };
    let param = rng.vec(n, 1.0);
    let (mut p, mut m, mut v) = (widen(&param), vec![0.0; n], vec![0.0; n]);
    let tp = gpu.upload_f32("param", &param)?;
    let (m1, m2) = (
        gpu.upload_f32("m1", &vec![0.0; n])?,
        gpu.upload_f32("m2", &vec![0.0; n])?,
    );
    let (b1, b2) = (opt.beta1 as f64, opt.beta2 as f64);
    for step in 1..=3u32 {
        let grad = rng.vec(n, 1.0);
        let scale = [1.0f32, 0.5, 0.25][step as usize - 1];
        let tg = gpu.upload_f32("grad", &grad)?;
        let mut rec = gpu.recorder();
        kernels::adamw_step(&mut rec, &opt, step, scale, &tp, &tg, &m1, &m2);
        rec.finish();
        let (bc1, bc2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
        for i in 0..n {
            let g = grad[i] as f64 * scale as f64;
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            p[i] = p[i] * (1.0 - opt.lr as f64 * opt.weight_decay as f64)
                - opt.lr as f64 / bc1 * m[i] / ((v[i] / bc2).sqrt() + opt.eps as f64);
        }
        let case = format!("step {step}, grad scale {scale}");
        let tol = Tol {
            atol: 1e-6,
            rtol: 1e-5,
        };
        t.compare(&case, "param", &gpu.read_f32(&tp), &p, tol);
        t.compare(&case, "m1", &gpu.read_f32(&m1), &m, tol);
        t.compare(&case, "m2", &gpu.read_f32(&m2), &v, tol);
        t.cases += 1;
    }
    Ok(t.done())
}

/// The in-batch contrastive loss over pooled, normalised rows: each anchor's loss and softmax
/// row against the f64 reference, and the gradient through the similarities, the
/// normalisation and the pooling against central differences of the reference's summed loss
/// (every position, padding included, of a few rows and columns).
fn contrastive(gpu: &Gpu) -> Result<Check> {
    let mut rng = Inputs(SplitMix64::new(14));
    let mut t = Tally::new("contrastive fwd+bwd", "");
    let (b, seq, h) = (5usize, 6usize, 37usize);
    let lens: Vec<u32> = vec![6, 1, 4, 5, 2, 3, 6, 2, 4, 5];
    let x32 = rng.vec(2 * b * seq * h, 1.0);
    let x = widen(&x32);
    let (tx, tl) = (gpu.upload_f32("x", &x32)?, gpu.upload_u32("lens", &lens)?);
    let shape = (b, seq, h);
    for (mode, symmetric) in [
        (Pooling::Mean, false),
        (Pooling::Mean, true),
        (Pooling::First, true),
        (Pooling::MeanSqrtLen, false),
    ] {
        let args = ContrastiveArgs {
            pairs: b as u32,
            hidden: h as u32,
            seq: seq as u32,
            scale: 20.0,
            symmetric,
            pooling: mode,
        };
        let (pooled, unit) = (poisoned(gpu, 2 * b * h)?, poisoned(gpu, 2 * b * h)?);
        let (loss, probs) = (
            poisoned(gpu, args.anchors())?,
            poisoned(gpu, args.anchors() * b)?,
        );
        let dx = poisoned(gpu, 2 * b * seq * h)?;
        let mut rec = gpu.recorder();
        let rows = ((2 * b) as u32, seq as u32, h as u32);
        kernels::pool(&mut rec, &tx, &tl, rows, mode, false, &pooled);
        kernels::pool(&mut rec, &tx, &tl, rows, mode, true, &unit);
        kernels::contrastive_loss(&mut rec, &args, &unit, &loss, &probs);
        kernels::contrastive_backward(&mut rec, &args, &unit, &probs, &pooled, &tl, &dx);
        rec.finish();
        let (want_loss, want_probs) =
            reference::contrastive_ref(&x, &lens, shape, 20.0, symmetric, mode);
        let case = format!("{mode:?} symmetric={symmetric}");
        let tol = Tol {
            atol: 1e-4,
            rtol: 1e-4,
        };
        t.compare(&case, "loss", &gpu.read_f32(&loss), &want_loss, tol);
        t.compare(&case, "probs", &gpu.read_f32(&probs), &want_probs, tol);
        let weight = if symmetric { 0.5 } else { 1.0 };
        let total = |x: &[f64]| -> f64 {
            let (l, _) = reference::contrastive_ref(x, &lens, shape, 20.0, symmetric, mode);
            weight * l.iter().sum::<f64>()
        };
        let got = gpu.read_f32(&dx);
        let (mut xp, eps) = (x.clone(), 1e-5);
        let (mut got_at, mut want_at) = (Vec::new(), Vec::new());
        for r in [0usize, 3, 6, 9] {
            for s in 0..seq {
                for c in [0usize, 17, 36] {
                    let i = (r * seq + s) * h + c;
                    xp[i] = x[i] + eps;
                    let up = total(&xp);
                    xp[i] = x[i] - eps;
                    let down = total(&xp);
                    xp[i] = x[i];
                    got_at.push(got[i]);
                    want_at.push((up - down) / (2.0 * eps));
                }
            }
        }
        let fd = Tol {
            atol: 1e-4,
            rtol: 1e-3,
        };
        t.compare(&case, "dx (finite differences)", &got_at, &want_at, fd);
        // and every element written, not only those checked
        t.finite(&case, "dx", &got);
        t.cases += 1;
    }
    Ok(t.done())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_fails_on_an_error_past_the_tolerance_and_on_nan() {
        let tol = Tol {
            atol: 1e-3,
            rtol: 0.0,
        };
        let mut t = Tally::new("k", "v");
        t.compare("c", "x", &[1.0, 2.0005], &[1.0, 2.0], tol);
        let c = t.done();
        assert!(c.pass && (c.worst_ratio - 0.5).abs() < 0.01, "{c:?}");
        let mut t = Tally::new("k", "v");
        t.compare("c", "x", &[1.0, 2.01], &[1.0, 2.0], tol);
        let c = t.done();
        assert!(!c.pass && c.worst_at.contains("x[1]"), "{c:?}");
        let mut t = Tally::new("k", "v");
        t.compare("c", "x", &[f32::NAN, 2.0], &[1.0, 2.0], tol);
        let c = t.done();
        assert!(!c.pass && c.worst_ratio.is_infinite() && c.worst_at.contains("x[0]"));
        let mut t = Tally::new("k", "v");
        t.compare("c", "x", &[1.0], &[1.0, 2.0], tol);
        assert!(!t.done().pass, "a short output fails");
    }
}
