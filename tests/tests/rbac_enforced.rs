//! RBAC: the handlers work with exactly the rights of `deploy/rbac.yaml`, and
//! nothing more is granted. The TLS test API server loads the real file and
//! authorises every request of the handlers' identity (a user in group
//! `selfheal-remediators`, as the stack's EKS access entry maps the handlers'
//! role) with Kubernetes RBAC; anything outside the rules gets the real 403.
//!
//! - every handler path (rollback, pause, resume, restart, verify; a pod-only
//!   target) through `selfheal_lambda::handle_action` / `handle_verify` with
//!   the state built as at cold start: the Deployment ends as intended and the
//!   audit Events exist, and not one request was refused;
//! - the namespace-confined variant documented in rbac.yaml (its RoleBinding,
//!   taken from the file's comment): `shop` works, `payments` is
//!   `NonRetryableForbidden` with the Deployment untouched, and the rateLimit
//!   guard's LIST needs `SELFHEAL_ALLOWED_NAMESPACES`, as the comment says;
//! - writes outside the allowed verbs (delete, scale, update, create, status)
//!   are 403 with the real message, and change nothing;
//! - kubectl, the reference client, agrees (skipped without it unless
//!   `SELFHEAL_REQUIRE_TOOLS` is set);
//! - an EKS token accepted by the server's token verifier is that identity.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod aws_common;
mod reliability_common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use lambda_runtime::{Context, LambdaEvent};
use selfheal_core::{OutcomeStatus, Policy, RolloutState};
use selfheal_eks::{ClusterEndpoint, ClusterSource, EksClients};
use selfheal_lambda::{
    Action, AppState, FunctionConfig, HandlerError, RemediationOutcome, handle_action,
    handle_verify,
};
use selfheal_tests::tools::{kubectl_binary, tool_or_skip, workspace_root};
use selfheal_testserver::{Identity, Rbac, TestServer, fixtures};
use selfheal_token_verifier::TokenVerifier;
use serde_json::{Value, json};

use reliability_common::{API_1, API_2, ENVOY, deployment_json, images};

/// The Kubernetes user an EKS access entry gives the handlers' role
/// (no explicit username: the assumed-role ARN with the session name).
const USER: &str = "arn:aws:sts::123456789012:assumed-role/selfheal-handler/selfheal-rollback";
/// template.yaml's `KubernetesGroup` default, bound by deploy/rbac.yaml.
const GROUP: &str = "selfheal-remediators";
const TOKEN: &str = "selfheal-remediator-token";

const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

fn rbac_yaml() -> String {
    std::fs::read_to_string(workspace_root().join("deploy/rbac.yaml")).unwrap()
}

/// deploy/rbac.yaml as a cluster would hold it after `kubectl apply -f`.
fn cluster_wide() -> Rbac {
    Rbac::from_yaml(&rbac_yaml()).unwrap()
}

/// The namespace-confined variant exactly as rbac.yaml's comment documents
/// it: the ClusterRole, no ClusterRoleBinding, the commented RoleBinding
/// (the `#   `-indented lines) in `shop`.
fn namespace_confined() -> Rbac {
    let mut rbac = cluster_wide();
    rbac.cluster_role_bindings.clear();
    let file = rbac_yaml();
    let documented: Vec<&str> = file
        .lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .collect();
    rbac.apply_yaml(&documented.join("\n")).unwrap();
    assert_eq!(rbac.role_bindings.len(), 1, "{documented:?}");
    let binding = &rbac.role_bindings[0];
    assert_eq!(binding.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("ClusterRole", "selfheal-remediator")
    );
    rbac
}

/// reliability_common's opted-in Deployment (api + envoy), in `ns`.
fn deployment(ns: &str, name: &str) -> Value {
    let mut d = deployment_json(name);
    d["metadata"]["namespace"] = json!(ns);
    d
}

/// The TLS test server (kubectl sends tokens only over HTTPS) holding the
/// given RBAC objects, an admin client for the setup, and the handlers'
/// identity: its token, kubeconfig and kube client.
struct Cluster {
    server: TestServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    client: kube::Client,
}

impl Cluster {
    /// `deployments` (namespace, name) at revision 2 after a bad rollout
    /// (api 1.0.0 → 1.1.0, envoy unchanged), settled; request log empty.
    async fn start(rbac: Rbac, deployments: &[(&str, &str)]) -> Cluster {
        let server = TestServer::builder()
            .tls(true)
            .rbac(rbac)
            .start()
            .await
            .unwrap();
        server.add_token(TOKEN, Identity::user(USER, &[GROUP]));
        let dir = tempfile::tempdir().unwrap();
        let admin_kubeconfig = dir.path().join("admin-kubeconfig");
        server.write_kubeconfig(&admin_kubeconfig).unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, server.kubeconfig_yaml_with_token(TOKEN)).unwrap();
        let admin = selfheal_kube::client_from_kubeconfig(Some(&admin_kubeconfig), None)
            .await
            .unwrap();
        for (ns, name) in deployments {
            server.try_apply_objects(deployment(ns, name)).unwrap();
        }
        assert!(server.controller().settle().await);
        let bad = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": API_2}]}}}});
        for (ns, name) in deployments {
            Api::<Deployment>::namespaced(admin.clone(), ns)
                .patch(name, &PatchParams::default(), &Patch::Strategic(&bad))
                .await
                .unwrap();
        }
        assert!(server.controller().settle().await);
        let client = selfheal_kube::client_from_kubeconfig(Some(&kubeconfig), None)
            .await
            .unwrap();
        server.clear_requests();
        Cluster {
            server,
            dir,
            kubeconfig,
            client,
        }
    }

    /// The real handler state in local mode, built as at cold start, for the
    /// remediator identity (cooldown off: the same Deployment gets several actions).
    async fn state(&self, policy: &[(&str, &str)]) -> AppState {
        let mut vars: BTreeMap<String, String> = BTreeMap::from([
            (
                "SELFHEAL_KUBECONFIG".into(),
                self.kubeconfig.display().to_string(),
            ),
            ("SELFHEAL_COOLDOWN_SECONDS".into(), "0".into()),
        ]);
        vars.extend(policy.iter().map(|(k, v)| ((*k).into(), (*v).into())));
        let config = FunctionConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
        AppState::new(config).await.unwrap()
    }

    fn live(&self, ns: &str, name: &str) -> Value {
        self.server.object("Deployment", ns, name).unwrap()
    }

    fn image(&self, ns: &str, name: &str, container: &str) -> String {
        images(&self.live(ns, name))
            .into_iter()
            .find_map(|(c, i)| (c == container).then_some(i))
            .unwrap_or_default()
    }

    /// How many audit Events with `reason` are about `ns/name`.
    fn events(&self, ns: &str, name: &str, reason: &str) -> usize {
        self.server
            .events(ns)
            .iter()
            .filter(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.involved_object.name.as_deref() == Some(name)
            })
            .count()
    }

    /// `METHOD path status` of every request since the last clear.
    fn log(&self) -> Vec<String> {
        self.server
            .requests()
            .iter()
            .map(|r| format!("{} {} {}", r.method, r.path, r.status))
            .collect()
    }

    /// A Pod of `name`'s current ReplicaSet (the controller emulation made it).
    fn pod_of(&self, ns: &str, name: &str) -> String {
        let pods: Vec<Pod> = self.server.pods(ns);
        pods.iter()
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.get("app").map(String::as_str) == Some(name))
                    && p.spec.as_ref().is_some_and(|s| {
                        s.containers[0].image.as_deref() == Some(API_2)
                            && p.metadata.deletion_timestamp.is_none()
                    })
            })
            .find_map(|p| p.metadata.name.clone())
            .unwrap_or_else(|| panic!("no pod of {ns}/{name} runs {API_2}"))
    }
}

/// One invocation of a real action handler, as the runtime makes it.
async fn act(
    state: &AppState,
    action: Action,
    target: Value,
) -> Result<RemediationOutcome, HandlerError> {
    let payload = json!({
        "action": action.to_string(),
        "target": target,
        "reason": "rbac_enforced",
        "execution": format!("exec-{action}"),
    });
    handle_action(state, action, LambdaEvent::new(payload, Context::default())).await
}

fn applied(result: Result<RemediationOutcome, HandlerError>) -> RemediationOutcome {
    let outcome = result.unwrap_or_else(|e| panic!("{} {e}", e.error_type()));
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    outcome
}

fn forbidden(result: Result<RemediationOutcome, HandlerError>) -> HandlerError {
    let err = result.expect_err("expected 403");
    assert_eq!(err.error_type(), "NonRetryableForbidden", "{err}");
    assert!(!err.is_retryable());
    assert!(
        matches!(&err, HandlerError::Kube { source } if source.http_status() == Some(403)),
        "{err:?}"
    );
    err
}

/// The real server's 403 message for `USER`.
fn denial(subject: &str, verb: &str, resource: &str, group: &str, ns: &str) -> String {
    format!(
        "{subject} is forbidden: User \"{USER}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" in the namespace \"{ns}\""
    )
}

/// [`denial`] for Deployment shop/checkout.
fn checkout_denial(verb: &str, resource: &str) -> String {
    denial(
        "deployments.apps \"checkout\"",
        verb,
        resource,
        "apps",
        "shop",
    )
}

/// Nothing the handlers asked for was refused (no 403), and every request
/// in `needed` (`METHOD path status`) was made.
fn assert_rights_used(c: &Cluster, needed: &[&str]) {
    let log = c.log();
    assert!(log.iter().all(|l| !l.ends_with(" 403")), "{log:#?}");
    for needed in needed {
        assert!(log.iter().any(|l| l == needed), "{needed} not in {log:#?}");
    }
}

#[tokio::test]
async fn every_handler_path_works_with_exactly_the_cluster_role() {
    let c = Cluster::start(cluster_wide(), &[("shop", "checkout"), ("shop", "cart")]).await;
    // rateLimit on: its LIST of Deployments (cluster-wide: no allowed
    // namespaces) must be granted too.
    let state = c.state(&[("SELFHEAL_MAX_ACTIONS", "50")]).await;
    let checkout = json!({"namespace": "shop", "deployment": "checkout"});

    let outcome = applied(act(&state, Action::Rollback, checkout.clone()).await);
    assert_eq!(
        serde_json::to_value(&outcome.changes).unwrap(),
        json!([{"container": "api", "from": API_2, "to": API_1}])
    );
    assert_eq!(
        images(&c.live("shop", "checkout")),
        [("api".into(), API_1.into()), ("envoy".into(), ENVOY.into())]
    );
    assert_eq!(c.events("shop", "checkout", "SelfhealRollback"), 1);

    assert!(c.server.controller().settle().await);
    let verdict = handle_verify(
        &state,
        LambdaEvent::new(json!({"target": checkout}), Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(verdict.status.state, RolloutState::Done, "{verdict:?}");

    applied(act(&state, Action::Pause, checkout.clone()).await);
    assert_eq!(c.live("shop", "checkout")["spec"]["paused"], json!(true));
    assert_eq!(c.events("shop", "checkout", "SelfhealPause"), 1);

    applied(act(&state, Action::Resume, checkout.clone()).await);
    assert_ne!(c.live("shop", "checkout")["spec"]["paused"], json!(true));
    assert_eq!(c.events("shop", "checkout", "SelfhealResume"), 1);

    applied(act(&state, Action::Restart, checkout.clone()).await);
    let live = c.live("shop", "checkout");
    let restarted_at = &live["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT];
    assert!(restarted_at.is_string(), "{live}");
    assert_eq!(c.events("shop", "checkout", "SelfhealRestart"), 1);

    // A pod-only target: pod -> ReplicaSet -> Deployment with `get` on pods
    // and replicasets.
    let pod = c.pod_of("shop", "cart");
    let outcome = applied(
        act(
            &state,
            Action::Rollback,
            json!({"namespace": "shop", "pod": pod}),
        )
        .await,
    );
    assert_eq!(outcome.target.deployment.as_deref(), Some("cart"));
    assert_eq!(c.image("shop", "cart", "api"), API_1);
    assert_eq!(c.events("shop", "cart", "SelfhealRollback"), 1);
    let verdict = handle_verify(
        &state,
        LambdaEvent::new(
            json!({"target": {"namespace": "shop", "pod": pod}}),
            Context::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(verdict.target.deployment.as_deref(), Some("cart"));

    // Nothing the handlers asked for was refused, and the rights used are
    // those rbac.yaml lists.
    assert_rights_used(
        &c,
        &[
            "GET /apis/apps/v1/namespaces/shop/deployments/checkout 200",
            "GET /apis/apps/v1/namespaces/shop/replicasets 200",
            // The rollback names no container: the current revision's pods.
            "GET /api/v1/namespaces/shop/pods 200",
            "GET /apis/apps/v1/deployments 200",
            "PATCH /apis/apps/v1/namespaces/shop/deployments/checkout 200",
            "POST /api/v1/namespaces/shop/events 201",
            &format!("GET /api/v1/namespaces/shop/pods/{pod} 200"),
        ],
    );
}

/// `kind` ("StatefulSet" or "DaemonSet") `data/name` as stored.
fn workload(c: &Cluster, kind: &str, name: &str) -> Value {
    c.server.object(kind, "data", name).unwrap()
}

/// The recorded ledger (StatefulSet) and node-agent (DaemonSet) histories,
/// seeded by the server itself (no RBAC on the setup); request log empty.
async fn seed_new_kinds(c: &Cluster) {
    let ledger = fixtures::ledger_as_recorded();
    let node_agent = fixtures::node_agent_as_recorded();
    assert!(
        ledger
            .seed_with_history(&c.server, &fixtures::LEDGER_HISTORY)
            .await
    );
    assert!(
        node_agent
            .seed_with_history(&c.server, &fixtures::NODE_AGENT_HISTORY)
            .await
    );
    c.server.clear_requests();
}

#[tokio::test]
async fn statefulset_and_daemonset_paths_work_with_exactly_the_cluster_role() {
    let c = Cluster::start(cluster_wide(), &[]).await;
    seed_new_kinds(&c).await;
    // rateLimit on: it LISTs all three kinds cluster-wide.
    let state = c.state(&[("SELFHEAL_MAX_ACTIONS", "50")]).await;
    for (kind, field, name, container, good) in [
        (
            "StatefulSet",
            "statefulSet",
            "ledger",
            "db",
            "registry.example/data/db:15.2",
        ),
        (
            "DaemonSet",
            "daemonSet",
            "node-agent",
            "agent",
            "registry.example/obs/agent:2.1",
        ),
    ] {
        let target = json!({"namespace": "data", field: name});
        let outcome = applied(act(&state, Action::Rollback, target.clone()).await);
        assert_eq!(outcome.changes.len(), 1, "{kind}: {outcome:?}");
        assert_eq!(outcome.changes[0].container, container);
        assert_eq!(outcome.changes[0].to, good);
        assert!(c.server.controller().settle().await);
        let verdict = handle_verify(
            &state,
            LambdaEvent::new(json!({"target": target}), Context::default()),
        )
        .await
        .unwrap();
        assert_eq!(
            verdict.status.state,
            RolloutState::Done,
            "{kind}: {verdict:?}"
        );

        let strategy = workload(&c, kind, name)["spec"]["updateStrategy"].clone();
        applied(act(&state, Action::Pause, target.clone()).await);
        assert_ne!(workload(&c, kind, name)["spec"]["updateStrategy"], strategy);
        applied(act(&state, Action::Resume, target.clone()).await);
        assert_eq!(workload(&c, kind, name)["spec"]["updateStrategy"], strategy);
        applied(act(&state, Action::Restart, target.clone()).await);
        let live = workload(&c, kind, name);
        assert!(
            live["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT].is_string(),
            "{live}"
        );
        for reason in [
            "SelfhealRollback",
            "SelfhealPause",
            "SelfhealResume",
            "SelfhealRestart",
        ] {
            assert_eq!(c.events("data", name, reason), 1, "{kind} {reason}");
        }
    }
    // A pod-only target: the pod GET names its StatefulSet directly.
    let pod = c
        .server
        .pods("data")
        .into_iter()
        .find_map(|p| p.metadata.name.filter(|n| n.starts_with("ledger-")))
        .unwrap();
    let outcome = applied(
        act(
            &state,
            Action::Restart,
            json!({"namespace": "data", "pod": pod}),
        )
        .await,
    );
    assert_eq!(outcome.target.stateful_set.as_deref(), Some("ledger"));

    assert_rights_used(
        &c,
        &[
            "GET /apis/apps/v1/namespaces/data/statefulsets/ledger 200",
            "GET /apis/apps/v1/namespaces/data/daemonsets/node-agent 200",
            "GET /apis/apps/v1/namespaces/data/controllerrevisions 200",
            "GET /apis/apps/v1/statefulsets 200",
            "GET /apis/apps/v1/daemonsets 200",
            "GET /apis/apps/v1/namespaces/data/statefulsets 200",
            "PATCH /apis/apps/v1/namespaces/data/statefulsets/ledger 200",
            "PATCH /apis/apps/v1/namespaces/data/daemonsets/node-agent 200",
            "POST /api/v1/namespaces/data/events 201",
            &format!("GET /api/v1/namespaces/data/pods/{pod} 200"),
        ],
    );
}

#[tokio::test]
async fn without_controllerrevisions_list_a_statefulset_rollback_is_forbidden() {
    let mut rbac = cluster_wide();
    for role in &mut rbac.cluster_roles {
        if let Some(rules) = role.rules.as_mut() {
            let before = rules.len();
            rules.retain(|r| {
                !r.resources
                    .iter()
                    .flatten()
                    .any(|r| r == "controllerrevisions")
            });
            assert_eq!(
                rules.len(),
                before - 1,
                "rbac.yaml grants controllerrevisions once"
            );
        }
    }
    let c = Cluster::start(rbac, &[]).await;
    seed_new_kinds(&c).await;
    let state = c.state(&[]).await;
    let before = workload(&c, "StatefulSet", "ledger");
    let err = forbidden(
        act(
            &state,
            Action::Rollback,
            json!({"namespace": "data", "statefulSet": "ledger"}),
        )
        .await,
    );
    assert!(
        err.to_string().contains("controllerrevisions"),
        "the 403 names what is missing: {err}"
    );
    assert_eq!(
        workload(&c, "StatefulSet", "ledger"),
        before,
        "nothing written"
    );
    // The hold needs no history: it still works with the narrower role.
    applied(
        act(
            &state,
            Action::Pause,
            json!({"namespace": "data", "statefulSet": "ledger"}),
        )
        .await,
    );
}

#[tokio::test]
async fn namespace_confined_binding_allows_its_namespace_only() {
    let c = Cluster::start(
        namespace_confined(),
        &[
            ("shop", "checkout"),
            ("shop", "cart"),
            ("shop", "search"),
            ("payments", "checkout"),
        ],
    )
    .await;

    // No rate limit, no namespace allow-list: `shop` works...
    let state = c.state(&[]).await;
    applied(
        act(
            &state,
            Action::Rollback,
            json!({"namespace": "shop", "deployment": "checkout"}),
        )
        .await,
    );
    assert_eq!(c.image("shop", "checkout", "api"), API_1);
    assert_eq!(c.events("shop", "checkout", "SelfhealRollback"), 1);

    // ...and `payments` is refused by the API server: a typed, non-retryable
    // error, and the Deployment byte for byte as it was.
    let before = c.live("payments", "checkout");
    let err = forbidden(
        act(
            &state,
            Action::Rollback,
            json!({"namespace": "payments", "deployment": "checkout"}),
        )
        .await,
    );
    assert!(
        err.to_string().contains(&denial(
            "deployments.apps \"checkout\"",
            "get",
            "deployments",
            "apps",
            "payments"
        )),
        "{err}"
    );
    let after = c.live("payments", "checkout");
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(after, before);
    assert_eq!(c.events("payments", "checkout", "SelfhealRollback"), 0);

    // With a rate limit, the allowed namespaces (as rbac.yaml says) keep the
    // guard's LIST inside the binding.
    let state = c
        .state(&[
            ("SELFHEAL_MAX_ACTIONS", "50"),
            ("SELFHEAL_ALLOWED_NAMESPACES", "shop"),
        ])
        .await;
    c.server.clear_requests();
    applied(
        act(
            &state,
            Action::Rollback,
            json!({"namespace": "shop", "deployment": "cart"}),
        )
        .await,
    );
    assert_eq!(c.image("shop", "cart", "api"), API_1);
    let log = c.log();
    assert!(
        log.iter()
            .any(|l| l == "GET /apis/apps/v1/namespaces/shop/deployments 200"),
        "{log:#?}"
    );

    // Without them the guard LISTs cluster-wide, which a RoleBinding does not
    // grant: forbidden, nothing written.
    let state = c.state(&[("SELFHEAL_MAX_ACTIONS", "50")]).await;
    let before = c.live("shop", "search");
    let err = forbidden(
        act(
            &state,
            Action::Rollback,
            json!({"namespace": "shop", "deployment": "search"}),
        )
        .await,
    );
    assert!(
        err.to_string().contains(&format!(
            "deployments.apps is forbidden: User \"{USER}\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        )),
        "{err}"
    );
    assert_eq!(c.live("shop", "search"), before);
    assert_eq!(c.events("shop", "search", "SelfhealRollback"), 0);
}

/// The kube error of a refused call: 403 with exactly the real message.
fn assert_forbidden<T: std::fmt::Debug>(result: kube::Result<T>, message: &str) {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{status:?}");
            assert_eq!(status.reason, "Forbidden", "{status:?}");
            assert_eq!(status.message, message);
        }
        other => panic!("expected 403 ({message}), got {other:?}"),
    }
}

#[tokio::test]
async fn writes_outside_the_role_are_forbidden_and_change_nothing() {
    let c = Cluster::start(cluster_wide(), &[("shop", "checkout")]).await;
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), "shop");
    let before = c.live("shop", "checkout");

    assert_forbidden(
        deployments
            .delete("checkout", &DeleteParams::default())
            .await,
        &checkout_denial("delete", "deployments"),
    );
    assert_forbidden(
        deployments
            .patch_scale(
                "checkout",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 5}})),
            )
            .await,
        &checkout_denial("patch", "deployments/scale"),
    );
    assert_forbidden(
        deployments
            .patch_status(
                "checkout",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"replicas": 5}})),
            )
            .await,
        &checkout_denial("patch", "deployments/status"),
    );
    let mut replaced: Deployment = serde_json::from_value(before.clone()).unwrap();
    replaced.spec.as_mut().unwrap().replicas = Some(5);
    assert_forbidden(
        deployments
            .replace("checkout", &PostParams::default(), &replaced)
            .await,
        &checkout_denial("update", "deployments"),
    );
    let intruder: Deployment = serde_json::from_value(deployment("shop", "intruder")).unwrap();
    assert_forbidden(
        deployments.create(&PostParams::default(), &intruder).await,
        &denial("deployments.apps", "create", "deployments", "apps", "shop"),
    );
    // Pods: `get` and `list` (pod-target resolution, the pods' evidence),
    // not delete.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "shop");
    let pod = c.pod_of("shop", "checkout");
    assert_forbidden(
        pods.delete(&pod, &DeleteParams::default()).await,
        &denial(&format!("pods \"{pod}\""), "delete", "pods", "", "shop"),
    );

    assert_eq!(c.live("shop", "checkout"), before);
    assert!(c.server.deployment("shop", "intruder").is_none());
    let log = c.log();
    assert_eq!(log.len(), 6, "{log:#?}");
    assert!(log.iter().all(|l| l.ends_with(" 403")), "{log:#?}");
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// kubectl as the remediator identity, on a blocking thread (the server
/// runs on this runtime).
async fn kubectl(bin: &std::path::Path, c: &Cluster, args: &[&str]) -> Run {
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .arg("--cache-dir")
        .arg(c.dir.path().join("kubectl-cache"))
        .arg("--request-timeout=30s")
        .args(args)
        .env_remove("KUBECONFIG");
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("spawn kubectl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_agrees_on_what_the_role_allows() {
    let Some(bin) = tool_or_skip("kubectl_agrees_on_what_the_role_allows", kubectl_binary()) else {
        return;
    };
    let c = Cluster::start(cluster_wide(), &[("shop", "checkout")]).await;

    let run = kubectl(
        &bin,
        &c,
        &["-n", "shop", "rollout", "restart", "deployment/checkout"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim_end(), "deployment.apps/checkout restarted");
    // The restart's rollout finishes first, so only a write could change it.
    assert!(c.server.controller().settle().await);
    let before = c.live("shop", "checkout");
    assert!(
        before["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT].is_string(),
        "{before}"
    );

    // Refused with kubectl's own rendering of the real 403.
    for (args, verb, resource) in [
        (
            &["-n", "shop", "delete", "deployment", "checkout"][..],
            "delete",
            "deployments",
        ),
        (
            &["-n", "shop", "scale", "deployment/checkout", "--replicas=3"][..],
            "patch",
            "deployments/scale",
        ),
    ] {
        let run = kubectl(&bin, &c, args).await;
        assert_ne!(run.code, 0, "{run:?}");
        let expected = format!(
            "Error from server (Forbidden): {}",
            checkout_denial(verb, resource)
        );
        assert!(run.stderr.contains(&expected), "{expected}\n{run:?}");
    }

    assert_eq!(c.live("shop", "checkout"), before);
}

#[tokio::test]
async fn an_eks_token_is_the_access_entrys_group_member() {
    let c = Cluster::start(cluster_wide(), &[("shop", "checkout")]).await;
    let verifier = TokenVerifier::new("demo").with_credentials(aws_common::credentials());
    c.server.set_token_verifier(Arc::new(move |token: &str| {
        verifier
            .verify_now(token)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }));
    c.server
        .set_verified_identity(Identity::user(USER, &[GROUP]));
    let sdk = aws_common::sdk_config(None).await;
    let clients = EksClients::new(
        &sdk,
        ClusterSource::Configured {
            cluster: Some("demo".into()),
            endpoint: ClusterEndpoint {
                endpoint: c.server.url(),
                ca_data: c.server.ca_pem(),
            },
        },
    );
    let client = clients.client("demo").await.unwrap();

    let request = serde_json::from_value(json!({
        "action": "rollback",
        "target": {"cluster": "demo", "namespace": "shop", "deployment": "checkout"},
        "execution": "rbac-eks"
    }))
    .unwrap();
    let outcome = selfheal_kube::Remediator::new(client.clone(), Policy::default())
        .remediate(&request)
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(c.image("shop", "checkout", "api"), API_1);

    // Not an admin: a delete with the same token is refused.
    let before = c.live("shop", "checkout");
    assert_forbidden(
        Api::<Deployment>::namespaced(client, "shop")
            .delete("checkout", &DeleteParams::default())
            .await,
        &checkout_denial("delete", "deployments"),
    );
    assert_eq!(c.live("shop", "checkout"), before);
}
