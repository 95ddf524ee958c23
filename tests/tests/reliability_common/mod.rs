//! Shared setup of the `reliability_*` tests: a test API server holding a
//! Deployment with a bad rollout, clients, the real Lambda handler state, and a
//! store-level "concurrent writer" for fault hooks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use lambda_runtime::{Context, LambdaEvent};
use selfheal_core::{Policy, RemediationOutcome, RemediationRequest};
use selfheal_lambda::{Action, AppState, FunctionConfig, HandlerError, handle_action};
use selfheal_testserver::{RecordedRequest, TestServer, fixtures};
use serde_json::{Value, json};

pub const NS: &str = "shop";
pub const API_1: &str = "registry.example/shop/api:1.0.0";
pub const API_2: &str = "registry.example/shop/api:1.1.0";
pub const API_3: &str = "registry.example/shop/api:1.2.0";
pub const API_4: &str = "registry.example/shop/api:1.3.0";
pub const ENVOY: &str = "registry.example/envoy:1.27";
pub const NOW: &str = "2026-11-26T20:00:00Z";

pub struct Cluster {
    pub server: TestServer,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
}

pub fn deployment_json(name: &str) -> Value {
    deployment_with_replicas(name, 1)
}

pub fn deployment_with_replicas(name: &str, replicas: u32) -> Value {
    fixtures::checkout(API_1, ENVOY)
        .named(NS, name)
        .opt_in(true)
        .annotation("team", "payments")
        .replicas(replicas)
        .json()
}

impl Cluster {
    /// An empty server with a kubeconfig and an admin client.
    pub async fn empty() -> Cluster {
        let server = TestServer::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let client = selfheal_kube::client_from_kubeconfig(Some(&kubeconfig), None)
            .await
            .unwrap();
        Cluster {
            server,
            dir,
            kubeconfig,
            client,
        }
    }

    /// `names` at revision 2: api 1.0.0 → 1.1.0 (the bad image), envoy
    /// unchanged, rollouts finished, request log empty.
    pub async fn with_bad_rollout(names: &[&str]) -> Cluster {
        Cluster::with_bad_rollout_scaled(names, 1).await
    }

    /// [`Cluster::with_bad_rollout`] with `replicas` per Deployment (0 keeps
    /// a hundred-Deployment fleet cheap: revisions without pods).
    pub async fn with_bad_rollout_scaled(names: &[&str], replicas: u32) -> Cluster {
        let cluster = Cluster::empty().await;
        for name in names {
            cluster
                .server
                .apply_objects(deployment_with_replicas(name, replicas));
        }
        // Generous: a hundred Deployments on a loaded two-core machine.
        let settle = Duration::from_secs(120);
        assert!(cluster.server.controller().settle_within(settle).await);
        for name in names {
            cluster.set_image(name, "api", API_2).await;
        }
        assert!(cluster.server.controller().settle_within(settle).await);
        cluster.server.clear_requests();
        cluster
    }

    /// A fleet at revision 2 (api 1.0.0 → 1.1.0) seeded straight into the
    /// store with its two ReplicaSets, the controller stopped: the shape the
    /// controller would leave, without its passes over hundreds of objects.
    pub async fn fleet_with_bad_rollout(names: &[&str]) -> Cluster {
        let cluster = Cluster::empty().await;
        cluster.server.controller().pause_automatic(true);
        for name in names {
            let uid = format!("00000000-0000-4000-8000-{:012}", fxhash(name));
            let mut d = deployment_with_replicas(name, 0);
            d["metadata"]["uid"] = json!(uid);
            d["metadata"]["generation"] = json!(2);
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("2");
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(API_2);
            d["status"] = json!({"observedGeneration": 2, "replicas": 0});
            cluster.server.try_apply_objects(d.clone()).unwrap();
            for (revision, image) in [(1, API_1), (2, API_2)] {
                let hash = format!("h{revision}{}", &uid[uid.len() - 6..]);
                let mut template = d["spec"]["template"].clone();
                template["spec"]["containers"][0]["image"] = json!(image);
                template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                cluster
                    .server
                    .try_apply_objects(json!({
                        "apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "metadata": {
                            "name": format!("{name}-{hash}"), "namespace": NS,
                            "labels": {"app": name, "pod-template-hash": hash},
                            "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]
                        },
                        "spec": {"replicas": 0,
                                 "selector": {"matchLabels": {"app": name, "pod-template-hash": hash}},
                                 "template": template}
                    }))
                    .unwrap();
            }
        }
        cluster.server.clear_requests();
        cluster
    }

    /// What `kubectl set image deployment/NAME CONTAINER=IMAGE` sends: a
    /// strategic merge patch through the API (a CI deploy).
    pub async fn set_image(&self, name: &str, container: &str, image: &str) {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), NS);
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}});
        let params = PatchParams {
            field_manager: Some("kubectl-set".into()),
            ..PatchParams::default()
        };
        api.patch(name, &params, &Patch::Strategic(patch))
            .await
            .unwrap();
        assert_eq!(self.image(name, container), image);
    }

    pub fn deployment(&self, name: &str) -> Value {
        self.server.object("Deployment", NS, name).unwrap()
    }

    /// The container's image in the stored Deployment.
    pub fn image(&self, name: &str, container: &str) -> String {
        images(&self.deployment(name))
            .into_iter()
            .find(|(c, _)| c == container)
            .map(|(_, i)| i)
            .unwrap_or_default()
    }

    pub fn rollback_events(&self) -> usize {
        self.server
            .events(NS)
            .iter()
            .filter(|e| e.reason.as_deref() == Some("SelfhealRollback"))
            .count()
    }

    /// PATCHes the server accepted so far.
    pub fn accepted_patches(&self) -> usize {
        self.server
            .count_requests(|r| r.method == "PATCH" && r.status == 200)
    }

    /// `METHOD path-tail status` of every request so far.
    pub fn log(&self) -> Vec<String> {
        lines(&self.server.requests())
    }

    /// The real Lambda handler state in local mode, built like at cold start.
    pub async fn handler_state(&self, extra: &[(&str, &str)]) -> AppState {
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert(
            "SELFHEAL_KUBECONFIG".into(),
            self.kubeconfig.display().to_string(),
        );
        for (k, v) in extra {
            vars.insert((*k).into(), (*v).into());
        }
        let config = FunctionConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
        AppState::new(config).await.unwrap()
    }

    pub fn remediator(&self, policy: Policy) -> selfheal_kube::Remediator {
        selfheal_kube::Remediator::new(self.client.clone(), policy)
            .with_reporting_instance("selfheal-reliability")
            .with_clock(clock_at(NOW))
    }

    /// A concurrent writer for fault hooks (which run inside the server):
    /// writes through the server's own update path, so generation,
    /// resourceVersion and status follow the real server's rules.
    pub fn store_writer(&self) -> StoreWriter {
        StoreWriter {
            server: self.server.clone(),
        }
    }
}

#[derive(Clone)]
pub struct StoreWriter {
    server: TestServer,
}

impl StoreWriter {
    /// A client's write (spec, labels, annotations).
    pub fn edit(&self, name: &str, f: impl FnOnce(&mut Value)) {
        let mut d = self.server.object("Deployment", NS, name).unwrap();
        f(&mut d);
        self.server.update("Deployment", NS, &d).unwrap();
    }

    /// A controller's status write: new resourceVersion, same generation.
    pub fn edit_status(&self, name: &str, f: impl FnOnce(&mut Value)) {
        let mut d = self.server.object("Deployment", NS, name).unwrap();
        f(&mut d);
        self.server.update_status("Deployment", NS, &d).unwrap();
    }

    pub fn set_image(&self, name: &str, container: &str, image: &str) {
        self.edit(name, |d| {
            for c in d["spec"]["template"]["spec"]["containers"]
                .as_array_mut()
                .unwrap()
            {
                if c["name"] == container {
                    c["image"] = json!(image);
                }
            }
        });
    }
}

pub fn clock_at(at: &str) -> selfheal_kube::Clock {
    let now: jiff::Timestamp = at.parse().unwrap();
    Arc::new(move || now)
}

pub fn images(d: &Value) -> Vec<(String, String)> {
    d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["image"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub fn annotation(d: &Value, key: &str) -> Option<String> {
    d["metadata"]["annotations"][key]
        .as_str()
        .map(str::to_owned)
}

pub fn lines(reqs: &[RecordedRequest]) -> Vec<String> {
    reqs.iter()
        .map(|r| {
            let tail = r.path.rsplit('/').next().unwrap_or_default();
            format!("{} {} {}", r.method, tail, r.status)
        })
        .collect()
}

pub fn rollback_request(name: &str, execution: &str) -> RemediationRequest {
    serde_json::from_value(json!({
        "action": "rollback",
        "target": {"namespace": NS, "deployment": name},
        "reason": "5xx rate above 5% for 3 minutes",
        "execution": execution
    }))
    .unwrap()
}

/// One invocation of the real `rollback` handler, as the runtime makes it.
pub async fn invoke_rollback(
    state: &AppState,
    name: &str,
    execution: &str,
) -> Result<RemediationOutcome, HandlerError> {
    let payload = serde_json::to_value(rollback_request(name, execution)).unwrap();
    let mut context = Context::default();
    context.request_id = format!("req-{execution}");
    handle_action(state, Action::Rollback, LambdaEvent::new(payload, context)).await
}

/// A small stable number from a name (FNV-1a), for fixed uids.
fn fxhash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) % 1_000_000_000_000
}
