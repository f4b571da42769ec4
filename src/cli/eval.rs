//! `headroom eval`: evaluate a classifier as JSON: accuracy (sequence classification, labelled TSV)
//! or entity precision / recall / F1 and token accuracy (token classification, CoNLL).

use super::{check_batch_size, finish_profile, open_gpu, Cli};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// HF model directory of a sequence or token classifier.
    #[arg(long)]
    model: PathBuf,
    /// TSV with `sentence` (optional `sentence2`) and `label` (class index or id2label
    /// name), or CoNLL (`token<TAB>tag`, blank line between sentences) for token models.
    #[arg(long)]
    data: PathBuf,
    /// Head mask: JSON array of L arrays of H numbers in [0,1], or a .npy [L,H] array.
    #[arg(long, value_name = "FILE")]
    head_mask: Option<PathBuf>,
    /// Examples per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

pub fn run(cli: &Cli, args: &Args) -> headroom::Result<()> {
    let Args {
        model,
        data,
        head_mask,
        batch_size,
    } = args;
    check_batch_size(*batch_size)?;
    let gpu = open_gpu(cli)?;
    let args = headroom::tasks::eval::EvalArgs {
        model: model.clone(),
        data: data.clone(),
        head_mask: head_mask.clone(),
        batch_size: *batch_size,
    };
    let report = headroom::tasks::eval::eval(&gpu, &args)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    finish_profile(cli, &gpu)?;
    Ok(())
}
