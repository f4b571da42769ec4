//! `headroom roles`: head roles (local, delimiter, block, syntactic) by one-sided t-tests over
//! sentences with a multiple-comparison correction. Writes roles.json and heatmaps.

use super::{data_help, finish_profile, open_gpu, Cli, ModelDataArgs};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(mut_args(data_help(
    "CoNLL-U (every role) or a TSV of sentences / pairs (no syntactic roles)"
)))]
pub struct Args {
    #[command(flatten)]
    input: ModelDataArgs,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// H0: mean score ≤ tau (uniform attention scores 1).
    #[arg(long, default_value_t = 3.0)]
    tau: f64,
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// bh (Benjamini–Hochberg) or bonferroni, over all heads and roles together.
    #[arg(long, default_value = "bh")]
    correction: String,
    /// Roles defined in fewer sentences are not tested.
    #[arg(long, default_value_t = 10)]
    min_sentences: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
}

pub fn run(cli: &Cli, a: &Args) -> headroom::Result<()> {
    let args = headroom::analysis::roles::RolesArgs {
        model: a.input.model.clone(),
        data: a.input.data.clone(),
        out: a.out.clone(),
        tau: a.tau,
        alpha: a.alpha,
        correction: headroom::analysis::roles::Correction::parse(&a.correction)?,
        batch_size: a.batch_size,
        min_sentences: a.min_sentences,
    };
    let gpu = open_gpu(cli)?;
    let r = headroom::analysis::roles::run(&gpu, &args)?;
    let s = &r.summary;
    println!(
        "{} sentences: {} of {} heads hold a role, {} several ({:.1} %); {:.1} s -> {}",
        r.sentences,
        s.heads_with_a_role,
        s.heads,
        s.heads_with_several_roles,
        100.0 * s.fraction_with_several_roles,
        r.wall_seconds,
        a.out.display()
    );
    for (role, layers) in &s.roles_by_layer {
        println!("  {role:<16} heads per layer {layers:?}");
    }
    finish_profile(cli, &gpu)?;
    Ok(())
}
