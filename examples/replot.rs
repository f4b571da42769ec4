//! Redraws `curve.svg` and `curve.png` of `headroom prune` output directories from their saved
//! `curve.json`, without the model or the data, with the function `headroom prune` draws them
//! with (`headroom::heads::prune::plot_curve`):
//!
//! ```text
//! cargo run --release --example replot -- results/pruning/sst2-oneshot [MORE_DIRS...]
//! ```

fn main() {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() || dirs.iter().any(|d| d == "-h" || d == "--help") {
        eprintln!("usage: cargo run --release --example replot -- PRUNE_OUT_DIR [MORE...]");
        eprintln!("redraws DIR/curve.svg and DIR/curve.png from DIR/curve.json");
        std::process::exit(if dirs.is_empty() { 2 } else { 0 });
    }
    let mut failed = false;
    for d in &dirs {
        match headroom::heads::prune::plot_curve(std::path::Path::new(d)) {
            Ok(written) => {
                for p in written {
                    println!("{}", p.display());
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(2);
    }
}
