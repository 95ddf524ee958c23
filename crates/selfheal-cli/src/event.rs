//! `selfheal event FILE`: what `ingest` would start for an event, without
//! starting anything. Same parser, same `SELFHEAL_DEFAULT_*` variables, same
//! execution names, so an operator can check an alarm before wiring it up.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use selfheal_events::{Defaults, Ingested, MAX_EVENT_BYTES};

use crate::Error;

#[derive(Debug, Args)]
pub struct EventArgs {
    /// Event JSON: EventBridge or SNS CloudWatch alarm, alarm-action payload,
    /// Alertmanager webhook body, or a RemediationRequest (`-` reads stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Parse the event file into the requests `ingest` would start.
pub fn run(args: &EventArgs) -> Result<Ingested, Error> {
    let bytes = read_event(&args.file)?;
    let defaults = Defaults::from_lookup(selfheal_core::env::process)
        .map_err(|source| Error::Event { source })?;
    selfheal_events::parse_event(&bytes, &defaults).map_err(|source| Error::Event { source })
}

/// The `[{executionName, request}]` array printed on stdout.
pub fn to_json(ingested: &Ingested) -> Result<String, Error> {
    serde_json::to_string_pretty(&ingested.requests).map_err(|source| Error::Output { source })
}

/// One line for a terminal: the kind of event and how many executions would start.
pub fn summary(ingested: &Ingested) -> String {
    format!(
        "{}: {} execution(s) would start",
        ingested.kind,
        ingested.requests.len()
    )
}

/// Whether a firing alert could not become a request (the operator should
/// fix the alarm): `selfheal event` then exits non-zero.
pub fn any_rejected(ingested: &Ingested) -> bool {
    ingested.ignored.iter().any(|i| i.rejection().is_some())
}

/// One stderr line per alert that starts nothing, always printed (stdout
/// stays exactly the JSON array): `rejected` for a firing alert that cannot
/// become a request (the operator should fix the alarm), `ignored` for the
/// rest (not firing, truncated), then the alert's name and id and the reason.
pub fn ignored_lines(ingested: &Ingested) -> Vec<String> {
    ingested
        .ignored
        .iter()
        .map(|ignored| {
            let verdict = if ignored.rejection().is_some() {
                "rejected"
            } else {
                "ignored"
            };
            let who = match (ignored.name.as_deref(), ignored.id.as_deref()) {
                (Some(name), Some(id)) => format!("{name} ({id})"),
                (Some(one), None) | (None, Some(one)) => one.to_owned(),
                (None, None) => "alert".to_owned(),
            };
            one_line(&format!("{verdict} {who}: {}", ignored.message))
        })
        .collect()
}

/// Names and messages may carry alarm text; keep each report on one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn read_event(path: &Path) -> Result<Vec<u8>, Error> {
    let read_error = |source| Error::Read {
        what: "event",
        path: path.to_path_buf(),
        source,
    };
    // Read one byte past the limit so an oversized file is reported as too
    // large by the parser instead of being read whole.
    let limit = u64::try_from(MAX_EVENT_BYTES + 1).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
    } else {
        let file = std::fs::File::open(path).map_err(read_error)?;
        let size = file.metadata().map_err(read_error)?.len();
        if size > limit {
            return Err(Error::Event {
                source: selfheal_events::Error::TooLarge {
                    size: usize::try_from(size).unwrap_or(usize::MAX),
                    limit: MAX_EVENT_BYTES,
                },
            });
        }
        file.take(limit)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
    }
    Ok(bytes)
}
