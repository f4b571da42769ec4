//! `headroom export`: physically prune a checkpoint by a head mask: the kept heads' Q/K/V rows and
//! output projection columns only, `pruned_heads` in config.json (original indices, merged with the
//! checkpoint's own), loadable by transformers 4.x and headroom.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// HF model directory (may itself be pruned).
    #[arg(long)]
    model: PathBuf,
    /// [L, H] mask over original head indices (JSON or .npy, e.g. prune's mask.json):
    /// 0 prunes a head, 1 keeps it.
    #[arg(long)]
    mask: PathBuf,
    /// Output model directory (written atomically).
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: &Args) -> headroom::Result<()> {
    let Args {
        model,
        mask,
        out,
        force,
    } = args;
    let r = headroom::heads::export::export_with_mask_file(model, mask, out, *force)?;
    println!(
        "{} of {} heads kept ({} pruned now); {} → {} parameters -> {}",
        r.heads_left,
        r.heads_total,
        r.newly_pruned,
        r.params_before,
        r.params_after,
        out.display()
    );
    Ok(())
}
