//! The `checkout` Deployment that tests seed into the server: the one of the
//! recordings (tests/fixtures/k8s/create-and-history.json), namespace `shop`,
//! label `app=checkout`, 2 replicas, containers `api` and the sidecar `envoy`.
//! Tests vary it (images, opt-in, ports, a fleet of copies) through
//! [`Checkout`], so the object is written down once.

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Map, Value, json};

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
        namespace: "shop".into(),
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

impl Checkout {
    /// Another Deployment of the same shape: `namespace/name`, labelled and
    /// selected by `app=<name>` (fleets, several namespaces).
    pub fn named(mut self, namespace: &str, name: &str) -> Self {
        self.namespace = namespace.into();
        self.name = name.into();
        self
    }

    /// `spec.replicas` (default 2, as recorded).
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Label `selfheal.dev/enabled=true` when `yes`.
    pub fn opt_in(mut self, yes: bool) -> Self {
        self.opt_in = yes;
        self
    }

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

    /// The object as JSON.
    pub fn json(&self) -> Value {
        let mut labels = json!({"app": self.name});
        if self.opt_in {
            labels["selfheal.dev/enabled"] = json!("true");
        }
        let mut metadata =
            json!({"name": self.name, "namespace": self.namespace, "labels": labels});
        if !self.annotations.is_empty() {
            metadata["annotations"] = Value::Object(self.annotations.clone());
        }
        let mut api = json!({"name": "api", "image": self.api_image});
        let mut envoy = json!({"name": "envoy", "image": self.envoy_image});
        if self.ports {
            api["ports"] = json!([{"containerPort": 8080}]);
            envoy["ports"] = json!([{"containerPort": 9901}]);
        }
        if !self.api_env.is_empty() {
            api["env"] = self
                .api_env
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
        }
        let mut deployment = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": self.name}},
                "template": {
                    "metadata": {"labels": {"app": self.name}},
                    "spec": {"containers": [api, envoy]}
                }
            }
        });
        if let Some(seconds) = self.progress_deadline {
            deployment["spec"]["progressDeadlineSeconds"] = json!(seconds);
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
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    );
    let checkout = checkout(
        "registry.example/shop/api:1.0.0",
        "registry.example/envoy:1.27",
    );
    server.apply_objects(checkout.json());
    if !server.controller().settle().await {
        panic!("rollout_waiting: the first rollout did not settle");
    }
    server.controller().pause_automatic(true);
    let mut changed = checkout.json();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example/shop/api:1.1.0");
    server.apply_objects(changed);
}
