//! `headroom bench`: what head pruning buys in time. For each pruned fraction (the same number
//! of heads per layer, chosen at random with a seed) and each mode, the median wall time of the
//! whole encoder and of the attention blocks alone, the GFLOP/s they reach and the speedup
//! against the unpruned dense run, next to the ideal speedup from FLOPs.
//!
//! Modes: `dense` gates pruned heads to 0 but still computes their projections (head_mask as
//! transformers runs it; attention itself skips them), `skip` leaves them out of the
//! projections and attention through head gathers, `compact` runs the exported (physically
//! pruned) checkpoint.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::output::OutTensor;
use crate::model::family::{self, Family};
use crate::model::{Config, Encoded, HeadSkip, Model};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Dense,
    Skip,
    Compact,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "dense" => Ok(Mode::Dense),
            "skip" => Ok(Mode::Skip),
            "compact" => Ok(Mode::Compact),
            _ => Err(Error::Usage(format!(
                "unknown --mode {s:?} (dense, skip, compact)"
            ))),
        }
    }
}

/// The shape and family of a random checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub name: &'static str,
    pub family: &'static Family,
    pub layers: usize,
    pub heads: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub vocab: usize,
    /// Width of the embedding tables (the hidden width unless the family factorises them).
    pub embedding: usize,
    /// Stored layers of a family with shared layers (ALBERT's groups).
    pub groups: usize,
}

impl Shape {
    /// The shapes `--shape` names: two BERT sizes and the base size of other families.
    pub const ALL: [Shape; 7] = [
        Shape::of("minilm", &family::BERT, 6, 384, 30522),
        Shape::of("base", &family::BERT, 12, 768, 30522),
        Shape::of("roberta-base", &family::ROBERTA, 12, 768, 50265),
        Shape::of("distilbert-base", &family::DISTILBERT, 6, 768, 30522),
        Shape::of("electra-base", &family::ELECTRA, 12, 768, 30522),
        // albert-base-v2: embeddings 128 wide, one layer group applied 12 times
        Shape {
            embedding: 128,
            groups: 1,
            ..Shape::of("albert-base", &family::ALBERT, 12, 768, 30000)
        },
        Shape::of("mpnet-base", &family::MPNET, 12, 768, 30527),
    ];

    /// 12 heads and a 4× feed-forward, as every one of these models has.
    const fn of(
        name: &'static str,
        family: &'static Family,
        layers: usize,
        hidden: usize,
        vocab: usize,
    ) -> Shape {
        Shape {
            name,
            family,
            layers,
            heads: 12,
            hidden,
            intermediate: 4 * hidden,
            vocab,
            embedding: hidden,
            groups: layers,
        }
    }

    pub fn parse(s: &str) -> Result<Shape> {
        Shape::ALL
            .iter()
            .find(|x| x.name == s)
            .copied()
            .ok_or_else(|| {
                let names: Vec<&str> = Shape::ALL.iter().map(|x| x.name).collect();
                Error::Usage(format!("unknown --shape {s:?} ({})", names.join(", ")))
            })
    }
}

pub struct BenchArgs {
    /// A model directory, or else a random checkpoint of `shape`.
    pub model: Option<PathBuf>,
    pub shape: Option<Shape>,
    pub batch: usize,
    pub seq: usize,
    pub pruned: Vec<f64>,
    pub modes: Vec<Mode>,
    pub seed: u64,
    /// Timed rounds over every configuration (after one warm-up round).
    pub iters: usize,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    /// FLOPs this mode executes (multiply-adds count 2; softmax, LayerNorm and GELU left out).
    pub gflop: f64,
    pub gflops: f64,
    /// Unpruned FLOPs over the pruned model's FLOPs.
    pub ideal_speedup: f64,
    /// The unpruned dense run's median over this median (same rounds).
    pub speedup: f64,
    /// speedup / ideal_speedup.
    pub of_ideal: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub fraction: f64,
    pub heads_kept: usize,
    pub mode: Mode,
    pub encoder: Timing,
    pub attention: Timing,
}

#[derive(Debug, serde::Serialize)]
pub struct BenchReport {
    pub adapter: String,
    pub model: String,
    pub layers: usize,
    pub heads: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub batch: usize,
    pub seq: usize,
    pub seed: u64,
    pub iters: usize,
    pub rows: Vec<Row>,
}

/// A 0/1 mask [L·H] pruning `k` heads of every layer, chosen at random with `seed`.
pub fn random_mask(layers: usize, heads: usize, k: usize, seed: u64) -> Vec<f32> {
    let mut rng = crate::maths::rng::SplitMix64::new(seed ^ 0xBE9C_4A11);
    let mut m = vec![1f32; layers * heads];
    for l in 0..layers {
        let mut order: Vec<usize> = (0..heads).collect();
        for i in (1..heads).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        for &h in &order[..k.min(heads)] {
            m[l * heads + h] = 0.0;
        }
    }
    m
}

/// `b` examples of exactly `t` random word-piece ids ([CLS] … [SEP]).
pub fn random_examples(b: usize, t: usize, vocab: usize, seed: u64) -> Vec<Encoded> {
    let mut rng = crate::maths::rng::SplitMix64::new(seed ^ 0x70_4E45);
    let lo = 1000.min(vocab - 1);
    (0..b)
        .map(|_| {
            let mut ids: Vec<u32> = (0..t)
                .map(|_| (lo + (rng.next_u64() % (vocab - lo) as u64) as usize) as u32)
                .collect();
            ids[0] = 101.min(vocab as u32 - 1);
            ids[t - 1] = 102.min(vocab as u32 - 1);
            Encoded {
                ids,
                type_ids: vec![0; t],
            }
        })
        .collect()
}

/// FLOPs of the attention blocks with `proj` heads in the projections and `attn` heads in
/// attention (summed over layers), and of the FFNs.
fn flops(c: &Config, b: usize, t: usize, proj: usize, attn: usize) -> (f64, f64) {
    let (h, d, i) = (
        c.hidden_size as f64,
        c.head_dim() as f64,
        c.intermediate_size as f64,
    );
    let m = (b * t) as f64;
    let attention =
        2.0 * m * h * 4.0 * d * proj as f64 + 4.0 * (b * t * t) as f64 * d * attn as f64;
    let ffn = c.num_hidden_layers as f64 * 4.0 * m * h * i;
    (attention, ffn)
}

/// A random checkpoint of `shape` in its family's layout (a 2-label sequence classifier;
/// weights ~U(±0.035), LayerNorm γ 1 β 0) with a word-piece tokenizer.json of the special
/// tokens, in `dir`.
pub fn random_checkpoint(dir: &Path, shape: &Shape, seed: u64) -> Result<()> {
    let f = shape.family;
    // RoBERTa's positions start after the padding index 1
    let offset = if f.positions_after_padding { 2 } else { 0 };
    let (h, i, l, v, p, e) = (
        shape.hidden,
        shape.intermediate,
        shape.layers,
        shape.vocab,
        512 + offset,
        shape.embedding,
    );
    let types = if f.positions_after_padding { 1 } else { 2 };
    let mut rng = crate::maths::rng::SplitMix64::new(seed ^ 0x5EED_BE2C);
    let mut rnd = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| (rng.uniform() as f32 - 0.5) * 0.07)
            .collect()
    };
    let name = |n: &str| format!("{}{n}", f.prefix);
    let mut t = Vec::new();
    let mut tables = vec![(f.word_embeddings, v), (f.position_embeddings, p)];
    tables.extend(f.token_type_embeddings.map(|n| (n, types)));
    for (table, rows) in tables {
        let w = rnd(rows * e);
        t.push(OutTensor::f32(
            &name(&format!("{table}.weight")),
            vec![rows, e],
            &w,
        ));
    }
    if let Some(rb) = f.relative_attention_bias {
        let buckets = crate::model::config::RELATIVE_BUCKETS;
        let w = rnd(buckets * shape.heads);
        t.push(OutTensor::f32(
            &name(&format!("{rb}.weight")),
            vec![buckets, shape.heads],
            &w,
        ));
    }
    let ln_of = |n: &str, width: usize| {
        [
            OutTensor::f32(&format!("{n}.weight"), vec![width], &vec![1.0; width]),
            OutTensor::f32(&format!("{n}.bias"), vec![width], &vec![0.0; width]),
        ]
    };
    let ln = |n: &str| ln_of(n, h);
    t.extend(ln_of(&name(f.embeddings_layer_norm), e));
    let mut lin = |n: String, rows: usize, k: usize| {
        [
            OutTensor::f32(&format!("{n}.weight"), vec![rows, k], &rnd(rows * k)),
            OutTensor::f32(&format!("{n}.bias"), vec![rows], &rnd(rows)),
        ]
    };
    if let Some(pj) = f.embeddings_project.filter(|_| e != h || f.shared_layers) {
        t.extend(lin(name(pj), h, e));
    }
    let stored = if f.shared_layers { shape.groups } else { l };
    for li in 0..stored {
        let part = |n: &str| name(&f.layer(li, n));
        for proj in f.query_key_value {
            t.extend(lin(part(proj), h, h));
        }
        t.extend(lin(part(f.attention_output), h, h));
        t.extend(lin(part(f.intermediate), i, h));
        t.extend(lin(part(f.output), h, i));
        t.extend(ln(&part(f.attention_layer_norm)));
        t.extend(ln(&part(f.output_layer_norm)));
    }
    t.extend(lin(f.pooler_name(f.prefix), h, h));
    t.extend(lin(f.seq_classifier.to_string(), 2, h));
    crate::io::output::write_safetensors(&dir.join("model.safetensors"), &t, &[])?;
    // BERT's key names (headroom reads DistilBERT's under them too)
    let cfg = serde_json::json!({
        "architectures": [f.architecture(crate::model::TaskHead::SequenceClassification)],
        "model_type": f.model_type,
        "vocab_size": v, "hidden_size": h, "embedding_size": e, "num_hidden_layers": l,
        "num_hidden_groups": stored, "num_attention_heads": shape.heads,
        "intermediate_size": i, "max_position_embeddings": p, "type_vocab_size": types,
        "layer_norm_eps": 1e-12, "hidden_act": f.default_hidden_act,
        "pad_token_id": if offset > 0 { 1 } else { 0 },
    });
    crate::io::output::write_atomic(&dir.join("config.json"), cfg.to_string().as_bytes())?;
    let tok = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100,
                  "vocab": {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102}},
    });
    crate::io::output::write_atomic(&dir.join("tokenizer.json"), tok.to_string().as_bytes())
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Result<Scratch> {
        let p = std::env::temp_dir().join(format!("headroom-bench-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)
            .map_err(|e| Error::output(&p, format!("cannot create: {e}")))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn bench(gpu: &Gpu, args: &BenchArgs) -> Result<BenchReport> {
    if args.batch == 0 || args.seq == 0 || args.iters == 0 {
        return Err(Error::Usage(
            "--batch, --seq and --iters must be at least 1".into(),
        ));
    }
    if let Some(f) = args.pruned.iter().find(|f| !(0.0..=1.0).contains(*f)) {
        return Err(Error::Usage(format!("--pruned {f} is outside [0, 1]")));
    }
    let scratch = Scratch::new("model")?;
    let (dir, name) = match (&args.model, &args.shape) {
        (Some(d), None) => (d.clone(), d.display().to_string()),
        (None, Some(s)) => {
            let d = scratch.0.join("random");
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::output(&d, format!("cannot create: {e}")))?;
            random_checkpoint(&d, s, args.seed)?;
            (
                d,
                format!(
                    "random {} ({}×{}, hidden {})",
                    s.name, s.layers, s.heads, s.hidden
                ),
            )
        }
        _ => {
            return Err(Error::Usage(format!(
                "give one of --model DIR and --shape ({})",
                Shape::ALL.map(|s| s.name).join(", ")
            )))
        }
    };
    let model = Model::load(gpu, &dir)?;
    if model.config.is_pruned() {
        return Err(Error::input(
            &dir,
            "bench needs an unpruned checkpoint (it prunes it itself)",
        ));
    }
    let c = &model.config;
    let (nl, nh) = (c.num_hidden_layers, c.num_attention_heads);
    if args.seq > c.max_tokens() {
        return Err(Error::Usage(format!(
            "--seq {} is over the model's {} positions",
            args.seq,
            c.max_tokens()
        )));
    }
    let (b, t) = (args.batch, args.seq);
    let examples = random_examples(b, t, c.vocab_size, args.seed);
    let refs: Vec<&Encoded> = examples.iter().collect();
    let (full_attn, ffn) = flops(c, b, t, nl * nh, nl * nh);
    // One configuration per (fraction, mode), plus the unpruned dense reference first.
    struct Setup<'m> {
        fraction: f64,
        kept: usize,
        mode: Mode,
        model: &'m Model,
        gates: Vec<f32>,
        skip: HeadSkip,
        /// timed encoder and attention-block runs, ms
        enc: Vec<f64>,
        att: Vec<f64>,
    }
    let ones = vec![1f32; b * nl * nh];
    let mut compact = Vec::new();
    let mut plans = Vec::new();
    for &f in &args.pruned {
        let k = (f * nh as f64).round() as usize;
        // the same heads in every application of a shared layer (ALBERT), so that the
        // exported checkpoint can drop them
        let mask = c.expand_stored(&random_mask(c.stored_layers, nh, k, args.seed));
        if args.modes.contains(&Mode::Compact) {
            let out = scratch.0.join(format!("compact-{k}"));
            crate::heads::export::export(&crate::heads::export::ExportArgs {
                model: dir.clone(),
                mask: mask.clone(),
                mask_path: PathBuf::from("(bench mask)"),
                out: out.clone(),
                force: true,
            })?;
            compact.push(Some(Model::load(gpu, &out)?));
        } else {
            compact.push(None);
        }
        plans.push((f, k, mask));
    }
    let mut configs = vec![Setup {
        fraction: 0.0,
        kept: nl * nh,
        mode: Mode::Dense,
        model: &model,
        gates: ones.clone(),
        skip: HeadSkip::Dense,
        enc: Vec::new(),
        att: Vec::new(),
    }];
    for ((f, k, mask), small) in plans.iter().zip(&compact) {
        let gates: Vec<f32> = (0..b).flat_map(|_| mask.iter().copied()).collect();
        for &mode in &args.modes {
            let (m, g, skip) = match mode {
                Mode::Dense => (&model, gates.clone(), HeadSkip::Dense),
                Mode::Skip => (&model, gates.clone(), HeadSkip::Skip),
                Mode::Compact => (
                    small.as_ref().expect("exported above"),
                    ones.clone(),
                    HeadSkip::Skip,
                ),
            };
            configs.push(Setup {
                fraction: *f,
                kept: nl * (nh - k),
                mode,
                model: m,
                gates: g,
                skip,
                enc: Vec::new(),
                att: Vec::new(),
            });
        }
    }
    // Rounds over every configuration (one warm-up round first), so that the machine's drift
    // over minutes weighs on all of them alike; medians per configuration.
    let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let t0 = Instant::now();
        f()?;
        Ok(t0.elapsed().as_secs_f64() * 1e3)
    };
    for round in 0..=args.iters {
        for cf in configs.iter_mut() {
            let e = time(&mut || {
                cf.model
                    .forward_batch_with(gpu, &refs, &cf.gates, false, cf.skip)?;
                gpu.wait();
                Ok(())
            })?;
            let a = time(&mut || {
                cf.model
                    .run_attention_blocks(gpu, &refs, &cf.gates, cf.skip)
            })?;
            if round > 0 {
                cf.enc.push(e);
                cf.att.push(a);
            }
        }
        eprintln!("round {round} of {} done", args.iters);
    }
    let stats = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0])
    };
    let reference = (stats(&configs[0].enc).0, stats(&configs[0].att).0);
    eprintln!(
        "unpruned dense: encoder {:.1} ms, attention {:.1} ms",
        reference.0, reference.1
    );
    let mut rows = Vec::new();
    for cf in &configs[1..] {
        let kept = cf.kept;
        let (kept_attn, _) = flops(c, b, t, kept, kept);
        let ideal = (full_attn / kept_attn, (full_attn + ffn) / (kept_attn + ffn));
        let proj = if cf.mode == Mode::Dense {
            nl * nh
        } else {
            kept
        };
        let (exec_attn, _) = flops(c, b, t, proj, kept);
        let timing = |(med, min): (f64, f64), gflop: f64, ideal: f64, refm: f64| Timing {
            median_ms: med,
            min_ms: min,
            gflop: gflop / 1e9,
            gflops: gflop / 1e9 / (med / 1e3),
            ideal_speedup: ideal,
            speedup: refm / med,
            of_ideal: refm / med / ideal,
        };
        let (enc, att) = (stats(&cf.enc), stats(&cf.att));
        eprintln!(
            "pruned {:.2} ({kept} heads) {:?}: encoder {:.1} ms, attention {:.1} ms",
            cf.fraction, cf.mode, enc.0, att.0
        );
        rows.push(Row {
            fraction: cf.fraction,
            heads_kept: kept,
            mode: cf.mode,
            encoder: timing(enc, exec_attn + ffn, ideal.1, reference.0),
            attention: timing(att, exec_attn, ideal.0, reference.1),
        });
    }
    Ok(BenchReport {
        adapter: gpu.describe(),
        model: name,
        layers: nl,
        heads: nh,
        hidden: c.hidden_size,
        intermediate: c.intermediate_size,
        batch: b,
        seq: t,
        seed: args.seed,
        iters: args.iters,
        rows,
    })
}
