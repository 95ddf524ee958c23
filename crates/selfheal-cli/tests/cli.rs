//! End-to-end tests of the `selfheal` binary on the files in `examples/`:
//! snapshot mode (no cluster) and kubeconfig mode against the test API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_selfheal");
const API_1_2: &str = "registry.example/shop/api:1.2.0";
const API_1_1: &str = "registry.example/shop/api:1.1.0";
const POLICY_VARS: &[&str] = &[
    "SELFHEAL_REQUIRE_OPT_IN",
    "SELFHEAL_ALLOWED_NAMESPACES",
    "SELFHEAL_DENIED_NAMESPACES",
    "SELFHEAL_COOLDOWN_SECONDS",
    "SELFHEAL_ALLOW_GITOPS",
    "SELFHEAL_DRY_RUN",
    "SELFHEAL_PAUSE_IMPACT_THRESHOLD",
    "SELFHEAL_MAX_ACTIONS",
    "SELFHEAL_ACTION_WINDOW_SECONDS",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn examples() -> PathBuf {
    repo_root().join("examples")
}

fn snapshot_path() -> PathBuf {
    examples().join("checkout-snapshot.yaml")
}

fn request_path(name: &str) -> PathBuf {
    examples().join("requests").join(name)
}

/// The binary with a clean policy environment (the caller's SELFHEAL_* must not leak in).
fn selfheal(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("KUBECONFIG").stdin(Stdio::null());
    for var in POLICY_VARS {
        cmd.env_remove(var);
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run selfheal")
}

/// `selfheal run` of the request file `request` on the snapshot `snapshot`,
/// not started yet.
fn run_cmd(request: &Path, snapshot: &Path) -> Command {
    selfheal(&[
        "run",
        "--request",
        request.to_str().expect("path"),
        "--snapshot",
        snapshot.to_str().expect("path"),
    ])
}

/// [`run_cmd`], run.
fn run_request(request: &Path, snapshot: &Path) -> Output {
    run(&mut run_cmd(request, snapshot))
}

/// `selfheal run` of `request` on `snapshot` writing the result to `out`,
/// with `extra` arguments.
fn run_writing(request: &Path, snapshot: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = run_cmd(request, snapshot);
    cmd.arg("--write-snapshot").arg(out).args(extra);
    run(&mut cmd)
}

/// `selfheal status` of `deployment` (NAMESPACE/NAME) in `snapshot`.
fn status_of(deployment: &str, snapshot: &Path) -> Output {
    run(&mut selfheal(&[
        "status",
        "--deployment",
        deployment,
        "--snapshot",
        snapshot.to_str().expect("path"),
    ]))
}

/// `selfheal` with `args`, then `--snapshot snapshot`.
fn on_snapshot(args: &[&str], snapshot: &str) -> Output {
    let mut all = args.to_vec();
    all.extend(["--snapshot", snapshot]);
    run(&mut selfheal(&all))
}

/// The example request `name` as JSON, to edit.
fn example_request(name: &str) -> Value {
    let text = std::fs::read_to_string(request_path(name)).expect("read request");
    serde_json::from_str(&text).expect("request JSON")
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "selfheal failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Asserts the failure contract: non-zero, nothing on stdout, exactly one `error:` line.
fn error_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure, got success");
    assert!(out.stdout.is_empty(), "stdout must stay empty on error");
    let stderr = String::from_utf8(out.stderr.clone()).expect("utf-8 stderr");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one stderr line, got {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    lines[0].to_owned()
}

fn load_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read yaml");
    serde_saphyr::from_str(&text).expect("parse yaml")
}

fn write_yaml(path: &Path, value: &Value) {
    std::fs::write(path, serde_saphyr::to_string(value).expect("yaml")).expect("write");
}

/// The example snapshot with `edit` applied, written to `dir/name`.
fn edited_snapshot(dir: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut list = load_yaml(&snapshot_path());
    edit(&mut list);
    let path = dir.join(name);
    write_yaml(&path, &list);
    path
}

/// Applies `edit` to every Deployment in the snapshot `list`.
fn each_deployment(list: &mut Value, mut edit: impl FnMut(&mut Value)) {
    for item in list["items"].as_array_mut().expect("items") {
        if item["kind"] == "Deployment" {
            edit(item);
        }
    }
}

/// The example snapshot without the opt-in label, written to `dir`.
fn unlabelled_snapshot(dir: &Path) -> PathBuf {
    edited_snapshot(dir, "unlabelled.yaml", |list| {
        each_deployment(list, |d| {
            d["metadata"]["labels"]
                .as_object_mut()
                .expect("labels")
                .remove("selfheal.dev/enabled");
        });
    })
}

fn items(list: &Value) -> &Vec<Value> {
    assert_eq!(list["kind"], "List");
    list["items"].as_array().expect("items")
}

fn find<'a>(list: &'a Value, kind: &str, name: &str) -> &'a Value {
    items(list)
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} in snapshot"))
}

/// The api image of the `checkout` Deployment in the snapshot `list`.
fn checkout_api_image(list: &Value) -> &Value {
    &container(find(list, "Deployment", "checkout"), "api")["image"]
}

/// The `changes` of the example rollback: api 1.2.0 back to 1.1.0.
fn api_rolled_back() -> Value {
    json!([{ "container": "api", "from": API_1_2, "to": API_1_1 }])
}

fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("container {name}"))
}

/// Runs `selfheal run` on the example snapshot and returns (outcome, written snapshot).
fn run_on_example(request: &str, extra: &[&str]) -> (Value, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("out.yaml");
    let out = run_writing(&request_path(request), &snapshot_path(), &out_path, extra);
    (stdout_json(&out), load_yaml(&out_path))
}

#[test]
fn half_brick_rollback_reverts_only_the_api_image() {
    let (outcome, written) = run_on_example("rollback.json", &[]);
    assert_eq!(outcome["status"], "applied");
    assert_eq!(outcome["action"], "rollback");
    assert_eq!(outcome["changes"], api_rolled_back());
    assert_eq!(outcome["target"]["deployment"], "checkout");
    assert_eq!(outcome["revision"]["before"], 4);
    assert!(outcome.get("guard").is_none());

    let original = load_yaml(&snapshot_path());
    assert_eq!(items(&written).len(), items(&original).len());
    // Every object but the Deployment is written back unchanged.
    for (before, after) in items(&original).iter().zip(items(&written)) {
        if before["kind"] != "Deployment" {
            assert_eq!(before, after);
        }
    }
    let before = find(&original, "Deployment", "checkout");
    let after = find(&written, "Deployment", "checkout");
    assert_eq!(container(after, "api")["image"], API_1_1);
    assert_eq!(container(after, "envoy"), container(before, "envoy"));
    assert_eq!(after["metadata"]["generation"], 5, "generation bumped");
    assert_eq!(
        after["metadata"]["resourceVersion"], "330",
        "resourceVersion kept"
    );
    let annotations = &after["metadata"]["annotations"];
    let bad: Value = serde_json::from_str(
        annotations["selfheal.dev/bad-images"]
            .as_str()
            .expect("bad-images annotation"),
    )
    .expect("bad-images is JSON");
    assert_eq!(bad, json!({ "api": [API_1_2] }));
    let last: Value = serde_json::from_str(
        annotations["selfheal.dev/last-remediation"]
            .as_str()
            .expect("last-remediation annotation"),
    )
    .expect("last-remediation is JSON");
    assert_eq!(last["action"], "rollback");
    // The audit history and `kubectl rollout history`'s change-cause.
    let history: Value = serde_json::from_str(
        annotations["selfheal.dev/history"]
            .as_str()
            .expect("history annotation"),
    )
    .expect("history is JSON");
    assert_eq!(history[0]["action"], "rollback");
    let cause = annotations["kubernetes.io/change-cause"]
        .as_str()
        .expect("change-cause annotation");
    assert!(cause.contains("selfheal rollback"), "{cause}");

    // Undo exactly the expected differences: nothing else may have changed.
    let mut normalized = after.clone();
    normalized["spec"]["template"]["spec"]["containers"][0]["image"] = json!(API_1_2);
    normalized["metadata"]["generation"] = before["metadata"]["generation"].clone();
    let ann = normalized["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations");
    for key in [
        "selfheal.dev/bad-images",
        "selfheal.dev/last-remediation",
        "selfheal.dev/history",
        "kubernetes.io/change-cause",
    ] {
        ann.remove(key);
    }
    assert_eq!(&normalized, before);
}

#[test]
fn dry_run_request_leaves_the_written_snapshot_identical() {
    let (outcome, written) = run_on_example("rollback-dry-run.json", &[]);
    assert_eq!(outcome["status"], "dryRun");
    assert_eq!(outcome["changes"], api_rolled_back());
    assert_eq!(written, load_yaml(&snapshot_path()));
}

#[test]
fn dry_run_flag_overrides_the_request() {
    let (outcome, written) = run_on_example("rollback.json", &["--dry-run"]);
    assert_eq!(outcome["status"], "dryRun");
    assert_eq!(written, load_yaml(&snapshot_path()));
}

#[test]
fn dry_run_policy_variable_is_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("out.yaml");
    let out = run(run_cmd(&request_path("restart.json"), &snapshot_path())
        .arg("--write-snapshot")
        .arg(&out_path)
        .env("SELFHEAL_DRY_RUN", "true"));
    assert_eq!(stdout_json(&out)["status"], "dryRun");
    assert_eq!(load_yaml(&out_path), load_yaml(&snapshot_path()));
}

#[test]
fn invalid_policy_variable_is_one_error_line() {
    let out = run(run_cmd(&request_path("rollback.json"), &snapshot_path())
        .env("SELFHEAL_COOLDOWN_SECONDS", "ten minutes"));
    let line = error_line(&out);
    assert!(line.contains("SELFHEAL_COOLDOWN_SECONDS"), "{line}");
}

#[test]
fn template_rollback_restores_revision_3_like_kubectl_undo() {
    let (outcome, written) = run_on_example("rollback-template.json", &[]);
    assert_eq!(outcome["status"], "applied");
    assert_eq!(outcome["revision"]["to"], 3);
    let original = load_yaml(&snapshot_path());
    let rev3 = items(&original)
        .iter()
        .find(|o| {
            o["kind"] == "ReplicaSet"
                && o["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        })
        .expect("revision 3");
    let mut expected = rev3["spec"]["template"].clone();
    expected["metadata"]["labels"]
        .as_object_mut()
        .expect("labels")
        .remove("pod-template-hash");
    let after = find(&written, "Deployment", "checkout");
    // Compare as typed objects: kubectl's patch may drop `creationTimestamp: null`.
    let typed = |v: &Value| -> k8s_openapi::api::core::v1::PodTemplateSpec {
        serde_json::from_value(v.clone()).expect("pod template")
    };
    assert_eq!(typed(&after["spec"]["template"]), typed(&expected));
    assert_eq!(container(after, "api")["image"], API_1_1);
    assert_eq!(
        container(after, "envoy")["image"],
        "registry.example/envoy:1.28"
    );
}

#[test]
fn pause_and_restart_write_the_deployment() {
    let (outcome, written) = run_on_example("pause.json", &[]);
    assert_eq!(outcome["status"], "applied");
    let after = find(&written, "Deployment", "checkout");
    assert_eq!(after["spec"]["paused"], true);
    assert_eq!(
        after["metadata"]["annotations"]["selfheal.dev/paused-by"],
        "selfheal"
    );

    let (outcome, written) = run_on_example("restart.json", &[]);
    assert_eq!(outcome["status"], "applied");
    let after = find(&written, "Deployment", "checkout");
    let restarted =
        after["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .expect("restartedAt");
    assert!(restarted.parse::<jiff::Timestamp>().is_ok(), "{restarted}");
    assert_eq!(
        container(after, "api")["image"],
        API_1_2,
        "restart keeps images"
    );
}

#[test]
fn resume_of_a_running_deployment_is_skipped() {
    let (outcome, written) = run_on_example("resume.json", &[]);
    assert_eq!(outcome["status"], "skipped");
    assert_eq!(written, load_yaml(&snapshot_path()));
}

#[test]
fn pod_target_resolves_to_its_deployment() {
    let (outcome, written) = run_on_example("rollback-pod.json", &[]);
    assert_eq!(outcome["status"], "applied");
    assert_eq!(outcome["target"]["pod"], "checkout-64db67cc5-b984x");
    assert_eq!(outcome["target"]["deployment"], "checkout");
    assert_eq!(outcome["changes"], api_rolled_back());
    assert_eq!(checkout_api_image(&written), API_1_1);
}

/// One StatefulSet or DaemonSet example: its snapshot, workload and the
/// half-brick rollback its example request must make.
struct KindExample {
    snapshot: &'static str,
    request: &'static str,
    kind: &'static str,
    /// The `target` field that names it.
    field: &'static str,
    name: &'static str,
    /// A pod of its current revision.
    pod: &'static str,
    container: &'static str,
    from: &'static str,
    to: &'static str,
    sidecar: &'static str,
}

const KIND_EXAMPLES: [KindExample; 2] = [
    KindExample {
        snapshot: "ledger-snapshot.yaml",
        request: "statefulset-rollback.json",
        kind: "StatefulSet",
        field: "statefulSet",
        name: "ledger",
        pod: "ledger-0",
        container: "db",
        from: "registry.example/data/db:15.3",
        to: "registry.example/data/db:15.2",
        sidecar: "metrics",
    },
    KindExample {
        snapshot: "node-agent-snapshot.yaml",
        request: "daemonset-rollback.json",
        kind: "DaemonSet",
        field: "daemonSet",
        name: "node-agent",
        pod: "node-agent-vbfk7",
        container: "agent",
        from: "registry.example/obs/agent:2.2",
        to: "registry.example/obs/agent:2.1",
        sidecar: "shipper",
    },
];

/// `selfheal run --request examples/requests/{statefulset,daemonset}-rollback.json
/// --snapshot examples/<its snapshot>`: only the offending container's
/// image goes back, to the newest older ControllerRevision's that differs
/// (the DaemonSet request names no container: the pods' evidence picks it).
#[test]
fn statefulset_and_daemonset_examples_roll_back_only_the_offending_image() {
    for example in KIND_EXAMPLES {
        let snapshot = examples().join(example.snapshot);
        let outcome = stdout_json(&run_request(&request_path(example.request), &snapshot));
        assert_eq!(outcome["status"], "applied", "{outcome}");
        assert_eq!(outcome["target"][example.field], example.name);
        assert!(outcome["target"].get("deployment").is_none(), "{outcome}");
        let rolled_back =
            json!([{ "container": example.container, "from": example.from, "to": example.to }]);
        assert_eq!(outcome["changes"], rolled_back);
        assert_eq!(outcome["revision"]["before"], 4);

        let dir = tempfile::tempdir().expect("tempdir");
        let out_path = dir.path().join("out.yaml");
        let written = run_writing(&request_path(example.request), &snapshot, &out_path, &[]);
        assert_eq!(stdout_json(&written), outcome);
        let (original, written) = (load_yaml(&snapshot), load_yaml(&out_path));
        assert_eq!(items(&written).len(), items(&original).len());
        for (before, after) in items(&original).iter().zip(items(&written)) {
            if before["kind"] != example.kind {
                assert_eq!(before, after, "only the {} changes", example.kind);
            }
        }
        let before = find(&original, example.kind, example.name);
        let after = find(&written, example.kind, example.name);
        assert_eq!(container(after, example.container)["image"], example.to);
        assert_eq!(
            container(after, example.sidecar),
            container(before, example.sidecar)
        );
        assert_eq!(after["metadata"]["generation"], 5, "generation bumped");
    }
}

#[test]
fn pod_targets_resolve_to_their_statefulset_and_daemonset() {
    for example in KIND_EXAMPLES {
        let dir = tempfile::tempdir().expect("tempdir");
        let request = dir.path().join("pod.json");
        let mut body = example_request(example.request);
        body["target"] =
            json!({ "namespace": "data", "pod": example.pod, "container": example.container });
        std::fs::write(&request, body.to_string()).expect("write request");
        let outcome = stdout_json(&run_request(&request, &examples().join(example.snapshot)));
        assert_eq!(outcome["status"], "applied", "{outcome}");
        assert_eq!(outcome["target"]["pod"], example.pod);
        assert_eq!(outcome["target"][example.field], example.name);
        assert_eq!(outcome["changes"][0]["to"], example.to);
    }
}

/// The verbs and `status -n NS` take kubectl's `KIND/NAME` (with its short
/// and plural kind names); a bare NAME stays a Deployment.
#[test]
fn verbs_and_status_take_kubectl_kind_slash_name() {
    for example in KIND_EXAMPLES {
        let snapshot = examples().join(example.snapshot);
        let snapshot = snapshot.to_str().expect("utf-8 path");
        let short = if example.kind == "StatefulSet" {
            "sts"
        } else {
            "ds"
        };
        let from_file = stdout_json(&run_request(
            &request_path(example.request),
            Path::new(snapshot),
        ));
        for kind in [
            example.kind.to_lowercase(),
            format!("{}s", example.kind),
            short.into(),
        ] {
            let workload = format!("{kind}/{}", example.name);
            let verb = [
                "rollback",
                "-n",
                "data",
                &workload,
                "--container",
                example.container,
            ];
            let outcome = stdout_json(&on_snapshot(&verb, snapshot));
            assert_eq!(outcome["target"][example.field], example.name, "{workload}");
            assert_eq!(outcome["changes"], from_file["changes"], "{workload}");

            let by_name = stdout_json(&on_snapshot(&["status", "-n", "data", &workload], snapshot));
            let flag = format!("--{}", example.kind.to_lowercase());
            let by_flag = format!("data/{}", example.name);
            let by_flag = stdout_json(&on_snapshot(&["status", &flag, &by_flag], snapshot));
            assert_eq!(by_name, by_flag, "{workload}");
        }
        // A hold through the verb form writes the kind's own hold.
        let held = stdout_json(&on_snapshot(
            &["pause", "-n", "data", &format!("{short}/{}", example.name)],
            snapshot,
        ));
        assert_eq!(held["target"][example.field], example.name, "{held}");
    }
    for bad in ["job/nightly", "statefulset/", "sts/a/b"] {
        let out = on_snapshot(
            &["restart", "-n", "data", bad],
            snapshot_path().to_str().expect("utf-8"),
        );
        assert_eq!(
            error_line(&out),
            format!(
                "error: {bad:?}: selfheal acts on deployment/NAME, statefulset/NAME or daemonset/NAME (or a bare Deployment NAME)"
            )
        );
    }
}

#[test]
fn opt_in_guard_refuses_and_no_opt_in_flag_lifts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = unlabelled_snapshot(dir.path());
    let request = request_path("rollback.json");
    let refused = stdout_json(&run_request(&request, &snap));
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["guard"], "optIn");

    let applied = stdout_json(&run(run_cmd(&request, &snap).arg("--no-opt-in")));
    assert_eq!(applied["status"], "applied");
}

#[test]
fn json_snapshot_and_stdin_request_round_trip_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("snap.json");
    let out_path = dir.path().join("out.json");
    let original = load_yaml(&snapshot_path());
    std::fs::write(
        &snap,
        serde_json::to_string_pretty(&original).expect("json"),
    )
    .expect("write");
    let mut cmd = selfheal(&[
        "run",
        "--request",
        "-",
        "--snapshot",
        snap.to_str().expect("path"),
        "--write-snapshot",
        out_path.to_str().expect("path"),
    ]);
    cmd.stdin(std::fs::File::open(request_path("rollback.json")).expect("request"));
    let outcome = stdout_json(&run(&mut cmd));
    assert_eq!(outcome["status"], "applied");
    let text = std::fs::read_to_string(&out_path).expect("written");
    assert!(text.trim_start().starts_with('{'), "JSON in, JSON out");
    let written: Value = serde_json::from_str(&text).expect("written JSON");
    assert_eq!(checkout_api_image(&written), API_1_1);
}

#[test]
fn malformed_request_is_one_error_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"action\": \"rollback\", \"target\": ").expect("write");
    let out = run_request(&bad, &snapshot_path());
    let line = error_line(&out);
    assert!(line.contains("malformed remediation request"), "{line}");
}

#[test]
fn unknown_action_is_one_error_line() {
    let mut cmd = selfheal(&[
        "run",
        "--request",
        "-",
        "--snapshot",
        snapshot_path().to_str().expect("path"),
    ]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(
                br#"{"action":"scale","target":{"namespace":"shop","deployment":"checkout"}}"#,
            )
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    let line = error_line(&out);
    assert!(line.contains("unknown variant `scale`"), "{line}");
}

#[test]
fn deployment_missing_from_snapshot_is_one_error_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let req = dir.path().join("req.json");
    std::fs::write(
        &req,
        r#"{"action":"restart","target":{"namespace":"shop","deployment":"payments"}}"#,
    )
    .expect("write");
    let out = run_request(&req, &snapshot_path());
    assert_eq!(
        error_line(&out),
        "error: deployment shop/payments not found in snapshot"
    );
    // The example StatefulSet request on the Deployment's snapshot.
    let out = run_request(&request_path("statefulset-rollback.json"), &snapshot_path());
    assert_eq!(
        error_line(&out),
        "error: statefulset data/ledger not found in snapshot"
    );
}

#[test]
fn unreadable_and_invalid_snapshots_are_one_error_line() {
    let out = run_request(
        &request_path("rollback.json"),
        Path::new("/nonexistent/snapshot.yaml"),
    );
    assert!(error_line(&out).contains("cannot read snapshot /nonexistent/snapshot.yaml"));

    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("s.yaml");
    std::fs::write(
        &snap,
        "apiVersion: v1\nkind: List\nitems:\n- metadata: {name: x}\n",
    )
    .expect("write");
    let out = run_request(&request_path("rollback.json"), &snap);
    assert!(error_line(&out).contains("has no `kind`"));
}

#[test]
fn status_reports_kubectl_state_and_message() {
    let out = status_of("shop/checkout", &snapshot_path());
    assert_eq!(
        stdout_json(&out),
        json!({ "state": "done", "message": "deployment \"checkout\" successfully rolled out" })
    );

    // A spec change the controller has not observed yet: waiting, still exit 0.
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = edited_snapshot(dir.path(), "moved.yaml", |list| {
        each_deployment(list, |d| d["metadata"]["generation"] = json!(5));
    });
    let out = status_of("shop/checkout", &snap);
    let status = stdout_json(&out);
    assert_eq!(status["state"], "waiting");
    assert_eq!(
        status["message"],
        "Waiting for deployment spec update to be observed..."
    );

    let out = status_of("checkout", &snapshot_path());
    assert!(error_line(&out).contains("NAMESPACE/NAME"));
}

/// The cluster entry's name as `aws eks update-kubeconfig` writes it for the
/// cluster the example requests name (`prod-eks`).
const PROD_EKS_ARN: &str = "arn:aws:eks:eu-west-1:123456789012:cluster/prod-eks";

/// The test server's kubeconfig with its cluster entry named [`PROD_EKS_ARN`]
/// (the context keeps its name, `selfheal-test`).
fn eks_style(kubeconfig: &str) -> String {
    let renamed = kubeconfig
        .replace(
            "- name: selfheal-test\n  cluster:",
            &format!("- name: {PROD_EKS_ARN}\n  cluster:"),
        )
        .replace(
            "    cluster: selfheal-test\n",
            &format!("    cluster: {PROD_EKS_ARN}\n"),
        );
    assert_eq!(renamed.matches(PROD_EKS_ARN).count(), 2, "{renamed}");
    renamed
}

/// The test API server seeded with the example snapshot, a kubeconfig for it
/// (context `selfheal-test`, cluster [`PROD_EKS_ARN`]) in a temporary
/// directory, and the seeded Deployment: `(server, seeded Deployment,
/// kubeconfig path, directory)`.
async fn seeded_server() -> (
    selfheal_testserver::TestServer,
    k8s_openapi::api::apps::v1::Deployment,
    String,
    tempfile::TempDir,
) {
    let server = selfheal_testserver::TestServer::start()
        .await
        .expect("test server");
    server.apply_objects(load_yaml(&snapshot_path()));
    let deployment = server.deployment("shop", "checkout").expect("seeded");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, eks_style(&server.kubeconfig_yaml())).expect("kubeconfig");
    let kubeconfig = kubeconfig.to_str().expect("path").to_owned();
    (server, deployment, kubeconfig, dir)
}

/// The binary off the async runtime, so the in-process server keeps serving.
async fn run_cli(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&mut selfheal(&args))
    })
    .await
    .expect("join")
}

/// Kubeconfig mode: the example snapshot seeded into the test API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_mode_rolls_back_in_the_test_api_server() {
    let (server, seeded, kc, dir) = seeded_server().await;
    let req = |name: &str| request_path(name).to_str().expect("path").to_owned();

    // Dry run first: the server validates the patch and stores nothing.
    let out = run_cli(live_args(
        &["run", "--request", &req("rollback-dry-run.json")],
        &kc,
    ))
    .await;
    assert_eq!(stdout_json(&out)["status"], "dryRun");
    let unchanged = server.deployment("shop", "checkout").expect("deployment");
    assert_eq!(unchanged.metadata.generation, seeded.metadata.generation);
    assert_eq!(unchanged.spec, seeded.spec);

    let out = run_cli(live_args(
        &[
            "run",
            "--request",
            &req("rollback.json"),
            "--context",
            "selfheal-test",
        ],
        &kc,
    ))
    .await;
    let outcome = stdout_json(&out);
    assert_eq!(outcome["status"], "applied");
    assert_eq!(outcome["changes"], api_rolled_back());

    let after = server.deployment("shop", "checkout").expect("deployment");
    let images = |d: &k8s_openapi::api::apps::v1::Deployment| -> Vec<(String, Option<String>)> {
        d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| {
                p.containers
                    .iter()
                    .map(|c| (c.name.clone(), c.image.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        images(&after),
        vec![
            ("api".to_owned(), Some(API_1_1.to_owned())),
            (
                "envoy".to_owned(),
                Some("registry.example/envoy:1.28".to_owned())
            ),
        ]
    );
    // Everything but api's image is as seeded in the template (env, resources, ports).
    let seeded_containers = seeded
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.clone())
        .expect("seeded containers");
    let mut after_containers = after
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.clone())
        .expect("containers");
    after_containers[0].image = Some(API_1_2.to_owned());
    assert_eq!(after_containers, seeded_containers);
    assert!(
        after
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("selfheal.dev/bad-images"))
    );

    // The same rollback again is refused by the cooldown guard, exit 0.
    let out = run_cli(live_args(&["run", "--request", &req("rollback.json")], &kc)).await;
    let again = stdout_json(&out);
    assert_eq!(again["status"], "refused");
    assert_eq!(again["guard"], "cooldown");

    let out = run_cli(live_args(&["status", "--deployment", "shop/checkout"], &kc)).await;
    let status = stdout_json(&out);
    assert!(
        ["done", "waiting"].contains(&status["state"].as_str().unwrap_or_default()),
        "{status}"
    );

    // A Deployment the server does not have: one error line, non-zero.
    let missing = dir.path().join("missing.json");
    std::fs::write(
        &missing,
        r#"{"action":"pause","target":{"namespace":"shop","deployment":"nope"}}"#,
    )
    .expect("write");
    let out = run_cli(live_args(
        &["run", "--request", missing.to_str().expect("path")],
        &kc,
    ))
    .await;
    let line = error_line(&out);
    assert!(line.contains("nope"), "{line}");
}

/// The body of every fenced block of `lang` in `markdown`, with the byte
/// offset where each block ends.
fn fenced_blocks(markdown: &str, lang: &str) -> Vec<(String, usize)> {
    let open = format!("```{lang}\n");
    let mut blocks = Vec::new();
    let mut from = 0;
    while let Some(start) = markdown[from..].find(&open) {
        let body_start = from + start + open.len();
        let len = markdown[body_start..]
            .find("```")
            .expect("fenced block is closed");
        blocks.push((
            markdown[body_start..body_start + len].to_owned(),
            body_start + len + 3,
        ));
        from = body_start + len + 3;
    }
    blocks
}

/// README's Quick start: the first command of its first `sh` block, run
/// exactly as written (from the repository root, its `cargo run … --`
/// replaced by the built binary), prints the JSON of the `json` block that
/// follows. The outcome carries no timestamp or other varying field, so the
/// whole document must match.
#[test]
fn readme_quick_start_output_is_what_the_command_prints() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let quick_start = readme
        .find("## Quick start")
        .expect("README has a Quick start section");
    let section = &readme[quick_start..];
    let (commands, sh_end) = fenced_blocks(section, "sh")
        .into_iter()
        .next()
        .expect("Quick start has a sh block");
    let command = commands
        .lines()
        .find(|l| l.contains("selfheal-cli"))
        .expect("a selfheal-cli command")
        .trim();
    let (cargo, args) = command
        .split_once(" -- ")
        .unwrap_or_else(|| panic!("`cargo run … -- ARGS`: {command}"));
    assert!(
        cargo.starts_with("cargo run") && cargo.contains("-p selfheal-cli"),
        "{command}"
    );
    assert!(
        !args.contains(['\'', '"', '$', '|', '>', '<', '*']),
        "README's arguments are plain words: {args}"
    );
    let args: Vec<&str> = args.split_whitespace().collect();
    assert_eq!(args.first(), Some(&"run"), "{command}");

    let (expected, _) = fenced_blocks(&section[sh_end..], "json")
        .into_iter()
        .next()
        .expect("a json block after the command");
    let expected: Value = serde_json::from_str(&expected).expect("README's output is JSON");

    let out = run(selfheal(&args).current_dir(repo_root()));
    assert_eq!(
        stdout_json(&out),
        expected,
        "README's Quick start output is out of date"
    );
}

/// A `--context` the kubeconfig does not have: one error line naming it, and
/// the server never sees a request (so nothing can have been written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_context_is_one_error_line_and_no_request() {
    let (server, seeded, kc, _dir) = seeded_server().await;
    server.clear_requests();

    let request = request_path("rollback.json")
        .to_str()
        .expect("path")
        .to_owned();
    let commands: [Vec<String>; 2] = [
        vec![
            "run".into(),
            "--request".into(),
            request,
            "--kubeconfig".into(),
            kc.clone(),
            "--context".into(),
            "nope".into(),
        ],
        vec![
            "status".into(),
            "--deployment".into(),
            "shop/checkout".into(),
            "--kubeconfig".into(),
            kc,
            "--context".into(),
            "nope".into(),
        ],
    ];
    for args in commands {
        let out = run_cli(args).await;
        let line = error_line(&out);
        assert!(line.contains("context"), "{line}");
        assert!(line.contains("nope"), "{line}");
        assert!(server.requests().is_empty(), "{:?}", server.requests());
    }
    assert_unwritten(&server, &seeded);
}

/// A blank `DeniedNamespaces` stack parameter arrives as
/// `SELFHEAL_DENIED_NAMESPACES=`; read as "deny none", it would let a
/// kube-system Deployment be rolled back. Unset and blank both keep the
/// default deny list; only the explicit `NONE` lifts it.
#[test]
fn blank_denied_namespaces_still_refuse_kube_system() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = edited_snapshot(dir.path(), "kube-system.yaml", |list| {
        for item in list["items"].as_array_mut().expect("items") {
            item["metadata"]["namespace"] = json!("kube-system");
        }
    });
    let mut request = example_request("rollback.json");
    request["target"]["namespace"] = json!("kube-system");
    let request_file = dir.path().join("rollback-kube-system.json");
    std::fs::write(&request_file, request.to_string()).expect("write");
    for value in [None, Some(""), Some("  ")] {
        let mut cmd = run_cmd(&request_file, &snap);
        if let Some(v) = value {
            cmd.env("SELFHEAL_DENIED_NAMESPACES", v);
        }
        let outcome = stdout_json(&run(&mut cmd));
        assert_eq!(outcome["status"], "refused", "{value:?}: {outcome}");
        assert_eq!(outcome["guard"], "namespace", "{value:?}: {outcome}");
    }
    let lifted = stdout_json(&run(
        run_cmd(&request_file, &snap).env("SELFHEAL_DENIED_NAMESPACES", "NONE")
    ));
    assert_eq!(lifted["status"], "applied", "{lifted}");
}

/// The run arguments of `selfheal ARGS... --kubeconfig KC` as owned strings.
fn live_args(args: &[&str], kubeconfig: &str) -> Vec<String> {
    args.iter()
        .copied()
        .chain(["--kubeconfig", kubeconfig])
        .map(str::to_owned)
        .collect()
}

/// Spec, generation, annotations and labels as seeded: nothing was written
/// (the controller emulation may update status meanwhile).
fn assert_unwritten(server: &selfheal_testserver::TestServer, seeded: &Deployment) {
    let after = server.deployment("shop", "checkout").expect("deployment");
    assert_eq!(after.spec, seeded.spec, "nothing written");
    assert_eq!(after.metadata.generation, seeded.metadata.generation);
    assert_eq!(after.metadata.annotations, seeded.metadata.annotations);
    assert_eq!(after.metadata.labels, seeded.metadata.labels);
}

use k8s_openapi::api::apps::v1::Deployment;

/// A request naming another cluster must not act on the current context
/// while echoing the other name: in kubeconfig mode the request's cluster
/// must be the context's (here its cluster entry is the ARN of `prod-eks`, as
/// `aws eks update-kubeconfig` writes it); another one is one error line and
/// no request at all, and the outcome names the context used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_for_another_cluster_sends_nothing() {
    let (server, seeded, kc, dir) = seeded_server().await;
    server.clear_requests();

    let mut request = example_request("pause.json");
    request["target"]["cluster"] = json!("prod-us-east-1-OTHER");
    let other = dir.path().join("other-cluster.json");
    std::fs::write(&other, request.to_string()).expect("write");
    let out = run_cli(live_args(
        &["run", "--request", other.to_str().expect("path")],
        &kc,
    ))
    .await;
    assert_eq!(
        error_line(&out),
        format!(
            "error: the request targets cluster \"prod-us-east-1-OTHER\", but kubeconfig context \"selfheal-test\" is cluster \"{PROD_EKS_ARN}\" (EKS cluster \"prod-eks\"); nothing was sent (pick the cluster's context with --context, or leave target.cluster out)"
        )
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_unwritten(&server, &seeded);

    // The cluster by its EKS name (the example's `prod-eks`) or its ARN runs.
    let dry_run = request_path("rollback-dry-run.json");
    let out = run_cli(live_args(
        &["run", "--request", dry_run.to_str().expect("path")],
        &kc,
    ))
    .await;
    let outcome = stdout_json(&out);
    assert_eq!(outcome["status"], "dryRun");
    assert_eq!(outcome["target"]["cluster"], "prod-eks");
    assert_eq!(outcome["context"], "selfheal-test");
    request["target"]["cluster"] = json!(PROD_EKS_ARN);
    std::fs::write(&other, request.to_string()).expect("write");
    let out = run_cli(live_args(
        &[
            "run",
            "--request",
            other.to_str().expect("path"),
            "--dry-run",
        ],
        &kc,
    ))
    .await;
    assert_eq!(stdout_json(&out)["status"], "dryRun");

    // Without a cluster the request runs, and the outcome names the context
    // and its cluster.
    let out = run_cli(live_args(&["pause", "-n", "shop", "checkout"], &kc)).await;
    let outcome = stdout_json(&out);
    assert_eq!(outcome["status"], "applied");
    assert_eq!(outcome["context"], "selfheal-test");
    assert_eq!(outcome["target"]["cluster"], "prod-eks");
    let paused = server.deployment("shop", "checkout").expect("deployment");
    assert_eq!(paused.spec.and_then(|s| s.paused), Some(true));
}

/// An API error is one line in kubectl's words with a hint (a 403 points at
/// deploy/rbac.yaml): no Rust debug structure, the server's sentence once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_is_one_kubectl_style_line_with_a_hint() {
    let (server, seeded, _, dir) = seeded_server().await;
    let user = "system:serviceaccount:shop:viewer";
    server.add_token(
        "viewer-token",
        selfheal_testserver::Identity::Forbidden(user.into()),
    );
    let kc = dir.path().join("viewer");
    std::fs::write(
        &kc,
        eks_style(&server.kubeconfig_yaml_with_token("viewer-token")),
    )
    .expect("kubeconfig");
    let kc = kc.to_str().expect("path").to_owned();

    let rollback = request_path("rollback.json");
    let denied = format!(
        "deployments.apps \"checkout\" is forbidden: User \"{user}\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"shop\""
    );
    for args in [
        vec!["run", "--request", rollback.to_str().expect("path")],
        vec!["restart", "-n", "shop", "checkout"],
        vec!["status", "-n", "shop", "checkout"],
    ] {
        let line = error_line(&run_cli(live_args(&args, &kc)).await);
        assert_eq!(
            line,
            format!(
                "error: Error from server (Forbidden): {denied} (hint: selfheal's identity lacks a permission in deploy/rbac.yaml (kubectl apply -f deploy/rbac.yaml))"
            ),
            "{args:?}"
        );
    }
    assert_unwritten(&server, &seeded);

    // Not found reads like kubectl too.
    let line = error_line(
        &run_cli(live_args(
            &["pause", "-n", "shop", "nope"],
            &server_kubeconfig(&server, &dir),
        ))
        .await,
    );
    assert_eq!(
        line,
        "error: Error from server (NotFound): deployments.apps \"nope\" not found"
    );
}

/// The seeded server's admin kubeconfig, written next to the others.
fn server_kubeconfig(server: &selfheal_testserver::TestServer, dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("admin");
    std::fs::write(&path, eks_style(&server.kubeconfig_yaml())).expect("kubeconfig");
    path.to_str().expect("path").to_owned()
}

/// In snapshot mode too, a pod left behind by revision 3 (its ReplicaSet
/// scaled to 0) does not roll back revision 4; the current pod does.
#[test]
fn stale_pod_target_is_refused_in_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut list = load_yaml(&snapshot_path());
    let mut pod = find(&list, "Pod", "checkout-64db67cc5-b984x").clone();
    let rs3 = items(&list)
        .iter()
        .find(|o| {
            o["kind"] == "ReplicaSet"
                && o["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        })
        .expect("revision 3")
        .clone();
    pod["metadata"]["name"] = json!("checkout-59d455ddc4-old3x");
    pod["metadata"]["labels"]["pod-template-hash"] =
        rs3["metadata"]["labels"]["pod-template-hash"].clone();
    pod["metadata"]["ownerReferences"][0]["name"] = rs3["metadata"]["name"].clone();
    pod["metadata"]["ownerReferences"][0]["uid"] = rs3["metadata"]["uid"].clone();
    pod["spec"]["containers"][0]["image"] = json!(API_1_1);
    list["items"].as_array_mut().expect("items").push(pod);
    let snap = dir.path().join("stale.yaml");
    write_yaml(&snap, &list);
    let request = dir.path().join("stale-pod.json");
    std::fs::write(
        &request,
        r#"{"action":"rollback","target":{"namespace":"shop","pod":"checkout-59d455ddc4-old3x","container":"api"}}"#,
    )
    .expect("write");
    let out_path = dir.path().join("out.yaml");
    let outcome = stdout_json(&run_writing(&request, &snap, &out_path, &[]));
    assert_eq!(outcome["status"], "refused", "{outcome}");
    assert_eq!(outcome["guard"], "stalePod");
    assert_eq!(outcome["target"]["pod"], "checkout-59d455ddc4-old3x");
    assert_eq!(outcome["target"]["deployment"], "checkout");
    assert_eq!(checkout_api_image(&load_yaml(&out_path)), API_1_2);
}

/// `selfheal ACTION -n shop checkout ...` on the example snapshot, writing
/// the result: (exit code, outcome, written snapshot).
fn verb_on_example(args: &[&str]) -> (Option<i32>, Value, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("out.yaml");
    let snapshot = snapshot_path();
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--snapshot",
        snapshot.to_str().expect("path"),
        "--write-snapshot",
        out_path.to_str().expect("path"),
    ]);
    let out = run(&mut selfheal(&all));
    let outcome = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("stdout is JSON: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), outcome, load_yaml(&out_path))
}

/// The on-call verbs are `run` with the request built from their flags, so
/// they pass the same guards.
#[test]
fn action_verbs_act_like_their_requests() {
    let (code, outcome, written) = verb_on_example(&[
        "rollback",
        "-n",
        "shop",
        "checkout",
        "--container",
        "api",
        "--reason",
        "paged: 5xx",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(outcome["status"], "applied");
    assert_eq!(outcome["changes"], api_rolled_back());
    let after = find(&written, "Deployment", "checkout");
    assert_eq!(container(after, "api")["image"], API_1_1);
    // The reason reaches the audit trail.
    let audit = after["metadata"]["annotations"]
        .as_object()
        .expect("annotations");
    assert!(
        audit
            .values()
            .any(|v| v.as_str().is_some_and(|v| v.contains("paged: 5xx"))),
        "{audit:?}"
    );

    // The same request through `run` gives the same outcome.
    let (_, via_run, _) = verb_on_example(&[
        "run",
        "--request",
        request_path("rollback.json").to_str().expect("path"),
    ]);
    assert_eq!(via_run["changes"], outcome["changes"]);

    let (_, outcome, written) =
        verb_on_example(&["rollback", "-n", "shop", "checkout", "--dry-run"]);
    assert_eq!(outcome["status"], "dryRun");
    assert_eq!(written, load_yaml(&snapshot_path()));

    let (_, outcome, written) = verb_on_example(&["pause", "-n", "shop", "checkout"]);
    assert_eq!(outcome["status"], "applied");
    assert_eq!(
        find(&written, "Deployment", "checkout")["spec"]["paused"],
        true
    );

    let (_, outcome, written) = verb_on_example(&["restart", "--namespace", "shop", "checkout"]);
    assert_eq!(outcome["action"], "restart");
    assert!(
        find(&written, "Deployment", "checkout")["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );

    let (_, outcome, written) = verb_on_example(&["resume", "-n", "shop", "checkout"]);
    assert_eq!(outcome["status"], "skipped");
    assert_eq!(written, load_yaml(&snapshot_path()));
}

#[test]
fn verbs_reject_bad_input_with_one_line() {
    let snapshot = snapshot_path();
    let snapshot = snapshot.to_str().expect("path");
    let line = error_line(&on_snapshot(
        &["rollback", "-n", "shop", "checkout", "--container", ""],
        snapshot,
    ));
    assert!(
        line.contains("target.container must not be empty"),
        "{line}"
    );
    let line = error_line(&on_snapshot(
        &["pause", "-n", "shop", "Checkout_1"],
        snapshot,
    ));
    assert!(line.contains("not a valid Kubernetes name"), "{line}");
    // --container belongs to rollback only; clap's usage error is exit 2.
    let out = on_snapshot(
        &["pause", "-n", "shop", "checkout", "--container", "api"],
        snapshot,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// `--fail-on-refused` makes a refusal exit 3 (run and the verbs); without
/// it every outcome exits 0, as scripts expect.
#[test]
fn fail_on_refused_exits_3_only_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = unlabelled_snapshot(dir.path());
    let snap = snap.to_str().expect("path");
    let request = request_path("restart.json");
    let request = request.to_str().expect("path");
    for args in [
        vec!["run", "--request", request, "--snapshot", snap],
        vec!["restart", "-n", "shop", "checkout", "--snapshot", snap],
    ] {
        let out = run(&mut selfheal(&args));
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(stdout_json(&out)["guard"], "optIn");

        let mut strict = args.clone();
        strict.push("--fail-on-refused");
        let out = run(&mut selfheal(&strict));
        assert_eq!(out.status.code(), Some(3), "{strict:?}");
        let outcome: Value = serde_json::from_slice(&out.stdout).expect("outcome still printed");
        assert_eq!(outcome["status"], "refused");
        assert!(
            out.stderr.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Anything but a refusal still exits 0 with the flag.
    let out = on_snapshot(
        &[
            "restart",
            "-n",
            "shop",
            "checkout",
            "--no-opt-in",
            "--fail-on-refused",
        ],
        snap,
    );
    assert_eq!(stdout_json(&out)["status"], "applied");
}

#[test]
fn status_takes_namespace_and_name_too() {
    let snapshot = snapshot_path();
    let snapshot = snapshot.to_str().expect("path");
    let short = stdout_json(&on_snapshot(
        &["status", "-n", "shop", "checkout"],
        snapshot,
    ));
    let long = stdout_json(&status_of("shop/checkout", Path::new(snapshot)));
    assert_eq!(short, long);
    assert_eq!(short["state"], "done");
    // Both forms at once, or a name without -n, is a usage error.
    for args in [
        vec![
            "status",
            "--deployment",
            "shop/checkout",
            "-n",
            "shop",
            "checkout",
            "--snapshot",
            snapshot,
        ],
        vec!["status", "checkout", "--snapshot", snapshot],
    ] {
        assert_eq!(run(&mut selfheal(&args)).status.code(), Some(2), "{args:?}");
    }
}

/// After selfheal's pause, `status` says the Deployment is paused and by whom
/// (from `selfheal.dev/paused-by`); kubectl's state and message are
/// unchanged.
#[test]
fn status_reports_a_pause_and_who_made_it() {
    let (outcome, written) = run_on_example("pause.json", &[]);
    assert_eq!(outcome["status"], "applied");
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("paused.yaml");
    write_yaml(&snap, &written);
    let out = status_of("shop/checkout", &snap);
    let status = stdout_json(&out);
    assert_eq!(status["paused"], true, "{status}");
    assert_eq!(status["pausedBy"], "selfheal", "{status}");
    assert!(
        status["state"].is_string() && status["message"].is_string(),
        "{status}"
    );
    let paused = find(&written, "Deployment", "checkout");
    assert_eq!(paused["spec"]["paused"], true);
}
