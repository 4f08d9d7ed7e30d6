use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kindlab::cli::Cli::parse();
    ExitCode::from(kindlab::run(cli))
}
