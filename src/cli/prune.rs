//! `headroom prune`: prune heads by importance and trace heads kept against the eval metric
//! (mask-driven: masked heads are gated to 0). Writes curve.json, mask.json and curve.svg/png.

use super::{check_batch_size, finish_profile, open_gpu, Cli};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// HF model directory of a sequence or token classifier.
    #[arg(long)]
    model: PathBuf,
    /// Labelled data the importance is computed on.
    #[arg(long)]
    score_data: PathBuf,
    /// Labelled data each mask is evaluated on.
    #[arg(long)]
    eval_data: PathBuf,
    /// oneshot, iterative (re-score after each step), threshold (iterative, stop below
    /// --keep × the unpruned metric) or trials (--trials k1,k2,...; the best on eval data).
    #[arg(long, default_value = "oneshot")]
    strategy: String,
    /// example, batch, token, fisher (gradient importance), ablation (loss increase with
    /// the head alone gated out; reports Spearman agreement of each gradient variant), or
    /// entropy / random baselines.
    #[arg(long, default_value = "example")]
    importance: String,
    /// Rank raw gradient scores instead of per-layer ℓ2-normalised ones (bertology's default).
    #[arg(long)]
    no_normalize: bool,
    /// Heads pruned per step, as a fraction of all heads.
    #[arg(long, default_value_t = 0.1)]
    step: f64,
    /// The chosen point is the largest pruning whose metric stays ≥ keep × the unpruned metric.
    #[arg(long, default_value_t = 0.9)]
    keep: f64,
    /// Head counts to try with --strategy trials.
    #[arg(long, value_delimiter = ',')]
    trials: Vec<usize>,
    #[arg(long, default_value_t = 0)]
    min_heads_per_layer: usize,
    /// Also trace random and entropy baselines (one-shot).
    #[arg(long)]
    baselines: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Also write the chosen mask as a physically pruned checkpoint (see `export`).
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Replace the --export directory if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(cli: &Cli, args: &Args) -> headroom::Result<()> {
    let Args {
        model,
        score_data,
        eval_data,
        strategy,
        importance,
        no_normalize,
        step,
        keep,
        trials,
        min_heads_per_layer,
        baselines,
        seed,
        batch_size,
        out,
        export,
        force,
    } = args;
    check_batch_size(*batch_size)?;
    let args = headroom::heads::prune::PruneArgs {
        export: export.clone(),
        force: *force,
        model: model.clone(),
        score_data: score_data.clone(),
        eval_data: eval_data.clone(),
        out: out.clone(),
        strategy: headroom::heads::prune::Strategy::parse(strategy)?,
        importance: headroom::heads::prune::Importance::parse(importance)?,
        normalize_layers: !*no_normalize,
        step: *step,
        keep: *keep,
        trials: trials.clone(),
        min_heads_per_layer: *min_heads_per_layer,
        baselines: *baselines,
        seed: *seed,
        batch_size: *batch_size,
    };
    let gpu = open_gpu(cli)?;
    let r = headroom::heads::prune::prune(&gpu, &args)?;
    let p = &r.curve.points[r.chosen];
    println!(
        "unpruned {}: {:.4}; chosen: {} of {} heads kept, {} {:.4} -> {}",
        r.metric,
        r.unpruned_metric,
        p.heads_kept,
        p.heads_kept + p.pruned,
        r.metric,
        p.metric,
        out.display()
    );
    for q in &r.curve.points {
        println!(
            "  {:>4} heads kept: {:.4} (loss {:.4})",
            q.heads_kept, q.metric, q.loss
        );
    }
    finish_profile(cli, &gpu)?;
    Ok(())
}
