//! `headroom compare A.json B.json`: agreement between two head maps (importance from `score`,
//! a role's mean scores from `roles`, or a plain [L][H] array): Spearman and Kendall τ-b over
//! heads, with 95 % bootstrap intervals when both files carry per-example data (`score`'s
//! per-example gate gradients; the two files' examples are resampled independently, so they
//! may come from different tasks or languages), top-k overlap (Jaccard) at 10 / 25 / 50 % of
//! the heads, and Spearman within each layer.

use crate::error::{Error, Result};
use crate::maths::stats::{ci95, kendall_tau_b, spearman};
use std::path::Path;

/// One head map: [L·H] values, and per-example rows when the file has them.
pub struct HeadMap {
    pub layers: usize,
    pub heads: usize,
    pub values: Vec<f64>,
    pub per_example: Option<Vec<Vec<f64>>>,
}

fn shape_of(v: &serde_json::Value) -> Option<(usize, usize)> {
    let s = v.as_array()?;
    Some((s.first()?.as_u64()? as usize, s.get(1)?.as_u64()? as usize))
}

fn numbers(v: &serde_json::Value) -> Option<Vec<f64>> {
    v.as_array()?
        .iter()
        .map(|x| Some(x.as_f64().unwrap_or(f64::NAN)).filter(|_| x.is_number() || x.is_null()))
        .collect()
}

/// Reads a head map; `role` picks the role of a roles.json.
pub fn read_map(path: &Path, role: Option<&str>) -> Result<HeadMap> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::input(path, format!("not JSON: {e}")))?;
    let bad = |what: &str| Error::input(path, what.to_string());
    // a plain [L][H] array
    if let Some(rows) = v.as_array() {
        let rows: Vec<Vec<f64>> = rows
            .iter()
            .map(numbers)
            .collect::<Option<_>>()
            .ok_or_else(|| bad("expected an [L][H] array of numbers"))?;
        let heads = rows.first().map_or(0, Vec::len);
        if heads == 0 || rows.iter().any(|r| r.len() != heads) {
            return Err(bad("expected an [L][H] array with rows of one length"));
        }
        return Ok(HeadMap {
            layers: rows.len(),
            heads,
            values: rows.concat(),
            per_example: None,
        });
    }
    // roles.json
    if let Some(tests) = v.get("tests").and_then(|t| t.as_array()) {
        let (nl, nh) = (
            v["layers"].as_u64().unwrap_or(0) as usize,
            v["heads_per_layer"].as_u64().unwrap_or(0) as usize,
        );
        let role = role.ok_or_else(|| bad("a roles.json holds many maps: pick one with --role"))?;
        let mut values = vec![f64::NAN; nl * nh];
        let mut found = false;
        for t in tests {
            if t["role"] == role {
                let (l, h) = (t["layer"].as_u64(), t["head"].as_u64());
                if let (Some(l), Some(h)) = (l, h) {
                    if (l as usize) < nl && (h as usize) < nh {
                        values[l as usize * nh + h as usize] =
                            t["mean"].as_f64().unwrap_or(f64::NAN);
                        found = true;
                    }
                }
            }
        }
        if !found {
            return Err(bad(&format!("no role {role:?} in this roles.json")));
        }
        return Ok(HeadMap {
            layers: nl,
            heads: nh,
            values,
            per_example: None,
        });
    }
    // score's importance.json
    let (nl, nh) = shape_of(&v["shape"]).ok_or_else(|| {
        bad("not a head map: expected score's JSON (shape, importance), roles.json or an [L][H] array")
    })?;
    let values = numbers(&v["importance"])
        .filter(|x| x.len() == nl * nh)
        .ok_or_else(|| bad("importance is not an array of L·H numbers"))?;
    let per_example = numbers(&v["per_example_gate_grad"])
        .filter(|x| !x.is_empty() && x.len() % (nl * nh) == 0)
        .map(|x| {
            x.chunks(nl * nh)
                .map(|r| r.iter().map(|g| g.abs()).collect())
                .collect()
        });
    Ok(HeadMap {
        layers: nl,
        heads: nh,
        values,
        per_example,
    })
}

#[derive(Debug, serde::Serialize)]
pub struct Correlation {
    pub value: f64,
    /// 95 % bootstrap interval (both files with per-example data).
    pub ci95: Option<(f64, f64)>,
}

#[derive(Debug, serde::Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub heads: usize,
    pub spearman: Correlation,
    pub kendall_tau_b: Correlation,
    /// (fraction of heads, k, Jaccard of the two top-k sets)
    pub top_k_jaccard: Vec<(f64, usize, f64)>,
    pub per_layer_spearman: Vec<f64>,
    pub bootstrap_resamples: usize,
}

fn top_k(v: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&x, &y| v[y].total_cmp(&v[x]).then(x.cmp(&y)));
    order.truncate(k);
    order
}

fn jaccard(a: &[usize], b: &[usize]) -> f64 {
    let inter = a.iter().filter(|x| b.contains(x)).count();
    let union = a.len() + b.len() - inter;
    inter as f64 / union.max(1) as f64
}

pub fn compare(
    a: &HeadMap,
    b: &HeadMap,
    names: (&str, &str),
    resamples: usize,
    seed: u64,
) -> Result<Comparison> {
    if (a.layers, a.heads) != (b.layers, b.heads) {
        return Err(Error::Usage(format!(
            "{} is {}×{} but {} is {}×{}",
            names.0, a.layers, a.heads, names.1, b.layers, b.heads
        )));
    }
    // heads present in both (a pruned checkpoint's removed heads and untested roles are NaN)
    let keep: Vec<usize> = (0..a.values.len())
        .filter(|&i| a.values[i].is_finite() && b.values[i].is_finite())
        .collect();
    if keep.len() < 2 {
        return Err(Error::Usage(
            "fewer than two heads with values in both maps".into(),
        ));
    }
    let pick = |v: &[f64]| -> Vec<f64> { keep.iter().map(|&i| v[i]).collect() };
    let (va, vb) = (pick(&a.values), pick(&b.values));
    let boot = match (&a.per_example, &b.per_example) {
        (Some(ra), Some(rb)) if resamples > 0 && !ra.is_empty() && !rb.is_empty() => {
            let mut rng = crate::maths::rng::SplitMix64::new(seed ^ 0xC0FA);
            let mean_of = |rows: &[Vec<f64>], draw: &[usize]| -> Vec<f64> {
                keep.iter()
                    .map(|&k| draw.iter().map(|&i| rows[i][k]).sum::<f64>() / draw.len() as f64)
                    .collect()
            };
            let mut sp = Vec::with_capacity(resamples);
            let mut kt = Vec::with_capacity(resamples);
            for _ in 0..resamples {
                let da: Vec<usize> = (0..ra.len()).map(|_| rng.below(ra.len())).collect();
                let db: Vec<usize> = (0..rb.len()).map(|_| rng.below(rb.len())).collect();
                let (x, y) = (mean_of(ra, &da), mean_of(rb, &db));
                sp.push(spearman(&x, &y));
                kt.push(kendall_tau_b(&x, &y));
            }
            Some((ci95(&mut sp), ci95(&mut kt)))
        }
        _ => None,
    };
    let n = keep.len();
    let top_k_jaccard = [0.10, 0.25, 0.50]
        .iter()
        .map(|&f| {
            let k = ((f * n as f64).round() as usize).max(1);
            let (ta, tb) = (top_k(&va, k), top_k(&vb, k));
            (f, k, jaccard(&ta, &tb))
        })
        .collect();
    let per_layer_spearman = (0..a.layers)
        .map(|l| {
            let idx: Vec<usize> = (0..keep.len())
                .filter(|&i| keep[i] / a.heads == l)
                .collect();
            if idx.len() < 2 {
                return f64::NAN;
            }
            let x: Vec<f64> = idx.iter().map(|&i| va[i]).collect();
            let y: Vec<f64> = idx.iter().map(|&i| vb[i]).collect();
            spearman(&x, &y)
        })
        .collect();
    Ok(Comparison {
        a: names.0.to_string(),
        b: names.1.to_string(),
        heads: n,
        spearman: Correlation {
            value: spearman(&va, &vb),
            ci95: boot.as_ref().and_then(|b| b.0),
        },
        kendall_tau_b: Correlation {
            value: kendall_tau_b(&va, &vb),
            ci95: boot.as_ref().and_then(|b| b.1),
        },
        top_k_jaccard,
        per_layer_spearman,
        bootstrap_resamples: if boot.is_some() { resamples } else { 0 },
    })
}

/// Every pair of several head maps: the pairwise comparisons and their values as matrices
/// (row i, column j: map i against map j; 1 on the diagonal).
#[derive(Debug, serde::Serialize)]
pub struct Matrix {
    pub maps: Vec<String>,
    pub spearman: Vec<Vec<f64>>,
    pub kendall_tau_b: Vec<Vec<f64>>,
    /// Jaccard of the top 25 % of heads.
    pub top_25_jaccard: Vec<Vec<f64>>,
    /// Each pair i < j in row-major order, with its intervals and per-layer values.
    pub pairs: Vec<Comparison>,
}

/// Compares every pair of `maps` (name, map); `resamples` and `seed` as [`compare`], the seed
/// the same for every pair.
pub fn matrix(maps: &[(String, HeadMap)], resamples: usize, seed: u64) -> Result<Matrix> {
    let n = maps.len();
    let mut m = Matrix {
        maps: maps.iter().map(|(name, _)| name.clone()).collect(),
        spearman: vec![vec![1.0; n]; n],
        kendall_tau_b: vec![vec![1.0; n]; n],
        top_25_jaccard: vec![vec![1.0; n]; n],
        pairs: Vec::new(),
    };
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&maps[i], &maps[j]);
            let c = compare(&a.1, &b.1, (&a.0, &b.0), resamples, seed)?;
            let top25 = c
                .top_k_jaccard
                .iter()
                .find(|t| t.0 == 0.25)
                .map_or(f64::NAN, |t| t.2);
            for (table, v) in [
                (&mut m.spearman, c.spearman.value),
                (&mut m.kendall_tau_b, c.kendall_tau_b.value),
                (&mut m.top_25_jaccard, top25),
            ] {
                table[i][j] = v;
                table[j][i] = v;
            }
            m.pairs.push(c);
        }
    }
    Ok(m)
}

/// Writes the Spearman matrix as `dir/agreement.svg` and `.png`, each cell's value written in it.
pub fn plot_matrix(dir: &Path, m: &Matrix) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, format!("cannot create: {e}")))?;
    let values: Vec<f32> = m.spearman.iter().flatten().map(|&v| v as f32).collect();
    let grid = crate::io::plot::Grid {
        rows: m.maps.clone(),
        columns: m.maps.clone(),
        column_axis: "",
        annotate: true,
    };
    let title = "Spearman correlation of head importance";
    crate::io::plot::grid_heatmap(dir, "agreement", &values, &grid, title)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(values: Vec<f64>, per_example: Option<Vec<Vec<f64>>>) -> HeadMap {
        HeadMap {
            layers: 2,
            heads: 3,
            values,
            per_example,
        }
    }

    #[test]
    fn identical_and_reversed_maps() {
        let a = map(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], None);
        let same = compare(&a, &map(a.values.clone(), None), ("a", "b"), 0, 0).unwrap();
        assert_eq!(same.spearman.value, 1.0);
        assert_eq!(same.kendall_tau_b.value, 1.0);
        assert!(same.top_k_jaccard.iter().all(|t| t.2 == 1.0));
        assert_eq!(same.per_layer_spearman, vec![1.0, 1.0]);
        let rev = compare(
            &a,
            &map(vec![6.0, 5.0, 4.0, 3.0, 2.0, 1.0], None),
            ("a", "b"),
            0,
            0,
        )
        .unwrap();
        assert_eq!(rev.spearman.value, -1.0);
        // top half: {3,4,5} vs {0,1,2}
        assert_eq!(rev.top_k_jaccard[2], (0.5, 3, 0.0));
        assert!(rev.spearman.ci95.is_none());
    }

    #[test]
    fn a_matrix_holds_every_pair_symmetrically() {
        let a = map(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], None);
        let b = map(vec![6.0, 5.0, 4.0, 3.0, 2.0, 1.0], None);
        let c = map(vec![1.0, 2.0, 3.0, 6.0, 5.0, 4.0], None);
        let maps = vec![("a".to_string(), a), ("b".into(), b), ("c".into(), c)];
        let m = matrix(&maps, 0, 0).unwrap();
        assert_eq!(m.pairs.len(), 3);
        assert_eq!((m.pairs[1].a.as_str(), m.pairs[1].b.as_str()), ("a", "c"));
        for i in 0..3 {
            assert_eq!(m.spearman[i][i], 1.0);
            for j in 0..3 {
                assert_eq!(m.spearman[i][j], m.spearman[j][i]);
            }
        }
        assert_eq!(m.spearman[0][1], -1.0);
        // a ~ c: ranks 1..6 against 1,2,3,6,5,4: Σd² = 4 + 4, ρ = 1 − 6·8/(6·35)
        assert!((m.spearman[0][2] - (1.0 - 48.0 / 210.0)).abs() < 1e-12);
        // top 25 % of 6 heads is 2: {5,4} vs {3,4}
        assert!((m.top_25_jaccard[0][2] - 1.0 / 3.0).abs() < 1e-12);
        let bad = vec![
            ("a".to_string(), map(vec![1.0; 6], None)),
            (
                "d".into(),
                HeadMap {
                    layers: 3,
                    heads: 2,
                    values: vec![1.0; 6],
                    per_example: None,
                },
            ),
        ];
        assert!(matrix(&bad, 0, 0).is_err());
    }

    #[test]
    fn bootstrap_intervals_bracket_the_estimate_and_missing_heads_drop_out() {
        let rows = |scale: f64| -> Vec<Vec<f64>> {
            (0..20)
                .map(|i| {
                    (0..6)
                        .map(|h| (h as f64 + 1.0) * scale + (i % 3) as f64 * 0.3)
                        .collect()
                })
                .collect()
        };
        let mut a = map(vec![0.0; 6], Some(rows(1.0)));
        a.values = (0..6).map(|h| h as f64 + 1.3).collect();
        let mut b = map(vec![0.0; 6], Some(rows(2.0)));
        b.values = (0..6).map(|h| 2.0 * h as f64 + 2.3).collect();
        b.values[4] = f64::NAN;
        let c = compare(&a, &b, ("a", "b"), 200, 1).unwrap();
        assert_eq!(c.heads, 5);
        let (lo, hi) = c.spearman.ci95.unwrap();
        assert!(
            lo <= c.spearman.value && c.spearman.value <= hi,
            "{lo} {hi}"
        );
        assert_eq!(c.bootstrap_resamples, 200);
    }
}
