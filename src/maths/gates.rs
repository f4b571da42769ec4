//! Host maths of learned head gates (issue 11): the Gumbel soft top-K of differentiable subset
//! pruning (Li, Cotterell & Sachan; the relaxed subset sampling of Xie & Ermon, 2019) with its
//! exact backward, the hard top-K, the temperature schedule, and Voita et al.'s hard-concrete
//! gates with their L0 penalty. All in f64 over the L·H logits: tiny next to a forward pass.

use super::rng::SplitMix64;

/// What `1 − p` is clamped to before its logarithm (the reference code's float32 `tiny`), so a
/// head already chosen with p = 1 gets a finite, very negative logit for the later draws.
pub const ONE_MINUS_P_FLOOR: f64 = 1.175_494_350_822_287_5e-38;

/// The K softmax rounds of one soft top-K, kept for the backward pass.
pub struct SoftTopK {
    /// p^j for j = 1…K, each over all n heads.
    rounds: Vec<Vec<f64>>,
    tau: f64,
    /// m = Σ_j p^j, with Σ m = K. Each m_h is ≥ 0 but may exceed 1 at a finite temperature
    /// (r = (1, 0), K = 2, τ = 1 gives m = (1.23, 0.77)); m tends to the K-hot top-K as τ → 0.
    pub gates: Vec<f64>,
}

fn softmax_scaled(a: &[f64], tau: f64) -> Vec<f64> {
    let mx = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = a.iter().map(|&x| ((x - mx) / tau).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// The soft top-K of scores `r` (logits plus Gumbel noise) at temperature `tau`: α¹ = r; for
/// j = 1…K, pʲ = softmax(αʲ/τ) and αʲ⁺¹ = αʲ + log(max(1 − pʲ, floor)); m = Σⱼ pʲ.
/// `k` must be in 1..=r.len() and `tau` > 0.
pub fn soft_top_k(r: &[f64], k: usize, tau: f64) -> SoftTopK {
    assert!(
        k >= 1 && k <= r.len() && tau > 0.0,
        "soft_top_k: k {k} of {}, tau {tau}",
        r.len()
    );
    let mut alpha = r.to_vec();
    let mut rounds = Vec::with_capacity(k);
    let mut gates = vec![0.0; r.len()];
    for _ in 0..k {
        let p = softmax_scaled(&alpha, tau);
        for (i, &pi) in p.iter().enumerate() {
            gates[i] += pi;
            alpha[i] += (1.0 - pi).max(ONE_MINUS_P_FLOOR).ln();
        }
        rounds.push(p);
    }
    SoftTopK { rounds, tau, gates }
}

impl SoftTopK {
    /// ∂ℓ/∂r from ∂ℓ/∂m, through every round in reverse (the clamp passes no gradient).
    pub fn backward(&self, dgates: &[f64]) -> Vec<f64> {
        let n = self.gates.len();
        assert_eq!(dgates.len(), n);
        // gradient with respect to α^{j+1}; α^{K+1} is unused
        let mut dalpha = vec![0.0; n];
        for p in self.rounds.iter().rev() {
            // α^{j+1} = α^j + log(1 − p^j): p^j receives −dα^{j+1} / (1 − p^j) besides dm
            let dp: Vec<f64> = (0..n)
                .map(|i| {
                    let one_minus = 1.0 - p[i];
                    let through_log = if one_minus > ONE_MINUS_P_FLOOR {
                        -dalpha[i] / one_minus
                    } else {
                        0.0
                    };
                    dgates[i] + through_log
                })
                .collect();
            // p = softmax(α/τ): dα_i = p_i (dp_i − Σ_k p_k dp_k) / τ, plus the identity path
            let dot: f64 = p.iter().zip(&dp).map(|(a, b)| a * b).sum();
            for i in 0..n {
                dalpha[i] += p[i] * (dp[i] - dot) / self.tau;
            }
        }
        dalpha
    }
}

/// Indices of the `k` largest scores, largest first (ties: the lower index first), as a 0/1
/// mask over the scores — the final DSP mask, and the forward pass of the straight-through
/// variant.
pub fn hard_top_k(scores: &[f64], k: usize) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut mask = vec![0.0; scores.len()];
    for &i in idx.iter().take(k) {
        mask[i] = 1.0;
    }
    mask
}

/// A standard Gumbel draw: −log(−log u), u ~ U(0, 1).
pub fn gumbel(rng: &mut SplitMix64) -> f64 {
    -(-rng.uniform().ln()).ln()
}

/// The annealed temperature τ_t = τ₀ (τ_f / τ₀)^(t / T_c), held at τ_f from step T_c on.
pub fn anneal(tau0: f64, tau_final: f64, step: usize, anneal_steps: usize) -> f64 {
    if anneal_steps == 0 || step >= anneal_steps {
        return tau_final;
    }
    tau0 * (tau_final / tau0).powf(step as f64 / anneal_steps as f64)
}

/// Voita et al.'s hard-concrete gate (their released `temperature = 0.33`,
/// `stretch_limits = (−0.1, 1.1)`).
#[derive(Clone, Copy, Debug)]
pub struct HardConcrete {
    pub beta: f64,
    pub l: f64,
    pub r: f64,
}

impl Default for HardConcrete {
    fn default() -> Self {
        HardConcrete {
            beta: 0.33,
            l: -0.1,
            r: 1.1,
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl HardConcrete {
    /// A training sample z = min(1, max(0, s (r − l) + l)) with
    /// s = σ((log u − log(1 − u) + log α) / β), and ∂z/∂log α (0 where z is clamped).
    pub fn sample(&self, log_alpha: f64, u: f64) -> (f64, f64) {
        let s = sigmoid(((u.ln() - (1.0 - u).ln()) + log_alpha) / self.beta);
        let stretched = s * (self.r - self.l) + self.l;
        let z = stretched.clamp(0.0, 1.0);
        let dz = if stretched > 0.0 && stretched < 1.0 {
            (self.r - self.l) * s * (1.0 - s) / self.beta
        } else {
            0.0
        };
        (z, dz)
    }

    /// The expected L0 norm term of one head, P(z ≠ 0) = σ(log α − β log(−l / r)), and its
    /// derivative with respect to log α.
    pub fn l0(&self, log_alpha: f64) -> (f64, f64) {
        let p = sigmoid(log_alpha - self.beta * (-self.l / self.r).ln());
        (p, p * (1.0 - p))
    }

    /// The test-time gate min(1, max(0, σ(log α)(r − l) + l)); a head is kept where it is > 0.
    pub fn deterministic(&self, log_alpha: f64) -> f64 {
        (sigmoid(log_alpha) * (self.r - self.l) + self.l).clamp(0.0, 1.0)
    }

    /// P(z = 1) of a training sample: 1 − σ(β log((1 − l)/(r − 1)) − log α).
    pub fn p_one(&self, log_alpha: f64) -> f64 {
        1.0 - sigmoid(self.beta * ((1.0 - self.l) / (self.r - 1.0)).ln() - log_alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n).map(|_| 4.0 * rng.uniform() - 2.0).collect()
    }

    #[test]
    fn soft_top_k_sums_to_k() {
        // Σ m = K exactly; each m_h ≥ 0, but m_h ≤ 1 holds only as τ → 0 (see the next test)
        for (n, k, tau) in [(72, 24, 1.0), (72, 1, 0.3), (13, 12, 5.0), (7, 7, 0.05)] {
            let m = soft_top_k(&logits(n, n as u64), k, tau).gates;
            let sum: f64 = m.iter().sum();
            assert!((sum - k as f64).abs() < 1e-9, "n {n} k {k}: Σ m = {sum}");
            assert!(m.iter().all(|&x| x >= 0.0), "{m:?}");
        }
    }

    #[test]
    fn soft_top_1_is_the_softmax_and_two_rounds_match_a_hand_calculation() {
        let r = logits(10, 1);
        let m = soft_top_k(&r, 1, 0.8).gates;
        let z: f64 = r.iter().map(|x| (x / 0.8).exp()).sum();
        for (mi, ri) in m.iter().zip(&r) {
            assert!((mi - (ri / 0.8).exp() / z).abs() < 1e-12);
        }
        // By hand, r = (1, 0), K = 2, τ = 1: p¹ = (e/(1+e), 1/(1+e)) = (0.7311, 0.2689);
        // α² = (1 + log 0.2689, log 0.7311) = (−0.3133, −0.3133), so p² = (½, ½) and
        // m = (1.2311, 0.7689): a gate above 1 at a finite temperature.
        let m = soft_top_k(&[1.0, 0.0], 2, 1.0).gates;
        let p1 = 1.0f64.exp() / (1.0 + 1.0f64.exp());
        assert!(
            (m[0] - (p1 + 0.5)).abs() < 1e-12 && (m[1] - (1.5 - p1)).abs() < 1e-12,
            "{m:?}"
        );
    }

    #[test]
    fn soft_top_k_tends_to_the_hard_top_k_as_tau_goes_to_zero() {
        let r = logits(72, 3);
        for k in [1, 12, 24, 48] {
            let m = soft_top_k(&r, k, 1e-6).gates;
            let hard = hard_top_k(&r, k);
            let err = m
                .iter()
                .zip(&hard)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-9, "k {k}: max |m − hard| = {err}");
        }
    }

    #[test]
    fn soft_top_k_backward_matches_finite_differences() {
        for (n, k, tau) in [(9, 3, 0.7), (72, 24, 1.3), (5, 5, 0.2), (12, 1, 2.0)] {
            let r = logits(n, 11 + k as u64);
            let w = logits(n, 99); // ℓ = Σ w_i m_i
            let f = |x: &[f64]| -> f64 {
                soft_top_k(x, k, tau)
                    .gates
                    .iter()
                    .zip(&w)
                    .map(|(a, b)| a * b)
                    .sum()
            };
            let grad = soft_top_k(&r, k, tau).backward(&w);
            let h = 1e-6;
            for i in 0..n {
                let (mut up, mut dn) = (r.clone(), r.clone());
                up[i] += h;
                dn[i] -= h;
                let fd = (f(&up) - f(&dn)) / (2.0 * h);
                assert!(
                    (fd - grad[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "n {n} k {k} tau {tau} i {i}: analytic {} vs fd {fd}",
                    grad[i]
                );
            }
        }
    }

    #[test]
    fn hard_top_k_is_exactly_k_hot_with_ties_broken_by_index() {
        let m = hard_top_k(&[0.5, 2.0, 0.5, -1.0, 2.0], 3);
        assert_eq!(m, vec![1.0, 1.0, 0.0, 0.0, 1.0]);
        let r = logits(72, 5);
        for k in [1, 24, 72] {
            assert_eq!(hard_top_k(&r, k).iter().sum::<f64>(), k as f64);
        }
    }

    #[test]
    fn annealing_starts_at_tau0_ends_at_tau_final_and_is_geometric() {
        assert_eq!(anneal(1000.0, 1e-8, 0, 100), 1000.0);
        assert_eq!(anneal(1000.0, 1e-8, 100, 100), 1e-8);
        assert_eq!(anneal(1000.0, 1e-8, 500, 100), 1e-8);
        let mid = anneal(1000.0, 1e-8, 50, 100);
        assert!((mid - (1000.0f64 * 1e-8).sqrt()).abs() < 1e-12 * mid.max(1.0));
    }

    #[test]
    fn hard_concrete_samples_match_the_distributions_moments() {
        let hc = HardConcrete::default();
        let mut rng = SplitMix64::new(7);
        let n = 200_000;
        for log_alpha in [-2.0, 0.0, 1.5] {
            let (mut zeros, mut ones) = (0usize, 0usize);
            for _ in 0..n {
                let (z, _) = hc.sample(log_alpha, rng.uniform());
                zeros += (z == 0.0) as usize;
                ones += (z == 1.0) as usize;
            }
            let p0 = 1.0 - hc.l0(log_alpha).0;
            let p1 = hc.p_one(log_alpha);
            for (count, p, what) in [(zeros, p0, "P(z = 0)"), (ones, p1, "P(z = 1)")] {
                let got = count as f64 / n as f64;
                let sd = (p * (1.0 - p) / n as f64).sqrt();
                assert!(
                    (got - p).abs() < 5.0 * sd,
                    "log α {log_alpha}: {what} {got} vs {p}"
                );
            }
        }
    }

    #[test]
    fn hard_concrete_derivatives_match_finite_differences() {
        let hc = HardConcrete::default();
        let h = 1e-6;
        for (log_alpha, u) in [(0.3, 0.4), (-1.0, 0.7), (2.0, 0.2)] {
            let (z, dz) = hc.sample(log_alpha, u);
            assert!(z > 0.0 && z < 1.0, "pick unclamped points: z = {z}");
            let fd = (hc.sample(log_alpha + h, u).0 - hc.sample(log_alpha - h, u).0) / (2.0 * h);
            assert!((fd - dz).abs() < 1e-6, "dz {dz} vs {fd}");
            let (_, dl0) = hc.l0(log_alpha);
            let fd = (hc.l0(log_alpha + h).0 - hc.l0(log_alpha - h).0) / (2.0 * h);
            assert!((fd - dl0).abs() < 1e-8, "dl0 {dl0} vs {fd}");
        }
        // clamped samples pass no gradient; the test-time gate keeps heads with log α large
        assert_eq!(hc.sample(8.0, 0.9).1, 0.0);
        assert_eq!(hc.deterministic(8.0), 1.0);
        assert_eq!(hc.deterministic(-8.0), 0.0);
    }

    #[test]
    fn the_same_seed_draws_the_same_gumbel_noise() {
        let (mut a, mut b) = (SplitMix64::new(42), SplitMix64::new(42));
        let x: Vec<f64> = (0..100).map(|_| gumbel(&mut a)).collect();
        let y: Vec<f64> = (0..100).map(|_| gumbel(&mut b)).collect();
        assert_eq!(x, y);
        let mean = x.iter().sum::<f64>() / 100.0;
        assert!(
            (mean - 0.5772).abs() < 0.4,
            "Gumbel mean {mean} (Euler–Mascheroni 0.577)"
        );
    }
}
