//! The `score` job: head importance of a classifier on a labelled file, or of a masked-LM head
//! on masked text, written as npy arrays, a JSON report with every granularity and
//! normalisation, and a heatmap.

use super::importance::{self, Granularity, Scores, ShardSpec};
use super::shard::{self, Shard};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::output::{check_not_input, npy_f32, write_atomic};
use crate::io::plot;
use crate::model::{Model, TaskHead};
use crate::tasks::{self, pretraining, Objective};
use std::path::{Path, PathBuf};

pub struct ScoreArgs {
    pub model: PathBuf,
    pub data: PathBuf,
    pub out: PathBuf,
    pub granularity: String,
    pub batch_size: usize,
    /// Resamples for 95% bootstrap intervals (0: none).
    pub bootstrap: usize,
    /// Expected task (None: the checkpoint's); the task objective only.
    pub task: Option<TaskHead>,
    /// The loss whose gate gradients score the heads.
    pub objective: Objective,
    /// The pre-training objectives' corruption seed (and the in-batch objectives' batch order
    /// and dropout seed).
    pub mask_seed: u64,
    /// The in-batch objectives' settings.
    pub in_batch: pretraining::InBatch,
    /// Run only this slice of the batch plan and write a shard file into `out` (`merge`
    /// assembles the whole).
    pub shard: Option<ShardSpec>,
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
    let gran = Granularity::parse(&args.granularity)?;
    if args.out.exists() && !args.out.is_dir() {
        return Err(Error::output(&args.out, "exists and is not a directory"));
    }
    check_not_input(&args.out, &[&args.model, &args.data])?;
    if args.objective != Objective::Task && args.task.is_some() {
        return Err(Error::Usage(format!(
            "--task checks a classifier; it does not apply to --objective {}",
            args.objective.name()
        )));
    }
    if args.shard.is_some() && args.objective.in_batch() {
        return Err(Error::Usage(format!(
            "--shard does not apply to --objective {}: its batches are drawn across the whole \
             file",
            args.objective.name()
        )));
    }
    let start = std::time::Instant::now();
    // the sums, how many examples were truncated, the tokens the loss counts (masked for
    // mlm, every real one for rtd), and an in-batch objective's settings
    let (bs, part) = (args.batch_size, args.shard);
    let (model, p, truncated, loss_tokens, in_batch) = match args.objective {
        Objective::Task => {
            let (model, split) = load_task(gpu, args)?;
            tasks::warn_truncated(&args.data, &split, model.tokenizer.max_len());
            let p = importance::score_part(gpu, &model, &split, None, bs, true, part)?;
            (model, p, split.truncated, None, None)
        }
        objective if objective.in_batch() => {
            let model = pretraining::load_model(gpu, &args.model, objective, true)?;
            let pairs = pretraining::load_pairs(&model, &args.data, objective)?;
            let spec =
                pretraining::contrastive_spec(&model, objective, args.in_batch, args.mask_seed)?;
            pretraining::warn_truncated_pairs(&args.data, &pairs, model.tokenizer.max_len());
            let seed = args.mask_seed;
            let p = importance::score_pairs_part(gpu, &model, &pairs, &spec, None, bs, seed, true)?;
            (model, p, pairs.truncated, None, Some(spec))
        }
        objective => {
            let model = pretraining::load_model(gpu, &args.model, objective, true)?;
            let split = pretraining::load(&model, &args.data, objective, args.mask_seed)?;
            tasks::warn_truncated(&args.data, &split, model.tokenizer.max_len());
            let p = importance::score_part(gpu, &model, &split, None, bs, true, part)?;
            let counted = split.labels.iter().flatten().filter(|&&y| y >= 0).count();
            (model, p, split.truncated, Some(counted), None)
        }
    };
    let in_batch = in_batch.map(|spec| {
        serde_json::json!({
            "scale": spec.scale,
            "symmetric": spec.symmetric,
            "pooling": format!("{:?}", spec.pooling),
            "dropout": spec.dropout.map(|d| d.p),
            "per_example_note": "in-batch negatives: an example's gate gradient is that of its batch's summed loss with respect to the gates of both its sentences, so per-example values are per batch; batches are drawn in an order seeded by mask_seed",
        })
    });
    let info = RunInfo {
        task: model.task.name().to_string(),
        objective: args.objective.name().to_string(),
        mask_seed: (args.objective != Objective::Task).then_some(args.mask_seed),
        loss_tokens,
        in_batch,
        granularity: gran.name().to_string(),
        bootstrap: args.bootstrap,
        truncated,
        batch_size: args.batch_size,
        model: args.model.display().to_string(),
        data: args.data.display().to_string(),
        adapter: gpu.describe(),
    };
    let Some(spec) = args.shard else {
        let seconds = start.elapsed().as_secs_f64();
        return write_outputs(&args.out, &info, &p.finish(), seconds);
    };
    // what every shard of this run must share: the inputs' contents and the options
    let identity = serde_json::json!({
        "model": shard::model_fingerprint(&args.model)?,
        "data": shard::file_fingerprint(&args.data)?,
        "task": info.task,
        "objective": info.objective,
        "mask_seed": info.mask_seed,
        "granularity": info.granularity,
        "bootstrap": info.bootstrap,
        "batch_size": info.batch_size,
    });
    let examples = p.indices.len();
    let shard = Shard {
        identity: identity.as_object().cloned().unwrap_or_default(),
        info,
        spec,
        partial: p,
        seconds: start.elapsed().as_secs_f64(),
    };
    let path = shard::write_shard(&args.out, &shard)?;
    Ok(ScoreSummary {
        examples,
        seconds: shard.seconds,
        files: vec![path],
        top: Vec::new(),
    })
}

/// What report.json says of a run besides its scores (a shard carries it to `merge`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub task: String,
    pub objective: String,
    pub mask_seed: Option<u64>,
    pub loss_tokens: Option<usize>,
    pub in_batch: Option<serde_json::Value>,
    pub granularity: String,
    pub bootstrap: usize,
    pub truncated: usize,
    pub batch_size: usize,
    pub model: String,
    pub data: String,
    pub adapter: String,
}

/// Writes `score`'s files for `s` into `out`: the npy arrays, report.json and the heatmap.
pub fn write_outputs(out: &Path, info: &RunInfo, s: &Scores, seconds: f64) -> Result<ScoreSummary> {
    let gran = Granularity::parse(&info.granularity)?;
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
        if let Some(b) = importance::bootstrap(s, g, info.bootstrap, boot_seed) {
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
    let report = serde_json::json!({
        "task": info.task,
        "objective": info.objective,
        "mask_seed": info.mask_seed,
        "loss_tokens": info.loss_tokens,
        "in_batch": info.in_batch,
        "granularity": gran.name(),
        "shape": [nl, nh],
        "importance": chosen,
        "variants": variants,
        "bootstrap_note": if info.bootstrap > 0 {
            "95% percentile intervals over resampled examples; none for `batch`, which is not a mean over examples"
        } else { "not requested (--bootstrap N)" },
        "attn_entropy": s.entropy,
        "attn_confidence": s.confidence,
        "per_example_gate_grad": s.per_example,
        "examples": s.examples,
        "truncated": info.truncated,
        "batches": s.batches,
        "batch_size": info.batch_size,
        "mean_loss": s.mean_loss,
        "model": info.model,
        "data": info.data,
        "adapter": info.adapter,
        "wall_seconds": seconds,
        "headroom": env!("CARGO_PKG_VERSION"),
    });
    std::fs::create_dir_all(out).map_err(|e| Error::output(out, format!("cannot create: {e}")))?;
    let files = [
        ("head_importance.npy", npy_f32(&[nl, nh], &chosen)),
        ("attn_entropy.npy", npy_f32(&[nl, nh], &s.entropy)),
        ("attn_confidence.npy", npy_f32(&[nl, nh], &s.confidence)),
        (
            "report.json",
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        ),
    ];
    let mut written = Vec::new();
    for (name, bytes) in files {
        let p = out.join(name);
        write_atomic(&p, &bytes)?;
        written.push(p);
    }
    let title = format!("head importance ({}), {} examples", gran.name(), s.examples);
    written.extend(plot::heatmap(
        out,
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

/// The classifier and its labelled split, the checkpoint's task checked against `args.task`.
fn load_task(gpu: &Gpu, args: &ScoreArgs) -> Result<(Model, tasks::TaskData)> {
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
    Ok((model, split))
}
