//! What each CLI command does, as library calls; `main.rs` only parses and prints.

use crate::data;
use crate::error::{Error, Result};
use crate::gpu::{self, AdapterChoice, Gpu};
use crate::model::{run_forward, ForwardOptions, Gates, Model, TaskHead};
use crate::output::{write_safetensors, OutTensor};
use crate::tasks;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `headroom info`: every adapter, the chosen one, its limits and features.
pub fn info(choice: &AdapterChoice) -> Result<String> {
    let mut s = String::new();
    let adapters = gpu::list_adapters();
    let _ = writeln!(s, "adapters ({}):", adapters.len());
    for a in &adapters {
        let _ = writeln!(s, "  {}", gpu::describe_adapter(&a.get_info()));
    }
    let g = Gpu::new(choice)?;
    let _ = writeln!(s, "chosen: {}", g.describe());
    let _ = writeln!(
        s,
        "subgroup size: {}..{}",
        g.info.subgroup_min_size, g.info.subgroup_max_size
    );
    let _ = writeln!(s, "kernel tuning: {:?}", g.tuning);
    let feats: Vec<String> = g
        .features
        .iter_names()
        .map(|(n, _)| n.to_string())
        .collect();
    let _ = writeln!(
        s,
        "enabled features: {}",
        if feats.is_empty() {
            "none".into()
        } else {
            feats.join(", ")
        }
    );
    let _ = writeln!(s, "limits: {:#?}", g.limits);
    Ok(s)
}

pub struct ForwardArgs {
    pub model: PathBuf,
    pub data: PathBuf,
    pub head_mask: Option<PathBuf>,
    pub hidden: bool,
    pub batch_size: usize,
    pub out: PathBuf,
}

/// What `forward` did, for the summary line.
pub struct ForwardSummary {
    pub examples: usize,
    pub truncated: usize,
    pub tokens: usize,
    pub seconds: f64,
    pub tensors: Vec<String>,
    /// (label, count) of argmax predictions for a sequence classifier.
    pub predictions: Vec<(String, usize)>,
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Refuses to write over an input.
pub fn check_not_input(out: &Path, inputs: &[&Path]) -> Result<()> {
    for i in inputs {
        if same_file(out, i) {
            return Err(Error::output(
                out,
                format!("is an input ({}); refusing to overwrite it", i.display()),
            ));
        }
    }
    Ok(())
}

/// Tokenises `texts` read from `data`, warning once when some were truncated.
fn encode(
    model: &Model,
    texts: &data::Texts,
    data: &Path,
) -> Result<(Vec<crate::model::Encoded>, usize)> {
    let (enc, truncated) = model.tokenizer.encode_all(texts)?;
    if truncated > 0 {
        eprintln!(
            "warning: {}: {truncated} of {} examples were longer than max_position_embeddings ({}) and were truncated",
            data.display(),
            texts.len(),
            model.config.max_position_embeddings
        );
    }
    Ok((enc, truncated))
}

/// `headroom forward`.
pub fn forward(gpu: &Gpu, args: &ForwardArgs) -> Result<ForwardSummary> {
    let model = Model::load(gpu, &args.model)?;
    let model_files: Vec<PathBuf> = ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|f| args.model.join(f))
        .collect();
    let mut inputs: Vec<&Path> = vec![&args.data];
    inputs.extend(model_files.iter().map(|p| p.as_path()));
    if let Some(m) = &args.head_mask {
        inputs.push(m);
    }
    check_not_input(&args.out, &inputs)?;
    let c = &model.config;
    let texts = data::read_sentences(&args.data)?;
    let gates = match &args.head_mask {
        Some(p) => Gates::Broadcast(data::read_head_mask(
            p,
            c.num_hidden_layers,
            c.num_attention_heads,
        )?),
        None => Gates::Ones,
    };
    let (enc, truncated) = encode(&model, &texts, &args.data)?;
    let start = std::time::Instant::now();
    let opts = ForwardOptions {
        batch_size: args.batch_size,
        hidden: args.hidden,
        progress: true,
    };
    let res = run_forward(gpu, &model, &enc, &gates, &opts)?;
    let seconds = start.elapsed().as_secs_f64();
    let (n, t, h) = (res.n, res.seq, c.hidden_size);
    let mut tensors = Vec::new();
    let mut predictions = Vec::new();
    if let Some(l) = &res.logits {
        let shape = if model.task == TaskHead::TokenClassification {
            vec![n, t, res.num_labels]
        } else {
            vec![n, res.num_labels]
        };
        if model.task == TaskHead::SequenceClassification {
            let mut counts = vec![0usize; res.num_labels];
            for row in l.chunks(res.num_labels) {
                let am = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|x| x.0)
                    .unwrap_or(0);
                counts[am] += 1;
            }
            predictions = counts
                .iter()
                .enumerate()
                .map(|(i, &k)| (c.label(i), k))
                .collect();
        }
        tensors.push(OutTensor::f32("logits", shape, l));
    }
    if let Some(p) = &res.pooled {
        tensors.push(OutTensor::f32("pooled", vec![n, h], p));
    }
    if let Some(hd) = &res.hidden {
        tensors.push(OutTensor::f32("last_hidden_state", vec![n, t, h], hd));
        let mut mask = vec![0i64; n * t];
        let mut ids = vec![0i64; n * t];
        for (i, e) in enc.iter().enumerate() {
            for (j, &id) in e.ids.iter().enumerate() {
                mask[i * t + j] = 1;
                ids[i * t + j] = id as i64;
            }
        }
        tensors.push(OutTensor::i64("attention_mask", vec![n, t], &mask));
        tensors.push(OutTensor::i64("input_ids", vec![n, t], &ids));
    }
    if tensors.is_empty() {
        return Err(Error::Usage(format!(
            "{}: the model has no pooler and no classifier, so there is nothing to write without --hidden",
            args.model.display()
        )));
    }
    let labels: Vec<String> = (0..res.num_labels).map(|i| c.label(i)).collect();
    let meta = [
        ("model", args.model.display().to_string()),
        ("data", args.data.display().to_string()),
        (
            "head_mask",
            args.head_mask
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("labels", serde_json::to_string(&labels).unwrap_or_default()),
        ("headroom", env!("CARGO_PKG_VERSION").to_string()),
    ];
    write_safetensors(&args.out, &tensors, &meta)?;
    Ok(ForwardSummary {
        examples: n,
        truncated,
        tokens: res.lengths.iter().sum(),
        seconds,
        tensors: tensors
            .iter()
            .map(|t| format!("{} {:?}", t.name, t.shape))
            .collect(),
        predictions,
    })
}

pub struct ScoreArgs {
    pub model: PathBuf,
    pub data: PathBuf,
    pub out: PathBuf,
    pub granularity: String,
    pub batch_size: usize,
    /// Resamples for 95% bootstrap intervals (0: none).
    pub bootstrap: usize,
    /// Expected task (None: the checkpoint's).
    pub task: Option<TaskHead>,
}

pub struct ScoreSummary {
    pub examples: usize,
    pub seconds: f64,
    pub files: Vec<PathBuf>,
    /// (layer, head, score) of the five most important heads.
    pub top: Vec<(usize, usize, f32)>,
}

/// `headroom score`: head importance from gate gradients, attention entropy and confidence,
/// for sequence (TSV) and token (CoNLL) classifiers.
pub fn score(gpu: &Gpu, args: &ScoreArgs) -> Result<ScoreSummary> {
    use crate::importance::{self, Granularity};
    let gran = Granularity::parse(&args.granularity)?;
    if args.out.exists() && !args.out.is_dir() {
        return Err(Error::output(&args.out, "exists and is not a directory"));
    }
    check_not_input(&args.out, &[&args.model, &args.data])?;
    let model = Model::load_for_gradients(gpu, &args.model)?;
    if let Some(t) = args.task {
        if t != model.task {
            return Err(Error::input(
                &args.model,
                format!(
                    "the checkpoint is a {} model, not {}",
                    model.task.name(),
                    t.name()
                ),
            ));
        }
    }
    let labels = tasks::model_labels(&model);
    let split = tasks::load(&model, &args.data, &labels)?;
    tasks::warn_truncated(&args.data, &split, model.tokenizer.max_len());
    let start = std::time::Instant::now();
    let s = importance::score(gpu, &model, &split, None, args.batch_size, true)?;
    let (nl, nh) = (s.layers, s.heads);
    let chosen = s.get(gran).to_vec();
    let boot_seed = 0x5EED;
    let variant = |g: Granularity| {
        let raw = s.get(g);
        let mut v = serde_json::json!({
            "raw": raw,
            "per_layer_l2": importance::normalize_per_layer(raw, nh),
            "min_max": importance::normalize_min_max(raw),
            "rank": importance::ranks(raw),
        });
        if let Some(b) = importance::bootstrap(&s, g, args.bootstrap, boot_seed) {
            v["bootstrap_95"] = serde_json::json!({
                "resamples": b.resamples,
                "score_lo": b.score_lo, "score_hi": b.score_hi,
                "rank_lo": b.rank_lo, "rank_hi": b.rank_hi,
            });
        }
        v
    };
    let variants: serde_json::Map<String, serde_json::Value> = Granularity::ALL
        .iter()
        .map(|&g| (g.name().to_string(), variant(g)))
        .collect();
    let seconds = start.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "task": model.task.name(),
        "granularity": gran.name(),
        "shape": [nl, nh],
        "importance": chosen,
        "variants": variants,
        "bootstrap_note": if args.bootstrap > 0 {
            "95% percentile intervals over resampled examples; none for `batch`, which is not a mean over examples"
        } else { "not requested (--bootstrap N)" },
        "attn_entropy": s.entropy,
        "attn_confidence": s.confidence,
        "per_example_gate_grad": s.per_example,
        "examples": s.examples,
        "truncated": split.truncated,
        "batches": s.batches,
        "batch_size": args.batch_size,
        "mean_loss": s.mean_loss,
        "model": args.model.display().to_string(),
        "data": args.data.display().to_string(),
        "adapter": gpu.describe(),
        "wall_seconds": seconds,
        "headroom": env!("CARGO_PKG_VERSION"),
    });
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Error::output(&args.out, format!("cannot create: {e}")))?;
    let files = [
        (
            "head_importance.npy",
            crate::output::npy_f32(&[nl, nh], &chosen),
        ),
        (
            "attn_entropy.npy",
            crate::output::npy_f32(&[nl, nh], &s.entropy),
        ),
        (
            "attn_confidence.npy",
            crate::output::npy_f32(&[nl, nh], &s.confidence),
        ),
        (
            "report.json",
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        ),
    ];
    let mut written = Vec::new();
    for (name, bytes) in files {
        let p = args.out.join(name);
        crate::output::write_atomic(&p, &bytes)?;
        written.push(p);
    }
    let title = format!("head importance ({}), {} examples", gran.name(), s.examples);
    written.extend(crate::plot::heatmap(
        &args.out,
        "head_importance",
        &chosen,
        (nl, nh),
        &title,
    )?);
    let ranks = importance::ranks(&chosen);
    let mut top: Vec<(usize, usize, f32)> = (0..nl * nh)
        .filter(|&k| ranks[k] <= 5)
        .map(|k| (k / nh, k % nh, chosen[k]))
        .collect();
    top.sort_by(|a, b| b.2.total_cmp(&a.2));
    Ok(ScoreSummary {
        examples: s.examples,
        seconds,
        files: written,
        top,
    })
}

pub struct EvalArgs {
    pub model: PathBuf,
    pub data: PathBuf,
    pub head_mask: Option<PathBuf>,
    pub batch_size: usize,
}

/// `headroom eval`: accuracy of a sequence classifier on a labelled TSV, or entity-level
/// precision / recall / F1 (seqeval) and token accuracy of a token classifier on CoNLL,
/// optionally with a head mask. Returns the JSON report.
pub fn eval(gpu: &Gpu, args: &EvalArgs) -> Result<serde_json::Value> {
    let model = Model::load(gpu, &args.model)?;
    if model.task == TaskHead::None {
        return Err(Error::Usage(format!(
            "{}: eval needs a sequence or token classifier (this checkpoint has no task head)",
            args.model.display()
        )));
    }
    let c = &model.config;
    let labels = tasks::model_labels(&model);
    let gates = match &args.head_mask {
        Some(p) => Gates::Broadcast(data::read_head_mask(
            p,
            c.num_hidden_layers,
            c.num_attention_heads,
        )?),
        None => Gates::Ones,
    };
    let split = tasks::load(&model, &args.data, &labels)?;
    tasks::warn_truncated(&args.data, &split, model.tokenizer.max_len());
    let start = std::time::Instant::now();
    let m = tasks::evaluate(gpu, &model, &split, &labels, &gates, args.batch_size, true)?;
    let heads_kept = match &gates {
        Gates::Broadcast(m) => m.iter().filter(|&&v| v != 0.0).count(),
        _ => c.total_heads(),
    };
    let mut report = serde_json::json!({
        "task": model.task.name(),
        "examples": m.examples,
        "loss": m.loss,
        "truncated": split.truncated,
        "heads_kept": heads_kept,
        "heads_total": c.total_heads(),
        "model": args.model.display().to_string(),
        "data": args.data.display().to_string(),
        "head_mask": args.head_mask.as_ref().map(|p| p.display().to_string()),
        "adapter": gpu.describe(),
        "wall_seconds": start.elapsed().as_secs_f64(),
    });
    let obj = report.as_object_mut().expect("an object");
    for (k, v) in [
        ("accuracy", m.accuracy),
        ("precision", m.precision),
        ("recall", m.recall),
        ("f1", m.f1),
        ("token_accuracy", m.token_accuracy),
    ] {
        if let Some(v) = v {
            obj.insert(k.into(), v.into());
        }
    }
    if let Some(n) = m.correct {
        obj.insert("correct".into(), n.into());
    }
    Ok(report)
}

/// `headroom export`: reads the mask against the checkpoint's config and writes the pruned copy.
pub fn export(
    model: &Path,
    mask: &Path,
    out: &Path,
    force: bool,
) -> Result<crate::export::ExportReport> {
    let cfg = crate::model::Config::load(&model.join("config.json"))?;
    let m = data::read_head_mask(mask, cfg.num_hidden_layers, cfg.num_attention_heads)?;
    crate::export::export(&crate::export::ExportArgs {
        model: model.to_path_buf(),
        mask: m,
        mask_path: mask.to_path_buf(),
        out: out.to_path_buf(),
        force,
    })
}
