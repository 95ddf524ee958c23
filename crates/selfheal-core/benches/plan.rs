//! `decide` for a half-brick and a whole-template rollback over histories of 10, 100 and 1,000
//! ReplicaSets (goal: ≤ 5 ms at 1,000), and the same for a StatefulSet whose history is as many
//! ControllerRevisions (their templates are parsed from `data`). Every revision has a realistic
//! two-container template, so template comparisons cost what they would live.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet, StatefulSet};
use selfheal_core::{Decision, PlanInput, Policy, ValidRequest, WorkloadRef, decide};
use serde_json::{Value, json};

const UID: &str = "3a4925c1-786f-4b23-adb6-0d3b57e345db";

/// The recorded `checkout` Deployment as created (also the base of the unit
/// tests' Deployments and of selfheal-testserver's fixtures).
fn checkout() -> Value {
    serde_json::from_str(include_str!(
        "../../../tests/fixtures/checkout-deployment.json"
    ))
    .unwrap_or_else(|e| panic!("checkout-deployment.json: {e}"))
}

/// checkout's template at `revision` with every field the server fills in,
/// and a realistic environment and resources on both containers.
fn template(revision: usize, hash: Option<&str>) -> Value {
    let mut template = checkout()["spec"]["template"].take();
    if let Some(hash) = hash {
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    }
    let mut containers = template["spec"]["containers"].take();
    for container in containers.as_array_mut().into_iter().flatten() {
        let image = match container["name"].as_str() {
            Some("api") => format!("registry.example/shop/api:1.{revision}.0"),
            // The sidecar changes every tenth revision.
            _ => format!("registry.example/envoy:1.{}", revision / 10),
        };
        container["image"] = json!(image);
        container["ports"][0]["protocol"] = json!("TCP");
        container["env"] =
            json!([{"name": "REGION", "value": "eu-west-1"}, {"name": "LOG", "value": "info"}]);
        container["resources"] = json!({"requests": {"cpu": "250m", "memory": "256Mi"}});
        container["terminationMessagePath"] = json!("/dev/termination-log");
        container["terminationMessagePolicy"] = json!("File");
        container["imagePullPolicy"] = json!("IfNotPresent");
    }
    template["spec"] = json!({
        "containers": containers,
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "default-scheduler"
    });
    template
}

fn history(n: usize) -> (Deployment, Vec<ReplicaSet>) {
    let mut deployment = checkout();
    let metadata = &mut deployment["metadata"];
    metadata["uid"] = json!(UID);
    metadata["resourceVersion"] = json!("9000");
    metadata["generation"] = json!(n);
    metadata["labels"]["selfheal.dev/enabled"] = json!("true");
    metadata["annotations"] = json!({"deployment.kubernetes.io/revision": n.to_string()});
    deployment["spec"]["template"] = template(n, None);
    deployment["status"] = json!(
        {"observedGeneration": n, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
    );
    let replica_sets = list_order(n)
        .map(|revision| {
            let hash = format!("h{revision:08x}");
            serde_json::from_value(json!({
                "metadata": {
                    "name": format!("checkout-{hash}"), "namespace": "shop",
                    "labels": {"app": "checkout", "pod-template-hash": hash},
                    "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout", "uid": UID, "controller": true}]
                },
                "spec": {"selector": {"matchLabels": {"app": "checkout", "pod-template-hash": hash}}, "template": template(revision, Some(&hash))}
            }))
            .unwrap_or_default()
        })
        .collect();
    (
        serde_json::from_value(deployment).unwrap_or_default(),
        replica_sets,
    )
}

/// LIST order is not revision order: interleave to make the sort work.
fn list_order(n: usize) -> impl Iterator<Item = usize> {
    let mut order: Vec<usize> = (1..=n).collect();
    order.sort_by_key(|r| (r % 7, *r));
    order.into_iter()
}

/// StatefulSet `shop/checkout` at revision `n` and its `n` ControllerRevisions.
fn statefulset_history(n: usize) -> (StatefulSet, Vec<ControllerRevision>) {
    let statefulset = json!({
        "metadata": {
            "name": "checkout", "namespace": "shop", "uid": UID, "resourceVersion": "9000",
            "generation": n, "labels": {"app": "checkout", "selfheal.dev/enabled": "true"}
        },
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "checkout"}}, "template": template(n, None),
            "serviceName": "checkout", "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
        "status": {"observedGeneration": n, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
            "currentRevision": format!("checkout-h{n:08x}"), "updateRevision": format!("checkout-h{n:08x}")}
    });
    let revisions = list_order(n)
        .map(|revision| {
            let mut data = template(revision, None);
            data["$patch"] = json!("replace");
            serde_json::from_value(json!({
                "metadata": {
                    "name": format!("checkout-h{revision:08x}"), "namespace": "shop",
                    "labels": {"app": "checkout", "controller.kubernetes.io/hash": format!("h{revision:08x}")},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "checkout", "uid": UID, "controller": true}]
                },
                "revision": revision,
                "data": {"spec": {"template": data}}
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    (
        serde_json::from_value(statefulset).unwrap_or_else(|e| panic!("{e}")),
        revisions,
    )
}

/// `decide` for `request` over histories of 10, 100 and 1,000 ReplicaSets
/// (a Deployment) or ControllerRevisions (a StatefulSet).
fn bench_decide(c: &mut Criterion, group: &str, request: &str) {
    let policy = Policy::default();
    let now: jiff::Timestamp = "2026-11-26T20:00:00Z".parse().unwrap_or_default();
    let mut group = c.benchmark_group(group);
    for n in [10, 100, 1_000] {
        let (deployment, replica_sets) = history(n);
        let (statefulset, revisions) = statefulset_history(n);
        for (kind, workload) in [
            ("deployment", WorkloadRef::from(&deployment)),
            ("statefulset", WorkloadRef::from(&statefulset)),
        ] {
            let request =
                request.replace("\"deployment\"", &format!("{:?}", workload.kind().field()));
            let request = ValidRequest::from_json(&request).unwrap_or_else(|e| panic!("{e}"));
            let input = PlanInput {
                request: &request,
                workload,
                controller_revisions: &revisions,
                replica_sets: &replica_sets,
                pods: &[],
                policy: &policy,
                now,
            };
            assert!(
                matches!(decide(input), Ok(Decision::Apply(_))),
                "bench input must plan a write"
            );
            group.bench_with_input(BenchmarkId::new(kind, n), &input, |b, input| {
                b.iter(|| decide(black_box(*input)))
            });
        }
    }
    group.finish();
}

/// The half-brick rollback: offending container, image choice, one patch.
fn bench_half_brick(c: &mut Criterion) {
    bench_decide(
        c,
        "decide_half_brick_rollback",
        r#"{"action":"rollback","target":{"namespace":"shop","deployment":"checkout"}}"#,
    );
}

/// `kubectl rollout undo` parity: whole-template comparison against the previous revision.
fn bench_template(c: &mut Criterion) {
    bench_decide(
        c,
        "decide_template_rollback",
        r#"{"action":"rollback","scope":"template","target":{"namespace":"shop","deployment":"checkout"}}"#,
    );
}

criterion_group!(benches, bench_half_brick, bench_template);
criterion_main!(benches);
