//! docs/operating.md's commands are real: every `selfheal …` line parses
//! with this CLI's flags, and the Kubernetes blocks of §4 (un-pause), §5
//! (bad images) and §6 (what did selfheal do) run as written, through bash,
//! against the test API server seeded with `examples/checkout-snapshot.yaml`
//! (`~/.kube/config` is the server's kubeconfig; `selfheal` is this crate's
//! binary). kubectl comes from `SELFHEAL_KUBECTL` or `.tools/kubectl/`, jq
//! from `PATH`; without them the run part is skipped with a message, unless
//! `SELFHEAL_REQUIRE_TOOLS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use selfheal_cli::Cli;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_selfheal");
const RUNBOOK: &str = "docs/operating.md";
const BAD: &str = "registry.example/shop/api:1.2.0";
const OLDER_BAD: &str = "registry.example/shop/api:0.9.0";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn runbook() -> String {
    std::fs::read_to_string(repo_root().join(RUNBOOK)).expect("read docs/operating.md")
}

/// Every ```sh block with the `## ` heading it is under.
fn sh_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match &mut block {
            Some(current) if line.trim_start().starts_with("```") => {
                out.push((heading.clone(), std::mem::take(current)));
                block = None;
            }
            Some(current) => {
                current.push_str(line);
                current.push('\n');
            }
            None if line.starts_with("## ") => heading = line.to_owned(),
            None if line.trim_start() == "```sh" => block = Some(String::new()),
            None => {}
        }
    }
    out
}

/// The ```sh blocks of the section whose heading starts with `heading`.
fn blocks(text: &str, heading: &str) -> Vec<String> {
    let out: Vec<String> = sh_blocks(text)
        .into_iter()
        .filter(|(h, _)| h.starts_with(heading))
        .map(|(_, b)| b)
        .collect();
    assert!(!out.is_empty(), "{RUNBOOK}: no sh block under {heading:?}");
    out
}

/// Shell words of one command line (single and double quotes, no escapes
/// inside single quotes), up to a `#` comment.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                started = true;
            }
            None if c == '#' && !started => break,
            None if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            None => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

/// Every `selfheal …` command of every block, continuation lines joined.
fn selfheal_commands(text: &str) -> Vec<String> {
    sh_blocks(text)
        .into_iter()
        .flat_map(|(_, block)| {
            block
                .replace("\\\n", " ")
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("selfheal "))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_selfheal_command_in_the_runbook_parses() {
    let commands = selfheal_commands(&runbook());
    assert!(
        commands.len() >= 3,
        "{RUNBOOK}: expected selfheal commands, found {commands:?}"
    );
    for command in &commands {
        let args = words(command);
        if let Err(e) = Cli::try_parse_from(&args) {
            panic!("{RUNBOOK}: `{command}` does not parse: {e}");
        }
    }
    // The parser of the test itself: a flag this CLI lacks is an error.
    assert!(Cli::try_parse_from(words("selfheal resume -n shop checkout --nope")).is_err());
}

fn kubectl() -> Result<PathBuf, String> {
    let path = std::env::var_os("SELFHEAL_KUBECTL").map_or_else(
        || repo_root().join(".tools/kubectl/usr/bin/kubectl"),
        PathBuf::from,
    );
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "kubectl not found at {} (run scripts/deps/10-kubectl.sh or set SELFHEAL_KUBECTL)",
            path.display()
        ))
    }
}

fn jq() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("jq"))
        .find(|p| p.is_file())
        .ok_or_else(|| "jq not found on PATH".to_owned())
}

/// `Some(tool)`, or `None` after saying why the test is skipped; a panic
/// when `SELFHEAL_REQUIRE_TOOLS` is set.
fn tool_or_skip(found: Result<PathBuf, String>) -> Option<PathBuf> {
    match found {
        Ok(path) => Some(path),
        Err(why) if std::env::var_os("SELFHEAL_REQUIRE_TOOLS").is_some() => {
            panic!("SELFHEAL_REQUIRE_TOOLS is set but {why}")
        }
        Err(why) => {
            eprintln!(
                "SKIPPED runbook commands: {why}; set SELFHEAL_REQUIRE_TOOLS=1 to make this a failure"
            );
            None
        }
    }
}

/// A home with `~/.kube/config` for the server and a `bin/` holding
/// `selfheal`, `kubectl` and `jq`, so the blocks run exactly as printed.
struct Shell {
    home: tempfile::TempDir,
}

impl Shell {
    fn new(kubeconfig: &str, kubectl: &Path, jq: &Path) -> Shell {
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(home.path().join(".kube")).expect("mkdir");
        std::fs::write(home.path().join(".kube/config"), kubeconfig).expect("kubeconfig");
        let bin = home.path().join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        for (name, target) in [
            ("selfheal", Path::new(BIN)),
            ("kubectl", kubectl),
            ("jq", jq),
        ] {
            std::os::unix::fs::symlink(target, bin.join(name)).expect("symlink");
        }
        Shell { home }
    }

    /// Runs `script` with bash (-e, -o pipefail) off the async runtime, so
    /// the in-process server keeps serving; returns stdout.
    async fn run(&self, script: &str) -> String {
        let home = self.home.path().to_owned();
        let owned = script.to_owned();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("bash")
                .args(["-e", "-o", "pipefail", "-c", &owned])
                .env_clear()
                .env("HOME", &home)
                .env(
                    "PATH",
                    format!("{}:/usr/bin:/bin", home.join("bin").display()),
                )
                .env("KUBECONFIG", home.join(".kube/config"))
                .output()
                .expect("run bash")
        })
        .await
        .expect("join");
        assert!(
            out.status.success(),
            "{RUNBOOK} block failed:\n{script}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }
}

fn annotation(server: &selfheal_testserver::TestServer, key: &str) -> Option<String> {
    let deployment = server.deployment("shop", "checkout").expect("deployment");
    deployment
        .metadata
        .annotations
        .unwrap_or_default()
        .get(key)
        .cloned()
}

fn paused(server: &selfheal_testserver::TestServer) -> bool {
    let deployment = server.deployment("shop", "checkout").expect("deployment");
    deployment.spec.and_then(|s| s.paused).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_kubernetes_blocks_run_as_written() {
    let (Some(kubectl), Some(jq)) = (tool_or_skip(kubectl()), tool_or_skip(jq())) else {
        return;
    };
    // TLS: kubectl sends the kubeconfig's token over HTTPS only.
    let server = selfheal_testserver::TestServer::builder()
        .tls(true)
        .start()
        .await
        .expect("test server");
    let snapshot = std::fs::read_to_string(repo_root().join("examples/checkout-snapshot.yaml"))
        .expect("snapshot");
    server.apply_objects(serde_saphyr::from_str(&snapshot).expect("snapshot YAML"));
    let shell = Shell::new(&server.kubeconfig_yaml(), &kubectl, &jq);
    let text = runbook();
    let unpause = blocks(&text, "## 4.");
    let [status, resume, by_kubectl] = unpause.as_slice() else {
        panic!(
            "{RUNBOOK} §4: expected 3 blocks (status, selfheal resume, kubectl), got {unpause:?}"
        );
    };

    // §4 with selfheal: a pause selfheal made, seen by status, lifted by resume.
    let pause = "selfheal pause -n shop checkout --kubeconfig ~/.kube/config";
    let paused_outcome: Value = serde_json::from_str(&shell.run(pause).await).expect("JSON");
    assert_eq!(paused_outcome["status"], "applied", "{paused_outcome}");
    assert_eq!(
        annotation(&server, "selfheal.dev/paused-by").as_deref(),
        Some("selfheal")
    );
    let seen: Value = serde_json::from_str(&shell.run(status).await).expect("status JSON");
    assert_eq!(
        (seen["paused"].clone(), seen["pausedBy"].clone()),
        (Value::Bool(true), "selfheal".into())
    );
    let resumed: Value = serde_json::from_str(&shell.run(resume).await).expect("JSON");
    assert_eq!(resumed["status"], "applied", "{resumed}");
    assert!(!paused(&server));
    assert_eq!(annotation(&server, "selfheal.dev/paused-by"), None);

    // §4 with kubectl: resumed, and the mark gone. (A second pause within
    // the cooldown would be refused; this setup step is not the runbook's.)
    shell
        .run(&format!("SELFHEAL_COOLDOWN_SECONDS=0 {pause}"))
        .await;
    assert!(paused(&server));
    shell.run(by_kubectl).await;
    assert!(!paused(&server));
    assert_eq!(annotation(&server, "selfheal.dev/paused-by"), None);

    // §5: forget one image, then all of them.
    let seeded = format!(r#"{{"api":["{OLDER_BAD}","{BAD}"]}}"#);
    shell
        .run(&format!(
            "kubectl annotate deployment checkout -n shop --overwrite selfheal.dev/bad-images='{seeded}'"
        ))
        .await;
    let bad_images = blocks(&text, "## 5.");
    let [block] = bad_images.as_slice() else {
        panic!("{RUNBOOK} §5: expected one block, got {bad_images:?}");
    };
    // The block's last part, from its `# Or forget every …` comment line on,
    // forgets everything; the part before it, one image.
    let (one, all) = block
        .split_once("# Or forget every")
        .expect("§5: the forget-one and forget-all parts");
    let all = all.split_once('\n').map_or("", |(_, rest)| rest);
    let shown = shell.run(one).await;
    assert!(shown.contains(BAD), "§5 shows what is recorded: {shown}");
    let left: Value =
        serde_json::from_str(&annotation(&server, "selfheal.dev/bad-images").expect("kept"))
            .expect("JSON");
    assert_eq!(
        left,
        serde_json::json!({"api": [OLDER_BAD]}),
        "§5 forgets {BAD} only"
    );
    shell.run(all).await;
    assert_eq!(annotation(&server, "selfheal.dev/bad-images"), None);

    // §6: after a rollback, every command shows it.
    let rollback = "selfheal rollback -n shop checkout --kubeconfig ~/.kube/config --reason 5xx";
    let rolled: Value = serde_json::from_str(&shell.run(rollback).await).expect("JSON");
    assert_eq!(rolled["status"], "applied", "{rolled}");
    let looked = blocks(&text, "## 6.");
    let kube = looked
        .iter()
        .find(|b| b.contains("kubectl get events"))
        .expect("§6: the Deployment block");
    let shown = shell.run(kube).await;
    for expected in [
        "SelfhealRollback",
        "\"action\": \"rollback\"",
        "selfheal rollback",
        "\"state\"",
    ] {
        assert!(
            shown.contains(expected),
            "§6 output lacks {expected:?}:\n{shown}"
        );
    }
}
