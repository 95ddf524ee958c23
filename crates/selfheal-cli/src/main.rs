//! `selfheal` binary: stdout carries only JSON; failures are one `error:` line on stderr.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::FromArgMatches;
use selfheal_cli::{Cli, execute};

// One request at a time: a single-threaded runtime is enough for the kube client.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let matches = selfheal_cli::cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match execute(cli).await {
        Ok(output) => output.to_json().map(|json| (json, output.summary())),
        Err(e) => Err(e),
    };
    match result {
        Ok((json, summary)) => {
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{json}").is_err() {
                return ExitCode::FAILURE;
            }
            if std::io::stderr().is_terminal() {
                eprintln!("{summary}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.one_line());
            ExitCode::FAILURE
        }
    }
}
