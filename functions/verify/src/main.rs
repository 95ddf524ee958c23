//! `verify` Lambda: `kubectl rollout status` for the state machine's wait loop
//! (input: a request or an outcome; output `{"state", "message", "target"}`).

// One thread: at 256 MB a sandbox has a fraction of a vCPU; more add only wake-ups (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    selfheal_lambda::serve_verify().await
}
