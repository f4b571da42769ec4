//! The CPU oracle: plain f64 references of the kernels, written for clarity, not speed. The
//! self-test and the test suite compare every kernel against these; nothing on the model path
//! calls them.

use crate::kernels::Pooling;

/// erf from Numerical Recipes' erfc (Chebyshev fit, |relative error| < 1.2e-7): ample for
/// checking f32 kernels, and independent of the kernels' Abramowitz–Stegun form.
pub fn erf(x: f64) -> f64 {
    const C: [f64; 10] = [
        -1.26551223,
        1.00002368,
        0.37409196,
        0.09678418,
        -0.18628806,
        0.27886807,
        -1.13520398,
        1.48851587,
        -0.82215223,
        0.17087277,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = C.iter().rev().fold(0.0, |acc, c| acc * t + c);
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 {
        1.0 - r
    } else {
        r - 1.0
    }
}

pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// GELU's tanh approximation (`gelu_new`).
pub fn gelu_tanh(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

/// d gelu / dx = Φ(x) + x·φ(x).
pub fn gelu_grad(x: f64) -> f64 {
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2)) + x * pdf
}

/// d gelu_tanh / dx.
pub fn gelu_tanh_grad(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let t = (c * (x + 0.044715 * x * x * x)).tanh();
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x)
}

/// y[m, n] = act(sum_k a[m*lda + k] w[n*K + k] + b[n]); act 0 none, 1 gelu, 2 tanh, 3 ReLU,
/// 4 the tanh GELU.
#[allow(clippy::too_many_arguments)]
pub fn matmul_ref(
    a: &[f32],
    lda: usize,
    w: &[f32],
    b: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
    act: u32,
) -> Vec<f32> {
    let mut y = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for kk in 0..k {
                s += a[i * lda + kk] as f64 * w[j * k + kk] as f64;
            }
            if let Some(b) = b {
                s += b[j] as f64;
            }
            y[i * n + j] = match act {
                1 => gelu(s),
                2 => s.tanh(),
                3 => s.max(0.0),
                4 => gelu_tanh(s),
                0 => s,
                _ => panic!("unknown activation {act}"),
            } as f32;
        }
    }
    y
}

/// One row's LayerNorm: (x − mean)/√(var + eps) · gamma + beta.
pub fn layernorm_ref(x: &[f64], gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f32> {
    let h = x.len() as f64;
    let mean = x.iter().sum::<f64>() / h;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / h;
    let rstd = 1.0 / (var + eps).sqrt();
    x.iter()
        .enumerate()
        .map(|(i, v)| ((v - mean) * rstd * gamma[i] as f64 + beta[i] as f64) as f32)
        .collect()
}

/// The shapes of one attention call: B examples padded to T tokens, `heads` heads of `d`
/// dimensions, at `layer` of `layers` (the gates are [B, layers, heads]).
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub layer: usize,
    pub layers: usize,
}

impl AttnShape {
    fn hidden(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Index of the gate of example `b`, head `h` at this layer.
    pub fn gate(&self, b: usize, h: usize) -> usize {
        (b * self.layers + self.layer) * self.heads + h
    }

    /// Softmax row of query `q` over the `len` real keys of example `b`, head `h`, and its
    /// log-sum-exp. qkv is [B*T, 3·hidden].
    pub fn probabilities(
        &self,
        qkv: &[f32],
        b: usize,
        h: usize,
        q: usize,
        len: usize,
    ) -> (Vec<f64>, f64) {
        let (t, hid, d) = (self.seq, self.hidden(), self.head_dim);
        let scale = 1.0 / (d as f64).sqrt();
        let at = |tok: usize, part: usize, i: usize| {
            qkv[(b * t + tok) * 3 * hid + part * hid + h * d + i] as f64
        };
        let s: Vec<f64> = (0..len)
            .map(|j| (0..d).map(|i| at(q, 0, i) * at(j, 1, i)).sum::<f64>() * scale)
            .collect();
        let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
        (s.iter().map(|v| (v - m).exp() / z).collect(), m + z.ln())
    }
}

/// Attention reference. qkv [B*T, 3H]; gates [B, L, heads]; returns (out [B*T, H], lse [B, heads, T]).
#[allow(clippy::too_many_arguments)]
pub fn attention_ref(
    qkv: &[f32],
    lens: &[u32],
    gates: &[f32],
    b: usize,
    t: usize,
    heads: usize,
    d: usize,
    layer: usize,
    n_layers: usize,
) -> (Vec<f32>, Vec<f32>) {
    let shape = AttnShape {
        batch: b,
        seq: t,
        heads,
        head_dim: d,
        layer,
        layers: n_layers,
    };
    let hid = heads * d;
    let mut out = vec![0f32; b * t * hid];
    let mut lse = vec![0f32; b * heads * t];
    for bi in 0..b {
        let len = lens[bi] as usize;
        for h in 0..heads {
            let g = gates[shape.gate(bi, h)] as f64;
            if g == 0.0 {
                continue;
            }
            for qi in 0..t {
                let (p, l) = shape.probabilities(qkv, bi, h, qi, len);
                lse[(bi * heads + h) * t + qi] = l as f32;
                for i in 0..d {
                    let acc: f64 = (0..len)
                        .map(|j| p[j] * qkv[(bi * t + j) * 3 * hid + 2 * hid + h * d + i] as f64)
                        .sum();
                    out[(bi * t + qi) * hid + h * d + i] = (acc * g) as f32;
                }
            }
        }
    }
    (out, lse)
}

/// The gated attention's backward, exact in f64, for L = Σ dout · out.
pub struct AttnGrads {
    /// ∂L/∂qkv [B*T, 3H] (zero for a head gated to 0).
    pub dqkv: Vec<f64>,
    /// Per gate of the layer, [B, layers, heads] (other layers' entries 0): ∂L/∂ξ = Σ_t ⟨O_t, dO_t⟩
    /// with O the ungated output (a gated-out head still gets it).
    pub dgates: Vec<f64>,
    /// Σ_t |⟨O_t, dO_t⟩| over every query row.
    pub token_abs: Vec<f64>,
    /// −Σ_j p log p and max_j p, summed over each example's real query tokens.
    pub entropy: Vec<f64>,
    pub confidence: Vec<f64>,
}

/// The backward of [`attention_ref`] with upstream gradient `dout` [B*T, H]: every query row
/// (padded ones too, over the real keys) counts, as in the kernels.
pub fn attention_backward_ref(
    qkv: &[f32],
    dout: &[f32],
    lens: &[u32],
    gates: &[f32],
    s: AttnShape,
) -> AttnGrads {
    let (t, d, hid) = (s.seq, s.head_dim, s.hidden());
    let scale = 1.0 / (d as f64).sqrt();
    let n_gates = s.batch * s.layers * s.heads;
    let mut r = AttnGrads {
        dqkv: vec![0.0; qkv.len()],
        dgates: vec![0.0; n_gates],
        token_abs: vec![0.0; n_gates],
        entropy: vec![0.0; n_gates],
        confidence: vec![0.0; n_gates],
    };
    let idx = |b: usize, tok: usize, part: usize, h: usize, i: usize| {
        (b * t + tok) * 3 * hid + part * hid + h * d + i
    };
    for b in 0..s.batch {
        let len = lens[b] as usize;
        for h in 0..s.heads {
            let k = s.gate(b, h);
            let g = gates[k] as f64;
            for q in 0..t {
                let (p, _) = s.probabilities(qkv, b, h, q, len);
                let dy = |i: usize| dout[(b * t + q) * hid + h * d + i] as f64;
                // ⟨O_t, dO_t⟩ with O ungated
                let od: f64 = (0..d)
                    .map(|i| {
                        let o: f64 = (0..len)
                            .map(|j| p[j] * qkv[idx(b, j, 2, h, i)] as f64)
                            .sum();
                        o * dy(i)
                    })
                    .sum();
                r.dgates[k] += od;
                r.token_abs[k] += od.abs();
                if q < len {
                    r.entropy[k] -= p
                        .iter()
                        .map(|&v| if v > 0.0 { v * v.ln() } else { 0.0 })
                        .sum::<f64>();
                    r.confidence[k] += p.iter().cloned().fold(0.0, f64::max);
                }
                if g == 0.0 {
                    continue;
                }
                // dP_j = g ⟨dO, V_j⟩; dS_j = P_j (dP_j − Σ_l P_l dP_l)
                let dp: Vec<f64> = (0..len)
                    .map(|j| {
                        g * (0..d)
                            .map(|i| dy(i) * qkv[idx(b, j, 2, h, i)] as f64)
                            .sum::<f64>()
                    })
                    .collect();
                let mean: f64 = p.iter().zip(&dp).map(|(a, b)| a * b).sum();
                for j in 0..len {
                    let ds = p[j] * (dp[j] - mean) * scale;
                    for i in 0..d {
                        r.dqkv[idx(b, q, 0, h, i)] += ds * qkv[idx(b, j, 1, h, i)] as f64;
                        r.dqkv[idx(b, j, 1, h, i)] += ds * qkv[idx(b, q, 0, h, i)] as f64;
                        r.dqkv[idx(b, j, 2, h, i)] += g * p[j] * dy(i);
                    }
                }
            }
        }
    }
    r
}

/// Sentence pooling of x [B, T, H] over each example's `lens` real rows: mean, first row,
/// elementwise max or sum / √len; with `normalize`, each row divided by max(‖row‖, 1e-12).
pub fn pool_ref(
    x: &[f32],
    lens: &[u32],
    (b, t, h): (usize, usize, usize),
    mode: Pooling,
    normalize: bool,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(b * h);
    for e in 0..b {
        let n = lens[e] as usize;
        let col = |j: usize| (0..n).map(move |r| x[(e * t + r) * h + j] as f64);
        let row: Vec<f64> = (0..h)
            .map(|j| match mode {
                Pooling::Mean => col(j).sum::<f64>() / n as f64,
                Pooling::First => x[e * t * h + j] as f64,
                Pooling::Max => col(j).fold(f64::MIN, f64::max),
                Pooling::MeanSqrtLen => col(j).sum::<f64>() / (n as f64).sqrt(),
            })
            .collect();
        let norm = if normalize {
            row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12)
        } else {
            1.0
        };
        out.extend(row.iter().map(|v| v / norm));
    }
    out
}

/// The contrastive loss of B pairs in f64: pooled rows of x [2B, T, H] (lengths `lens`),
/// normalised; the sum over anchors of cross-entropy towards each partner, each direction
/// weighing 1/2 when symmetric. Returns (losses per anchor, softmax rows).
pub fn contrastive_ref(
    x: &[f64],
    lens: &[u32],
    (b, t, h): (usize, usize, usize),
    scale: f64,
    symmetric: bool,
    mode: Pooling,
) -> (Vec<f64>, Vec<f64>) {
    let unit: Vec<Vec<f64>> = (0..2 * b)
        .map(|r| {
            let n = lens[r] as usize;
            let row: Vec<f64> = (0..h)
                .map(|j| {
                    let col = (0..n).map(|s| x[(r * t + s) * h + j]);
                    match mode {
                        Pooling::Mean => col.sum::<f64>() / n as f64,
                        Pooling::MeanSqrtLen => col.sum::<f64>() / (n as f64).sqrt(),
                        _ => x[r * t * h + j],
                    }
                })
                .collect();
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            row.iter().map(|v| v / norm).collect()
        })
        .collect();
    let (mut losses, mut probs) = (Vec::new(), Vec::new());
    let anchors = if symmetric { 2 * b } else { b };
    for k in 0..anchors {
        let s: Vec<f64> = (0..b)
            .map(|j| {
                let (anchor, other) = if k < b { (k, b + j) } else { (k, j) };
                scale
                    * (0..h)
                        .map(|c| unit[anchor][c] * unit[other][c])
                        .sum::<f64>()
            })
            .collect();
        let m = s.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + s.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        losses.push(lse - s[k % b]);
        probs.extend(s.iter().map(|v| (v - lse).exp()));
    }
    (losses, probs)
}
