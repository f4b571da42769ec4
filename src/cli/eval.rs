//! `headroom eval`: evaluate a classifier as JSON: accuracy (sequence classification, labelled TSV)
//! or entity precision / recall / F1 and token accuracy (token classification, CoNLL), or a
//! masked-LM head's loss, perplexity and accuracy on masked text.

use super::{
    check_batch_size, data_help, finish_profile, open_gpu, Cli, HeadMaskArg, ModelDataArgs,
    ObjectiveArg, SimcseDropoutArg,
};

#[derive(clap::Args)]
#[command(mut_args(data_help(
    "TSV with `sentence` (optional `sentence2`) and `label` (class index or id2label name), \
     or CoNLL (`token<TAB>tag`, blank line between sentences) for token models; text for \
     --objective mlm"
)))]
pub struct Args {
    #[command(flatten)]
    input: ModelDataArgs,
    #[command(flatten)]
    objective: ObjectiveArg,
    #[command(flatten)]
    simcse_dropout: SimcseDropoutArg,
    #[command(flatten)]
    head_mask: HeadMaskArg,
    /// Examples per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// With --head-mask: also evaluate every head, and report the metric's difference (masked
    /// − every head) with a 95 % paired-bootstrap interval over examples from this many
    /// resamples.
    #[arg(long, default_value_t = 0, value_name = "RESAMPLES")]
    paired_bootstrap: usize,
    /// The paired bootstrap's seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(cli: &Cli, a: &Args) -> headroom::Result<()> {
    check_batch_size(a.batch_size)?;
    let objective = a.objective.parse()?;
    let gpu = open_gpu(cli)?;
    let args = headroom::tasks::eval::EvalArgs {
        model: a.input.model.clone(),
        data: a.input.data.clone(),
        head_mask: a.head_mask.file.clone(),
        batch_size: a.batch_size,
        objective,
        mask_seed: a.objective.mask_seed,
        in_batch: a.objective.in_batch(a.simcse_dropout.dropout),
        paired_bootstrap: a.paired_bootstrap,
        seed: a.seed,
    };
    let report = headroom::tasks::eval::eval(&gpu, &args)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    finish_profile(cli, &gpu)?;
    Ok(())
}
