//! `headroom finetune`: fine-tune a classifier on the GPU (AdamW, linear warm-up and decay,
//! clipping, dropout); evaluates on dev after each epoch and writes the best epoch as an HF
//! directory.

use super::{finish_profile, open_gpu, Cli, TrainFlags};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// HF model directory to start from (a BertModel, or a classifier to train further).
    #[arg(long)]
    model: PathBuf,
    /// seq-cls (TSV with `sentence` and `label`) or token-cls (CoNLL `token<TAB>tag`).
    #[arg(long)]
    task: String,
    #[arg(long)]
    train: PathBuf,
    #[arg(long)]
    dev: PathBuf,
    /// Output HF directory (config.json, model.safetensors, tokenizer files, finetune.json).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-4)]
    lr: f32,
    #[command(flatten)]
    training: TrainFlags,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Truncate examples to this many tokens.
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    /// Stop after this many optimizer steps.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Batch examples in random order rather than grouped by length (grouping, as
    /// transformers' group_by_length, pads less and runs faster).
    #[arg(long)]
    no_group_by_length: bool,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(cli: &Cli, args: &Args) -> headroom::Result<()> {
    let Args {
        model,
        task,
        train,
        dev,
        out,
        epochs,
        batch_size,
        lr,
        training,
        seed,
        max_len,
        max_steps,
        no_group_by_length,
        force,
    } = args;
    let args = headroom::tasks::finetune::FinetuneArgs {
        model: model.clone(),
        task: headroom::tasks::parse_task(task)?,
        train: train.clone(),
        dev: dev.clone(),
        out: out.clone(),
        epochs: *epochs,
        batch_size: *batch_size,
        optimiser: training.optimiser(*lr),
        seed: *seed,
        max_len: *max_len,
        max_steps: *max_steps,
        group_by_length: !*no_group_by_length,
        force: *force,
    };
    let gpu = open_gpu(cli)?;
    let r = headroom::tasks::finetune::finetune(&gpu, &args)?;
    println!(
        "best epoch {} of {}: dev {:.4}; {:.0} s in all -> {}",
        r.best_epoch,
        r.epochs.len(),
        r.best_dev,
        r.wall_seconds,
        out.display()
    );
    finish_profile(cli, &gpu)?;
    Ok(())
}
