//! `headroom compare`: agreement of two head maps (score's importance JSON, a role of roles.json,
//! or an [L][H] array): Spearman and Kendall τ-b (bootstrap 95 % intervals when both carry
//! per-example data), top-k Jaccard at 10/25/50 % of the heads, per-layer Spearman. JSON on stdout.
//! Given more than two maps, every pair, as matrices (and a table on stderr, and a heatmap with
//! --plot).

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Two or more head maps.
    #[arg(required = true, num_args = 2.., value_name = "MAP")]
    maps: Vec<PathBuf>,
    /// Names of the maps in the output, comma-separated (default: their paths).
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
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
    /// With more than two maps: also write the Spearman matrix as DIR/agreement.svg and .png.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
}

pub fn run(args: &Args) -> headroom::Result<()> {
    use headroom::analysis::compare;
    if !args.labels.is_empty() && args.labels.len() != args.maps.len() {
        return Err(headroom::Error::Usage(format!(
            "--labels names {} maps but {} are given",
            args.labels.len(),
            args.maps.len()
        )));
    }
    let names: Vec<String> = match args.labels.is_empty() {
        true => args.maps.iter().map(|p| p.display().to_string()).collect(),
        false => args.labels.clone(),
    };
    let maps = args
        .maps
        .iter()
        .zip(names)
        .map(|(path, name)| Ok((name, compare::read_map(path, args.role.as_deref())?)))
        .collect::<headroom::Result<Vec<_>>>()?;
    let text = if let [(na, a), (nb, b)] = &maps[..] {
        if args.plot.is_some() {
            return Err(headroom::Error::Usage(
                "--plot draws the matrix of three or more maps".into(),
            ));
        }
        let c = compare::compare(a, b, (na, nb), args.bootstrap, args.seed)?;
        serde_json::to_string_pretty(&c).expect("comparison serialises")
    } else {
        let m = compare::matrix(&maps, args.bootstrap, args.seed)?;
        print_table(&m);
        if let Some(dir) = &args.plot {
            compare::plot_matrix(dir, &m)?;
        }
        serde_json::to_string_pretty(&m).expect("comparison serialises")
    };
    if let Some(path) = &args.out {
        headroom::io::output::write_atomic(path, text.as_bytes())?;
    }
    println!("{text}");
    Ok(())
}

/// Spearman (its 95 % interval where there is one) and the top-25 % Jaccard of every pair.
fn print_table(m: &headroom::analysis::compare::Matrix) {
    let width = m.maps.iter().map(String::len).max().unwrap_or(0).max(8);
    eprintln!("Spearman (upper) and top-25 % Jaccard (lower)");
    eprint!("{:width$}", "");
    for name in &m.maps {
        eprint!("  {name:>width$}");
    }
    eprintln!();
    for (i, name) in m.maps.iter().enumerate() {
        eprint!("{name:width$}");
        for j in 0..m.maps.len() {
            let v = match i.cmp(&j) {
                std::cmp::Ordering::Less => m.spearman[i][j],
                std::cmp::Ordering::Equal => f64::NAN,
                std::cmp::Ordering::Greater => m.top_25_jaccard[i][j],
            };
            let cell = if v.is_nan() {
                "-".into()
            } else {
                format!("{v:.3}")
            };
            eprint!("  {cell:>width$}");
        }
        eprintln!();
    }
}
