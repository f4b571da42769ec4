//! The `headroom` command line: parses the arguments and dispatches to `cli`, whose files hold
//! one subcommand each. Every user-caused failure is one line on stderr and exit code 2.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(&args) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
