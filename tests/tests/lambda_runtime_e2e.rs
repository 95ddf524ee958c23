//! The Lambda functions end to end through cargo-lambda's Runtime API emulation:
//! `cargo lambda watch` runs the real `functions/*` binaries (the same
//! `lambda_runtime::run` loop as in AWS), pointed at the project's test API
//! server through `SELFHEAL_KUBECONFIG`, and every invocation goes through
//! `POST /2015-03-31/functions/<bin>/invocations`.
//!
//! Why: unit tests call the handlers directly; only this shows that the
//! binaries start, build their state once and serve many invocations warm,
//! that errors leave the process as Lambda `errorType`s a state machine can
//! `Retry`/`Catch`, and that no payload brings a function down.
//!
//! cargo-lambda comes from `.venv/bin` (scripts/deps/30-cargo-lambda.sh) or
//! `SELFHEAL_CARGO_LAMBDA`. When it is missing the test is skipped with a
//! message, unless `SELFHEAL_REQUIRE_TOOLS` is set, in which case it fails.
//!
//! The binaries are built (`cargo build -p selfheal-<fn>`) before the emulator
//! starts, so its own `cargo run` finds them up to date; timeouts are generous
//! because the build directory is shared and the machine has two cores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "lambda_common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use selfheal_tests::emulator::Emulator;
use selfheal_tests::tools::{build_workspace_bins, cargo_lambda_binary, free_port, tool_or_skip};
use selfheal_testserver::{Identity, TestServer, fixtures};
use serde_json::{Value, json};

use common::{API_1, API_2, ENVOY, checkout, images, paused, restarted_at, warm_up};

const FUNCTIONS: [&str; 5] = ["rollback", "pause", "resume", "restart", "verify"];
const LAMBDA_TOKEN: &str = "selfheal-lambda-e2e";

// ------------------------------------------------------------- cargo-lambda --

/// Builds the function binaries the emulator will `cargo run`.
fn build_functions() {
    let bins = build_workspace_bins();
    for f in FUNCTIONS {
        assert!(bins.contains_key(f), "no function binary {f}: {bins:?}");
    }
}

/// The environment every function gets: the test API server's kubeconfig,
/// no opt-in or cooldown, JSON logs (read back by `Emulator::logs_with_message`).
fn function_env(kubeconfig: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("SELFHEAL_KUBECONFIG", kubeconfig.display().to_string()),
        ("SELFHEAL_REQUIRE_OPT_IN", "false".into()),
        ("SELFHEAL_COOLDOWN_SECONDS", "0".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_LAMBDA_LOG_LEVEL", "info".into()),
    ]
}

// ------------------------------------------------------------------ cluster --

/// checkout at revision 2 with the bad api image 1.1.0, rollout finished;
/// the functions' kubeconfig uses its own token so tests can revoke it.
async fn cluster(dir: &Path) -> (TestServer, PathBuf) {
    let server = TestServer::start().await.expect("start test server");
    assert!(server.seed_two_revisions(checkout(), "api", API_2).await);

    server.add_token(LAMBDA_TOKEN, Identity::Admin);
    let lambda = dir.join("lambda-kubeconfig");
    std::fs::write(
        &lambda,
        server
            .kubeconfig_yaml()
            .replace(&server.token(), LAMBDA_TOKEN),
    )
    .unwrap();
    server.clear_requests();
    (server, lambda)
}

fn request(action: &str) -> Value {
    json!({
        "action": action,
        "target": { "cluster": "e2e", "namespace": "shop", "deployment": "checkout" },
        "reason": "lambda_runtime_e2e"
    })
}

// ---------------------------------------------- StatefulSets and DaemonSets --

/// A StatefulSet or DaemonSet fixture seeded with its recorded history
/// (revision 4 broke `bad`; revision 3 ran `good` and is reused by the
/// rollback), as the functions see it.
struct Kind {
    fixture: fixtures::Workload,
    kind: &'static str,
    /// The request's target field.
    field: &'static str,
    history: [(&'static str, &'static str); 3],
    /// The container revision 4 changed, its image there and in revision 3.
    container: &'static str,
    bad: &'static str,
    good: &'static str,
}

impl Kind {
    fn ledger() -> Self {
        Kind {
            fixture: fixtures::ledger_as_recorded(),
            kind: "StatefulSet",
            field: "statefulSet",
            history: fixtures::LEDGER_HISTORY,
            container: "db",
            bad: "registry.example/data/db:15.3",
            good: "registry.example/data/db:15.2",
        }
    }

    fn node_agent() -> Self {
        Kind {
            fixture: fixtures::node_agent_as_recorded(),
            kind: "DaemonSet",
            field: "daemonSet",
            history: fixtures::NODE_AGENT_HISTORY,
            container: "agent",
            bad: "registry.example/obs/agent:2.2",
            good: "registry.example/obs/agent:2.1",
        }
    }

    fn request(&self, action: &str) -> Value {
        json!({
            "action": action,
            "target": {"cluster": "e2e", "namespace": self.fixture.namespace(),
                       self.field: self.fixture.name()},
            "reason": "lambda_runtime_e2e"
        })
    }

    fn object(&self, server: &TestServer) -> Value {
        let (ns, name) = (self.fixture.namespace(), self.fixture.name());
        server.object(self.kind, ns, name).expect("the workload")
    }

    /// (revision, name) of the workload's ControllerRevisions, by name.
    fn revisions(&self, server: &TestServer) -> BTreeMap<String, i64> {
        server
            .controller_revisions(self.fixture.namespace())
            .into_iter()
            .filter(|cr| {
                cr.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == self.kind && o.name == self.fixture.name())
            })
            .map(|cr| (cr.metadata.name.unwrap_or_default(), cr.revision))
            .collect()
    }

    /// `verify` on the workload until the controller says done.
    async fn verified(&self, lambda: &Emulator, target: &Value) -> Value {
        let mut verdict = Value::Null;
        for _ in 0..100 {
            verdict = lambda.ok("verify", &json!({"target": target})).await;
            if verdict["state"] != "waiting" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(verdict["state"], "done", "{verdict}");
        assert_eq!(verdict["target"][self.field], self.fixture.name());
        verdict
    }

    /// rollback (the offending container only), verify, pause (hold),
    /// resume (the strategy exactly as before), restart, verify.
    async fn end_to_end(&self, lambda: &Emulator, server: &TestServer) {
        let kind = self.kind;
        assert!(
            self.fixture.seed_with_history(server, &self.history).await,
            "{kind}: seeding the recorded history"
        );
        let before = self.object(server);
        let revisions = self.revisions(server);
        let reused = revisions
            .iter()
            .find(|(_, n)| **n == 3)
            .map(|(name, _)| name.clone())
            .unwrap();

        let outcome = lambda.ok("rollback", &self.request("rollback")).await;
        assert_eq!(outcome["status"], "applied", "{kind}: {outcome}");
        assert_eq!(
            outcome["changes"],
            json!([{"container": self.container, "from": self.bad, "to": self.good}]),
            "{kind}"
        );
        assert_eq!(outcome["target"][self.field], self.fixture.name());
        let after = self.object(server);
        let containers = |o: &Value| o["spec"]["template"]["spec"]["containers"].clone();
        let mut want = containers(&before);
        for c in want.as_array_mut().unwrap() {
            if c["name"] == self.container {
                c["image"] = json!(self.good);
            }
        }
        assert_eq!(
            containers(&after),
            want,
            "{kind}: only {} changed",
            self.container
        );
        let verdict = self.verified(lambda, &outcome["target"]).await;
        assert!(
            verdict["message"].as_str().unwrap().contains("roll"),
            "{kind}: {verdict}"
        );
        // The controller reused revision 3's ControllerRevision and renumbered it.
        let now = self.revisions(server);
        assert_eq!(
            now.len(),
            revisions.len(),
            "{kind}: no new revision {now:?}"
        );
        assert_eq!(now[&reused], 5, "{kind}: {reused} renumbered {now:?}");

        let strategy = self.object(server)["spec"]["updateStrategy"].clone();
        let out = lambda.ok("pause", &self.request("pause")).await;
        assert_eq!(out["status"], "applied", "{kind}: {out}");
        let held = self.object(server);
        match kind {
            "StatefulSet" => assert_eq!(
                held["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
                held["spec"]["replicas"],
                "{kind}: partition = replicas"
            ),
            _ => assert_eq!(held["spec"]["updateStrategy"]["type"], "OnDelete"),
        }
        assert_eq!(
            held["metadata"]["annotations"]["selfheal.dev/paused-by"],
            "selfheal"
        );
        let out = lambda.ok("pause", &self.request("pause")).await;
        assert_eq!(out["status"], "skipped", "{kind}: held already: {out}");
        let out = lambda.ok("resume", &self.request("resume")).await;
        assert_eq!(out["status"], "applied", "{kind}: {out}");
        let resumed = self.object(server);
        assert_eq!(
            resumed["spec"]["updateStrategy"], strategy,
            "{kind}: restored exactly"
        );
        let annotations = resumed["metadata"]["annotations"].as_object();
        assert!(
            annotations.is_none_or(|a| !a.contains_key("selfheal.dev/paused-by")
                && !a.contains_key("selfheal.dev/held-strategy")),
            "{kind}: {resumed}"
        );

        let out = lambda.ok("restart", &self.request("restart")).await;
        assert_eq!(out["status"], "applied", "{kind}: {out}");
        let restarted = self.object(server);
        assert!(
            restarted["spec"]["template"]["metadata"]["annotations"]
                ["kubectl.kubernetes.io/restartedAt"]
                .is_string(),
            "{kind}: {restarted}"
        );
        assert_eq!(
            containers(&restarted),
            want,
            "{kind}: restart keeps the images"
        );
        self.verified(lambda, &out["target"]).await;
        assert_eq!(
            self.revisions(server).len(),
            revisions.len() + 1,
            "{kind}: the restart's template is a new revision"
        );
    }
}

// -------------------------------------------------------------------- fuzz --

/// xorshift64*: reproducible payloads without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn random_scalar(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.next() as i64),
        3 => json!(-1.5e308),
        4 => json!(""),
        5 => json!("../../../etc/passwd"),
        6 => json!("ünïcødé ☃ \u{0} \\ \" /"),
        7 => json!("x".repeat(rng.below(5000))),
        _ => json!(*rng.pick(&[
            "rollback", "pause", "resume", "restart", "Rollback", "delete"
        ])),
    }
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    if depth == 0 {
        return random_scalar(rng);
    }
    match rng.below(4) {
        0 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        1 => {
            let keys = [
                "action",
                "target",
                "namespace",
                "deployment",
                "pod",
                "container",
                "cluster",
                "dryRun",
                "force",
                "scope",
                "alarm",
                "zzz",
            ];
            let mut map = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                map.insert((*rng.pick(&keys)).to_owned(), random_value(rng, depth - 1));
            }
            Value::Object(map)
        }
        _ => random_scalar(rng),
    }
}

/// A valid request with one part replaced, removed or added at random.
fn garbled_request(rng: &mut Rng, action: &str) -> Value {
    let mut v = request(action);
    let paths: [&[&str]; 8] = [
        &["action"],
        &["target"],
        &["target", "namespace"],
        &["target", "deployment"],
        &["target", "cluster"],
        &["reason"],
        &["dryRun"],
        &["scope"],
    ];
    for _ in 0..=rng.below(3) {
        let path = *rng.pick(&paths);
        let (last, parents) = path.split_last().unwrap();
        let mut at = &mut v;
        for p in parents {
            at = &mut at[*p];
        }
        if let Some(obj) = at.as_object_mut() {
            match rng.below(3) {
                0 => {
                    obj.remove(*last);
                }
                1 => {
                    obj.insert((*last).to_owned(), random_value(rng, 2));
                }
                _ => {
                    obj.insert("unexpected".to_owned(), random_value(rng, 1));
                }
            }
        }
    }
    v
}

/// The EMF records (`_aws` lines) the functions printed for `action` ending
/// in `status`, once one has arrived (the emulator copies output as it comes).
async fn emf_records(lambda: &Emulator, action: &str, status: &str) -> Vec<Value> {
    for _ in 0..50 {
        let records: Vec<Value> = lambda
            .json_logs()
            .into_iter()
            .filter(|v| v.get("_aws").is_some() && v["Action"] == action && v["Status"] == status)
            .collect();
        if !records.is_empty() {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Vec::new()
}

// -------------------------------------------------------------------- test --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_serve_many_invocations_warm_with_stable_error_types() {
    let Some(bin) = tool_or_skip(
        "functions_serve_many_invocations_warm_with_stable_error_types",
        cargo_lambda_binary(),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = cluster(dir.path()).await;
    tokio::task::spawn_blocking(build_functions).await.unwrap();
    let lambda = Emulator::start(
        &bin,
        free_port(),
        &function_env(&kubeconfig),
        dir.path().join("watch.log"),
    )
    .await;

    // --- cold starts, all at once; every function refuses a request that is not its own.
    warm_up(&lambda, &FUNCTIONS).await;
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.path.contains("/namespaces/shop/")),
        "refused requests must not reach the API server"
    );

    // --- rollback: only the offending container's image changes.
    let outcome = lambda
        .ok(
            "rollback",
            &json!({
                "action": "rollback",
                "target": { "cluster": "e2e", "namespace": "shop", "deployment": "checkout" },
                "reason": "5xx rate above 5% for 3 minutes",
                "execution": "arn:aws:states:eu-west-1:123456789012:execution:remediate:e2e-1"
            }),
        )
        .await;
    assert_eq!(outcome["status"], "applied", "{outcome}");
    assert_eq!(
        outcome["changes"],
        json!([{ "container": "api", "from": API_2, "to": API_1 }])
    );
    assert_eq!(outcome["target"]["cluster"], "e2e");
    assert_eq!(
        images(&server),
        BTreeMap::from([("api".into(), API_1.into()), ("envoy".into(), ENVOY.into())])
    );
    // Its metric record (README "Metrics and dashboard"): exactly one EMF
    // line on the function's stdout, which is what CloudWatch Logs reads.
    let records = emf_records(&lambda, "rollback", "applied").await;
    assert_eq!(records.len(), 1, "{records:?}\n{}", lambda.log_text());
    selfheal_metrics::emf::validate(&records[0].to_string()).unwrap();
    assert_eq!(records[0]["Remediations"], 1, "{}", records[0]);

    // --- verify until the controller finished the rollback's rollout.
    let mut verdict = Value::Null;
    for _ in 0..100 {
        verdict = lambda.ok("verify", &outcome).await;
        if verdict["state"] == "done" {
            break;
        }
        assert_eq!(verdict["state"], "waiting", "{verdict}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(verdict["state"], "done", "{verdict}");
    assert_eq!(verdict["target"]["deployment"], "checkout");
    assert!(
        verdict["message"]
            .as_str()
            .unwrap()
            .contains("successfully rolled out"),
        "{verdict}"
    );

    // --- pause, pause again (skipped), resume, restart.
    let out = lambda.ok("pause", &request("pause")).await;
    assert_eq!(out["status"], "applied", "{out}");
    assert!(paused(&server));
    let out = lambda.ok("pause", &request("pause")).await;
    assert_eq!(out["status"], "skipped", "{out}");
    assert!(paused(&server));
    let out = lambda.ok("resume", &request("resume")).await;
    assert_eq!(out["status"], "applied", "{out}");
    assert!(!paused(&server));
    let out = lambda.ok("restart", &request("restart")).await;
    assert_eq!(out["status"], "applied", "{out}");
    assert!(
        restarted_at(&server).is_some(),
        "restart must set the restartedAt annotation"
    );
    assert_eq!(
        images(&server)["api"],
        API_1,
        "restart must not touch images"
    );

    // --- the same five functions on a StatefulSet and a DaemonSet.
    for kind in [Kind::ledger(), Kind::node_agent()] {
        kind.end_to_end(&lambda, &server).await;
    }

    // --- errors leave as documented errorTypes.
    let missing = json!({"action": "pause", "target": {"namespace": "shop", "deployment": "nope"}});
    assert_eq!(
        lambda.error_type("pause", &missing).await,
        "NonRetryableNotFound"
    );
    assert_eq!(
        lambda.error_type("rollback", &request("pause")).await,
        "NonRetryableInvalidRequest",
        "a pause request sent to the rollback function"
    );

    server.add_token(
        LAMBDA_TOKEN,
        Identity::Forbidden("system:serviceaccount:selfheal:lambda".into()),
    );
    assert_eq!(
        lambda.error_type("pause", &request("pause")).await,
        "NonRetryableForbidden"
    );
    assert_eq!(
        lambda.error_type("verify", &request("pause")).await,
        "NonRetryableForbidden"
    );
    server.add_token(LAMBDA_TOKEN, Identity::Admin);

    server.faults().fail_next(1, 503);
    assert_eq!(
        lambda.error_type("pause", &request("pause")).await,
        "RetryableApiError"
    );
    server.faults().clear();
    assert!(!paused(&server), "a failed pause must not pause");

    let before = server.deployment("shop", "checkout").unwrap();
    let conflicts = server.conflict_on_every_patch("checkout", Duration::from_millis(150));
    let ty = lambda.error_type("restart", &request("restart")).await;
    conflicts.abort();
    server.faults().clear();
    assert_eq!(ty, "RetryableConflict");
    let rejected = server.count_requests(|r| r.method == "PATCH" && r.status == 409);
    assert_eq!(rejected as u32, selfheal_kube::DEFAULT_REPLAN_BUDGET + 1);
    assert_eq!(
        server.deployment("shop", "checkout").unwrap().spec,
        before.spec,
        "conflicting patches must not change the Deployment"
    );

    // --- random and garbled payloads: never a crash, always a documented errorType.
    let mut rng = Rng(0x5e1f_4ea1_2026_1126);
    for i in 0..60 {
        let function = *rng.pick(&FUNCTIONS);
        let action = if function == "verify" {
            "pause"
        } else {
            function
        };
        let (payload, bytes) = match i % 4 {
            0 => {
                let v = random_value(&mut rng, 3);
                (v.to_string(), serde_json::to_vec(&v).unwrap())
            }
            // Not JSON at all: a request cut short, or stray bytes.
            1 => {
                let text = request(action).to_string();
                let mut bytes = text.as_bytes()[..rng.below(text.len())].to_vec();
                if rng.below(2) == 0 {
                    bytes.extend([0xff, b'{', 0x00, b'"']);
                }
                (String::from_utf8_lossy(&bytes).into_owned(), bytes)
            }
            _ => {
                let v = garbled_request(&mut rng, action);
                (v.to_string(), serde_json::to_vec(&v).unwrap())
            }
        };
        let (status, body) = lambda.invoke_raw(function, bytes).await;
        match status {
            200 => assert!(
                body.get("status").is_some() || body.get("state").is_some(),
                "{function} {payload}: {body}"
            ),
            500 => {
                let ty = body["errorType"].as_str().unwrap_or_default();
                assert!(
                    selfheal_core::ErrorType::name_is_from_kube_functions(ty),
                    "{function} {payload}: undocumented errorType in {body}"
                );
            }
            other => panic!("{function} {payload}: HTTP {other}: {body}"),
        }
    }

    // --- still warm: a last good invocation, then the process accounting.
    let out = lambda.ok("verify", &request("pause")).await;
    assert!(out["state"].is_string(), "{out}");

    common::started_once(&lambda, &FUNCTIONS);
    let clients = lambda.logs_with_message("kube client built");
    assert_eq!(
        clients.len(),
        FUNCTIONS.len(),
        "one kube client per function process"
    );

    // The audit line of the rollback names target, action, changes, status, execution.
    let outcomes = lambda.logs_with_message("remediation outcome");
    let rollback = outcomes
        .iter()
        .find(|l| l["fields"]["action"] == "rollback")
        .unwrap_or_else(|| panic!("no rollback outcome line:\n{}", lambda.log_text()));
    let fields = &rollback["fields"];
    assert_eq!(fields["status"], "applied");
    assert_eq!(fields["namespace"], "shop");
    assert_eq!(fields["deployment"], "checkout");
    assert_eq!(fields["cluster"], "e2e");
    assert!(
        fields["changes"].as_str().unwrap().contains(API_1),
        "{fields}"
    );
    assert!(
        fields["summary"]
            .as_str()
            .is_some_and(|s| s.contains("checkout")),
        "{fields}"
    );
    assert_eq!(
        fields["execution"],
        "arn:aws:states:eu-west-1:123456789012:execution:remediate:e2e-1"
    );
    // Without an execution in the request, the Lambda request id is used.
    let pause = outcomes
        .iter()
        .find(|l| l["fields"]["action"] == "pause")
        .unwrap();
    assert!(
        pause["fields"]["execution"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{pause}"
    );
}
