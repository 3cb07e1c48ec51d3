//! `lens2logit-serve`: the lab's page, served (what `scripts/serve.sh` runs; the same as
//! `lens2logit serve`, without the rest of the command line).

use clap::Parser;
use lens2logit_serve::ServeArgs;

/// Serve Lens2Logit Lab's page: http://127.0.0.1:8080/ unless told otherwise.
#[derive(Parser)]
#[command(name = "lens2logit-serve", version)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> std::process::ExitCode {
    match lens2logit_serve::run(Cli::parse().serve) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
