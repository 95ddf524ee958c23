//! Cold rollback, side by side against one test API server
//! (docs/benchmarks.md): the release `rollback` function binary from exec to
//! its Runtime API response, `kubectl rollout undo` and `kubectl set image`
//! as processes, and the same rollback in Python with the official
//! `kubernetes` client (tests/bench-py/rollback_handler.py) in a fresh
//! interpreter.
//!
//! Why a hand-made Runtime API: it is the smallest honest harness for "exec to
//! response" (cargo-lambda's emulator would add its own process management).
//! Every run gets a fresh copy of examples/checkout-snapshot.yaml in its own
//! namespace, so each subject rolls back the same revision-4 Deployment, and
//! the resulting images are asserted after every run.
//!
//! Environment: `SELFHEAL_BENCH_RUNS` (default 15), `SELFHEAL_BENCH_RSS_RUNS`
//! (default 3), `SELFHEAL_BENCH_ROLLBACK` (default target/release/rollback),
//! `SELFHEAL_BENCH_BASELINE` (a second rollback binary measured alongside,
//! e.g. a copy of the previous build), `SELFHEAL_BENCH_KEEP` (keep the run logs),
//! `SELFHEAL_BENCH_CONTROLLER` (`both`, the default, interleaves the two
//! placements run by run and prints a table for each; `between`: the emulated
//! controller-manager converges each namespace before and after the timed
//! window but not inside it, as on EKS where it runs on the control plane's
//! own CPUs; `live`: it also reacts to the subject's PATCH inside the window,
//! on the bench host's CPUs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use selfheal_tests::stats::{median, ms};
use selfheal_testserver::TestServer;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const API_BAD: &str = "registry.example/shop/api:1.2.0";
const API_GOOD: &str = "registry.example/shop/api:1.1.0";
const ENVOY: &str = "registry.example/envoy:1.28";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------ Runtime API --

/// One pending invocation: the request body, and where to report the response.
struct Pending {
    body: Option<String>,
    done: oneshot::Sender<(Instant, String)>,
}

type Slot = Arc<Mutex<Option<Pending>>>;

/// Serves `next` once per pending invocation (later `next` calls hang until the
/// process is killed) and reports the first response/error POST.
async fn runtime_api(
    req: Request<Incoming>,
    slot: Slot,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if req.method() == hyper::Method::GET && path.ends_with("/runtime/invocation/next") {
        // Only once per invocation: later `next` calls wait until the process is killed.
        let body = slot.lock().unwrap().as_mut().and_then(|p| p.body.take());
        let Some(body) = body else {
            std::future::pending::<()>().await;
            unreachable!()
        };
        let deadline = jiff::Timestamp::now().as_millisecond() + 60_000;
        return Ok(Response::builder()
            .header("Lambda-Runtime-Aws-Request-Id", "bench-request")
            .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
            .header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:rollback",
            )
            .header(
                "Lambda-Runtime-Trace-Id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(Full::new(Bytes::from(body)))
            .unwrap());
    }
    let at = Instant::now();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let report = if req_is_report(&path) {
        slot.lock().unwrap().take()
    } else {
        None
    };
    if let Some(p) = report {
        let tag = if path.ends_with("/response") {
            ""
        } else {
            "ERROR "
        };
        let _ = p
            .done
            .send((at, format!("{tag}{}", String::from_utf8_lossy(&body))));
    }
    Ok(Response::builder()
        .status(202)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap())
}

fn req_is_report(path: &str) -> bool {
    path.ends_with("/response") || path.ends_with("/error")
}

async fn start_runtime_api() -> (u16, Slot) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let slot: Slot = Arc::new(Mutex::new(None));
    let s = slot.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // No Nagle delay on our side of the measurement (as the test API server).
            let _ = stream.set_nodelay(true);
            let s = s.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| runtime_api(req, s.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (port, slot)
}

// ---------------------------------------------------------------- cluster --

/// The example snapshot, Deployment + ReplicaSets only, moved to `ns` with a
/// fresh Deployment uid (the ReplicaSets' owner references follow it).
fn snapshot_copy(snapshot: &Value, ns: &str, n: usize) -> Value {
    let uid = format!("00000000-0000-4000-8000-{n:012x}");
    let items: Vec<Value> = snapshot["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Deployment" | "ReplicaSet")))
        .map(|o| {
            let mut o = o.clone();
            let meta = o["metadata"].as_object_mut().unwrap();
            meta.insert("namespace".into(), json!(ns));
            meta.remove("resourceVersion");
            if o["kind"] == "Deployment" {
                o["metadata"]["uid"] = json!(uid);
            } else {
                o["metadata"].as_object_mut().unwrap().remove("uid");
                for r in o["metadata"]["ownerReferences"].as_array_mut().unwrap() {
                    r["uid"] = json!(uid);
                }
            }
            o
        })
        .collect();
    json!({ "apiVersion": "v1", "kind": "List", "items": items })
}

fn images(server: &TestServer, ns: &str) -> Vec<(String, String)> {
    let d = server.deployment(ns, "checkout").expect("deployment");
    let template = d.spec.expect("spec").template;
    selfheal_core::history::container_images(&template)
        .map(|(name, image)| (name.to_owned(), image.to_owned()))
        .collect()
}

fn request(ns: &str, run: &str) -> Value {
    json!({
        "action": "rollback",
        "target": { "cluster": "bench", "namespace": ns, "deployment": "checkout" },
        "reason": "handler benchmark",
        "execution": run,
    })
}

/// What `subject` is asked: the request above, or (`RustNamed`) the same
/// naming the container, which skips the LIST of the current pods.
fn request_for(subject: Subject, ns: &str, run: &str) -> Value {
    let mut request = request(ns, run);
    if subject == Subject::RustNamed {
        request["target"]["container"] = json!("api");
    }
    request
}

// --------------------------------------------------------------- subjects --

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Subject {
    Rust,
    /// The same binary asked for a named container (`target.container`):
    /// no LIST of the current revision's pods. Beside `Rust`, the cost of
    /// that one LIST (and of reading the pods' evidence), side by side.
    RustNamed,
    /// `SELFHEAL_BENCH_BASELINE`: another rollback binary (e.g. the previous
    /// commit's), run the same way, for before/after figures from one run.
    RustBaseline,
    KubectlUndo,
    KubectlSetImage,
    Python,
}

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::Rust => "rollback function (Rust)",
            Subject::RustNamed => "rollback function, container named (no pod LIST)",
            Subject::RustBaseline => "baseline rollback function",
            Subject::KubectlUndo => "kubectl rollout undo",
            Subject::KubectlSetImage => "kubectl set image",
            Subject::Python => "Python handler (kubernetes client)",
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Subject::Rust => "rs",
            Subject::RustNamed => "named",
            Subject::RustBaseline => "base",
            Subject::KubectlUndo => "undo",
            Subject::KubectlSetImage => "set",
            Subject::Python => "py",
        }
    }
}

/// Where the emulated controller-manager does its work relative to the timed
/// window (both placements settle every namespace before and after it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ControllerMode {
    /// Outside the window, as on EKS, where kube-controller-manager runs on
    /// the control plane's own hosts and shares no CPU with the function.
    Between,
    /// Also inside it: it reacts to the subject's PATCH on the bench host's CPUs.
    Live,
}

impl ControllerMode {
    fn tag(self) -> &'static str {
        match self {
            ControllerMode::Between => "between",
            ControllerMode::Live => "live",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ControllerMode::Between => "between runs (`between`: off the timed window, as on EKS)",
            ControllerMode::Live => {
                "live (`live`: reacts to the PATCH inside the timed window, on the bench host's CPUs)"
            }
        }
    }
}

struct Bench {
    server: TestServer,
    dir: PathBuf,
    kubeconfig: PathBuf,
    rollback: PathBuf,
    baseline: Option<PathBuf>,
    kubectl: PathBuf,
    python: PathBuf,
    handler_py: PathBuf,
    runtime_port: u16,
    slot: Slot,
}

impl Bench {
    /// The command for `subject` on namespace `ns` (the Rust one also needs the Runtime API).
    fn command(&self, subject: Subject, ns: &str, run: &str) -> Command {
        let mut cmd = match subject {
            Subject::Rust | Subject::RustNamed | Subject::RustBaseline => {
                let binary = if subject == Subject::RustBaseline {
                    self.baseline
                        .as_ref()
                        .expect("RustBaseline runs only with a baseline")
                } else {
                    &self.rollback
                };
                let mut c = Command::new(binary);
                c.env("SELFHEAL_KUBECONFIG", &self.kubeconfig)
                    .env("SELFHEAL_COOLDOWN_SECONDS", "0")
                    .env(
                        "AWS_LAMBDA_RUNTIME_API",
                        format!("127.0.0.1:{}", self.runtime_port),
                    )
                    .env("AWS_LAMBDA_FUNCTION_NAME", "rollback")
                    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
                    .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                    .env("AWS_LAMBDA_LOG_FORMAT", "JSON");
                c
            }
            Subject::KubectlUndo | Subject::KubectlSetImage => {
                let mut c = Command::new(&self.kubectl);
                c.env("KUBECONFIG", &self.kubeconfig).args(["-n", ns]);
                if subject == Subject::KubectlUndo {
                    c.args(["rollout", "undo", "deployment/checkout"]);
                } else {
                    c.args([
                        "set",
                        "image",
                        "deployment/checkout",
                        &format!("api={API_GOOD}"),
                    ]);
                }
                c
            }
            Subject::Python => {
                let req = self.dir.join(format!("{run}.json"));
                std::fs::write(&req, request(ns, run).to_string()).unwrap();
                let mut c = Command::new(&self.python);
                c.env("SELFHEAL_KUBECONFIG", &self.kubeconfig)
                    .arg(&self.handler_py)
                    .arg(req);
                c
            }
        };
        // kubectl's discovery cache lives in $HOME/.kube: one HOME for all runs,
        // so kubectl runs with a warm cache after its first run (in its favour).
        cmd.env("HOME", &self.dir).stdin(Stdio::null());
        // `cargo bench` points LD_LIBRARY_PATH at target/ and the toolchain;
        // the dynamic loader would search those for every library of the
        // function and of Python (kubectl is static). Lambda has no such path.
        cmd.env_remove("LD_LIBRARY_PATH");
        cmd
    }

    /// One run: seeds `ns`, runs the subject (under `/usr/bin/time -v` when
    /// `rss`), asserts the Deployment; returns exec→response time and peak RSS (KiB).
    async fn run(&self, subject: Subject, n: usize, rss: bool) -> (Duration, Option<u64>) {
        let ns = format!("b{n}-{}", subject.tag());
        let run = format!("bench-{n}-{}", subject.tag());
        self.server
            .apply_objects(snapshot_copy(&snapshot(), &ns, n));
        assert_eq!(images(&self.server, &ns)[0].1, API_BAD);
        {
            // A steady cluster before the window (pods of revision 4 up), as
            // the Deployment would be when an alarm fires; otherwise the
            // window would also time the controller's reaction to the seeding.
            assert!(
                self.server.controller().settle().await,
                "{run}: no steady state"
            );
        }
        let time_out = self.dir.join(format!("{run}.time"));
        let inner = self.command(subject, &ns, &run);
        let mut cmd = if rss {
            let mut c = Command::new("/usr/bin/time");
            c.arg("-v")
                .arg("-o")
                .arg(&time_out)
                .arg(inner.get_program());
            c.args(inner.get_args());
            for (k, v) in inner.get_envs() {
                match v {
                    Some(v) => c.env(k, v),
                    None => c.env_remove(k),
                };
            }
            c.stdin(Stdio::null());
            c
        } else {
            inner
        };
        let log = std::fs::File::create(self.dir.join(format!("{run}.log"))).unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log);

        let before = self.server.requests().len();
        let rust = matches!(
            subject,
            Subject::Rust | Subject::RustNamed | Subject::RustBaseline
        );
        let elapsed = if rust {
            let (tx, rx) = oneshot::channel();
            *self.slot.lock().unwrap() = Some(Pending {
                body: Some(request_for(subject, &ns, &run).to_string()),
                done: tx,
            });
            let start = Instant::now();
            let mut child = cmd.spawn().expect("spawn rollback");
            let (at, body) = tokio::time::timeout(Duration::from_secs(60), rx)
                .await
                .unwrap_or_else(|_| panic!("no response from rollback ({run}, see its .log)"))
                .unwrap();
            let outcome: Value =
                serde_json::from_str(&body).unwrap_or_else(|_| panic!("rollback answered {body}"));
            assert_eq!(outcome["status"], "applied", "{body}");
            // The handler would wait for its next invocation: end it.
            let victim = if rss {
                child_of(child.id())
            } else {
                child.id()
            };
            Command::new("kill")
                .arg(victim.to_string())
                .status()
                .unwrap();
            child.wait().unwrap();
            at - start
        } else {
            let start = Instant::now();
            let status = cmd.status().expect("spawn");
            let elapsed = start.elapsed();
            assert!(status.success(), "{run} failed, see {run}.log");
            elapsed
        };
        if std::env::var_os("SELFHEAL_BENCH_DEBUG").is_some() {
            for r in &self.server.requests()[before..] {
                eprintln!("  {} {} {} {:?}", run, r.method, r.path, r.query);
            }
        }
        {
            // The controller's share of the rollback (in `between` mode all
            // of it, after the window): the new revision rolls out and the
            // old one scales down.
            assert!(
                self.server.controller().settle().await,
                "{run}: no steady state"
            );
            let d = self.server.deployment(&ns, "checkout").expect("deployment");
            let (spec, status) = (d.spec.unwrap(), d.status.unwrap_or_default());
            assert_eq!(status.observed_generation, d.metadata.generation, "{run}");
            assert_eq!(
                status.updated_replicas, spec.replicas,
                "{run}: rollout not done"
            );
        }
        let got = images(&self.server, &ns);
        assert_eq!(
            got,
            vec![
                ("api".to_string(), API_GOOD.to_string()),
                ("envoy".to_string(), ENVOY.to_string())
            ],
            "{run}"
        );
        // A constant-size store: the emulated controller's passes (which
        // hold the store lock) would otherwise grow with every run and slow
        // whichever subject writes last.
        assert!(self.server.delete_namespace(&ns) > 0);
        let peak = rss.then(|| max_rss(&time_out));
        (elapsed, peak)
    }
}

/// The pid `/usr/bin/time` started (its only child).
fn child_of(pid: u32) -> u32 {
    for _ in 0..100 {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(c) = children.split_whitespace().next() {
            return c.parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("/usr/bin/time {pid} has no child");
}

fn max_rss(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .unwrap_or_else(|| panic!("no max RSS in {}: {text}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

fn snapshot() -> Value {
    let text = std::fs::read_to_string(root().join("examples/checkout-snapshot.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

// ------------------------------------------------------------ binary sizes --

const FUNCTIONS: [&str; 8] = [
    "rollback", "pause", "resume", "restart", "verify", "ingest", "notify", "approve",
];

/// Stripped size and zipped size (as `bootstrap`, the provided.al2023 layout), in bytes.
fn zip_size(binary: &Path, scratch: &Path) -> Option<(u64, u64)> {
    if !binary.is_file() {
        return None;
    }
    let dir = scratch.join("zip");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bootstrap = dir.join("bootstrap");
    std::fs::copy(binary, &bootstrap).unwrap();
    // Release builds are already stripped (profile.release.strip); strip again
    // in case the binary came from elsewhere. Missing `strip` for a foreign
    // architecture only means the copy stays as built.
    let strip = if binary.to_string_lossy().contains("aarch64") {
        "aarch64-linux-gnu-strip"
    } else {
        "strip"
    };
    let _ = Command::new(strip)
        .arg(&bootstrap)
        .stderr(Stdio::null())
        .status();
    let size = std::fs::metadata(&bootstrap).unwrap().len();
    let zip = dir.join("f.zip");
    let ok = Command::new("zip")
        .current_dir(&dir)
        .args(["-q", "-9", "f.zip", "bootstrap"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| (size, std::fs::metadata(&zip).unwrap().len()))
}

const EM_AARCH64: u16 = 0xb7;

/// The ELF header's `e_machine` (so a `target/lambda/*/bootstrap` from an
/// x86_64 build is not counted as arm64).
fn elf_machine(path: &Path) -> Option<u16> {
    let bytes = std::fs::read(path).ok()?;
    (bytes.len() > 20 && bytes.starts_with(b"\x7fELF"))
        .then(|| u16::from_le_bytes([bytes[18], bytes[19]]))
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0))
}

// ------------------------------------------------------------------- main --

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let runs = env_usize("SELFHEAL_BENCH_RUNS", 15).max(1);
    let rss_runs = env_usize("SELFHEAL_BENCH_RSS_RUNS", 3).max(1);
    let root = root();
    let rollback = std::env::var_os("SELFHEAL_BENCH_ROLLBACK")
        .map(PathBuf::from)
        .unwrap_or_else(|| selfheal_tests::tools::release_binary("rollback"));
    let baseline = std::env::var_os("SELFHEAL_BENCH_BASELINE").map(PathBuf::from);
    if let Some(b) = &baseline {
        assert!(
            b.is_file(),
            "SELFHEAL_BENCH_BASELINE {} not found",
            b.display()
        );
    }
    let subjects: Vec<Subject> = [
        Some(Subject::Rust),
        Some(Subject::RustNamed),
        baseline.as_ref().map(|_| Subject::RustBaseline),
        Some(Subject::KubectlUndo),
        Some(Subject::KubectlSetImage),
        Some(Subject::Python),
    ]
    .into_iter()
    .flatten()
    .collect();
    let kubectl = root.join(".tools/kubectl/usr/bin/kubectl");
    let python = root.join(".venv-bench/bin/python");
    for (what, path, how) in [
        (
            "release rollback",
            &rollback,
            "cargo build --release -p selfheal-rollback",
        ),
        ("kubectl", &kubectl, "scripts/deps/10-kubectl.sh"),
        ("Python venv", &python, "scripts/deps/70-bench-python.sh"),
    ] {
        assert!(
            path.is_file(),
            "{what} not found at {} (run {how})",
            path.display()
        );
    }
    assert!(
        Path::new("/usr/bin/time").is_file(),
        "GNU time missing (apt-get install time)"
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // SELFHEAL_BENCH_KEEP=1 keeps every run's log (the function's JSON lines
    // carry timestamps) for a look at where a slow run spent its time.
    if std::env::var_os("SELFHEAL_BENCH_KEEP").is_some() {
        eprintln!("run logs kept in {}", tmp.keep().display());
    }
    let server = TestServer::builder().tls(true).start().await.unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let (runtime_port, slot) = start_runtime_api().await;
    // Controller placements, interleaved run by run like the subjects.
    let modes: Vec<ControllerMode> = match std::env::var("SELFHEAL_BENCH_CONTROLLER").as_deref() {
        Ok("both") | Err(_) => vec![ControllerMode::Between, ControllerMode::Live],
        Ok("between") => vec![ControllerMode::Between],
        Ok("live") => vec![ControllerMode::Live],
        Ok(other) => {
            panic!("SELFHEAL_BENCH_CONTROLLER={other}: expected `both`, `between` or `live`")
        }
    };
    let bench = Bench {
        server,
        dir: dir.clone(),
        kubeconfig,
        rollback: rollback.clone(),
        baseline: baseline.clone(),
        kubectl,
        python,
        handler_py: root.join("tests/bench-py/rollback_handler.py"),
        runtime_port,
        slot,
    };

    println!("rollback binary: {}", rollback.display());
    if let Some(b) = &baseline {
        println!("baseline binary: {}", b.display());
    }
    eprintln!(
        "handler_cold: {runs} timed runs per subject and controller mode + {rss_runs} RSS runs per subject, interleaved"
    );
    // One warm-up per subject (page cache, kubectl discovery cache), not counted.
    let mut n = 0;
    for &s in &subjects {
        bench.run(s, n, false).await;
        n += 1;
    }
    let mut times: Vec<Vec<Vec<Duration>>> = vec![vec![Vec::new(); subjects.len()]; modes.len()];
    let mut peaks: Vec<Vec<u64>> = vec![Vec::new(); subjects.len()];
    for _ in 0..runs {
        for (m, &mode) in modes.iter().enumerate() {
            // `between`: only `settle()` drives the controller, never the background loop.
            bench
                .server
                .controller()
                .pause_automatic(mode == ControllerMode::Between);
            for (i, &s) in subjects.iter().enumerate() {
                let (t, _) = bench.run(s, n, false).await;
                eprintln!(
                    "run {n:>3} {:<7} {:<5} {:>8.1} ms",
                    mode.tag(),
                    s.tag(),
                    ms(t)
                );
                times[m][i].push(t);
                n += 1;
            }
        }
    }
    // Peak RSS does not depend on where the controller runs.
    bench.server.controller().pause_automatic(true);
    for _ in 0..rss_runs {
        for (i, &s) in subjects.iter().enumerate() {
            let (_, p) = bench.run(s, n, true).await;
            peaks[i].push(p.unwrap());
            n += 1;
        }
    }

    for (m, mode) in modes.iter().enumerate() {
        let medians: Vec<Duration> = times[m].iter_mut().map(|t| median(t)).collect();
        let rust = medians[0];
        println!(
            "\n## Cold rollback, exec → response, controller {} (median of {runs} runs; peak RSS max of {rss_runs})\n",
            mode.describe()
        );
        println!("| Subject | median | min | max | × rollback fn | peak RSS |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (i, &s) in subjects.iter().enumerate() {
            let min = times[m][i].iter().min().unwrap();
            let max = times[m][i].iter().max().unwrap();
            let peak = peaks[i].iter().max().unwrap();
            println!(
                "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1}× | {:.1} MiB |",
                s.label(),
                ms(medians[i]),
                ms(*min),
                ms(*max),
                medians[i].as_secs_f64() / rust.as_secs_f64(),
                *peak as f64 / 1024.0
            );
        }
        // Subjects 0 and 1: the same binary with and without the pod LIST.
        println!(
            "\nPod LIST (a request naming no container) vs a named container: {:.3}× (goal ≤ 1.15×)",
            rust.as_secs_f64() / medians[1].as_secs_f64()
        );
    }

    println!("\n## Release binaries (stripped; zipped as `bootstrap`)\n");
    println!("| Function | x86_64 binary | x86_64 zip | arm64 binary | arm64 zip |");
    println!("|---|---:|---:|---:|---:|");
    let release = rollback.parent().unwrap().to_path_buf();
    for f in FUNCTIONS {
        let x86 = zip_size(&release.join(f), &dir);
        let arm = [
            root.join(format!("target/aarch64-unknown-linux-gnu/release/{f}")),
            root.join(format!("target/lambda/{f}/bootstrap")),
        ]
        .into_iter()
        .find(|p| elf_machine(p) == Some(EM_AARCH64))
        .and_then(|p| zip_size(&p, &dir));
        let cell = |v: Option<(u64, u64)>, zipped: bool| match v {
            Some((b, z)) => mib(if zipped { z } else { b }),
            None => "not built".to_string(),
        };
        println!(
            "| {f} | {} | {} | {} | {} |",
            cell(x86, false),
            cell(x86, true),
            cell(arm, false),
            cell(arm, true)
        );
    }
    bench.server.shutdown();
}
