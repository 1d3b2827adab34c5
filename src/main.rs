//! `drain-webhook`: parses the command line and hands over to the library (`cli::run`).

use clap::Parser;
use drain_webhook::cli::{Cli, run};

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("drain-webhook: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
