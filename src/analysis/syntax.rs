//! Dependency heads (Clark et al. 2019, Htut et al. 2019): how often a head's strongest
//! word-level attention lands on the gold syntactic head (dependent → head) or dependent
//! (head → dependent), per relation, against fixed-offset baselines; and the undirected UAS of
//! the maximum spanning tree over each head's word-level attention.
//!
//! Word-level attention from word a to word b is the mean over a's sub-tokens of the sum of
//! their attention over b's sub-tokens (words are the CoNLL-U surface tokens: a multiword token
//! is one word for all its syntactic words; arcs inside one are skipped). The argmax excludes
//! the word itself; [CLS] and [SEP] are not words, so they never win.

use crate::analysis::roles::Prepared;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::{AttentionStats, Model};
use std::collections::BTreeMap;

/// Per relation (and "all"): arcs, and per head (L·H, original indices) correct predictions in
/// each direction; per offset −3…3 the baseline's correct predictions.
#[derive(Default)]
struct Counts {
    arcs: usize,
    dep_to_head: Vec<usize>,
    head_to_dep: Vec<usize>,
    offsets: BTreeMap<i64, usize>,
    /// head − dependent (in words) of every arc
    offset_hist: BTreeMap<i64, usize>,
}

#[derive(Debug, serde::Serialize)]
pub struct BestHead {
    pub layer: usize,
    pub head: usize,
    pub accuracy: f64,
}

#[derive(Debug, serde::Serialize)]
pub struct RelationReport {
    pub relation: String,
    pub arcs: usize,
    /// The head whose argmax from the dependent finds the gold head most often.
    pub best_dep_to_head: BestHead,
    /// The head whose argmax from the gold head finds the dependent most often.
    pub best_head_to_dep: BestHead,
    /// Accuracy of each fixed relative offset (head − dependent) −3…3 as the prediction.
    pub offset_accuracy: BTreeMap<i64, f64>,
    /// The best fixed relative offset and its accuracy.
    pub best_offset: i64,
    pub best_offset_accuracy: f64,
    /// The relation's most frequent offset in this data and its accuracy.
    pub most_frequent_offset: i64,
    pub most_frequent_offset_accuracy: f64,
    /// Per head, dependent → head accuracy ([L][H]; NaN for heads the checkpoint lacks).
    pub dep_to_head: Vec<Vec<f64>>,
    pub head_to_dep: Vec<Vec<f64>>,
}

#[derive(Debug, serde::Serialize)]
pub struct SyntaxReport {
    pub model: String,
    pub data: String,
    pub sentences: usize,
    pub truncated: usize,
    pub relations: Vec<RelationReport>,
    /// Undirected UAS of each head's maximum spanning tree ([L][H]) and the best head.
    pub mst_uas: Vec<Vec<f64>>,
    pub best_mst: BestHead,
    pub adapter: String,
    pub wall_seconds: f64,
}

/// Word-level attention matrix of one head: `m[a][b]` from word a to word b.
fn word_matrix(
    st: &AttentionStats,
    e: usize,
    l: usize,
    j: usize,
    prep: &Prepared,
    s: usize,
) -> Vec<Vec<f64>> {
    let spans = &prep.spans[s];
    let nu = spans.len();
    let mut m = vec![vec![0.0; nu]; nu];
    for (a, sa) in spans.iter().enumerate() {
        let Some(sa) = sa else { continue };
        for (b, row) in m[a].iter_mut().enumerate() {
            *row = sa
                .clone()
                .map(|i| st.word_at(e, l, j, i, b) as f64)
                .sum::<f64>()
                / sa.len() as f64;
        }
    }
    m
}

/// argmax over b ≠ a of row a (ties: the first).
fn argmax_except(row: &[f64], a: usize) -> Option<usize> {
    (0..row.len())
        .filter(|&b| b != a)
        .max_by(|&x, &y| row[x].total_cmp(&row[y]).then(y.cmp(&x)))
}

pub fn run(
    gpu: &Gpu,
    model: &Model,
    prep: &Prepared,
    batch_size: usize,
    (model_name, data_name): (&str, &str),
) -> Result<SyntaxReport> {
    let start = std::time::Instant::now();
    if prep.arcs.iter().all(|a| a.is_empty()) {
        return Err(Error::Usage(format!(
            "{data_name}: no dependency arcs to analyse"
        )));
    }
    let c = &model.config;
    let (nl, nh) = (c.num_hidden_layers, c.num_attention_heads);
    let lh = nl * nh;
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let (mut mst_hit, mut mst_total) = (vec![0usize; lh], 0usize);
    crate::analysis::roles::analyse(gpu, model, prep, batch_size, |st, chunk| {
        for (e, &s) in chunk.iter().enumerate() {
            let arcs = &prep.arcs[s];
            // baselines
            for a in arcs {
                let off = a.head_unit as i64 - a.dep_unit as i64;
                for rel in [a.relation.as_str(), "all"] {
                    let cn = counts.entry(rel.to_string()).or_insert_with(|| Counts {
                        dep_to_head: vec![0; lh],
                        head_to_dep: vec![0; lh],
                        ..Default::default()
                    });
                    cn.arcs += 1;
                    *cn.offset_hist.entry(off).or_default() += 1;
                    if (-3..=3).contains(&off) {
                        *cn.offsets.entry(off).or_default() += 1;
                    }
                }
            }
            let gold: Vec<(usize, usize)> =
                arcs.iter().map(|a| (a.dep_unit, a.head_unit)).collect();
            let root = prep.root_unit[s];
            if root.is_some() {
                mst_total += gold.len();
            }
            for l in 0..nl {
                for (j, &h) in st.heads[l].iter().enumerate() {
                    let k = l * nh + h;
                    let m = word_matrix(st, e, l, j, prep, s);
                    for a in arcs {
                        let d2h = argmax_except(&m[a.dep_unit], a.dep_unit) == Some(a.head_unit);
                        let h2d = argmax_except(&m[a.head_unit], a.head_unit) == Some(a.dep_unit);
                        for rel in [a.relation.as_str(), "all"] {
                            let cn = counts.get_mut(rel).expect("counted above");
                            cn.dep_to_head[k] += d2h as usize;
                            cn.head_to_dep[k] += h2d as usize;
                        }
                    }
                    if let (Some(r), false) = (root, gold.is_empty()) {
                        let nu = m.len();
                        // undirected: an edge's weight is the attention both ways
                        let tree =
                            crate::maths::mst::max_arborescence(nu, r, |d, hh| m[d][hh] + m[hh][d]);
                        mst_hit[k] += gold
                            .iter()
                            .filter(|&&(d, hh)| tree[d] == hh || tree[hh] == d)
                            .count();
                    }
                }
            }
        }
    })?;
    let present = model.present_mask();
    let grid = |v: &[usize], n: usize| -> Vec<Vec<f64>> {
        (0..nl)
            .map(|l| {
                (0..nh)
                    .map(|h| {
                        if present[l * nh + h] == 0.0 || n == 0 {
                            f64::NAN
                        } else {
                            v[l * nh + h] as f64 / n as f64
                        }
                    })
                    .collect()
            })
            .collect()
    };
    let best = |g: &[Vec<f64>]| -> BestHead {
        let mut b = BestHead {
            layer: 0,
            head: 0,
            accuracy: f64::NEG_INFINITY,
        };
        for (l, row) in g.iter().enumerate() {
            for (h, &v) in row.iter().enumerate() {
                if v > b.accuracy {
                    b = BestHead {
                        layer: l,
                        head: h,
                        accuracy: v,
                    };
                }
            }
        }
        b
    };
    let mut relations = Vec::new();
    for (rel, cn) in &counts {
        let d2h = grid(&cn.dep_to_head, cn.arcs);
        let h2d = grid(&cn.head_to_dep, cn.arcs);
        let (best_offset, best_hits) = cn
            .offsets
            .iter()
            .filter(|(&o, _)| o != 0)
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.abs().cmp(&a.0.abs())))
            .map(|(&o, &n)| (o, n))
            .unwrap_or((1, 0));
        let (mf, mf_hits) = cn
            .offset_hist
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(&o, &n)| (o, n))
            .unwrap_or((1, 0));
        relations.push(RelationReport {
            relation: rel.clone(),
            arcs: cn.arcs,
            offset_accuracy: [-3i64, -2, -1, 1, 2, 3]
                .iter()
                .map(|&o| {
                    let hits = cn.offsets.get(&o).copied().unwrap_or(0);
                    (o, hits as f64 / cn.arcs as f64)
                })
                .collect(),
            best_dep_to_head: best(&d2h),
            best_head_to_dep: best(&h2d),
            best_offset,
            best_offset_accuracy: best_hits as f64 / cn.arcs as f64,
            most_frequent_offset: mf,
            most_frequent_offset_accuracy: mf_hits as f64 / cn.arcs as f64,
            dep_to_head: d2h,
            head_to_dep: h2d,
        });
    }
    relations.sort_by_key(|r| std::cmp::Reverse(r.arcs));
    let mst_uas = grid(&mst_hit, mst_total);
    let best_mst = best(&mst_uas);
    Ok(SyntaxReport {
        model: model_name.to_string(),
        data: data_name.to_string(),
        sentences: prep.encoded.len(),
        truncated: prep.truncated,
        relations,
        mst_uas,
        best_mst,
        adapter: gpu.describe(),
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

/// `headroom syntax`: reads CoNLL-U, analyses, writes syntax.json and heatmaps into `out`.
pub fn command(
    gpu: &Gpu,
    model_dir: &std::path::Path,
    data: &std::path::Path,
    out: &std::path::Path,
    batch_size: usize,
) -> Result<SyntaxReport> {
    if batch_size == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
    }
    crate::io::output::check_not_input(out, &[model_dir, data])?;
    let model = Model::load(gpu, model_dir)?;
    let sentences = crate::io::conllu::read(data)?;
    let prep = crate::analysis::roles::prepare_conllu(&model, &sentences)?;
    if prep.truncated > 0 {
        eprintln!(
            "warning: {}: {} of {} sentences were longer than the model's {} positions and were truncated (arcs to cut-off words are skipped)",
            data.display(),
            prep.truncated,
            sentences.len(),
            model.config.max_tokens()
        );
    }
    let names = (model_dir.display().to_string(), data.display().to_string());
    let r = run(gpu, &model, &prep, batch_size, (&names.0, &names.1))?;
    std::fs::create_dir_all(out).map_err(|e| Error::output(out, format!("cannot create: {e}")))?;
    let text = serde_json::to_string_pretty(&r).expect("report serialises");
    crate::io::output::write_atomic(&out.join("syntax.json"), text.as_bytes())?;
    let c = &model.config;
    let shape = (c.num_hidden_layers, c.num_attention_heads);
    let flat = |g: &[Vec<f64>]| -> Vec<f32> { g.iter().flatten().map(|&v| v as f32).collect() };
    crate::io::plot::heatmap(
        out,
        "mst_uas",
        &flat(&r.mst_uas),
        shape,
        "undirected UAS of each head's maximum spanning tree",
    )?;
    if let Some(all) = r.relations.iter().find(|x| x.relation == "all") {
        crate::io::plot::heatmap(
            out,
            "dep_to_head_all",
            &flat(&all.dep_to_head),
            shape,
            "dependent → head accuracy, all relations",
        )?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_skips_the_word_itself() {
        assert_eq!(argmax_except(&[0.9, 0.1, 0.3], 0), Some(2));
        assert_eq!(argmax_except(&[0.2, 0.2, 0.1], 2), Some(0));
        assert_eq!(argmax_except(&[1.0], 0), None);
    }
}
