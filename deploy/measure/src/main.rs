//! The in-process test Kubernetes API server (`selfheal-testserver`) as a
//! process, so the release function binaries can be measured against it by
//! `deploy/measure/measure.py` (deploy/README.md, "Sizing").
//!
//! `selfheal-measure-server OUT_DIR`: serves HTTPS like EKS, accepting any
//! EKS-style token (`k8s-aws-v1.…`, so the functions run their real EKS code
//! path: SDK credentials, SigV4-presigned token, TLS with the cluster CA);
//! seeds `shop/checkout` (two containers, opted in); writes
//! `OUT_DIR/kubeconfig` (admin) and `OUT_DIR/ca.pem`; prints the server URL
//! on one line when ready; serves until its stdin closes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use selfheal_testserver::{TestServer, fixtures};
use serde_json::Value;
use tokio::io::AsyncReadExt;

const API_GOOD: &str = "registry.example/shop/api:1.0.0";
const ENVOY: &str = "registry.example/envoyproxy/envoy:v1.29.1";

/// `shop/checkout`, opted in, three replicas (the measured rollout).
fn checkout(api_image: &str) -> Value {
    fixtures::checkout(api_image, ENVOY)
        .replicas(3)
        .opt_in(true)
        .progress_deadline(600)
        .json()
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: selfheal-measure-server OUT_DIR");
        return ExitCode::from(2);
    };
    let server = match TestServer::builder().tls(true).start().await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("selfheal-measure-server: cannot start the test API server: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.try_apply_objects(checkout(API_GOOD)) {
        eprintln!("selfheal-measure-server: seeding failed: {e}");
        return ExitCode::FAILURE;
    }
    if !server.controller().settle().await {
        eprintln!("selfheal-measure-server: the first rollout did not settle");
        return ExitCode::FAILURE;
    }
    server.set_token_verifier(Arc::new(|token: &str| {
        if token.starts_with("k8s-aws-v1.") {
            Ok(())
        } else {
            Err("not an EKS token".to_string())
        }
    }));
    let ca = server.ca_pem().unwrap_or_default();
    let written = server
        .write_kubeconfig(&out.join("kubeconfig"))
        .and_then(|()| std::fs::write(out.join("ca.pem"), ca));
    if let Err(e) = written {
        eprintln!(
            "selfheal-measure-server: cannot write into {}: {e}",
            out.display()
        );
        return ExitCode::FAILURE;
    }
    println!("{}", server.url());
    // Serve until the harness closes our stdin (or dies).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    server.shutdown();
    ExitCode::SUCCESS
}
