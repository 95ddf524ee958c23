//! An in-process Kubernetes API server for tests and benchmarks.
//!
//! It speaks the subset of the API that selfheal and `kubectl rollout` use
//! (apps/v1 Deployments, ReplicaSets, StatefulSets, DaemonSets and
//! ControllerRevisions; core/v1 Pods, Events, Namespaces, Nodes, Services,
//! ServiceAccounts), answers with the status codes and `Status` bodies recorded
//! from a real kube-apiserver (`tests/fixtures/k8s/`), and emulates the deployment,
//! replicaset, statefulset, daemonset and garbage-collector controllers so
//! rollouts, revisions and rollbacks behave like on a real control plane.
//! Tests drive it over HTTP like a real cluster and inspect or seed its
//! store directly. Bearer tokens map to
//! identities ([`Identity`]): the admin may do everything, a user what the
//! loaded RBAC objects allow ([`rbac`], e.g. `deploy/rbac.yaml`).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod api;
mod auth;
mod controller;
mod defaults;
mod discovery;
mod faults;
pub mod fixtures;
mod http;
pub mod patch;
pub mod rbac;
pub mod selector;
mod status;
mod store;
mod tls;
mod watch;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::{Event, Pod};
use serde_json::Value;

pub use auth::Identity;
pub use rbac::{Rbac, RbacError};

/// `Fn(token) -> Result<(), reason>`; see [`TestServer::set_token_verifier`].
pub type TokenVerifier = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;
pub use controller::{ControllerConfig, ControllerHandle};
pub use faults::{Faults, Reset};

/// Errors from starting or configuring the test server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or reading the listening socket failed.
    #[error("test server socket: {0}")]
    Io(#[source] std::io::Error),
    /// Generating the self-signed certificate failed.
    #[error("test server certificate: {0}")]
    Certificate(#[source] rcgen::Error),
    /// Building the TLS configuration failed.
    #[error("test server TLS configuration: {0}")]
    Tls(#[source] rustls::Error),
}

/// One request as the server saw it, in arrival order (see [`TestServer::requests`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// The body parsed as JSON; `None` when empty or not JSON.
    pub body: Option<Value>,
    /// The HTTP status the server answered with.
    pub status: u16,
}

pub(crate) struct Shared {
    pub(crate) store: Mutex<store::Store>,
    pub(crate) auth: Mutex<auth::Auth>,
    pub(crate) faults: Arc<Mutex<faults::FaultState>>,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    pub(crate) controller: controller::ControllerState,
}

impl Shared {
    /// Locks the store; a poisoned lock (a panicking test thread) still yields the data,
    /// because the store has no invariants a half-finished write could break badly.
    pub(crate) fn store(&self) -> MutexGuard<'_, store::Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn auth(&self) -> MutexGuard<'_, auth::Auth> {
        self.auth.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Inner {
    shared: Arc<Shared>,
    url: String,
    ca_pem: Option<String>,
    admin_token: String,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// A kubeconfig written by [`TestServer::kubeconfig_file`]; its directory is
/// removed when this drops.
#[derive(Debug)]
pub struct KubeconfigFile {
    _dir: tempfile::TempDir,
    text: String,
}

impl KubeconfigFile {
    pub fn path(&self) -> &Path {
        Path::new(&self.text)
    }

    /// The path as text, for `--kubeconfig` and `SELFHEAL_KUBECONFIG`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Handle to a running test server. Clones share the server; it stops when the
/// last clone is dropped or [`TestServer::shutdown`] is called.
#[derive(Clone)]
pub struct TestServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("url", &self.inner.url)
            .finish()
    }
}

/// Options for [`TestServer::builder`].
#[derive(Debug, Clone, Default)]
pub struct TestServerBuilder {
    tls: bool,
    token: Option<String>,
    controller: ControllerConfig,
    watch_window: Option<usize>,
    rbac: Rbac,
}

impl TestServerBuilder {
    /// Serve HTTPS with a fresh self-signed certificate (see [`TestServer::ca_pem`]).
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }
    /// Use this admin (system:masters) bearer token instead of a random one.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
    /// Configure the deployment-controller emulation.
    pub fn controller(mut self, config: ControllerConfig) -> Self {
        self.controller = config;
        self
    }
    /// How many events per resource type the watch cache keeps (default 100);
    /// a watch from a resourceVersion older than the window gets `410 Expired`.
    pub fn watch_window(mut self, events: usize) -> Self {
        self.watch_window = Some(events);
        self
    }
    /// Start with these RBAC objects (see [`TestServer::load_rbac`]).
    pub fn rbac(mut self, rbac: Rbac) -> Self {
        self.rbac = rbac;
        self
    }
    /// Bind 127.0.0.1 on a random port and start serving.
    pub async fn start(self) -> Result<TestServer, Error> {
        let admin_token = self
            .token
            .unwrap_or_else(|| format!("admin-{}", random_suffix(24)));
        let shared = Arc::new(Shared {
            store: Mutex::new(store::Store::new(self.watch_window.unwrap_or(100))),
            auth: Mutex::new(auth::Auth::new(&admin_token, self.rbac)),
            faults: Arc::new(Mutex::new(faults::FaultState::default())),
            requests: Mutex::new(Vec::new()),
            controller: controller::ControllerState::new(self.controller),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(Error::Io)?;
        let port = listener.local_addr().map_err(Error::Io)?.port();
        let (tls, ca_pem) = if self.tls {
            let (acceptor, pem) = tls::acceptor()?;
            (Some(acceptor), Some(pem))
        } else {
            (None, None)
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        http::spawn(listener, tls, shared.clone(), shutdown_rx.clone());
        controller::spawn(shared.clone(), shutdown_rx);
        Ok(TestServer {
            inner: Arc::new(Inner {
                shared,
                url: format!("{scheme}://127.0.0.1:{port}"),
                ca_pem,
                admin_token,
                shutdown,
            }),
        })
    }
}

pub(crate) fn random_suffix(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl TestServer {
    /// Plain HTTP on 127.0.0.1 with default settings.
    pub async fn start() -> Result<TestServer, Error> {
        Self::builder().start().await
    }

    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.inner.url.clone()
    }

    /// PEM of the certificate clients must trust, when serving TLS.
    pub fn ca_pem(&self) -> Option<String> {
        self.inner.ca_pem.clone()
    }

    /// The admin bearer token (group `system:masters`: allowed everything).
    pub fn token(&self) -> String {
        self.inner.admin_token.clone()
    }

    /// Registers another bearer token with the given identity.
    pub fn add_token(&self, token: &str, identity: Identity) {
        self.inner
            .shared
            .auth()
            .tokens
            .insert(token.to_string(), identity);
    }

    /// Hook for tokens that are not registered: `Ok` authenticates them (as
    /// admin unless [`TestServer::set_verified_identity`] says otherwise),
    /// `Err` answers 401. Lets EKS-token tests check the token format server-side.
    pub fn set_token_verifier(&self, f: TokenVerifier) {
        self.inner.shared.auth().verifier = Some(f);
    }

    /// Who a token accepted by the [`TestServer::set_token_verifier`] hook
    /// is: e.g. the EKS access entry's mapping, an
    /// [`Identity::User`] in group `selfheal-remediators`. Default: admin.
    pub fn set_verified_identity(&self, identity: Identity) {
        self.inner.shared.auth().verified = identity;
    }

    /// Adds RBAC objects (ClusterRole, Role, ClusterRoleBinding, RoleBinding;
    /// multi-document YAML such as `deploy/rbac.yaml`) like `kubectl apply -f`:
    /// same-named objects are replaced. They authorise [`Identity::User`]
    /// requests from then on. On an error nothing is loaded.
    pub fn load_rbac(&self, yaml: &str) -> Result<(), RbacError> {
        self.inner.shared.auth().rbac.apply_yaml(yaml)
    }

    /// Replaces every RBAC object with `rbac`.
    pub fn set_rbac(&self, rbac: Rbac) {
        self.inner.shared.auth().rbac = rbac;
    }

    /// The RBAC objects in force.
    pub fn rbac(&self) -> Rbac {
        self.inner.shared.auth().rbac.clone()
    }

    /// A kubeconfig for this server (context `selfheal-test`, admin token).
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_with_token(&self.inner.admin_token)
    }

    /// [`TestServer::kubeconfig_yaml`] with another bearer token (one given
    /// to [`TestServer::add_token`]).
    pub fn kubeconfig_yaml_with_token(&self, token: &str) -> String {
        use base64::Engine as _;
        let ca = match &self.inner.ca_pem {
            Some(pem) => format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem.as_bytes())
            ),
            None => String::new(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: selfheal-test\n  cluster:\n    server: {url}\n{ca}contexts:\n- name: selfheal-test\n  context:\n    cluster: selfheal-test\n    user: selfheal-test\n    namespace: default\ncurrent-context: selfheal-test\npreferences: {{}}\nusers:\n- name: selfheal-test\n  user:\n    token: {token}\n",
            url = self.inner.url,
        )
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// [`TestServer::write_kubeconfig`] into a fresh temporary directory:
    /// what a test that runs the CLI or a function's config needs.
    pub fn kubeconfig_file(&self) -> std::io::Result<KubeconfigFile> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kubeconfig");
        self.write_kubeconfig(&path)?;
        let text = path.to_str().map(str::to_owned).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "temp path is not UTF-8")
        })?;
        Ok(KubeconfigFile { _dir: dir, text })
    }

    /// Fault injection (failures and latency for the next requests).
    pub fn faults(&self) -> Faults {
        Faults::new(self.inner.shared.faults.clone())
    }

    /// Every request so far (discovery included), in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner
            .shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many requests so far match `pred`.
    pub fn count_requests(&self, pred: impl Fn(&RecordedRequest) -> bool) -> usize {
        self.inner
            .shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| pred(r))
            .count()
    }

    /// Arms a 409 for the request that follows each GET of Deployment
    /// `name` (the PATCH of a read-modify-write), so every write attempt
    /// conflicts. `latency` on every request makes the arming land before
    /// the PATCH is served. Clears the request log first; runs until the
    /// returned task is aborted.
    pub fn conflict_on_every_patch(
        &self,
        name: &str,
        latency: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        self.clear_requests();
        self.faults().latency(latency);
        let server = self.clone();
        let path = format!("/deployments/{name}");
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let gets = server.count_requests(|r| r.method == "GET" && r.path.ends_with(&path));
                if gets > seen {
                    seen = gets;
                    server.faults().fail_next(1, 409);
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        })
    }

    pub fn clear_requests(&self) {
        self.inner
            .shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Seeds the store without HTTP: a single object or a `kind: List`
    /// (`items`). Objects keep their annotations, labels, owner references and
    /// status as given (uid, resourceVersion and creationTimestamp are filled in
    /// when missing; server defaults are applied). Missing namespaces are created.
    /// Objects that cannot be stored are skipped (see [`TestServer::try_apply_objects`]).
    pub fn apply_objects(&self, objs: Value) {
        let _ = self.try_apply_objects(objs);
    }

    /// Like [`TestServer::apply_objects`], returning the first problem as a message.
    pub fn try_apply_objects(&self, objs: Value) -> Result<(), String> {
        let items = match objs.get("items").and_then(Value::as_array) {
            Some(items)
                if objs
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List")) =>
            {
                items.clone()
            }
            _ => vec![objs],
        };
        let mut first_err = None;
        {
            let mut store = self.inner.shared.store();
            for item in items {
                if let Err(e) = store.seed(item) {
                    first_err.get_or_insert(e);
                }
            }
        }
        self.inner.shared.controller.poke();
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Updates an existing object as a client's PUT would, but without HTTP,
    /// so a fault hook (which runs inside the server) can play a concurrent
    /// writer: conflict check when `obj` carries a resourceVersion, status
    /// kept, generation bumped by the server's rules (spec or annotation
    /// changes; not labels). Returns the stored object or the API error.
    pub fn update(&self, kind: &str, ns: &str, obj: &Value) -> Result<Value, String> {
        self.update_inner(kind, ns, obj, false)
    }

    /// Starts a new rollout as `kubectl set image` would: `container` of
    /// Deployment `ns/name` gets `image` (a store write, so the generation
    /// rules apply), then waits for the controller to settle; false when it
    /// does not.
    pub async fn roll_out_image(&self, ns: &str, name: &str, container: &str, image: &str) -> bool {
        self.roll_out_image_of("Deployment", ns, name, container, image)
            .await
    }

    /// [`TestServer::roll_out_image`] for any workload `kind`
    /// (`StatefulSet`, `DaemonSet`, `Deployment`).
    pub async fn roll_out_image_of(
        &self,
        kind: &str,
        ns: &str,
        name: &str,
        container: &str,
        image: &str,
    ) -> bool {
        let Some(mut w) = self.object(kind, ns, name) else {
            return false;
        };
        let containers = w["spec"]["template"]["spec"]["containers"].as_array_mut();
        let Some(c) = containers.and_then(|cs| cs.iter_mut().find(|c| c["name"] == container))
        else {
            return false;
        };
        c["image"] = Value::from(image);
        self.update(kind, ns, &w).is_ok() && self.controller().settle().await
    }

    /// Seeds `deployment` (JSON), lets its first rollout finish, then rolls
    /// `container` out to `image` ([`TestServer::roll_out_image`]): a
    /// Deployment at revision 2 with both rollouts settled. False when a
    /// step fails.
    pub async fn seed_two_revisions(
        &self,
        deployment: Value,
        container: &str,
        image: &str,
    ) -> bool {
        let ns = deployment["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let name = deployment["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.try_apply_objects(deployment).is_ok()
            && self.controller().settle().await
            && self.roll_out_image(&ns, &name, container, image).await
    }

    /// Like [`TestServer::update`] through the `status` subresource, as the
    /// controllers write: only `status` is taken, a new resourceVersion, the
    /// same generation.
    pub fn update_status(&self, kind: &str, ns: &str, obj: &Value) -> Result<Value, String> {
        self.update_inner(kind, ns, obj, true)
    }

    fn update_inner(
        &self,
        kind: &str,
        ns: &str,
        obj: &Value,
        status: bool,
    ) -> Result<Value, String> {
        let kind = store::Kind::from_kind(kind).ok_or_else(|| format!("unknown kind {kind}"))?;
        let stored = api::update_out_of_band(&self.inner.shared, kind, ns, obj, status)?;
        self.inner.shared.controller.poke();
        Ok(stored)
    }

    /// Removes the namespace and everything in it at once, as a finished
    /// namespace deletion does (watchers see DELETED events). Returns how many
    /// objects went. For long-running users (benchmarks) that would otherwise
    /// grow the store, and with it each controller pass, without bound.
    pub fn delete_namespace(&self, ns: &str) -> usize {
        let mut store = self.inner.shared.store();
        let mut gone = 0;
        for kind in store::Kind::NAMESPACED {
            let names: Vec<String> = store
                .list(kind, Some(ns))
                .into_iter()
                .map(|o| store::name_of(o).to_string())
                .collect();
            for name in names {
                gone += usize::from(store.delete(kind, ns, &name).is_some());
            }
        }
        gone + usize::from(store.delete(store::Kind::Namespace, "", ns).is_some())
    }

    pub fn deployment(&self, ns: &str, name: &str) -> Option<Deployment> {
        self.typed(store::Kind::Deployment, ns, name)
    }

    pub fn stateful_set(&self, ns: &str, name: &str) -> Option<StatefulSet> {
        self.typed(store::Kind::StatefulSet, ns, name)
    }

    pub fn daemon_set(&self, ns: &str, name: &str) -> Option<DaemonSet> {
        self.typed(store::Kind::DaemonSet, ns, name)
    }

    /// The ControllerRevisions in `ns` (StatefulSet and DaemonSet history).
    pub fn controller_revisions(&self, ns: &str) -> Vec<ControllerRevision> {
        self.typed_list(store::Kind::ControllerRevision, ns)
    }

    fn typed<T: serde::de::DeserializeOwned>(
        &self,
        kind: store::Kind,
        ns: &str,
        name: &str,
    ) -> Option<T> {
        let store = self.inner.shared.store();
        store
            .get(kind, ns, name)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub fn replica_sets(&self, ns: &str) -> Vec<ReplicaSet> {
        self.typed_list(store::Kind::ReplicaSet, ns)
    }

    pub fn pods(&self, ns: &str) -> Vec<Pod> {
        self.typed_list(store::Kind::Pod, ns)
    }

    pub fn events(&self, ns: &str) -> Vec<Event> {
        self.typed_list(store::Kind::Event, ns)
    }

    /// Any stored object as JSON (kinds: Namespace, Node, Deployment,
    /// ReplicaSet, StatefulSet, DaemonSet, ControllerRevision, Pod, Event,
    /// ServiceAccount, Service).
    pub fn object(&self, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let kind = store::Kind::from_kind(kind)?;
        self.inner.shared.store().get(kind, ns, name).cloned()
    }

    fn typed_list<T: serde::de::DeserializeOwned>(&self, kind: store::Kind, ns: &str) -> Vec<T> {
        let store = self.inner.shared.store();
        store
            .list(kind, Some(ns))
            .into_iter()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    /// Drives the deployment-controller emulation deterministically.
    pub fn controller(&self) -> ControllerHandle {
        ControllerHandle::new(self.inner.shared.clone())
    }

    /// Stops serving now (open watches end). Later calls on clones still read the store.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn deployment(ns: &str) -> Value {
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web:1"}]}
                }
            }
        })
    }

    #[tokio::test]
    async fn delete_namespace_removes_only_that_namespace() {
        let server = TestServer::start().await.unwrap();
        server.apply_objects(deployment("a"));
        server.apply_objects(deployment("b"));
        assert!(server.controller().settle().await);
        assert_eq!(server.pods("a").len(), 2);

        // Deployment, its ReplicaSet, two pods, the controller's events, the namespace.
        let events = server.events("a").len();
        assert_eq!(server.delete_namespace("a"), 5 + events);
        assert!(server.deployment("a", "web").is_none());
        assert!(server.replica_sets("a").is_empty());
        assert!(server.pods("a").is_empty());
        assert!(server.object("Namespace", "", "a").is_none());
        // The controller does not bring anything back.
        assert!(server.controller().settle().await);
        assert!(server.pods("a").is_empty());

        assert!(server.deployment("b", "web").is_some());
        assert_eq!(server.replica_sets("b").len(), 1);
        assert_eq!(server.pods("b").len(), 2);
        assert!(server.object("Namespace", "", "b").is_some());
        assert_eq!(server.delete_namespace("missing"), 0);
        server.shutdown();
    }

    /// The out-of-band writers follow the server's generation rules, which
    /// the planners' `test /metadata/generation` guard relies on.
    #[tokio::test]
    async fn update_and_update_status_follow_the_generation_rules() {
        let server = TestServer::start().await.unwrap();
        server.apply_objects(deployment("g"));
        assert!(server.controller().settle().await);
        let read = |s: &TestServer| s.object("Deployment", "g", "web").unwrap();
        let meta = |d: &Value, f: &str| d["metadata"][f].clone();
        let same_generation_new_version = |new: &Value, old: &Value, what: &str| {
            let same = "same generation";
            assert_eq!(
                meta(new, "generation"),
                meta(old, "generation"),
                "{what}: {same}"
            );
            assert_ne!(
                meta(new, "resourceVersion"),
                meta(old, "resourceVersion"),
                "{what}"
            );
        };
        let before = read(&server);

        let mut labelled = before.clone();
        labelled["metadata"]["labels"] = serde_json::json!({"team": "shop"});
        let after = server.update("Deployment", "g", &labelled).unwrap();
        same_generation_new_version(&after, &before, "labels");

        let mut status = after.clone();
        status["status"]["observedGeneration"] = serde_json::json!(99);
        status["spec"]["replicas"] = serde_json::json!(7);
        let stored = server.update_status("Deployment", "g", &status).unwrap();
        same_generation_new_version(&stored, &after, "status");
        assert_eq!(stored["status"]["observedGeneration"], 99);
        assert_eq!(stored["spec"]["replicas"], 2, "a status write ignores spec");

        let mut annotated = read(&server);
        annotated["metadata"]["annotations"]["example.com/touch"] = serde_json::json!("1");
        let bumped = server.update("Deployment", "g", &annotated).unwrap();
        assert_eq!(
            meta(&bumped, "generation").as_i64().unwrap(),
            meta(&stored, "generation").as_i64().unwrap() + 1,
            "annotations: generation bumped"
        );

        // A stale resourceVersion conflicts, like a PUT.
        let err = server.update("Deployment", "g", &annotated).unwrap_err();
        assert!(err.starts_with("409"), "{err}");
        server.shutdown();
    }
}
