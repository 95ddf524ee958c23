//! Locating the project's test tools, free ports, plain HTTP, and moto.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The repository root (the workspace directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where `cargo build --release` put binary `name`: `CARGO_TARGET_DIR` when
/// set (CI keeps the target dir outside the clone), else ./target.
pub fn release_binary(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("release")
        .join(name)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `Some(tool)` to run, `None` to skip (loudly); panics when
/// `SELFHEAL_REQUIRE_TOOLS` is set (CI), so a broken install cannot pass.
pub fn tool_or_skip<T>(test: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(tool) => Some(tool),
        Err(why) if std::env::var_os("SELFHEAL_REQUIRE_TOOLS").is_some() => {
            panic!("{test}: SELFHEAL_REQUIRE_TOOLS is set but {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}; set SELFHEAL_REQUIRE_TOOLS=1 to make this a failure");
            None
        }
    }
}

/// An executable at `path`, or why not (with the install script to run).
pub fn file_tool(path: PathBuf, install: &str) -> Result<PathBuf, String> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} not found (run {install})", path.display()))
    }
}

/// The executable named by the environment variable `var` when it is set,
/// otherwise `default` (a path inside the workspace), or why there is none.
pub fn env_or_file_tool(var: &str, default: &str, install: &str) -> Result<PathBuf, String> {
    match std::env::var_os(var) {
        Some(path) => {
            let path = PathBuf::from(path);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{var}={} does not exist", path.display()))
            }
        }
        None => file_tool(workspace_root().join(default), install),
    }
}

/// cargo-lambda from `SELFHEAL_CARGO_LAMBDA` or `.venv/bin`.
pub fn cargo_lambda_binary() -> Result<PathBuf, String> {
    env_or_file_tool(
        "SELFHEAL_CARGO_LAMBDA",
        ".venv/bin/cargo-lambda",
        "scripts/deps/30-cargo-lambda.sh",
    )
}

/// The private kubectl from `SELFHEAL_KUBECTL` or `.tools/kubectl`.
pub fn kubectl_binary() -> Result<PathBuf, String> {
    env_or_file_tool(
        "SELFHEAL_KUBECTL",
        ".tools/kubectl/usr/bin/kubectl",
        "scripts/deps/10-kubectl.sh",
    )
}

/// `cargo lambda watch` on `127.0.0.1:port` in the workspace, with
/// cargo-lambda's own directory first on `PATH` (it finds zig there). The
/// caller adds the functions' environment and the output.
pub fn cargo_lambda_watch(bin: &Path, port: u16) -> Command {
    let venv_bin = bin.parent().expect("cargo-lambda has a directory");
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(bin);
    cmd.current_dir(workspace_root())
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "-A",
            "127.0.0.1",
            "-P",
        ])
        .arg(port.to_string())
        .env("PATH", path);
    cmd
}

/// The output of a finished command (`Command::output()`); panics with
/// `what` and its stderr when it could not run or did not succeed.
pub fn run_ok(output: std::io::Result<Output>, what: &str) -> Output {
    let out = output.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds every binary of the workspace (functions and the `selfheal` CLI)
/// exactly as `cargo lambda watch` later `cargo run --bin`s a function, and
/// returns binary name → executable path (as cargo reports it, so a custom
/// `CARGO_TARGET_DIR` works).
///
/// One selection for every test, on purpose: in this virtual workspace
/// `cargo run --bin X` resolves dependency features over all members, while
/// `cargo build -p X` resolves them for X alone, so a per-package build makes
/// artifacts the emulator's `cargo run` rebuilds (kube, hyper, the AWS SDK),
/// and parallel tests building different selections queue on the target
/// directory's lock for minutes. scripts/test runs this same command before
/// the tests, which makes every call here a no-op check.
pub fn build_workspace_bins() -> &'static BTreeMap<String, PathBuf> {
    static BINS: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BINS.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--workspace", "--bins", "--message-format=json"])
            .stderr(Stdio::inherit())
            .output()
            .expect("spawn cargo build");
        assert!(
            out.status.success(),
            "cargo build --workspace --bins failed"
        );
        let bins: BTreeMap<String, PathBuf> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact")
            .filter_map(|m| {
                let exe = m["executable"].as_str()?;
                Some((m["target"]["name"].as_str()?.to_owned(), PathBuf::from(exe)))
            })
            .collect();
        assert!(!bins.is_empty(), "cargo reported no executables");
        bins
    })
}

/// The executable of binary `name` from [`build_workspace_bins`].
pub fn workspace_bin(name: &str) -> PathBuf {
    build_workspace_bins()
        .get(name)
        .unwrap_or_else(|| panic!("the workspace has no binary named {name}"))
        .clone()
}

/// Waits until something listens on `port`, or panics with `what` and `log()`.
pub async fn wait_listening(
    port: u16,
    timeout: Duration,
    what: &str,
    mut alive: impl FnMut() -> Result<(), String>,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Err(why) = alive() {
            panic!("{what} exited before listening on {port}: {why}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`wait_listening`] for `child`, whose output goes to `log`: panics with
/// the log when the child exits first.
pub async fn wait_child_listening(
    child: &mut Child,
    log: &Path,
    port: u16,
    timeout: Duration,
    what: &str,
) {
    wait_listening(port, timeout, what, || match child.try_wait() {
        Ok(Some(status)) => Err(format!(
            "{status}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )),
        _ => Ok(()),
    })
    .await;
}

/// Spawns `cmd` in its own process group (so [`kill_group`] ends it), its
/// output to `log`, and waits up to a minute until it listens on `port`.
pub async fn spawn_listening(mut cmd: Command, log: &Path, port: u16, what: &str) -> Child {
    let out = std::fs::File::create(log).expect("create log");
    let err = out.try_clone().expect("clone log handle");
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    wait_child_listening(&mut child, log, port, Duration::from_secs(60), what).await;
    child
}

/// Kills a child's whole process group (it was started with `process_group(0)`)
/// and every descendant's group: cargo-lambda starts each function in a group
/// of its own, which a signal to the watcher's group does not reach.
pub fn kill_group(child: &mut Child) {
    let mut groups = vec![child.id()];
    groups.extend(descendants(child.id()));
    for sig in ["-TERM", "-KILL"] {
        for g in &groups {
            let _ = Command::new("kill")
                .args([sig, "--", &format!("-{g}")])
                .stderr(Stdio::null())
                .status();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = child.wait();
}

/// Pids of all descendants of `pid` (from /proc; empty where there is none).
fn descendants(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (c, _) in parents.iter().filter(|(_, pp)| *pp == p) {
            out.push(*c);
            frontier.push(*c);
        }
    }
    out
}

/// One HTTP/1.1 exchange: status, headers and body.
pub async fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
    timeout: Duration,
) -> (u16, http::HeaderMap, Bytes) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).expect("request");
    let resp = tokio::time::timeout(timeout, client.request(req))
        .await
        .unwrap_or_else(|_| panic!("{method} {url} timed out after {timeout:?}"))
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, bytes)
}

/// `moto_server` on a free port (`.venv/bin/moto_server`, scripts/deps/20-python.sh),
/// killed on drop. moto accepts any credentials and does not check signatures.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub url: String,
    pub port: u16,
}

impl Moto {
    pub fn binary() -> Result<PathBuf, String> {
        file_tool(
            workspace_root().join(".venv/bin/moto_server"),
            "scripts/deps/20-python.sh",
        )
    }

    pub async fn start(bin: &Path, log: &Path) -> Moto {
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p"]).arg(port.to_string());
        let child = spawn_listening(cmd, log, port, "moto_server").await;
        Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// The server's process id (a benchmark reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An AWS JSON-protocol call (`X-Amz-Target: <prefix>.<op>`), e.g.
    /// `("AWSStepFunctions", "ListExecutions")` or `("AmazonSQS", …)`;
    /// panics on a non-200 answer.
    pub async fn json_call(
        &self,
        target_prefix: &str,
        op: &str,
        body: &serde_json::Value,
    ) -> serde_json::Value {
        let (status, body) = self.json_call_raw(target_prefix, op, body).await;
        assert_eq!(status, 200, "moto {target_prefix}.{op}: {body}");
        body
    }

    pub async fn json_call_raw(
        &self,
        target_prefix: &str,
        op: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let target = format!("{target_prefix}.{op}");
        // moto routes a request by the service in the credential scope.
        let service = match target_prefix {
            "AmazonSQS" => "sqs",
            "AWSStepFunctions" => "states",
            "AmazonSSM" => "ssm",
            "AWSSecretsManager" => "secretsmanager",
            other => other,
        };
        let (status, bytes) = self
            .post(
                service,
                "application/x-amz-json-1.0",
                Some(&target),
                serde_json::to_vec(body).expect("json"),
            )
            .await;
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        (status, value)
    }

    /// Creates the SQS queue `name`; its URL.
    pub async fn create_queue(&self, name: &str) -> String {
        let body = serde_json::json!({"QueueName": name});
        let created = self.json_call("AmazonSQS", "CreateQueue", &body).await;
        created["QueueUrl"].as_str().expect("QueueUrl").to_owned()
    }

    /// Receives up to 10 messages from an SQS queue and deletes them;
    /// returns their bodies (none: the queue is empty for now).
    pub async fn sqs_take(&self, queue_url: &str) -> Vec<String> {
        let got = self
            .json_call(
                "AmazonSQS",
                "ReceiveMessage",
                &serde_json::json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10}),
            )
            .await;
        let mut bodies = Vec::new();
        for m in got["Messages"].as_array().into_iter().flatten() {
            self.json_call(
                "AmazonSQS",
                "DeleteMessage",
                &serde_json::json!({"QueueUrl": queue_url, "ReceiptHandle": m["ReceiptHandle"]}),
            )
            .await;
            bodies.push(m["Body"].as_str().unwrap_or_default().to_owned());
        }
        bodies
    }

    /// An AWS query-protocol call (form body, XML answer), e.g. SNS.
    pub async fn query_call(&self, service: &str, params: &[(&str, &str)]) -> String {
        let body = serde_urlencoded_pairs(params);
        let (status, bytes) = self
            .post(service, "application/x-www-form-urlencoded", None, body)
            .await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert_eq!(status, 200, "moto {service} {params:?}: {text}");
        text
    }

    /// One signed-looking POST to moto for `service` (moto routes a request
    /// by the service in the credential scope and checks no signature).
    async fn post(
        &self,
        service: &str,
        content_type: &str,
        target: Option<&str>,
        body: impl Into<Bytes>,
    ) -> (u16, Bytes) {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/{service}/aws4_request"
        );
        let mut headers = vec![("content-type", content_type), ("authorization", &auth)];
        headers.extend(target.map(|t| ("x-amz-target", t)));
        let url = format!("{}/", self.url);
        let (status, _, bytes) =
            http_request("POST", &url, &headers, body, Duration::from_secs(30)).await;
        (status, bytes)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

fn serde_urlencoded_pairs(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// application/x-www-form-urlencoded encoding of one component.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The text of the first `<tag>…</tag>` in an XML answer.
pub fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(&xml[start..end])
}
