//! The `checkout` Deployment that tests seed into the server: the one of the
//! recordings, namespace `shop`, label `app=checkout`, 2 replicas, containers
//! `api` and the sidecar `envoy`, as tests/fixtures/checkout-deployment.json
//! holds it (the body create-and-history.json POSTs; selfheal-core's unit
//! tests and benchmark start from the same file). Tests vary it (images,
//! opt-in, ports, a fleet of copies) through [`Checkout`]. The StatefulSet
//! `data/ledger` and DaemonSet `data/node-agent` of the later recordings
//! come from [`ledger`] and [`node_agent`].

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use serde_json::{Map, Value, json};

/// The recorded `checkout` Deployment as created (api 1.0.0 on port 8080,
/// envoy 1.27 on port 9901), the object [`Checkout`] varies.
const CHECKOUT_JSON: &str = include_str!("../../../tests/fixtures/checkout-deployment.json");

/// The recordings' namespace, where [`checkout`] lives.
pub const NAMESPACE: &str = "shop";
/// The `api` container's image repository (tagged `1.0.0`, `1.1.0`, …).
pub const API_REPO: &str = "registry.example/shop/api";
/// The `envoy` sidecar's image repository.
pub const ENVOY_REPO: &str = "registry.example/envoy";

/// A `checkout`-shaped Deployment as a test POSTs or seeds it (the server
/// fills in the defaults).
#[derive(Debug, Clone)]
pub struct Checkout {
    namespace: String,
    name: String,
    api_image: String,
    envoy_image: String,
    replicas: u32,
    opt_in: bool,
    ports: bool,
    api_env: Vec<(String, String)>,
    annotations: Map<String, Value>,
    progress_deadline: Option<i32>,
}

/// `shop/checkout` running `api_image` and `envoy_image`, not opted in.
pub fn checkout(api_image: impl Into<String>, envoy_image: impl Into<String>) -> Checkout {
    Checkout {
        namespace: NAMESPACE.into(),
        name: "checkout".into(),
        api_image: api_image.into(),
        envoy_image: envoy_image.into(),
        replicas: 2,
        opt_in: false,
        ports: false,
        api_env: Vec::new(),
        annotations: Map::new(),
        progress_deadline: None,
    }
}

/// `app=<name>`, and the opt-in label when `opt_in`.
fn app_labels(name: &str, opt_in: bool) -> Value {
    let mut labels = json!({"app": name});
    if opt_in {
        labels[selfheal_core::keys::ENABLED_LABEL] = json!("true");
    }
    labels
}

/// The builder steps [`Checkout`] and [`Workload`] share.
macro_rules! shared_builder_steps {
    () => {
        /// Another object of the same shape: `namespace/name`, labelled and
        /// selected by `app=<name>` (fleets, several namespaces).
        pub fn named(mut self, namespace: &str, name: &str) -> Self {
            self.namespace = namespace.into();
            self.name = name.into();
            self
        }

        /// `spec.replicas` (default 2, as recorded; a DaemonSet has none).
        pub fn replicas(mut self, replicas: u32) -> Self {
            self.replicas = replicas;
            self
        }

        /// Label `selfheal.dev/enabled=true` when `yes`.
        pub fn opt_in(mut self, yes: bool) -> Self {
            self.opt_in = yes;
            self
        }
    };
}

impl Checkout {
    shared_builder_steps!();

    /// The recorded container ports: api 8080, envoy 9901.
    pub fn recorded_ports(mut self) -> Self {
        self.ports = true;
        self
    }

    /// An environment variable of the `api` container.
    pub fn api_env(mut self, name: &str, value: &str) -> Self {
        self.api_env.push((name.into(), value.into()));
        self
    }

    /// A Deployment annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.into(), json!(value));
        self
    }

    /// `spec.progressDeadlineSeconds` (the server's default is 600).
    pub fn progress_deadline(mut self, seconds: i32) -> Self {
        self.progress_deadline = Some(seconds);
        self
    }

    /// The object as JSON: checkout-deployment.json with this builder's changes.
    pub fn json(&self) -> Value {
        let mut deployment: Value = serde_json::from_str(CHECKOUT_JSON)
            .unwrap_or_else(|e| panic!("checkout-deployment.json: {e}"));
        deployment["metadata"] = json!({
            "name": self.name,
            "namespace": self.namespace,
            "labels": app_labels(&self.name, self.opt_in),
        });
        if !self.annotations.is_empty() {
            deployment["metadata"]["annotations"] = Value::Object(self.annotations.clone());
        }
        let spec = &mut deployment["spec"];
        spec["replicas"] = json!(self.replicas);
        spec["selector"]["matchLabels"]["app"] = json!(self.name);
        spec["template"]["metadata"]["labels"]["app"] = json!(self.name);
        if let Some(seconds) = self.progress_deadline {
            spec["progressDeadlineSeconds"] = json!(seconds);
        }
        let containers = spec["template"]["spec"]["containers"].as_array_mut();
        for container in containers.into_iter().flatten() {
            let api = container["name"] == "api";
            let image = if api {
                &self.api_image
            } else {
                &self.envoy_image
            };
            container["image"] = json!(image);
            if api && !self.api_env.is_empty() {
                let env = self.api_env.iter();
                container["env"] = env
                    .map(|(name, value)| json!({"name": name, "value": value}))
                    .collect();
            }
            if !self.ports
                && let Some(fields) = container.as_object_mut()
            {
                fields.remove("ports");
            }
        }
        deployment
    }

    /// The object as a typed Deployment.
    pub fn deployment(&self) -> Deployment {
        serde_json::from_value(self.json()).unwrap_or_else(|e| panic!("checkout fixture: {e}"))
    }
}

/// Seeds `shop/checkout` (api 1.0.0, envoy 1.27) and lets it roll out, then
/// stops the controller and changes the api image to 1.1.0: a rollout that
/// waits ("spec update to be observed") until the test lets the controller
/// run again (`server.controller().pause_automatic(false)`), for tests of
/// watching a rollout.
pub async fn rollout_waiting(server: &crate::TestServer) {
    server.apply_objects(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    );
    let checkout = checkout(format!("{API_REPO}:1.0.0"), format!("{ENVOY_REPO}:1.27"));
    server.apply_objects(checkout.json());
    if !server.controller().settle().await {
        panic!("rollout_waiting: the first rollout did not settle");
    }
    server.controller().pause_automatic(true);
    let mut changed = checkout.json();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!(format!("{API_REPO}:1.1.0"));
    server.apply_objects(changed);
}

/// The StatefulSet and DaemonSet of the recordings
/// (tests/fixtures/k8s/statefulset-history.json, daemonset-history.json),
/// namespace `data`, each with two containers so that a rollback of one of
/// them (a half-brick) is meaningful: `data/ledger` (db + metrics, 2
/// replicas, headless Service `ledger`) and `data/node-agent` (agent +
/// shipper, one pod per Node). Tests vary them through [`Workload`].
#[derive(Debug, Clone)]
pub struct Workload {
    kind: &'static str,
    namespace: String,
    name: String,
    /// (container name, image, extra fields as recorded).
    containers: Vec<(String, String, Value)>,
    replicas: u32,
    opt_in: bool,
    update_strategy: Option<Value>,
}

/// `data/ledger` running `db_image` and `metrics_image`, opted in as recorded.
pub fn ledger(db_image: impl Into<String>, metrics_image: impl Into<String>) -> Workload {
    Workload {
        kind: "StatefulSet",
        namespace: "data".into(),
        name: "ledger".into(),
        containers: vec![
            (
                "db".into(),
                db_image.into(),
                json!({"env": [{"name": "PGDATA", "value": "/var/lib/db"}], "ports": [{"containerPort": 5432}]}),
            ),
            ("metrics".into(), metrics_image.into(), json!({})),
        ],
        replicas: 2,
        opt_in: true,
        update_strategy: None,
    }
}

/// `data/node-agent` running `agent_image` and `shipper_image`, opted in as
/// recorded. Its pods need Nodes ([`node`]).
pub fn node_agent(agent_image: impl Into<String>, shipper_image: impl Into<String>) -> Workload {
    Workload {
        kind: "DaemonSet",
        namespace: "data".into(),
        name: "node-agent".into(),
        containers: vec![
            (
                "agent".into(),
                agent_image.into(),
                json!({"env": [{"name": "LEVEL", "value": "info"}]}),
            ),
            ("shipper".into(), shipper_image.into(), json!({})),
        ],
        replicas: 0,
        opt_in: true,
        update_strategy: None,
    }
}

impl Workload {
    shared_builder_steps!();

    /// A StatefulSet rolling update held below ordinal `partition`.
    pub fn partition(mut self, partition: u32) -> Self {
        self.update_strategy =
            Some(json!({"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}));
        self
    }

    /// `updateStrategy: OnDelete`: no pod is replaced until it is deleted.
    pub fn on_delete(mut self) -> Self {
        self.update_strategy = Some(json!({"type": "OnDelete"}));
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object as JSON (the server fills in the defaults).
    pub fn json(&self) -> Value {
        let labels = app_labels(&self.name, self.opt_in);
        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|(name, image, extra)| {
                let mut c = extra.clone();
                c["name"] = json!(name);
                c["image"] = json!(image);
                c
            })
            .collect();
        let mut spec = json!({
            "selector": {"matchLabels": {"app": self.name}},
            "template": {
                "metadata": {"labels": {"app": self.name}},
                "spec": {"containers": containers}
            }
        });
        if self.kind == "StatefulSet" {
            spec["replicas"] = json!(self.replicas);
            spec["serviceName"] = json!(self.name);
        }
        if let Some(strategy) = &self.update_strategy {
            spec["updateStrategy"] = strategy.clone();
        }
        json!({"apiVersion": "apps/v1", "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": labels},
            "spec": spec})
    }

    /// The headless Service a StatefulSet names (`serviceName`), as recorded.
    pub fn service(&self) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {"clusterIP": "None", "selector": {"app": self.name}, "ports": [{"port": 5432}]}})
    }

    /// The object as a typed StatefulSet.
    pub fn stateful_set(&self) -> StatefulSet {
        serde_json::from_value(self.json()).unwrap_or_else(|e| panic!("ledger fixture: {e}"))
    }

    /// The object as a typed DaemonSet.
    pub fn daemon_set(&self) -> DaemonSet {
        serde_json::from_value(self.json()).unwrap_or_else(|e| panic!("node-agent fixture: {e}"))
    }
}

/// The image changes of statefulset-history.json, one revision each: on
/// [`ledger`] at db 15.1 and metrics 0.9 they lead to revision 4 = db 15.3,
/// and the half-brick rollback of db to 15.2 reuses revision 3.
pub const LEDGER_HISTORY: [(&str, &str); 3] = [
    ("db", "registry.example/data/db:15.2"),
    ("metrics", "registry.example/data/metrics:0.10"),
    ("db", "registry.example/data/db:15.3"),
];

/// [`ledger`] as statefulset-history.json starts it (db 15.1, metrics 0.9),
/// where [`LEDGER_HISTORY`] applies.
pub fn ledger_as_recorded() -> Workload {
    ledger(
        "registry.example/data/db:15.1",
        "registry.example/data/metrics:0.9",
    )
}

/// [`node_agent`] as daemonset-history.json starts it (agent 2.0, shipper
/// 1.4), where [`NODE_AGENT_HISTORY`] applies.
pub fn node_agent_as_recorded() -> Workload {
    node_agent(
        "registry.example/obs/agent:2.0",
        "registry.example/obs/shipper:1.4",
    )
}

/// The image changes of daemonset-history.json on [`node_agent`] at agent
/// 2.0 and shipper 1.4: revision 4 = agent 2.2, revision 3 = agent 2.1 +
/// shipper 1.5.
pub const NODE_AGENT_HISTORY: [(&str, &str); 3] = [
    ("agent", "registry.example/obs/agent:2.1"),
    ("shipper", "registry.example/obs/shipper:1.5"),
    ("agent", "registry.example/obs/agent:2.2"),
];

impl Workload {
    /// Seeds the workload with what it needs (a StatefulSet its headless
    /// Service, a DaemonSet Nodes `node-a` and `node-b`), lets it roll out,
    /// then rolls each `(container, image)` of `changes` out in turn: one
    /// revision per change, every rollout settled. False when a step fails.
    pub async fn seed_with_history(
        &self,
        server: &crate::TestServer,
        changes: &[(&str, &str)],
    ) -> bool {
        let needs = if self.kind == "StatefulSet" {
            vec![self.service()]
        } else {
            vec![node("node-a"), node("node-b")]
        };
        for obj in needs.into_iter().chain([self.json()]) {
            if server.try_apply_objects(obj).is_err() {
                return false;
            }
        }
        if !server.controller().settle().await {
            return false;
        }
        for (container, image) in changes {
            let (kind, ns, name) = (self.kind, &self.namespace, &self.name);
            if !server
                .roll_out_image_of(kind, ns, name, container, image)
                .await
            {
                return false;
            }
        }
        true
    }
}

/// A Ready Node without taints, as the recorder left `node-a` and `node-b`
/// (daemonset-history.json): what a DaemonSet needs to run a pod.
pub fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "recorder"}],
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})
}
