//! Cold rollback of a StatefulSet, side by side against one test API server
//! (docs/benchmarks.md): the release `selfheal run` (the CLI in kubeconfig
//! mode, from exec to exit) against `kubectl rollout undo
//! statefulset/ledger`, both as processes.
//!
//! Every run seeds a fresh copy of the recorded ledger StatefulSet
//! (statefulset-history.json: db 15.1 → 15.2, metrics 0.9 → 0.10, db → 15.3,
//! four ControllerRevisions) in its own namespace and settles it, so each
//! subject rolls back the identical steady object; the controller emulation
//! stays out of the timed window (it converges before and after, as on EKS
//! where the controller-manager runs on the control plane's CPUs). After
//! every run the StatefulSet is asserted: db back at 15.2, metrics at 0.10
//! (the half-brick rollback and `undo` to revision 3 agree here). Subjects
//! are interleaved run by run after one warm-up each.
//!
//! Environment: `SELFHEAL_BENCH_RUNS` (default 15), `SELFHEAL_BENCH_SELFHEAL`
//! (default `$CARGO_TARGET_DIR/release/selfheal`, else target/release).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use selfheal_tests::stats::{median, ms};
use selfheal_tests::tools::{release_binary, workspace_root};
use selfheal_testserver::{TestServer, fixtures};
use serde_json::json;

const DB_GOOD: &str = "registry.example/data/db:15.2";
const METRICS: &str = "registry.example/data/metrics:0.10";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Subject {
    Selfheal,
    KubectlUndo,
}

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::Selfheal => "`selfheal run` (rollback, statefulSet)",
            Subject::KubectlUndo => "`kubectl rollout undo statefulset/ledger`",
        }
    }
}

struct Bench {
    server: TestServer,
    dir: PathBuf,
    kubeconfig: PathBuf,
    selfheal: PathBuf,
    kubectl: PathBuf,
}

impl Bench {
    fn command(&self, subject: Subject, ns: &str) -> Command {
        let mut cmd = match subject {
            Subject::Selfheal => {
                let request = self.dir.join(format!("{ns}.json"));
                let body = json!({
                    "action": "rollback",
                    "target": {"namespace": ns, "statefulSet": "ledger"},
                    "reason": "statefulset_cold bench"
                });
                std::fs::write(&request, body.to_string()).unwrap();
                let mut c = Command::new(&self.selfheal);
                c.arg("run")
                    .arg("--request")
                    .arg(&request)
                    .arg("--kubeconfig")
                    .arg(&self.kubeconfig);
                c
            }
            Subject::KubectlUndo => {
                let mut c = Command::new(&self.kubectl);
                c.env("KUBECONFIG", &self.kubeconfig).args([
                    "-n",
                    ns,
                    "rollout",
                    "undo",
                    "statefulset/ledger",
                ]);
                c
            }
        };
        // One HOME for all runs: kubectl's discovery cache stays warm after
        // its first run (in its favour). No cargo LD_LIBRARY_PATH.
        cmd.env("HOME", &self.dir)
            .env_remove("LD_LIBRARY_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// One run in a fresh namespace: seed and settle, time the subject from
    /// spawn to exit, settle and assert the StatefulSet.
    async fn run(&self, subject: Subject, n: usize) -> Duration {
        let ns = format!("s{n}");
        let ledger = fixtures::ledger_as_recorded().named(&ns, "ledger");
        self.server.controller().pause_automatic(false);
        assert!(
            ledger
                .seed_with_history(&self.server, &fixtures::LEDGER_HISTORY)
                .await,
            "{ns}: seeding the recorded history"
        );
        self.server.controller().pause_automatic(true);
        let cmd = self.command(subject, &ns);
        let (program, mut cmd) = (cmd.get_program().to_owned(), cmd);
        let start = Instant::now();
        let out = cmd.output().expect("spawn");
        let elapsed = start.elapsed();
        assert!(
            out.status.success(),
            "{program:?} in {ns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(self.server.controller().settle().await, "{ns}: settle");
        let sts = self.server.object("StatefulSet", &ns, "ledger").unwrap();
        let images: Vec<&str> = sts["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["image"].as_str().unwrap())
            .collect();
        assert_eq!(images, [DB_GOOD, METRICS], "{subject:?} in {ns}");
        self.server.delete_namespace(&ns);
        elapsed
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("SELFHEAL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
        .max(1);
    let selfheal = std::env::var_os("SELFHEAL_BENCH_SELFHEAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| release_binary("selfheal"));
    let kubectl = workspace_root().join(".tools/kubectl/usr/bin/kubectl");
    for (what, path, how) in [
        (
            "release selfheal",
            &selfheal,
            "cargo build --release -p selfheal-cli",
        ),
        ("kubectl", &kubectl, "scripts/deps/10-kubectl.sh"),
    ] {
        assert!(
            path.is_file(),
            "{what} not found at {} (run {how})",
            path.display()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let server = TestServer::builder().tls(true).start().await.unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let bench = Bench {
        server,
        dir,
        kubeconfig,
        selfheal: selfheal.clone(),
        kubectl,
    };
    println!("selfheal binary: {}", selfheal.display());
    let subjects = [Subject::Selfheal, Subject::KubectlUndo];
    let mut n = 0;
    for &s in &subjects {
        bench.run(s, n).await;
        n += 1;
    }
    let mut times = vec![Vec::new(); subjects.len()];
    for _ in 0..runs {
        for (i, &s) in subjects.iter().enumerate() {
            let t = bench.run(s, n).await;
            eprintln!("run {n:>3} {s:?} {:>8.1} ms", ms(t));
            times[i].push(t);
            n += 1;
        }
    }
    let medians: Vec<Duration> = times.iter_mut().map(|t| median(t)).collect();
    println!("\n## Cold StatefulSet rollback, exec → exit (median of {runs} runs, interleaved)\n");
    println!("| Subject | median | min | max | × selfheal run |");
    println!("|---|---:|---:|---:|---:|");
    for (i, &s) in subjects.iter().enumerate() {
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1}× |",
            s.label(),
            ms(medians[i]),
            ms(*times[i].iter().min().unwrap()),
            ms(*times[i].iter().max().unwrap()),
            medians[i].as_secs_f64() / medians[0].as_secs_f64()
        );
    }
    bench.server.shutdown();
}
