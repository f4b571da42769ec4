//! Head roles (Pande et al. 2021's sieves): per sentence and head, role scores from the
//! attention analysis pass, then per head and role a one-sided t-test over sentences with a
//! multiple-comparison correction.
//!
//! Definitions (n = the sentence's real tokens, [CLS] and [SEP] included; query tokens = its
//! real tokens other than [CLS] and [SEP]; each score is a mean over the query tokens of the
//! ratio of attention mass on a token set to that set's share under uniform attention, so
//! uniform attention scores 1):
//! - `local`: the tokens within ±2 positions of the query (window clipped at the sentence's
//!   ends; its share is the clipped window's size / n);
//! - `cls`, `sep`, `delimiter`: [CLS], the [SEP] tokens, both together;
//! - `block` (pairs only): the query's own segment without special tokens;
//! - `dep:REL` (CoNLL-U only): for each arc dependent → head of relation REL (subtypes
//!   folded: `nsubj:pass` is `nsubj`), the attention from the dependent word to the head word
//!   — attention to a word is the sum over its sub-tokens, from a word the mean over its
//!   sub-tokens — over the head word's share |head| / n; averaged over the sentence's arcs of
//!   REL. `dep:all` averages over all arcs. Arcs inside one multiword token are skipped.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::conllu::Sentence;
use crate::model::analysis::token_info;
use crate::model::{AttentionStats, Encoded, Model};
use std::collections::BTreeMap;
use std::ops::Range;

/// One dependency arc in token positions.
#[derive(Clone, Debug)]
pub struct Arc {
    pub dep: Range<usize>,
    pub head: Range<usize>,
    /// Index of the head's surface unit (the word column of the analysis output).
    pub head_unit: usize,
    pub dep_unit: usize,
    pub relation: String,
}

/// Sentences ready for the analysis pass.
pub struct Prepared {
    pub encoded: Vec<Encoded>,
    pub tokens: Vec<Vec<u32>>,
    /// Per sentence: its arcs (empty for TSV input).
    pub arcs: Vec<Vec<Arc>>,
    pub pair: Vec<bool>,
    /// Words (surface units) per sentence: the analysis' word columns.
    pub units: Vec<usize>,
    /// Per sentence, each unit's sub-token positions (None when truncated away; empty for TSV).
    pub spans: Vec<Vec<Option<Range<usize>>>>,
    /// Per sentence, the unit of the root word (CoNLL-U).
    pub root_unit: Vec<Option<usize>>,
    pub truncated: usize,
}

/// Tokenises CoNLL-U sentences by their surface units; arcs map through the units' sub-token
/// spans (from the tokenizer's word ids).
pub fn prepare_conllu(model: &Model, sentences: &[Sentence]) -> Result<Prepared> {
    let units: Vec<Vec<String>> = sentences.iter().map(|s| s.units.clone()).collect();
    let (encoded, spans, truncated) = model.tokenizer.encode_word_spans(&units)?;
    let mut tokens = Vec::with_capacity(sentences.len());
    let delimiter = delimiters(model);
    let mut arcs = Vec::with_capacity(sentences.len());
    for ((s, enc), sp) in sentences.iter().zip(&encoded).zip(&spans) {
        let n = enc.ids.len();
        let mut word = vec![None; n];
        for (u, r) in sp.iter().enumerate() {
            for j in r.clone().into_iter().flatten() {
                word[j] = Some(u);
            }
        }
        tokens.push(
            (0..n)
                .map(|j| {
                    let (cls, sep) = delimiter(enc, j);
                    token_info(word[j], 0, cls, sep)
                })
                .collect(),
        );
        let mut a = Vec::new();
        for w in &s.words {
            if w.head == 0 {
                continue;
            }
            let (du, hu) = (w.unit, s.words[w.head - 1].unit);
            if du == hu {
                continue;
            }
            if let (Some(d), Some(h)) = (sp[du].clone(), sp[hu].clone()) {
                a.push(Arc {
                    dep: d,
                    head: h,
                    head_unit: hu,
                    dep_unit: du,
                    relation: w.relation().to_string(),
                });
            }
        }
        arcs.push(a);
    }
    Ok(Prepared {
        tokens,
        arcs,
        pair: vec![false; sentences.len()],
        units: sentences.iter().map(|s| s.units.len()).collect(),
        root_unit: sentences
            .iter()
            .map(|s| s.words.iter().find(|w| w.head == 0).map(|w| w.unit))
            .collect(),
        spans,
        encoded,
        truncated,
    })
}

/// Whether token `j` of an encoding is the opening delimiter (`[CLS]`, `<s>`) or a closing one
/// (`[SEP]`, `</s>`: RoBERTa's pairs have two in a row), by the tokenizer's delimiter tokens.
fn delimiters(model: &Model) -> impl Fn(&Encoded, usize) -> (bool, bool) {
    let ids = model.tokenizer.delimiter_ids();
    move |e: &Encoded, j: usize| {
        let delim = ids.binary_search(&e.ids[j]).is_ok();
        (delim && j == 0, delim && j > 0)
    }
}

/// Tokenises TSV sentences (and pairs): segments from the token types, delimiters from the
/// tokenizer's special tokens. No words, no arcs.
pub fn prepare_texts(model: &Model, texts: &[(String, Option<String>)]) -> Result<Prepared> {
    let (encoded, truncated) = model.tokenizer.encode_all(texts)?;
    let delimiter = delimiters(model);
    let tokens = encoded
        .iter()
        .map(|e| {
            (0..e.ids.len())
                .map(|j| {
                    let (cls, sep) = delimiter(e, j);
                    token_info(None, e.type_ids[j], cls, sep)
                })
                .collect()
        })
        .collect();
    Ok(Prepared {
        tokens,
        arcs: vec![Vec::new(); texts.len()],
        pair: texts.iter().map(|(_, b)| b.is_some()).collect(),
        units: vec![1; texts.len()],
        spans: vec![Vec::new(); texts.len()],
        root_unit: vec![None; texts.len()],
        encoded,
        truncated,
    })
}

/// The role family of a role: local, delimiter ([CLS], [SEP], both), block or syntactic.
pub fn family(role: &str) -> &'static str {
    match role {
        "local" => "local",
        "cls" | "sep" | "delimiter" => "delimiter",
        "block" => "block",
        _ => "syntactic",
    }
}

/// The fixed token-level roles, in the analysis' sieve order.
pub const SIEVE_ROLES: [&str; 5] = ["local", "cls", "sep", "delimiter", "block"];

/// Per role, per head (L·H, original indices), the per-sentence scores.
pub type Samples = BTreeMap<String, Vec<Vec<f64>>>;

/// Adds the role scores of example `e` of an analysed batch (sentence `s` of `prep`).
pub fn add_sentence(
    samples: &mut Samples,
    st: &AttentionStats,
    e: usize,
    prep: &Prepared,
    s: usize,
    (nl, nh): (usize, usize),
) {
    let n = st.lengths[e];
    let info = &prep.tokens[s];
    let queries: Vec<usize> = (0..n).filter(|&i| info[i] >> 17 == 0).collect();
    if queries.is_empty() {
        return;
    }
    let mut push = |role: &str, head: usize, v: f64| {
        samples
            .entry(role.to_string())
            .or_insert_with(|| vec![Vec::new(); nl * nh])[head]
            .push(v);
    };
    for l in 0..nl {
        for (j, &h) in st.heads[l].iter().enumerate() {
            let head = l * nh + h;
            for (k, role) in SIEVE_ROLES.iter().enumerate() {
                if *role == "block" && !prep.pair[s] {
                    continue;
                }
                let mean = queries
                    .iter()
                    .map(|&i| st.sieve_at(e, l, j, i, k) as f64)
                    .sum::<f64>()
                    / queries.len() as f64;
                push(role, head, mean);
            }
            let mut by_rel: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
            for a in &prep.arcs[s] {
                let from = a
                    .dep
                    .clone()
                    .map(|i| st.word_at(e, l, j, i, a.head_unit) as f64)
                    .sum::<f64>()
                    / a.dep.len() as f64;
                let ratio = from * n as f64 / a.head.len() as f64;
                for rel in [a.relation.as_str(), "all"] {
                    let slot = by_rel.entry(rel).or_insert((0.0, 0));
                    slot.0 += ratio;
                    slot.1 += 1;
                }
            }
            for (rel, (sum, count)) in by_rel {
                push(&format!("dep:{rel}"), head, sum / count as f64);
            }
        }
    }
}

/// Runs the analysis over `prep` in batches of similar length and collects every role's
/// per-sentence scores.
pub fn collect(gpu: &Gpu, model: &Model, prep: &Prepared, batch_size: usize) -> Result<Samples> {
    if prep.encoded.is_empty() {
        return Err(Error::Usage("no sentences to analyse".into()));
    }
    let c = &model.config;
    let shape = (c.num_hidden_layers, c.num_attention_heads);
    let mut samples = Samples::new();
    analyse(gpu, model, prep, batch_size, |st, chunk| {
        for (e, &s) in chunk.iter().enumerate() {
            add_sentence(&mut samples, st, e, prep, s, shape);
        }
    })?;
    Ok(samples)
}

/// Runs the analysis pass over `prep` in batches of `batch_size` sentences of similar length,
/// handing `each` every batch's stats with the sentence index of each of its examples.
pub fn analyse(
    gpu: &Gpu,
    model: &Model,
    prep: &Prepared,
    batch_size: usize,
    mut each: impl FnMut(&AttentionStats, &[usize]),
) -> Result<()> {
    let mut order: Vec<usize> = (0..prep.encoded.len()).collect();
    order.sort_by_key(|&i| prep.encoded[i].ids.len());
    let bar = crate::model::progress_bar(order.len());
    for chunk in order.chunks(batch_size.max(1)) {
        let refs: Vec<&Encoded> = chunk.iter().map(|&i| &prep.encoded[i]).collect();
        let tokens: Vec<Vec<u32>> = chunk.iter().map(|&i| prep.tokens[i].clone()).collect();
        let n_words = chunk.iter().map(|&i| prep.units[i]).max().unwrap_or(1);
        let st = model.attention_stats(gpu, &refs, &tokens, n_words)?;
        each(&st, chunk);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Multiple-comparison correction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Correction {
    Bh,
    Bonferroni,
}

impl Correction {
    pub fn parse(s: &str) -> Result<Correction> {
        match s {
            "bh" | "fdr" => Ok(Correction::Bh),
            "bonferroni" => Ok(Correction::Bonferroni),
            _ => Err(Error::Usage(format!(
                "unknown --correction {s:?} (bh, bonferroni)"
            ))),
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct HeadRole {
    pub layer: usize,
    pub head: usize,
    pub role: String,
    pub sentences: usize,
    pub mean: f64,
    pub sd: f64,
    pub t: f64,
    pub p: f64,
    pub p_corrected: f64,
    pub has_role: bool,
}

/// One-sided t-tests of every (head, role) against `tau`, corrected together.
pub fn test_roles(
    samples: &Samples,
    (nl, nh): (usize, usize),
    tau: f64,
    alpha: f64,
    correction: Correction,
    min_sentences: usize,
) -> Vec<HeadRole> {
    let mut out = Vec::new();
    for (role, heads) in samples {
        if heads.iter().map(Vec::len).max().unwrap_or(0) < min_sentences {
            continue;
        }
        for (k, xs) in heads.iter().enumerate() {
            if xs.is_empty() {
                continue; // a head the checkpoint does not store
            }
            let t = crate::maths::stats::t_test_greater(xs, tau);
            out.push(HeadRole {
                layer: k / nh,
                head: k % nh,
                role: role.clone(),
                sentences: xs.len(),
                mean: t.mean,
                sd: t.sd,
                t: t.t,
                p: t.p,
                p_corrected: 1.0,
                has_role: false,
            });
        }
    }
    let p: Vec<f64> = out.iter().map(|r| r.p).collect();
    let adj = match correction {
        Correction::Bh => crate::maths::stats::benjamini_hochberg(&p),
        Correction::Bonferroni => crate::maths::stats::bonferroni(&p),
    };
    for (r, q) in out.iter_mut().zip(adj) {
        r.p_corrected = q;
        r.has_role = q < alpha;
    }
    debug_assert!(out.iter().all(|r| r.layer < nl));
    out
}

pub struct RolesArgs {
    pub model: std::path::PathBuf,
    pub data: std::path::PathBuf,
    pub out: std::path::PathBuf,
    pub tau: f64,
    pub alpha: f64,
    pub correction: Correction,
    pub batch_size: usize,
    /// Roles defined in fewer sentences than this are not tested.
    pub min_sentences: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct RolesSummary {
    pub heads: usize,
    pub heads_with_a_role: usize,
    /// Heads holding roles of more than one family (local, delimiter, block, syntactic).
    pub heads_with_several_roles: usize,
    pub fraction_with_several_roles: f64,
    /// role → heads holding it in each layer
    pub roles_by_layer: BTreeMap<String, Vec<usize>>,
}

#[derive(Debug, serde::Serialize)]
pub struct RolesReport {
    pub model: String,
    pub data: String,
    pub sentences: usize,
    pub truncated: usize,
    pub tau: f64,
    pub alpha: f64,
    pub correction: Correction,
    pub layers: usize,
    pub heads_per_layer: usize,
    pub summary: RolesSummary,
    /// Per head "layer.head", the roles it holds.
    pub roles_of: BTreeMap<String, Vec<String>>,
    pub tests: Vec<HeadRole>,
    pub adapter: String,
    pub wall_seconds: f64,
}

/// `headroom roles`: analyse, test, write roles.json and the plots into `args.out`.
pub fn run(gpu: &Gpu, args: &RolesArgs) -> Result<RolesReport> {
    let start = std::time::Instant::now();
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        return Err(Error::Usage(format!(
            "--alpha {} is outside (0, 1)",
            args.alpha
        )));
    }
    if args.batch_size == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
    }
    crate::io::output::check_not_input(&args.out, &[&args.model, &args.data])?;
    let model = Model::load(gpu, &args.model)?;
    let conllu = args
        .data
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("conllu"));
    let prep = if conllu {
        prepare_conllu(&model, &crate::io::conllu::read(&args.data)?)?
    } else {
        prepare_texts(&model, &crate::io::input::read_sentences(&args.data)?)?
    };
    if prep.truncated > 0 {
        eprintln!(
            "warning: {}: {} of {} sentences were longer than the model's {} positions and were truncated (arcs to cut-off words are skipped)",
            args.data.display(),
            prep.truncated,
            prep.encoded.len(),
            model.config.max_tokens()
        );
    }
    let c = &model.config;
    let shape = (c.num_hidden_layers, c.num_attention_heads);
    let samples = collect(gpu, &model, &prep, args.batch_size)?;
    let tests = test_roles(
        &samples,
        shape,
        args.tau,
        args.alpha,
        args.correction,
        args.min_sentences,
    );
    let (nl, nh) = shape;
    let mut roles_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut roles_by_layer: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in &tests {
        roles_by_layer
            .entry(r.role.clone())
            .or_insert_with(|| vec![0; nl]);
        if r.has_role {
            roles_of
                .entry(format!("{}.{}", r.layer, r.head))
                .or_default()
                .push(r.role.clone());
            roles_by_layer.get_mut(&r.role).expect("inserted")[r.layer] += 1;
        }
    }
    let heads = model.present_mask().iter().filter(|&&v| v == 1.0).count();
    // several roles = several of the four families (a head on [CLS] and on both delimiters
    // holds one role, delimiter; any dep:* is the syntactic role)
    let several = roles_of
        .values()
        .filter(|r| {
            let mut f: Vec<&str> = r.iter().map(|x| family(x)).collect();
            f.sort_unstable();
            f.dedup();
            f.len() > 1
        })
        .count();
    let summary = RolesSummary {
        heads,
        heads_with_a_role: roles_of.len(),
        heads_with_several_roles: several,
        fraction_with_several_roles: several as f64 / heads.max(1) as f64,
        roles_by_layer,
    };
    let report = RolesReport {
        model: args.model.display().to_string(),
        data: args.data.display().to_string(),
        sentences: prep.encoded.len(),
        truncated: prep.truncated,
        tau: args.tau,
        alpha: args.alpha,
        correction: args.correction,
        layers: nl,
        heads_per_layer: nh,
        summary,
        roles_of,
        tests,
        adapter: gpu.describe(),
        wall_seconds: start.elapsed().as_secs_f64(),
    };
    write_outputs(&args.out, &report, shape)?;
    Ok(report)
}

/// roles.json, one mean-score heatmap per role and the role map (roles held per head).
fn write_outputs(out: &std::path::Path, r: &RolesReport, (nl, nh): (usize, usize)) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::output(out, format!("cannot create: {e}")))?;
    let text = serde_json::to_string_pretty(r).expect("report serialises");
    crate::io::output::write_atomic(&out.join("roles.json"), text.as_bytes())?;
    let mut by_role: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
    let mut count = vec![0f32; nl * nh];
    for t in &r.tests {
        by_role
            .entry(&t.role)
            .or_insert_with(|| vec![f32::NAN; nl * nh])[t.layer * nh + t.head] = t.mean as f32;
        if t.has_role {
            count[t.layer * nh + t.head] += 1.0;
        }
    }
    for (role, values) in by_role {
        let stem = format!("role_{}", role.replace(':', "_"));
        let title = format!("mean {role} score (uniform attention = 1; τ = {})", r.tau);
        crate::io::plot::heatmap(out, &stem, &values, (nl, nh), &title)?;
    }
    let title = format!(
        "roles per head ({} < {})",
        match r.correction {
            Correction::Bh => "BH-corrected p",
            Correction::Bonferroni => "Bonferroni-corrected p",
        },
        r.alpha
    );
    crate::io::plot::heatmap(out, "role_map", &count, (nl, nh), &title)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::analysis::SIEVES;

    /// "[CLS] the cat saw the cat [SEP]": every word's token attends only to its head word's
    /// token (the root to itself). The second "the" must score against the second "cat".
    #[test]
    fn syntactic_scores_follow_repeated_words_to_their_own_heads() {
        let n = 7;
        // units: 0 the, 1 cat, 2 saw, 3 the, 4 cat; unit u is token u + 1
        let heads_of = [1usize, 2, 2, 4, 2]; // the→cat, cat→saw, saw (root, self), the→cat, cat→saw
        let mut words = vec![0f32; n * 5];
        for u in 0..5 {
            words[(u + 1) * 5 + heads_of[u]] = 1.0;
        }
        let st = AttentionStats {
            batch: 1,
            seq: n,
            n_words: 5,
            lengths: vec![n],
            heads: vec![vec![0]],
            computed: vec![1],
            sieve: vec![vec![1.0; n * SIEVES]],
            words: vec![words],
        };
        let span = |u: usize| u + 1..u + 2;
        let arc = |d: usize, h: usize, rel: &str| Arc {
            dep: span(d),
            head: span(h),
            head_unit: h,
            dep_unit: d,
            relation: rel.into(),
        };
        let prep = Prepared {
            encoded: Vec::new(),
            tokens: vec![(0..n)
                .map(|j| token_info(None, 0, j == 0, j == n - 1))
                .collect()],
            arcs: vec![vec![
                arc(0, 1, "det"),
                arc(1, 2, "nsubj"),
                arc(3, 4, "det"),
                arc(4, 2, "obj"),
            ]],
            pair: vec![false],
            units: vec![5],
            spans: vec![(0..5).map(|u| Some(span(u))).collect()],
            root_unit: vec![Some(2)],
            truncated: 0,
        };
        let mut samples = Samples::new();
        add_sentence(&mut samples, &st, 0, &prep, 0, (1, 1));
        // all mass on the head word of one token: ratio n / 1
        for rel in ["dep:det", "dep:nsubj", "dep:obj", "dep:all"] {
            assert_eq!(samples[rel][0], vec![n as f64], "{rel}");
        }
        assert_eq!(samples["local"][0], vec![1.0]);
        assert!(
            !samples.contains_key("block"),
            "single sentences have no block role"
        );
        // the t-test decides per head and role; a constant 7 against τ = 3 has the role
        let more: Samples = [("dep:det".to_string(), vec![vec![7.0, 6.5, 7.5, 8.0]])].into();
        let r = test_roles(&more, (1, 1), 3.0, 0.05, Correction::Bh, 2);
        assert!(r[0].has_role && r[0].p < 1e-3, "{r:?}");
    }
}
