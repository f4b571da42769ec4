//! `headroom selftest`: every kernel variant this adapter runs against the CPU oracle; a table
//! of the largest error per kernel, and exit code 1 when a check fails.

use super::{open_gpu, Cli};
use headroom::selftest::{self, Variants};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Check every variant the adapter can run (the GPU ones too, where it has SUBGROUP), not
    /// only those its tuning picks.
    #[arg(long)]
    every_variant: bool,
    /// Also write the checks as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

pub fn run(cli: &Cli, args: &Args) -> headroom::Result<()> {
    let gpu = open_gpu(cli)?;
    let variants = if args.every_variant {
        Variants::Every
    } else {
        Variants::Chosen
    };
    let checks = selftest::run(&gpu, variants)?;
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "adapter": gpu.describe(),
            "variants": format!("{variants:?}").to_lowercase(),
            "checks": checks,
        });
        let bytes = serde_json::to_vec_pretty(&report).expect("the checks serialise");
        headroom::io::output::write_atomic(path, &bytes)?;
    }
    println!(
        "{:<20} {:<9} {:>5} {:>11} {:>8}  result",
        "kernel", "variant", "cases", "max |err|", "err/tol"
    );
    for c in &checks {
        println!(
            "{:<20} {:<9} {:>5} {:>11.3e} {:>8.3}  {}",
            c.kernel,
            c.variant,
            c.cases,
            c.max_abs_error,
            c.worst_ratio,
            if c.pass { "pass" } else { "FAIL" }
        );
    }
    let failed: Vec<_> = checks.iter().filter(|c| !c.pass).collect();
    for c in &failed {
        eprintln!("FAIL {} {}: worst at {}", c.kernel, c.variant, c.worst_at);
    }
    if !failed.is_empty() {
        eprintln!(
            "selftest: {} of {} checks failed on {}",
            failed.len(),
            checks.len(),
            gpu.describe()
        );
        std::process::exit(1);
    }
    println!("all {} checks pass on {}", checks.len(), gpu.describe());
    Ok(())
}
