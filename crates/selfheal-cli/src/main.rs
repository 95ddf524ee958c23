//! `selfheal` binary: stdout carries only JSON; failures are one `error:` line on stderr.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::FromArgMatches;
use selfheal_cli::{Cli, Output, execute};

// One request at a time: a single-threaded runtime is enough for the kube client.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let matches = selfheal_cli::cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match execute(cli).await {
        Ok(output) => output.to_json().map(|json| {
            // Why alerts start nothing goes to stderr whether or not it is a
            // terminal: a firing alarm that starts nothing must say why.
            let notes = match &output {
                Output::Event(ingested) => selfheal_cli::event::ignored_lines(ingested),
                _ => Vec::new(),
            };
            (json, output.summary(), notes, output.exit_code())
        }),
        Err(e) => Err(e),
    };
    match result {
        Ok((json, summary, notes, code)) => {
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{json}").is_err() {
                return ExitCode::FAILURE;
            }
            let mut stderr = std::io::stderr().lock();
            if stderr.is_terminal() {
                let _ = writeln!(stderr, "{summary}");
            }
            for note in notes {
                let _ = writeln!(stderr, "{note}");
            }
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("error: {}", e.one_line());
            ExitCode::FAILURE
        }
    }
}
