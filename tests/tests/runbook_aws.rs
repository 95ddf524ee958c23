//! Every `aws …` command of docs/operating.md (code blocks and inline code)
//! names an operation and only options the AWS CLI has: each is checked
//! against `aws <service> <operation> help` of awscli v1 in `.venv-awscli`
//! (scripts/deps/20-python.sh), so a misspelt or invented flag fails here.
//! The Kubernetes and `selfheal` commands of the runbook are run for real by
//! `crates/selfheal-cli/tests/runbook.rs`. Skipped with a message without
//! awscli, unless `SELFHEAL_REQUIRE_TOOLS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use selfheal_tests::tools::{file_tool, run_ok, tool_or_skip, workspace_root};

const RUNBOOK: &str = "docs/operating.md";

/// Text of the runbook's ```sh blocks (continuation lines joined) and of its
/// inline code spans, one command context per entry.
fn command_texts(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match &mut block {
            Some(current) if line.trim_start().starts_with("```") => {
                out.extend(current.replace("\\\n", " ").lines().map(str::to_owned));
                block = None;
            }
            Some(current) => {
                current.push_str(line);
                current.push('\n');
            }
            None if line.trim_start() == "```sh" => block = Some(String::new()),
            None => out.extend(line.split('`').skip(1).step_by(2).map(str::to_owned)),
        }
    }
    out
}

/// `aws SERVICE OPERATION …` invocations in one line: (service, operation,
/// the `--options` used), up to the end of the command (`)`, `|`, `;`, `#`).
fn aws_commands(line: &str) -> Vec<(String, String, Vec<String>)> {
    let mut found = Vec::new();
    for (at, _) in line.match_indices("aws ") {
        let before = line[..at].chars().last();
        if before.is_some_and(|c| !(c.is_whitespace() || c == '(')) {
            continue;
        }
        let rest = &line[at + 4..];
        let end = rest.find([')', '|', ';', '#']).unwrap_or(rest.len());
        let words: Vec<&str> = rest[..end].split_whitespace().collect();
        let (Some(service), Some(operation)) = (words.first(), words.get(1)) else {
            continue;
        };
        let options = words
            .iter()
            .filter(|w| w.starts_with("--"))
            .map(|w| w.split('=').next().unwrap_or(w).to_owned())
            .collect();
        found.push(((*service).to_owned(), (*operation).to_owned(), options));
    }
    found
}

/// The help text of one operation (`aws SERVICE OPERATION help`), plain.
fn help(aws: &PathBuf, service: &str, operation: &str) -> String {
    let out = Command::new(aws)
        .args([service, operation, "help"])
        .env("AWS_PAGER", "")
        .env("PAGER", "cat")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output();
    let what = format!("{RUNBOOK}: `aws {service} {operation}` (an AWS CLI operation?)");
    let out = run_ok(out, &what);
    // The help is rendered for a terminal: drop the overstrike bold.
    let raw = String::from_utf8_lossy(&out.stdout);
    let mut plain = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn every_aws_command_in_the_runbook_exists_with_its_options() {
    let root = workspace_root();
    let found = file_tool(
        root.join(".venv-awscli/bin/aws"),
        "scripts/deps/20-python.sh",
    );
    let Some(aws) = tool_or_skip("runbook aws commands", found) else {
        return;
    };
    let text = std::fs::read_to_string(root.join(RUNBOOK)).expect("read the runbook");
    let mut options: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for line in command_texts(&text) {
        for (service, operation, used) in aws_commands(&line) {
            options
                .entry((service, operation))
                .or_default()
                .extend(used);
        }
    }
    assert!(
        options.len() >= 10,
        "{RUNBOOK}: expected the runbook's aws commands, found {options:?}"
    );
    for ((service, operation), used) in &options {
        let help = help(&aws, service, operation);
        for option in used {
            let known = help.match_indices(option.as_str()).any(|(at, _)| {
                !help[at + option.len()..]
                    .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
            });
            assert!(
                known,
                "{RUNBOOK}: `aws {service} {operation}` has no option {option}"
            );
        }
    }
    // The check itself: an invented option is not in the help.
    let help = help(&aws, "ssm", "put-parameter");
    assert!(help.contains("--overwrite") && !help.contains("--overwrite-all"));
}
