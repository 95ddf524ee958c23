//! `selfheal run` against a cluster (the test API server) with the example
//! requests for a StatefulSet and a DaemonSet (examples/requests/): the
//! adapter reads the workload and its ControllerRevisions, sends one guarded
//! JSON Patch and prints the outcome naming the kind; `--dry-run` stores
//! nothing. `status --statefulset/--daemonset` reads the kind its flag names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use selfheal_testserver::{TestServer, fixtures};
use serde_json::{Value, json};

/// `examples/requests/<name>` without its `target.cluster` (the example
/// names an EKS cluster; the test server's context is another).
fn example(name: &str, dir: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/requests")
        .join(name);
    let mut request: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    request["target"].as_object_mut().unwrap().remove("cluster");
    let out = dir.join(name);
    std::fs::write(&out, request.to_string()).unwrap();
    out.display().to_string()
}

/// `selfheal run --request FILE --kubeconfig K EXTRA…`: the printed outcome.
async fn run(request: String, kubeconfig: String, extra: &[&str]) -> Value {
    let extra: Vec<String> = extra.iter().map(|e| (*e).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .args(["run", "--request", &request, "--kubeconfig", &kubeconfig])
            .args(extra)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn images(server: &TestServer, kind: &str, name: &str) -> Value {
    let object = server.object(kind, "data", name).unwrap();
    let containers = object["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    containers
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["image"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_rolls_back_a_statefulset_and_a_daemonset_from_the_examples() {
    let server = TestServer::start().await.unwrap();
    assert!(
        fixtures::ledger_as_recorded()
            .seed_with_history(&server, &fixtures::LEDGER_HISTORY)
            .await
    );
    assert!(
        fixtures::node_agent_as_recorded()
            .seed_with_history(&server, &fixtures::NODE_AGENT_HISTORY)
            .await
    );
    let kubeconfig = server.kubeconfig_file().unwrap();
    let kc = kubeconfig.as_str().to_owned();
    let dir = tempfile::tempdir().unwrap();

    for (file, kind, field, name, container, from, to, other) in [
        (
            "statefulset-rollback.json",
            "StatefulSet",
            "statefulSet",
            "ledger",
            "db",
            "registry.example/data/db:15.3",
            "registry.example/data/db:15.2",
            ("metrics", "registry.example/data/metrics:0.10"),
        ),
        (
            "daemonset-rollback.json",
            "DaemonSet",
            "daemonSet",
            "node-agent",
            "agent",
            "registry.example/obs/agent:2.2",
            "registry.example/obs/agent:2.1",
            ("shipper", "registry.example/obs/shipper:1.5"),
        ),
    ] {
        let request = example(file, dir.path());
        let before = images(&server, kind, name);
        let dry = run(request.clone(), kc.clone(), &["--dry-run"]).await;
        assert_eq!(dry["status"], "dryRun", "{kind}: {dry}");
        assert_eq!(
            images(&server, kind, name),
            before,
            "{kind}: dry run stores nothing"
        );

        let outcome = run(request, kc.clone(), &[]).await;
        assert_eq!(outcome["status"], "applied", "{kind}: {outcome}");
        assert_eq!(outcome["target"][field], name);
        assert_eq!(outcome["target"]["deployment"], Value::Null);
        assert_eq!(
            outcome["changes"],
            json!([{"container": container, "from": from, "to": to}])
        );
        let after = images(&server, kind, name);
        assert_eq!(after[container], to, "{kind}");
        assert_eq!(
            after[other.0], other.1,
            "{kind}: the other container untouched"
        );
        let events = server.events("data");
        assert!(
            events
                .iter()
                .any(|e| e.involved_object.kind.as_deref() == Some(kind)
                    && e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some("SelfhealRollback")),
            "{kind}: the audit Event names the kind"
        );
    }
}

/// `selfheal status --statefulset|--daemonset NS/NAME --snapshot FILE`: the
/// flag names the kind looked up (the example snapshots were taken mid-rollout).
#[test]
fn status_reads_the_kind_the_flag_names_from_a_snapshot() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let status = |flag: &str, workload: &str, file: &str| {
        Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .args(["status", flag, workload, "--snapshot"])
            .arg(examples.join(file))
            .output()
            .unwrap()
    };
    let out = status("--statefulset", "data/ledger", "ledger-snapshot.yaml");
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"state": "waiting", "message": "Waiting for 1 pods to be ready..."})
    );
    let out = status("--daemonset", "data/node-agent", "node-agent-snapshot.yaml");
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"state": "waiting",
               "message": "Waiting for daemon set \"node-agent\" rollout to finish: 0 of 2 updated pods are available..."})
    );
    let out = status("--daemonset", "data/ledger", "ledger-snapshot.yaml");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: daemonset data/ledger not found in snapshot"
    );
}
