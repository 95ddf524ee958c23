//! Replays the recorded Deployment exchanges of tests/fixtures/k8s/*.json
//! (see that folder's README.md) against the test API server and compares
//! status codes and resulting objects.
//!
//! Normalisation (both sides): uid, timestamps, resourceVersion values,
//! managedFields, generated name suffixes (`checkout-<hash>`, pod suffixes,
//! `kube-api-access-*`, generateName suffixes) and `pod-template-hash` values
//! are replaced by placeholders. ReplicaSet lists are compared after sorting by
//! revision.
//!
//! Timing: the recorder waited for rollouts and marked pods ready through
//! `pods/status`. Here the controller runs only when the test drives it
//! (`pause_automatic(true)`), pods have a one-hour ready delay, and
//! "rollout complete" states are reached with `ControllerHandle::advance`
//! (deviation: readiness comes from the controller, not from the recorder's
//! PATCH, except where the recorded PATCH is replayed itself). States the
//! recording captured mid-rollout are compared on their meaningful fields only
//! (see `Mode::Intermediate`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::needless_range_loop)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use selfheal_tests::recordings::{assert_logged_body, load, logged_body};
use selfheal_testserver::{ControllerConfig, TestServer};
use serde_json::{Value, json};

const READY_DELAY: Duration = Duration::from_secs(3600);

struct Replay {
    server: TestServer,
    http: Client<HttpConnector, Full<Bytes>>,
    /// Recorded generated names → names on our server.
    names: HashMap<String, String>,
    /// Recorded resourceVersions → ours, so replayed writes carry the same
    /// (current or stale) version the recorder sent.
    rvs: HashMap<String, String>,
    sa_token: Option<String>,
}

enum Auth<'a> {
    Admin,
    None,
    Token(&'a str),
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// Status code and the whole normalised body.
    Full,
    /// Status code and the fields that do not depend on controller timing.
    Intermediate,
    /// Status code only.
    Status,
}

impl Replay {
    async fn new() -> Replay {
        let server = TestServer::builder()
            .controller(ControllerConfig {
                ready_delay: READY_DELAY,
                never_ready_images: vec!["registry.example/shop/api:0.0.0-broken".into()],
                never_ready: None,
            })
            .start()
            .await
            .unwrap();
        server.controller().pause_automatic(true);
        Replay {
            server,
            http: Client::builder(TokioExecutor::new()).build_http(),
            names: HashMap::new(),
            rvs: HashMap::new(),
            sa_token: None,
        }
    }

    /// A PATCH as the admin, which the server must accept (200).
    async fn patch(&self, path: &str, query: &Value, ct: Option<&str>, body: &Value) {
        let (status, _) = self.send("PATCH", path, query, ct, body, Auth::Admin).await;
        assert_eq!(status, 200, "PATCH {path}");
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &Value,
        ct: Option<&str>,
        body: &Value,
        auth: Auth<'_>,
    ) -> (u16, Value) {
        let mut uri = format!("{}{}", self.server.url(), self.map_path(path));
        if let Some(q) = query.as_object() {
            let pairs: Vec<String> = q
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v.as_str().unwrap_or_default())))
                .collect();
            uri = format!("{uri}?{}", pairs.join("&"));
        }
        let bytes = match body {
            Value::Null => Bytes::new(),
            Value::String(raw) => Bytes::from(raw.clone()),
            other => Bytes::from(other.to_string()),
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header("accept", "application/json");
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        match auth {
            Auth::Admin => {
                req = req.header("authorization", format!("Bearer {}", self.server.token()))
            }
            Auth::Token(t) => req = req.header("authorization", format!("Bearer {t}")),
            Auth::None => {}
        }
        let resp = self
            .http
            .request(req.body(Full::new(bytes)).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body).to_string();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| {
            // Watch streams: newline-delimited events.
            Value::Array(
                text.lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect(),
            )
        });
        (status, value)
    }

    fn map_path(&self, path: &str) -> String {
        path.split('/')
            .map(|seg| {
                self.names
                    .get(seg)
                    .cloned()
                    .unwrap_or_else(|| seg.to_string())
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Runs the controller until every rollout that can finish has finished.
    fn complete(&self) {
        let c = self.server.controller();
        c.reconcile_now();
        // Each round makes the pending pods ready; a rolling update of 2
        // replicas needs a few rounds.
        for _ in 0..8 {
            c.advance(READY_DELAY);
        }
    }

    /// Learns recorded→actual names from two lists of the same objects.
    fn learn_names(&mut self, recorded: &Value, actual: &Value) {
        let (Some(r), Some(a)) = (recorded["items"].as_array(), actual["items"].as_array()) else {
            return;
        };
        let key = |o: &Value| {
            let rev = o
                .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                .cloned();
            let owner = o
                .pointer("/metadata/ownerReferences/0/name")
                .and_then(Value::as_str)
                .map(base_name);
            let ready = o.pointer("/status/phase").cloned();
            let images: Vec<Value> = o
                .pointer("/spec/containers")
                .or_else(|| o.pointer("/spec/template/spec/containers"))
                .and_then(Value::as_array)
                .map(|cs| cs.iter().map(|c| c["image"].clone()).collect())
                .unwrap_or_default();
            format!("{rev:?}{owner:?}{ready:?}{images:?}")
        };
        let mut used = vec![false; a.len()];
        for ro in r {
            let rk = key(ro);
            if let Some(i) = (0..a.len()).find(|&i| !used[i] && key(&a[i]) == rk) {
                used[i] = true;
                let rn = ro
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let an = a[i]
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.names.insert(rn.to_string(), an.to_string());
                let (rh, ah) = (
                    ro.pointer("/metadata/labels/pod-template-hash")
                        .and_then(Value::as_str),
                    a[i].pointer("/metadata/labels/pod-template-hash")
                        .and_then(Value::as_str),
                );
                if let (Some(rh), Some(ah)) = (rh, ah)
                    && ro.get("spec").and_then(|s| s.get("template")).is_some()
                {
                    // A ReplicaSet: its hash maps too (used in ReplicaSet names).
                    self.names.insert(
                        format!("{}-{rh}", base_name(rn)),
                        format!("{}-{ah}", base_name(an)),
                    );
                }
            }
        }
    }

    /// Replays one recorded exchange and compares. Returns the actual response.
    async fn exchange(&mut self, file: &str, i: usize, e: &Value, mode: Mode) -> Value {
        let req = &e["request"];
        let auth_note = req["authorization"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let sa = self.sa_token.clone();
        let auth = if auth_note.is_empty() {
            Auth::Admin
        } else if auth_note.starts_with("<none") {
            Auth::None
        } else if auth_note.contains("ServiceAccount JWT") {
            Auth::Token(sa.as_deref().unwrap_or("missing-sa-token"))
        } else {
            Auth::Token(auth_note.trim_start_matches("Bearer ").trim())
        };
        let mut req_body = req["body"].clone();
        if let Some(rv) = req_body.pointer_mut("/metadata/resourceVersion")
            && let Some(mine) = rv.as_str().and_then(|v| self.rvs.get(v))
        {
            *rv = json!(mine);
        }
        if let Some(ops) = req_body.as_array_mut() {
            for op in ops {
                if op["path"] == "/metadata/resourceVersion"
                    && let Some(mine) = op["value"].as_str().and_then(|v| self.rvs.get(v))
                {
                    op["value"] = json!(mine);
                }
            }
        }
        let (status, body) = self
            .send(
                req["method"].as_str().unwrap(),
                req["path"].as_str().unwrap(),
                &req["query"],
                req["contentType"].as_str(),
                &req_body,
                auth,
            )
            .await;
        let want_status = e["response"]["status"].as_u64().unwrap() as u16;
        let ctx = format!(
            "{file} #{i} ({} {}): {}",
            req["method"], req["path"], e["note"]
        );
        assert_eq!(status, want_status, "{ctx}: status; body {body}");
        let recorded = &e["response"]["body"];
        if let (Some(rrv), Some(arv)) = (
            recorded
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str),
            body.pointer("/metadata/resourceVersion")
                .and_then(Value::as_str),
        ) {
            self.rvs.insert(rrv.to_string(), arv.to_string());
        }
        if recorded
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
        {
            self.learn_names(recorded, &body);
        }
        match mode {
            Mode::Full => assert_same(recorded, &body, &ctx),
            Mode::Intermediate => assert_same(&meaningful(recorded), &meaningful(&body), &ctx),
            Mode::Status => {}
        }
        body
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The workloads of the recordings whose generated names (`<name>-<hash>`)
/// are normalised.
const DEPLOYMENTS: &[&str] = &[
    "checkout",
    "scratch",
    "stuck",
    "web",
    "filler",
    "ledger",
    "node-agent",
];

fn base_name(n: &str) -> &str {
    DEPLOYMENTS
        .iter()
        .find(|d| n.starts_with(&format!("{d}-")))
        .copied()
        .unwrap_or(n)
}

/// Replaces `<deployment>-<hash>[-<pod>]` inside a string.
fn norm_str(s: &str) -> String {
    if let Some(rest) = s.strip_prefix("kube-api-access-")
        && rest.len() == 5
    {
        return "kube-api-access-X".into();
    }
    let mut out = s.to_string();
    for d in DEPLOYMENTS {
        let pat = format!("{d}-");
        let mut search = 0;
        while let Some(pos) = out[search..].find(&pat).map(|p| p + search) {
            let start = pos + pat.len();
            let hash_len = out[start..]
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                .count();
            if (6..=10).contains(&hash_len) {
                let mut end = start + hash_len;
                let mut repl = format!("{d}-HASH");
                let tail = &out[end..];
                if tail.len() >= 6
                    && tail.starts_with('-')
                    && tail[1..6]
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    && !tail[6..].starts_with(|c: char| c.is_ascii_alphanumeric())
                {
                    end += 6;
                    repl.push_str("-POD");
                }
                out.replace_range(pos..end, &repl);
                search = pos + repl.len();
            } else {
                search = start;
            }
        }
    }
    out
}

const DROP_KEYS: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "lastUpdateTime",
    "lastTransitionTime",
    "lastProbeTime",
    "startTime",
    "startedAt",
    "firstTimestamp",
    "lastTimestamp",
    "containerID",
    "podIP",
    "podIPs",
    "hostIP",
    "expirationTimestamp",
    "kubectl.kubernetes.io/restartedAt",
];

fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, val) in m {
                if DROP_KEYS.contains(&k.as_str()) {
                    continue;
                }
                let val = match (k.as_str(), val) {
                    ("pod-template-hash" | "controller.kubernetes.io/hash", _) => json!("HASH"),
                    // A DaemonSet's is the bare hash, a StatefulSet's `<name>-<hash>`.
                    ("controller-revision-hash", Value::String(h)) if norm_str(h) == *h => {
                        json!("HASH")
                    }
                    _ => normalize(val),
                };
                out.insert(k.clone(), val);
            }
            // generateName-based names: the suffix is random.
            if let (Some(g), Some(_)) =
                (m.get("generateName").and_then(Value::as_str), m.get("name"))
            {
                out.insert("name".into(), json!(format!("{}X", norm_str(g))));
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(normalize).collect();
            // ReplicaSet/ControllerRevision/Pod/Event lists: order by
            // revision, then content.
            if items.iter().all(|i| i.get("metadata").is_some()) {
                items.sort_by_key(|i| {
                    let rev: i64 = i
                        .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                        .and_then(Value::as_str)
                        .and_then(|r| r.parse().ok())
                        .or_else(|| i.get("revision").and_then(Value::as_i64))
                        .unwrap_or(0);
                    (rev, i.to_string())
                });
            }
            Value::Array(items)
        }
        Value::String(s) => Value::String(norm_str(s)),
        other => other.clone(),
    }
}

/// The fields of a mid-rollout object that do not depend on controller timing.
fn meaningful(v: &Value) -> Value {
    let one = |o: &Value| {
        let conds: BTreeMap<String, Value> = o
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        (
                            c["type"].as_str().unwrap_or_default().to_string(),
                            c["status"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut m = json!({"metadata": o["metadata"], "spec": o["spec"]});
        if o.pointer("/spec/template").is_some()
            && o.get("kind").and_then(Value::as_str) != Some("ReplicaSet")
            && o.pointer("/spec/selector/matchLabels/pod-template-hash")
                .is_none()
        {
            // A Deployment: the controller has observed the new generation.
            m["observedGeneration"] = o
                .pointer("/status/observedGeneration")
                .cloned()
                .unwrap_or(Value::Null);
            m["conditions"] = json!(conds);
        }
        if o.pointer("/spec/selector/matchLabels/pod-template-hash")
            .is_some()
        {
            // A ReplicaSet: scaling steps differ in timing; keep metadata only.
            m["spec"] = json!({"template": o.pointer("/spec/template")});
            if let Some(meta) = m["metadata"].as_object_mut() {
                meta.remove("generation");
                if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                    a.remove("deployment.kubernetes.io/desired-replicas");
                    a.remove("deployment.kubernetes.io/max-replicas");
                }
            }
        }
        if o.get("spec").and_then(|s| s.get("containers")).is_some() {
            // A Pod: phase only.
            m = json!({"metadata": o["metadata"], "phase": o.pointer("/status/phase")});
        }
        normalize(&m)
    };
    match v.get("items").and_then(Value::as_array) {
        Some(items) => {
            let mut xs: Vec<Value> = items.iter().map(one).collect();
            xs.sort_by_key(|x| x.to_string());
            Value::Array(xs)
        }
        None => one(v),
    }
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                diff(
                    &format!("{path}/{k}"),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}/{i}"), p, q, out);
            }
        }
        _ if a != b => out.push(format!("{path}: recorded {a} != actual {b}")),
        _ => {}
    }
}

fn assert_same(recorded: &Value, actual: &Value, ctx: &str) {
    let (r, a) = (normalize(recorded), normalize(actual));
    let mut out = Vec::new();
    diff("", &r, &a, &mut out);
    assert!(out.is_empty(), "{ctx}: differs:\n  {}", out.join("\n  "));
}

/// Replays a whole file with per-exchange modes; before each exchange the
/// controller either finishes all rollouts (default) or only reacts once
/// (indices in `intermediate`, compared with `Mode::Intermediate`).
async fn replay_file(
    r: &mut Replay,
    file: &str,
    intermediate: &[usize],
    status_only: &[usize],
) -> Vec<Value> {
    let doc = load(file);
    let mut bodies = Vec::new();
    for (i, e) in doc["exchanges"].as_array().unwrap().iter().enumerate() {
        let mode = if intermediate.contains(&i) {
            r.server.controller().reconcile_now();
            Mode::Intermediate
        } else {
            r.complete();
            if status_only.contains(&i) {
                Mode::Status
            } else {
                Mode::Full
            }
        };
        bodies.push(r.exchange(file, i, e, mode).await);
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_scenarios_replay_in_order() {
    let mut r = Replay::new().await;

    replay_file(&mut r, "create-and-history.json", &[2], &[]).await;
    replay_file(&mut r, "json-patch-single-container.json", &[3, 4], &[]).await;
    replay_file(&mut r, "json-patch-test-fails.json", &[], &[]).await;
    replay_file(&mut r, "dry-run.json", &[], &[]).await;
    // Between dry-run.json and conflict.json the recording shows generation 5 → 7
    // with no new revision (two unrecorded writes). Reproduce the effect with two
    // annotation-only merge patches that add and then remove an annotation.
    for value in [json!("x"), Value::Null] {
        let body = json!({"metadata": {"annotations": {"fixtures.example/unrecorded": value}}});
        r.patch(
            "/apis/apps/v1/namespaces/shop/deployments/checkout",
            &Value::Null,
            Some("application/merge-patch+json"),
            &body,
        )
        .await;
    }
    replay_file(&mut r, "conflict.json", &[], &[]).await;
    replay_file(&mut r, "strategic-merge-containers.json", &[], &[]).await;

    // pause-resume-restart: the recording holds kubectl's effects (GET/LIST after
    // each command); the commands' writes come from the .log files. We send the
    // same writes kubectl sent (bodies from the logs), then compare the states.
    let prr = load("pause-resume-restart.json");
    let ex = prr["exchanges"].as_array().unwrap();
    let path = "/apis/apps/v1/namespaces/shop/deployments/checkout";
    let smp = Some("application/strategic-merge-patch+json");
    let q = json!({"fieldManager": "kubectl-rollout"});
    // pause; restart while paused (refused client-side: nothing is sent);
    // resume; restart (restartedAt value differs: normalised away).
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T19:23:51Z"}}}}});
    for (patch, exchanges) in [
        (Some(json!({"spec": {"paused": true}})), 0..2),
        (None, 2..4),
        (Some(json!({"spec": {"paused": null}})), 4..6),
        (Some(restart), 6..8),
    ] {
        if let Some(body) = patch {
            r.patch(path, &q, smp, &body).await;
            r.complete();
        }
        for i in exchanges {
            r.exchange("pause-resume-restart.json", i, &ex[i], Mode::Full)
                .await;
        }
    }
    // undo, then undo --to-revision=1: kubectl's JSON Patch (template + annotations of the target RS).
    for (target_rev, idx) in [(5, 8), (1, 10)] {
        let (_, rss) = r
            .send(
                "GET",
                "/apis/apps/v1/namespaces/shop/replicasets",
                &json!({"labelSelector": "app=checkout"}),
                None,
                &Value::Null,
                Auth::Admin,
            )
            .await;
        let (_, dep) = r
            .send("GET", path, &Value::Null, None, &Value::Null, Auth::Admin)
            .await;
        let rs = rss["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|rs| {
                rs.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                    == Some(&json!(target_rev.to_string()))
            })
            .unwrap_or_else(|| panic!("revision {target_rev} ReplicaSet"))
            .clone();
        let mut template = rs["spec"]["template"].clone();
        template["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("pod-template-hash");
        let mut annotations = rs["metadata"]["annotations"].as_object().unwrap().clone();
        for k in [
            "deployment.kubernetes.io/revision",
            "deployment.kubernetes.io/revision-history",
            "deployment.kubernetes.io/desired-replicas",
            "deployment.kubernetes.io/max-replicas",
        ] {
            annotations.remove(k);
            if let Some(v) = dep["metadata"]["annotations"].get(k) {
                annotations.insert(k.into(), v.clone());
            }
        }
        let patch = json!([{"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations}]);
        r.patch(
            path,
            &Value::Null,
            Some("application/json-patch+json"),
            &patch,
        )
        .await;
        r.complete();
        for i in idx..idx + 2 {
            r.exchange("pause-resume-restart.json", i, &ex[i], Mode::Full)
                .await;
        }
    }

    // status-progression: #2–#5 are mid-rollout; #6 is the recorder's pods/status
    // PATCH (replayed on our pending pod, learned from #5); #7–#9 are between
    // readiness rounds (meaningful fields only); #13/#14 are before the 10 s
    // deadline and #15 after it (clock advanced instead of waiting).
    let sp = load("status-progression.json");
    let ex = sp["exchanges"].as_array().unwrap();
    for i in 0..=1 {
        r.complete();
        r.exchange("status-progression.json", i, &ex[i], Mode::Full)
            .await;
    }
    for i in 2..=5 {
        r.server.controller().reconcile_now();
        r.exchange("status-progression.json", i, &ex[i], Mode::Intermediate)
            .await;
    }
    r.exchange("status-progression.json", 6, &ex[6], Mode::Intermediate)
        .await;
    for i in 7..=9 {
        r.server.controller().reconcile_now();
        r.exchange("status-progression.json", i, &ex[i], Mode::Intermediate)
            .await;
    }
    for i in 10..=12 {
        r.complete();
        r.exchange("status-progression.json", i, &ex[i], Mode::Full)
            .await;
    }
    let c = r.server.controller();
    c.reconcile_now();
    c.advance(Duration::from_secs(1));
    r.exchange("status-progression.json", 13, &ex[13], Mode::Full)
        .await;
    c.advance(Duration::from_secs(4));
    r.exchange("status-progression.json", 14, &ex[14], Mode::Full)
        .await;
    c.advance(Duration::from_secs(11));
    r.exchange("status-progression.json", 15, &ex[15], Mode::Full)
        .await;
    for i in 16..=17 {
        r.exchange("status-progression.json", i, &ex[i], Mode::Full)
            .await;
    }

    // events: the LISTs include the deployment controller's ScalingReplicaSet
    // events for the whole history; compared in full (names normalised).
    let ev = load("events.json");
    let ex = ev["exchanges"].as_array().unwrap();
    for (i, e) in ex.iter().enumerate() {
        let mode = if i >= 4 { Mode::Status } else { Mode::Full };
        let body = r.exchange("events.json", i, e, mode).await;
        if i >= 4 {
            assert_events_match(&e["response"]["body"], &body, &format!("events.json #{i}"));
        }
    }

    // /apis is served trimmed to the `apps` group (deviation: clients would
    // otherwise try to discover groups the test server does not serve); the
    // `apps` entry must equal the recorded one.
    let bodies = replay_file(&mut r, "discovery.json", &[], &[2]).await;
    let recorded_apis = &load("discovery.json")["exchanges"][2]["response"]["body"];
    let apps = |v: &Value| {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "apps")
            .cloned()
    };
    assert_eq!(apps(&bodies[2]), apps(recorded_apis));
    assert_eq!(bodies[2]["kind"], "APIGroupList");

    // not-found-and-forbidden: the ServiceAccount token is issued by our TokenRequest.
    let nf = load("not-found-and-forbidden.json");
    for (i, e) in nf["exchanges"].as_array().unwrap().iter().enumerate() {
        // #5/#6 create the ServiceAccount and request its token (redacted in the recording).
        let mode = if i == 5 || i == 6 {
            Mode::Status
        } else {
            Mode::Full
        };
        let body = r.exchange("not-found-and-forbidden.json", i, e, mode).await;
        if i == 6 {
            r.sa_token = body
                .pointer("/status/token")
                .and_then(Value::as_str)
                .map(str::to_string);
            assert!(r.sa_token.is_some(), "TokenRequest returns a token: {body}");
        }
    }
}

/// Posted events compare in full. The deployment controller's events are
/// compared as the set of distinct messages: the real event correlator
/// aggregates repeats (`count`, "(combined from similar events): …"), which
/// the test server does not emulate (it writes one Event per scaling step).
fn assert_events_match(recorded: &Value, actual: &Value, ctx: &str) {
    let strip = |v: &Value| -> Value {
        let mut v = normalize(v);
        if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
            let mut controller_msgs: Vec<String> = items
                .iter()
                .filter(|it| it["source"]["component"] == "deployment-controller")
                .map(|it| {
                    it["message"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches("(combined from similar events): ")
                        .to_string()
                })
                .collect();
            controller_msgs.sort();
            controller_msgs.dedup();
            items.retain(|it| it["source"]["component"] != "deployment-controller");
            items.sort_by_key(|i| i.to_string());
            items.push(json!({"controllerMessages": controller_msgs}));
        }
        v
    };
    let mut out = Vec::new();
    diff("", &strip(recorded), &strip(actual), &mut out);
    assert!(out.is_empty(), "{ctx}: differs:\n  {}", out.join("\n  "));
}

/// The watchdemo recordings came from a fresh cluster: fresh server here too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdemo_scenarios_replay() {
    let mut r = Replay::new().await;
    let w = load("watch.json");
    let ex = w["exchanges"].as_array().unwrap();
    for i in 0..=2 {
        r.complete();
        r.exchange("watch.json", i, &ex[i], Mode::Full).await;
    }
    let list = r
        .send(
            "GET",
            "/apis/apps/v1/namespaces/watchdemo/deployments",
            &json!({"fieldSelector": "metadata.name=web"}),
            None,
            &Value::Null,
            Auth::Admin,
        )
        .await
        .1;
    let list_rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // #3: WATCH from the LIST resourceVersion while #4 patches and the
    // controller rolls out (deviation: timeoutSeconds 3 instead of 8, readiness
    // by the controller instead of #5's pods/status PATCH).
    let watch_query = |rv: &str| json!({"fieldSelector": "metadata.name=web", "watch": "true", "resourceVersion": rv, "timeoutSeconds": "3", "allowWatchBookmarks": "true"});
    let path = "/apis/apps/v1/namespaces/watchdemo/deployments";
    let (watch_status, events) = {
        let q = watch_query(&list_rv);
        let watch = r.send("GET", path, &q, None, &Value::Null, Auth::Admin);
        let drive = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let e = &ex[4]["request"];
            r.patch(
                e["path"].as_str().unwrap(),
                &Value::Null,
                e["contentType"].as_str(),
                &e["body"],
            )
            .await;
            r.complete();
        };
        let (w, ()) = tokio::join!(watch, drive);
        w
    };
    assert_eq!(watch_status, 200);
    let recorded: Vec<&Value> = ex[3]["response"]["body"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let events = events.as_array().unwrap().clone();
    let types = |es: &[&Value]| -> Vec<String> {
        es.iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .filter(|t| t != "BOOKMARK")
            .collect()
    };
    let actual_refs: Vec<&Value> = events.iter().collect();
    assert!(
        types(&actual_refs).iter().all(|t| t == "MODIFIED"),
        "only MODIFIED events from a LIST rv: {:?}",
        types(&actual_refs)
    );
    let modified = |es: &[&Value]| -> Vec<Value> {
        es.iter()
            .filter(|e| e["type"] == "MODIFIED")
            .map(|e| e["object"].clone())
            .collect()
    };
    let (rm, am) = (modified(&recorded), modified(&actual_refs));
    assert!(
        am.len() >= 4,
        "the PATCH and controller steps are streamed: {}",
        am.len()
    );
    // First event: the PATCH (generation 2, observedGeneration still 1).
    assert_same(&rm[0], &am[0], "watch.json #3 first event");
    // Last event: the finished rollout.
    assert_same(
        rm.last().unwrap(),
        am.last().unwrap(),
        "watch.json #3 last event",
    );
    for e in events.iter().filter(|e| e["type"] == "BOOKMARK") {
        assert!(e["object"]["metadata"]["resourceVersion"].is_string());
    }

    for i in 6..=7 {
        r.complete();
        r.exchange("watch.json", i, &ex[i], Mode::Full).await;
    }
    // #8/#9: resourceVersion 1 replays the whole history (ADDED first).
    let (s, replay) = r
        .send(
            "GET",
            path,
            &watch_query("1"),
            None,
            &Value::Null,
            Auth::Admin,
        )
        .await;
    assert_eq!(s, 200);
    let replay: Vec<&Value> = replay
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] != "BOOKMARK")
        .collect();
    let rec8: Vec<&Value> = ex[8]["response"]["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] != "BOOKMARK")
        .collect();
    assert_eq!(replay[0]["type"], "ADDED");
    assert_same(
        &rec8[0]["object"],
        &replay[0]["object"],
        "watch.json #8 first (ADDED)",
    );
    assert_same(
        &rec8.last().unwrap()["object"],
        &replay.last().unwrap()["object"],
        "watch.json #8 last",
    );

    // #10–#12: filler + 150 annotation patches push old events out of the window.
    r.exchange("watch.json", 10, &ex[10], Mode::Full).await;
    r.complete();
    r.exchange("watch.json", 11, &ex[11], Mode::Full).await;
    for n in 2..150 {
        let body = json!({"metadata": {"annotations": {"example.com/tick": n.to_string()}}});
        r.patch(
            "/apis/apps/v1/namespaces/watchdemo/deployments/filler",
            &Value::Null,
            Some("application/merge-patch+json"),
            &body,
        )
        .await;
    }
    // The recorded controller lagged behind the burst (observedGeneration 11 in
    // the response); only the generation is timing-independent.
    let body = r.exchange("watch.json", 12, &ex[12], Mode::Status).await;
    assert_eq!(
        body["metadata"]["generation"],
        ex[12]["response"]["body"]["metadata"]["generation"]
    );
    // #13–#15: too old → HTTP 200 with a single ERROR 410 Expired event.
    for (idx, rv) in [
        (13, "1".to_string()),
        (14, "1".to_string()),
        (15, list_rv.clone()),
    ] {
        let (s, body) = r
            .send(
                "GET",
                path,
                &watch_query(&rv),
                None,
                &Value::Null,
                Auth::Admin,
            )
            .await;
        assert_eq!(s, 200);
        // A one-line stream parses as a single object.
        let body = if body.is_array() { body } else { json!([body]) };
        let rec = &ex[idx]["response"]["body"][0];
        let got = &body[0];
        assert_eq!(
            body.as_array().unwrap().len(),
            1,
            "watch.json #{idx}: one event: {body}"
        );
        assert_eq!(got["type"], rec["type"]);
        for k in ["kind", "apiVersion", "status", "reason", "code", "metadata"] {
            assert_eq!(got["object"][k], rec["object"][k], "watch.json #{idx}: {k}");
        }
        let msg = got["object"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with(&format!("too old resource version: {rv} (")),
            "watch.json #{idx}: {msg}"
        );
    }
    r.complete();
    r.exchange("watch.json", 16, &ex[16], Mode::Full).await;

    // pods-and-owners and rollout-history continue on the same cluster.
    replay_file(&mut r, "pods-and-owners.json", &[], &[]).await;
    replay_file(&mut r, "rollout-history.json", &[], &[]).await;
}

// ------------------------------------------- StatefulSets and DaemonSets --

/// The recorder's `pods/status` merge patch (statefulset-history.json #3):
/// Running, Ready and ContainersReady, each container running and ready.
fn recorder_ready_patch(pod: &Value) -> Value {
    let ts = "2026-12-05T23:48:30Z";
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": true,
                "restartCount": 0, "started": true, "state": {"running": {"startedAt": ts}}})
        })
        .collect();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": ts});
    json!({"status": {"phase": "Running", "conditions": [cond("Ready"), cond("ContainersReady")],
        "containerStatuses": statuses}})
}

impl Replay {
    /// Plays the recorder of the StatefulSet and DaemonSet files: the
    /// controller runs until it waits for pods, the recorder marks every
    /// pending pod of `ns` ready through `pods/status` (there is no
    /// kubelet), until no pod is pending.
    async fn converge_as_recorder(&self, ns: &str) {
        for _ in 0..20 {
            self.server.controller().reconcile_now();
            let pending: Vec<Value> = self
                .server
                .pods(ns)
                .iter()
                .map(|p| serde_json::to_value(p).unwrap())
                .filter(|p| p.pointer("/status/phase") != Some(&json!("Running")))
                .collect();
            if pending.is_empty() {
                return;
            }
            for pod in pending {
                let name = pod["metadata"]["name"].as_str().unwrap();
                let path = format!("/api/v1/namespaces/{ns}/pods/{name}/status");
                let ct = Some("application/merge-patch+json");
                self.patch(&path, &Value::Null, ct, &recorder_ready_patch(&pod))
                    .await;
            }
        }
        panic!("the {ns} workloads did not converge");
    }

    /// Replays a StatefulSet or DaemonSet file: before each exchange the
    /// workloads converge as the recorder let them, except for the
    /// exchanges in `once` (the controller reacts once: the recorder's own
    /// pods/status PATCH on the first pod) and in `hold` ("right after the
    /// patch": the controller has not run yet).
    async fn replay_recorded(&mut self, file: &str, once: &[usize], hold: &[usize]) -> Vec<Value> {
        let doc = load(file);
        let mut bodies = Vec::new();
        for (i, e) in doc["exchanges"].as_array().unwrap().iter().enumerate() {
            if once.contains(&i) {
                self.server.controller().reconcile_now();
            } else if !hold.contains(&i) {
                self.converge_as_recorder("data").await;
            }
            bodies.push(self.exchange(file, i, e, Mode::Full).await);
        }
        bodies
    }

    /// The workload's ControllerRevisions as the API lists them.
    async fn revisions(&self, app: &str) -> Value {
        let path = "/apis/apps/v1/namespaces/data/controllerrevisions";
        let query = json!({"labelSelector": format!("app={app}")});
        let (status, list) = self
            .send("GET", path, &query, None, &Value::Null, Auth::Admin)
            .await;
        assert_eq!(status, 200);
        list
    }
}

/// `revision → name` of a ControllerRevision list.
fn revision_names(list: &Value) -> BTreeMap<i64, String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let name = r["metadata"]["name"].as_str().unwrap().to_string();
            (r["revision"].as_i64().unwrap(), name)
        })
        .collect()
}

/// The half-brick rollback reused the revision-3 ControllerRevision under
/// its name as revision 5; 3 no longer exists (both recordings say so).
fn assert_renumbered_3_to_5(before: &Value, after: &Value, file: &str) {
    let (before, after) = (revision_names(before), revision_names(after));
    assert_eq!(after.get(&5), before.get(&3), "{file}: revision 3 became 5");
    assert!(
        !after.contains_key(&3),
        "{file}: revision 3 is gone: {after:?}"
    );
}

/// `kubectl rollout restart` and `rollout undo` of one workload, as the
/// recorded logs show them (`history`, `status` and the refused `pause`
/// send nothing): the restartedAt strategic merge patch, then the previous
/// revision's `data` as a strategic merge patch, which must be the body
/// kubectl logged.
async fn replay_kubectl_writes(r: &Replay, path: &str, app: &str, logs: [&str; 2]) {
    let smp = Some("application/strategic-merge-patch+json");
    let (restart, _) = logged_body(logs[0]);
    let restart: Value = serde_json::from_str(&restart).unwrap();
    r.patch(
        path,
        &json!({"fieldManager": "kubectl-rollout"}),
        smp,
        &restart,
    )
    .await;
    r.converge_as_recorder("data").await;
    let list = r.revisions(app).await;
    let mut items: Vec<&Value> = list["items"].as_array().unwrap().iter().collect();
    items.sort_by_key(|i| i["revision"].as_i64());
    let previous = &items[items.len() - 2]["data"];
    assert_logged_body(previous, logs[1]);
    r.patch(path, &Value::Null, smp, previous).await;
}

/// The StatefulSet recordings ran in order against namespace `data`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_scenarios_replay_in_order() {
    let mut r = Replay::new().await;
    // #3 is the recorder's PATCH making ledger-0 ready: OrderedReady, the
    // controller has created only that pod. #8/#13/#18 are right after a patch.
    let history = r
        .replay_recorded("statefulset-history.json", &[3], &[8, 13, 18])
        .await;
    let file = "statefulset-json-patch-single-container.json";
    let patched = r.replay_recorded(file, &[], &[4]).await;
    assert_renumbered_3_to_5(&history[20], &patched[6], file);
    // #2–#4: the hold (partition = replicas) keeps both pods on the old revision.
    r.replay_recorded("statefulset-partition-pause.json", &[], &[])
        .await;
    let path = "/apis/apps/v1/namespaces/data/statefulsets/ledger";
    let logs = [
        "statefulset-kubectl.3-restart.log",
        "statefulset-kubectl.4-undo.log",
    ];
    replay_kubectl_writes(&r, path, "ledger", logs).await;
    r.replay_recorded("statefulset-kubectl.json", &[], &[])
        .await;
}

/// The DaemonSet recordings ran in order against namespace `data`, with
/// two Nodes created (and made schedulable) by the recorder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_scenarios_replay_in_order() {
    let mut r = Replay::new().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "data"}});
    r.server.apply_objects(ns);
    let history = r
        .replay_recorded("daemonset-history.json", &[], &[11, 16, 21])
        .await;
    let file = "daemonset-json-patch-single-container.json";
    let patched = r.replay_recorded(file, &[], &[2]).await;
    assert_renumbered_3_to_5(&history[23], &patched[4], file);
    let path = "/apis/apps/v1/namespaces/data/daemonsets/node-agent";
    let logs = [
        "daemonset-kubectl.3-restart.log",
        "daemonset-kubectl.4-undo.log",
    ];
    replay_kubectl_writes(&r, path, "node-agent", logs).await;
    r.replay_recorded("daemonset-kubectl.json", &[], &[]).await;
}
