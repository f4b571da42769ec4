//! `headroom merge`: the shard files of one sharded `score` run into what the unsharded run
//! writes.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The shard files (`score --shard I/N` writes shard-I-of-N.safetensors), every one of the
    /// run, in any order.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Output directory: the files `score` writes.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: &Args) -> headroom::Result<()> {
    let s = headroom::heads::shard::merge(&a.shards, &a.out)?;
    super::score::print_summary(&s);
    Ok(())
}
