//! The local ASL interpreter (tests/asl/runner.mjs, npm
//! aws-local-stepfunctions) as the state machine tests and the verify
//! benchmark drive it, and an in-process stand-in for the Lambda functions
//! its Task states invoke.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::tools::{file_tool, http_request, kill_group, workspace_root};

/// What a stand-in function answers: its output, or a handler error
/// `(errorType, errorMessage)`.
pub type Reply = Result<Value, (&'static str, String)>;

/// Answers one invocation from (function name, payload).
pub type AsyncAnswer =
    Arc<dyn Fn(String, Value) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// node, once tests/asl/node_modules holds the interpreter.
pub fn find_node() -> Result<PathBuf, String> {
    file_tool(
        workspace_root().join("tests/asl/node_modules/aws-local-stepfunctions/package.json"),
        "scripts/deps/56-asl-runner.sh",
    )?;
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("node"))
        .find(|p| p.is_file())
        .ok_or_else(|| "node not found on PATH (Debian nodejs)".to_owned())
}

/// Serves the runner's `POST /2015-03-31/functions/<name>/invocations`
/// with `answer`; returns the URL. A handler error is what the runner reads
/// from cargo-lambda's emulator: HTTP 500 with `{errorType, errorMessage}`.
pub async fn serve_functions(answer: AsyncAnswer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let answer = answer.clone();
                async move {
                    let name = request
                        .uri()
                        .path()
                        .trim_start_matches("/2015-03-31/functions/")
                        .trim_end_matches("/invocations")
                        .to_owned();
                    let body = request.into_body().collect().await?.to_bytes();
                    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let (status, body) = match answer(name, payload).await {
                        Ok(output) => (200, output),
                        Err((error_type, message)) => (
                            500,
                            json!({"errorType": error_type, "errorMessage": message}),
                        ),
                    };
                    let mut response =
                        hyper::Response::new(Full::new(Bytes::from(body.to_string())));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    Ok::<_, hyper::Error>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    url
}

/// tests/asl/runner.mjs on a port of its choosing (killed on drop), its
/// Lambda invocations sent to `functions_url`.
#[derive(Debug)]
pub struct Runner {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Runner {
    /// Starts the runner; its log goes to the temp dir, named after `who`.
    pub fn start(node: &Path, functions_url: &str, who: &str) -> Runner {
        Self::start_with(node, functions_url, who, &[])
    }

    /// [`Runner::start`] with more of runner.mjs's settings (`SELFHEAL_MOTO_URL`,
    /// `SELFHEAL_ASL_REGION`, `SELFHEAL_ASL_LOG`, ...).
    pub fn start_with(node: &Path, functions_url: &str, who: &str, env: &[(&str, &str)]) -> Runner {
        let log = std::env::temp_dir().join(format!("{who}-{}-runner.log", std::process::id()));
        let mut cmd = Command::new(node);
        cmd.arg(workspace_root().join("tests/asl/runner.mjs"))
            .env("SELFHEAL_ASL_PORT", "0")
            .env("SELFHEAL_EMULATOR_URL", functions_url)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = serde_json::from_str::<Value>(first.trim())
            .ok()
            .and_then(|v| v["listening"].as_u64())
            .unwrap_or_else(|| {
                panic!(
                    "runner did not start: {first}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        Runner {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// The runner's stderr (its execution log with `SELFHEAL_ASL_LOG=1`).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The runner's own endpoint (Step Functions JSON protocol, `/run`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One execution of `machine` to its end with the template's
    /// substitutions: `{status, output | error+cause, states, children, ...}`.
    pub async fn run(&self, machine: &str, name: &str, input: &Value) -> Value {
        self.run_with(machine, name, input, &json!({})).await
    }

    /// [`Runner::run`] with extra substitutions (the template's parameters).
    pub async fn run_with(
        &self,
        machine: &str,
        name: &str,
        input: &Value,
        substitutions: &Value,
    ) -> Value {
        let body = json!({"stateMachine": machine, "name": name, "input": input, "substitutions": substitutions});
        let (status, _, bytes) = http_request(
            "POST",
            &format!("{}/run", self.url),
            &[("content-type", "application/json")],
            serde_json::to_vec(&body).unwrap(),
            Duration::from_secs(600),
        )
        .await;
        let result: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, 200, "runner: {result}");
        result
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
