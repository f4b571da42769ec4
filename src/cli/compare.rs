//! `headroom compare`: agreement of two head maps (score's importance JSON, a role of roles.json,
//! or an [L][H] array): Spearman and Kendall τ-b (bootstrap 95 % intervals when both carry
//! per-example data), top-k Jaccard at 10/25/50 % of the heads, per-layer Spearman. JSON on stdout.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    a: PathBuf,
    b: PathBuf,
    /// The role to take from a roles.json.
    #[arg(long)]
    role: Option<String>,
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: &Args) -> headroom::Result<()> {
    let Args {
        a,
        b,
        role,
        bootstrap,
        seed,
        out,
    } = args;
    let ma = headroom::analysis::compare::read_map(a, role.as_deref())?;
    let mb = headroom::analysis::compare::read_map(b, role.as_deref())?;
    let names = (a.display().to_string(), b.display().to_string());
    let c =
        headroom::analysis::compare::compare(&ma, &mb, (&names.0, &names.1), *bootstrap, *seed)?;
    let text = serde_json::to_string_pretty(&c).expect("comparison serialises");
    if let Some(path) = out {
        headroom::io::output::write_atomic(path, text.as_bytes())?;
    }
    println!("{text}");
    Ok(())
}
