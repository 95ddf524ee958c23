//! `cargo lambda watch` (cargo-lambda's Lambda Runtime API emulation) running
//! the real `functions/*` binaries, and invoking them over its HTTP API.
//!
//! Build the binaries first ([`crate::tools::build_workspace_bins`]): the emulator
//! `cargo run`s a function on its first invoke, which otherwise compiles.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::tools::{cargo_lambda_watch, http_request, kill_group, wait_child_listening};

/// First invocation of a function may wait for the shared build directory.
pub const FIRST_INVOKE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Later invocations are warm.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `cargo lambda watch`, killed (with the functions it started) on drop.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    pub port: u16,
    log: PathBuf,
    invoked: Mutex<HashSet<String>>,
}

impl Emulator {
    /// Starts `cargo lambda watch` on `port` in the workspace and waits until
    /// it listens; `env` reaches every function (e.g. `SELFHEAL_KUBECONFIG`,
    /// `AWS_ENDPOINT_URL`). Output (the functions' logs too) goes to `log`.
    pub async fn start(bin: &Path, port: u16, env: &[(&str, String)], log: PathBuf) -> Emulator {
        Emulator::start_unsetting(bin, port, env, &[], log).await
    }

    /// [`Emulator::start`], with the variables `unset` removed from what the
    /// functions inherit (the machine's own settings a test must not pick up).
    pub async fn start_unsetting(
        bin: &Path,
        port: u16,
        env: &[(&str, String)],
        unset: &[&str],
        log: PathBuf,
    ) -> Emulator {
        let out = std::fs::File::create(&log).expect("create emulator log");
        let err = out.try_clone().expect("clone log handle");
        let mut cmd = cargo_lambda_watch(bin, port);
        cmd.env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for name in unset {
            cmd.env_remove(name);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Own process group, so the drop can end the functions it spawned too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("spawn cargo lambda watch");
        let mut emulator = Emulator {
            child,
            port,
            log,
            invoked: Mutex::default(),
        };
        emulator.wait_ready().await;
        emulator
    }

    async fn wait_ready(&mut self) {
        let what = "cargo lambda watch";
        wait_child_listening(
            &mut self.child,
            &self.log,
            self.port,
            Duration::from_secs(120),
            what,
        )
        .await;
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Base of a function's Function URL emulation (`/lambda-url/<bin>`).
    pub fn function_url(&self, function: &str) -> String {
        format!("{}/lambda-url/{function}", self.url())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The functions' JSON log lines (the emulator's own lines are text).
    pub fn json_logs(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
            .filter(|v| v.is_object())
            .collect()
    }

    pub fn logs_with_message(&self, message: &str) -> Vec<Value> {
        self.json_logs()
            .into_iter()
            .filter(|v| v["fields"]["message"] == message)
            .collect()
    }

    fn timeout_for(&self, function: &str) -> Duration {
        if self
            .invoked
            .lock()
            .expect("invoked set")
            .insert(function.to_owned())
        {
            FIRST_INVOKE_TIMEOUT
        } else {
            INVOKE_TIMEOUT
        }
    }

    /// Invokes `function` with `body` (raw bytes); returns status and JSON body
    /// (a JSON string holding the text when the body is not JSON).
    pub async fn invoke_raw(&self, function: &str, body: Vec<u8>) -> (u16, Value) {
        let timeout = self.timeout_for(function);
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.url());
        let (status, _, bytes) = http_request(
            "POST",
            &url,
            &[("content-type", "application/json")],
            body,
            timeout,
        )
        .await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub async fn invoke(&self, function: &str, payload: &Value) -> (u16, Value) {
        self.invoke_raw(function, serde_json::to_vec(payload).expect("json"))
            .await
    }

    /// Invokes and requires success; returns the function's output.
    pub async fn ok(&self, function: &str, payload: &Value) -> Value {
        let (status, body) = self.invoke(function, payload).await;
        assert_eq!(status, 200, "{function} {payload}: {body}");
        body
    }

    /// Invokes and requires a handler error; returns its `errorType`.
    pub async fn error_type(&self, function: &str, payload: &Value) -> String {
        let (status, body) = self.invoke(function, payload).await;
        assert_eq!(
            status, 500,
            "{function} {payload}: expected an error, got {body}"
        );
        assert!(
            body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        body["errorType"].as_str().unwrap_or_default().to_owned()
    }

    /// An HTTP request to a function's Function URL emulation; `path_and_query`
    /// starts with `/`. Returns status and body text.
    pub async fn url_request(
        &self,
        function: &str,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, String) {
        let timeout = self.timeout_for(function);
        let url = format!("{}{path_and_query}", self.function_url(function));
        let (status, _, bytes) = http_request(method, &url, headers, body, timeout).await;
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
