//! Host statistics for head analysis: the one-sided one-sample t-test of a role score,
//! multiple-comparison corrections, and rank correlations between head maps. Distributions come
//! from statrs; nothing here runs per token.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// A one-sided one-sample t-test, H0: mean ≤ τ against H1: mean > τ.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct TTest {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (ddof 1).
    pub sd: f64,
    pub t: f64,
    pub p: f64,
}

/// The test of `xs` against `tau`. With fewer than two values there is no test (p = 1); with
/// zero spread the mean decides (p = 0 above τ, else 1).
pub fn t_test_greater(xs: &[f64], tau: f64) -> TTest {
    let n = xs.len();
    let mean = if n == 0 {
        f64::NAN
    } else {
        xs.iter().sum::<f64>() / n as f64
    };
    if n < 2 {
        return TTest {
            n,
            mean,
            sd: f64::NAN,
            t: f64::NAN,
            p: 1.0,
        };
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
    let sd = var.sqrt();
    if sd == 0.0 {
        let above = mean > tau;
        return TTest {
            n,
            mean,
            sd,
            t: if above {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            },
            p: if above { 0.0 } else { 1.0 },
        };
    }
    let t = (mean - tau) / (sd / (n as f64).sqrt());
    let dist = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("n ≥ 2 degrees of freedom");
    TTest {
        n,
        mean,
        sd,
        t,
        p: dist.sf(t),
    }
}

/// Benjamini–Hochberg adjusted p-values (step-up, monotone, at most 1), in the input's order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        out[i] = running.min(1.0);
    }
    out
}

/// Bonferroni adjusted p-values.
pub fn bonferroni(p: &[f64]) -> Vec<f64> {
    let m = p.len() as f64;
    p.iter().map(|&x| (x * m).min(1.0)).collect()
}

/// Average ranks (1-based; ties share their mean rank).
fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            r[o] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson on average ranks); 0 when either side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (average_ranks(a), average_ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// The `q` quantile of sorted values, at the nearest rank (bootstrap percentile intervals).
pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> T {
    let n = sorted.len();
    sorted[((q * (n - 1) as f64).round() as usize).min(n - 1)]
}

/// The 95 % percentile interval of bootstrap estimates (non-finite ones dropped; None when none
/// is left). Sorts `v`.
pub fn ci95(v: &mut Vec<f64>) -> Option<(f64, f64)> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((quantile(v, 0.025), quantile(v, 0.975)))
}

/// Kendall's τ-b (ties in either variable accounted for); NaN when either side is constant.
pub fn kendall_tau_b(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let n = a.len();
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let da = a[i].total_cmp(&a[j]) as i64;
            let db = b[i].total_cmp(&b[j]) as i64;
            match (da, db) {
                (0, 0) => {}
                (0, _) => ties_a += 1,
                (_, 0) => ties_b += 1,
                _ if da == db => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    let n0 = (concordant + discordant) as f64;
    let denom = ((n0 + ties_a as f64) * (n0 + ties_b as f64)).sqrt();
    (concordant - discordant) as f64 / denom
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Student-t survival function by Simpson integration of the density: independent of
    /// statrs.
    fn t_sf(t: f64, df: f64) -> f64 {
        let ln_gamma = |x: f64| -> f64 {
            // Lanczos (g = 7), enough for the small half-integers used here
            let c = [
                0.999_999_999_999_809_9,
                676.520_368_121_885_1,
                -1_259.139_216_722_402_8,
                771.323_428_777_653_1,
                -176.615_029_162_140_6,
                12.507_343_278_686_905,
                -0.138_571_095_265_720_12,
                9.984_369_578_019_572e-6,
                1.505_632_735_149_311_6e-7,
            ];
            let x = x - 1.0;
            let mut a = c[0];
            let t = x + 7.5;
            for (i, &ci) in c.iter().enumerate().skip(1) {
                a += ci / (x + i as f64);
            }
            0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
        };
        let k = (ln_gamma((df + 1.0) / 2.0) - ln_gamma(df / 2.0)).exp()
            / (df * std::f64::consts::PI).sqrt();
        let f = |x: f64| k * (1.0 + x * x / df).powf(-(df + 1.0) / 2.0);
        // ∫_t^∞ f = 1/2 − ∫_0^t f for t ≥ 0
        let steps = 20_000;
        let h = t / steps as f64;
        let mut s = f(0.0) + f(t);
        for i in 1..steps {
            s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        0.5 - s * h / 3.0
    }

    #[test]
    fn t_test_matches_a_hand_computation() {
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0, 7.5];
        let r = t_test_greater(&xs, 2.0);
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let t = (mean - 2.0) / (sd / n.sqrt());
        assert!((r.mean - mean).abs() < 1e-12 && (r.sd - sd).abs() < 1e-12);
        assert!((r.t - t).abs() < 1e-12);
        assert!(
            (r.p - t_sf(t, n - 1.0)).abs() < 1e-7,
            "{} vs {}",
            r.p,
            t_sf(t, n - 1.0)
        );
        // below τ the one-sided p is large
        assert!(t_test_greater(&xs, 6.0).p > 0.9);
        // degenerate samples
        assert_eq!(t_test_greater(&[4.0], 2.0).p, 1.0);
        assert_eq!(t_test_greater(&[4.0, 4.0], 2.0).p, 0.0);
        assert_eq!(t_test_greater(&[1.0, 1.0], 2.0).p, 1.0);
    }

    #[test]
    fn corrections_match_their_definitions() {
        let p = [0.01, 0.04, 0.03, 0.5, 0.002];
        // BH by hand: sorted 0.002 0.01 0.03 0.04 0.5 → ×5/rank: 0.01 0.025 0.05 0.05 0.5,
        // then running minimum from the top
        let bh = benjamini_hochberg(&p);
        let want = [0.025, 0.05, 0.05, 0.5, 0.01];
        for (g, w) in bh.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{bh:?}");
        }
        assert_eq!(bonferroni(&p), vec![0.05, 0.2, 0.15, 1.0, 0.01]);
        assert!(benjamini_hochberg(&[]).is_empty());
    }

    #[test]
    fn spearman_with_ties_matches_hand_values() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // ties: ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): r = 4.5 / sqrt(4.5 * 5)
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]);
        assert!((r - 4.5 / (4.5f64 * 5.0).sqrt()).abs() < 1e-12, "{r}");
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn quantiles_and_intervals() {
        let v: Vec<usize> = (0..=100).collect();
        assert_eq!((quantile(&v, 0.025), quantile(&v, 0.975)), (3, 98));
        let mut x = vec![f64::NAN, 2.0, 1.0];
        assert_eq!(ci95(&mut x), Some((1.0, 2.0)));
        assert_eq!(ci95(&mut vec![f64::NAN]), None);
    }

    #[test]
    fn kendall_tau_b_with_ties() {
        assert_eq!(kendall_tau_b(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), 1.0);
        assert_eq!(kendall_tau_b(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
        // a = 1,2,2,3 ; b = 1,3,2,4: pairs C=5, D=0, ties in a only: 1 → 5 / sqrt(6·5)
        let t = kendall_tau_b(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]);
        assert!((t - 5.0 / 30f64.sqrt()).abs() < 1e-12, "{t}");
        assert!(kendall_tau_b(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }
}
