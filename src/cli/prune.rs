//! `headroom prune`: prune heads by importance and trace heads kept against the eval metric
//! (mask-driven: masked heads are gated to 0). Writes curve.json, mask.json and curve.svg/png.

use super::{check_batch_size, finish_profile, open_gpu, Cli, ObjectiveArg, TrainFlags};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(mut_arg("dropout", |a| a.help(
    "Hidden dropout (default: the checkpoint's hidden_dropout_prob): of --joint's training, \
     or what tells a sentence's two copies apart under --objective simcse"
)))]
pub struct Args {
    /// HF model directory of a sequence or token classifier.
    #[arg(long)]
    model: PathBuf,
    /// Data the importance is computed on: labelled, or what --objective reads.
    #[arg(long)]
    score_data: PathBuf,
    /// Data each mask is evaluated on (by the task's metric, the masked-LM head's or the
    /// discriminator's token accuracy, or in-batch top-1 under --objective).
    #[arg(long)]
    eval_data: PathBuf,
    #[command(flatten)]
    objective: ObjectiveArg,
    /// oneshot, iterative (re-score after each step), threshold (iterative, stop below
    /// --keep × the unpruned metric), trials (--trials k1,k2,...; the best on eval data), or
    /// learned gates on the frozen model, trained on --score-data: dsp and dsp-ste (--heads
    /// K1,K2,...: exactly K heads) or hard-concrete (--l0-lambda λ1,λ2,...).
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
    /// dsp, dsp-ste: heads to keep, one run per value (and seed). oneshot, iterative: the
    /// one head count to prune down to; its mask is the chosen one.
    #[arg(long, value_delimiter = ',')]
    heads: Vec<usize>,
    /// Learned strategies: one run per seed (default: --seed).
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Learned strategies: passes over --score-data.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Learned strategies: Adam's step size for the gate logits.
    #[arg(long, default_value_t = 0.5)]
    lr: f64,
    /// dsp, dsp-ste: the soft top-K's starting temperature.
    #[arg(long, default_value_t = 1000.0)]
    tau0: f64,
    /// dsp, dsp-ste: the temperature at the end of the annealing.
    #[arg(long, default_value_t = 1e-8)]
    tau_final: f64,
    /// dsp, dsp-ste: steps over which the temperature anneals geometrically (default: the
    /// whole run).
    #[arg(long)]
    anneal_steps: Option<usize>,
    /// Learned strategies: per-example (each example its own noise) or per-batch (one draw
    /// per batch, as the reference code).
    #[arg(long, default_value = "per-example")]
    samples: String,
    /// hard-concrete: L0 penalty weights λ, one run per value (the heads kept follow λ only
    /// indirectly; the report gives the count each reached).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    l0_lambda: Vec<f64>,
    /// Learned strategies: train every weight together with the logits, through finetune's
    /// loop (AdamW, warm-up and linear decay, clipping, dropout); each run starts from
    /// --model, and --export writes its trained weights (one budget and seed).
    #[arg(long)]
    joint: bool,
    /// --joint from a bare encoder: seq-cls or token-cls, the head to add (labels from
    /// --score-data).
    #[arg(long)]
    task: Option<String>,
    /// --joint: the weights' peak learning rate.
    #[arg(long, default_value_t = 1e-4)]
    weight_lr: f32,
    /// --joint: how the weights train, as in `finetune`.
    #[command(flatten, next_help_heading = "Joint training (--joint), as finetune")]
    training: TrainFlags,
}

pub fn run(cli: &Cli, args: &Args) -> headroom::Result<()> {
    let Args {
        model,
        score_data,
        eval_data,
        objective,
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
        heads,
        seeds,
        epochs,
        lr,
        tau0,
        tau_final,
        anneal_steps,
        samples,
        l0_lambda,
        joint,
        task,
        weight_lr,
        training,
    } = args;
    let strategy = headroom::heads::prune::Strategy::parse(strategy)?;
    check_batch_size(*batch_size)?;
    let args = headroom::heads::prune::PruneArgs {
        export: export.clone(),
        force: *force,
        model: model.clone(),
        score_data: score_data.clone(),
        eval_data: eval_data.clone(),
        out: out.clone(),
        strategy,
        importance: headroom::heads::prune::Importance::parse(importance)?,
        normalize_layers: !*no_normalize,
        step: *step,
        keep: *keep,
        trials: trials.clone(),
        min_heads_per_layer: *min_heads_per_layer,
        baselines: *baselines,
        seed: *seed,
        batch_size: *batch_size,
        schedule: headroom::heads::learned::Schedule {
            epochs: *epochs,
            lr: *lr,
            tau0: *tau0,
            tau_final: *tau_final,
            anneal_steps: *anneal_steps,
            samples: headroom::heads::learned::Samples::parse(samples)?,
        },
        budgets: heads.clone(),
        seeds: if seeds.is_empty() {
            vec![*seed]
        } else {
            seeds.clone()
        },
        l0_lambdas: l0_lambda.clone(),
        joint: joint.then(|| training.optimiser(*weight_lr)),
        task: task
            .as_deref()
            .map(headroom::tasks::parse_task)
            .transpose()?,
        objective: objective.parse()?,
        mask_seed: objective.mask_seed,
        in_batch: objective.in_batch(training.dropout),
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
