//! `headroom syntax`: dependency heads: per relation, the head whose strongest word-level attention
//! finds the gold head (and dependent) most often, against fixed-offset baselines; undirected UAS
//! of each head's maximum spanning tree. Writes syntax.json and heatmaps.

use super::{data_help, finish_profile, open_gpu, Cli, ModelDataArgs};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(mut_args(data_help("CoNLL-U")))]
pub struct Args {
    #[command(flatten)]
    input: ModelDataArgs,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
}

pub fn run(cli: &Cli, a: &Args) -> headroom::Result<()> {
    let gpu = open_gpu(cli)?;
    let r = headroom::analysis::syntax::command(
        &gpu,
        &a.input.model,
        &a.input.data,
        &a.out,
        a.batch_size,
    )?;
    println!(
        "{} sentences in {:.1} s -> {}",
        r.sentences,
        r.wall_seconds,
        a.out.display()
    );
    println!("relation        arcs  best head→dep  acc    best dep→head  acc    offset baseline");
    for x in &r.relations {
        println!(
            "{:<14} {:>5}  L{}H{:<10} {:.3}  L{}H{:<10} {:.3}  {:+} {:.3} (most frequent {:+} {:.3})",
            x.relation,
            x.arcs,
            x.best_head_to_dep.layer,
            x.best_head_to_dep.head,
            x.best_head_to_dep.accuracy,
            x.best_dep_to_head.layer,
            x.best_dep_to_head.head,
            x.best_dep_to_head.accuracy,
            x.best_offset,
            x.best_offset_accuracy,
            x.most_frequent_offset,
            x.most_frequent_offset_accuracy
        );
    }
    println!(
        "best MST head: L{}H{} undirected UAS {:.3}",
        r.best_mst.layer, r.best_mst.head, r.best_mst.accuracy
    );
    finish_profile(cli, &gpu)?;
    Ok(())
}
