//! `headroom bench`: time what head pruning buys: for each pruned fraction (random heads per layer,
//! seeded) and mode, the median ms of the whole encoder and of the attention blocks, GFLOP/s, and
//! the speedup against the unpruned dense run next to the ideal one from FLOPs. JSON on stdout.

use super::{finish_profile, open_gpu, Cli};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// An unpruned HF model directory ...
    #[arg(long, conflicts_with = "shape")]
    model: Option<PathBuf>,
    /// ... or a random checkpoint of this shape: minilm (BERT 6×12, 384), base (BERT 12×12,
    /// 768), roberta-base, distilbert-base (6 layers), electra-base, albert-base (embeddings
    /// of 128, one layer group) or mpnet-base (a relative position bias).
    #[arg(long)]
    shape: Option<String>,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 128)]
    seq: usize,
    /// Fractions of each layer's heads to prune.
    #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,0.75,0.9")]
    pruned: Vec<f64>,
    /// dense (gated, projections computed), skip (gated-out heads left out) and/or compact
    /// (the exported checkpoint).
    #[arg(long, value_delimiter = ',', default_value = "dense,skip,compact")]
    mode: Vec<String>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Timed rounds over every (fraction, mode), after one warm-up round.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Also write the JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(cli: &Cli, args: &Args) -> headroom::Result<()> {
    let Args {
        model,
        shape,
        batch,
        seq,
        pruned,
        mode,
        seed,
        iters,
        out,
    } = args;
    let args = headroom::heads::bench::BenchArgs {
        model: model.clone(),
        shape: shape
            .as_deref()
            .map(headroom::heads::bench::Shape::parse)
            .transpose()?,
        batch: *batch,
        seq: *seq,
        pruned: pruned.clone(),
        modes: mode
            .iter()
            .map(|m| headroom::heads::bench::Mode::parse(m))
            .collect::<headroom::Result<_>>()?,
        seed: *seed,
        iters: *iters,
    };
    let gpu = open_gpu(cli)?;
    let r = headroom::heads::bench::bench(&gpu, &args)?;
    let text = serde_json::to_string_pretty(&r).expect("report serialises");
    if let Some(path) = out {
        headroom::io::output::write_atomic(path, text.as_bytes())?;
    }
    println!("{text}");
    finish_profile(cli, &gpu)?;
    Ok(())
}
