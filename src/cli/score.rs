//! `headroom score`: head importance (Michel et al.): mean |∂loss/∂gate| per head under a task
//! or the masked-LM loss, attention entropy and confidence, with a layer×head heatmap.

use super::{
    check_batch_size, data_help, finish_profile, open_gpu, Cli, ModelDataArgs, ObjectiveArg,
    SimcseDropoutArg,
};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(mut_args(data_help(
    "TSV with `sentence` (optional `sentence2`) and `label` (class index or id2label name), \
     or CoNLL (`token<TAB>tag`) for a token classifier; text for --objective mlm"
)))]
pub struct Args {
    #[command(flatten)]
    input: ModelDataArgs,
    #[command(flatten)]
    objective: ObjectiveArg,
    #[command(flatten)]
    simcse_dropout: SimcseDropoutArg,
    /// Output directory: head_importance.npy, attn_entropy.npy, attn_confidence.npy,
    /// report.json, head_importance.svg/.png.
    #[arg(long)]
    out: PathBuf,
    /// example (mean |g| over examples), batch (|Σ over a batch|, mean over batches),
    /// token (mean over examples of Σ_t |⟨O_t,dO_t⟩|) or fisher (mean g²); report.json
    /// holds all four.
    #[arg(long, default_value = "example")]
    granularity: String,
    /// seq-cls or token-cls: checked against the checkpoint (default: the checkpoint's).
    #[arg(long)]
    task: Option<String>,
    /// Bootstrap resamples for 95% intervals of each head's score and rank.
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Examples per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// I/N: score only the I-th (from 0) of N slices of the batch plan and write
    /// shard-I-of-N.safetensors into --out; `headroom merge` assembles the shards into what
    /// one run writes. For Slurm job arrays: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT.
    #[arg(long)]
    shard: Option<String>,
}

pub fn run(cli: &Cli, a: &Args) -> headroom::Result<()> {
    check_batch_size(a.batch_size)?;
    let shard = a
        .shard
        .as_deref()
        .map(headroom::heads::importance::ShardSpec::parse)
        .transpose()?;
    let objective = a.objective.parse()?;
    let task = a
        .task
        .as_deref()
        .map(headroom::tasks::parse_task)
        .transpose()?;
    let gpu = open_gpu(cli)?;
    let args = headroom::heads::score::ScoreArgs {
        model: a.input.model.clone(),
        data: a.input.data.clone(),
        out: a.out.clone(),
        granularity: a.granularity.clone(),
        batch_size: a.batch_size,
        bootstrap: a.bootstrap,
        task,
        objective,
        mask_seed: a.objective.mask_seed,
        in_batch: a.objective.in_batch(a.simcse_dropout.dropout),
        shard,
    };
    let s = headroom::heads::score::score(&gpu, &args)?;
    print_summary(&s);
    finish_profile(cli, &gpu)?;
    Ok(())
}

/// What `score` and `merge` print: the examples, the time, the top heads and the files.
pub fn print_summary(s: &headroom::heads::score::ScoreSummary) {
    println!(
        "{} examples scored in {:.2} s ({:.1} examples/s)",
        s.examples,
        s.seconds,
        s.examples as f64 / s.seconds.max(1e-9)
    );
    for (l, h, v) in &s.top {
        println!("  layer {l} head {h}: {v:.6}");
    }
    for f in &s.files {
        println!("  wrote {}", f.display());
    }
}
