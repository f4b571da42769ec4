//! `headroom info`: list adapters and show the chosen one with its limits and features.

use super::Cli;
use headroom::gpu::{self, AdapterChoice, Gpu};
use std::fmt::Write as _;

pub fn run(cli: &Cli) -> headroom::Result<()> {
    print!(
        "{}",
        describe(&AdapterChoice::from_flag(cli.adapter.clone()))?
    );
    Ok(())
}

/// Every adapter, the chosen one, its limits and features.
fn describe(choice: &AdapterChoice) -> headroom::Result<String> {
    let mut s = String::new();
    let adapters = gpu::list_adapters();
    let _ = writeln!(s, "adapters ({}):", adapters.len());
    for a in &adapters {
        let _ = writeln!(s, "  {}", gpu::describe_adapter(&a.get_info()));
    }
    let g = Gpu::new(choice)?;
    let _ = writeln!(s, "chosen: {}", g.describe());
    let _ = writeln!(
        s,
        "subgroup size: {}..{}",
        g.info.subgroup_min_size, g.info.subgroup_max_size
    );
    let _ = writeln!(s, "kernel tuning: {:?}", g.tuning);
    let feats: Vec<String> = g
        .features
        .iter_names()
        .map(|(n, _)| n.to_string())
        .collect();
    let _ = writeln!(
        s,
        "enabled features: {}",
        if feats.is_empty() {
            "none".into()
        } else {
            feats.join(", ")
        }
    );
    let _ = writeln!(s, "limits: {:#?}", g.limits);
    Ok(s)
}
