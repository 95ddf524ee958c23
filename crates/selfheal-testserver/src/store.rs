//! Object store: JSON objects keyed by kind/namespace/name, one global
//! resourceVersion counter (like etcd's revision), and a per-kind window of
//! recent changes that watches replay from.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::defaults;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Namespace,
    Node,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ControllerRevision,
    Pod,
    Event,
    ServiceAccount,
    Service,
}

/// Every kind served: (kind, API group, plural resource, `kind` name).
const KINDS: [(Kind, &str, &str, &str); 11] = [
    (Kind::Namespace, "", "namespaces", "Namespace"),
    (Kind::Node, "", "nodes", "Node"),
    (Kind::Pod, "", "pods", "Pod"),
    (Kind::Event, "", "events", "Event"),
    (
        Kind::ServiceAccount,
        "",
        "serviceaccounts",
        "ServiceAccount",
    ),
    (Kind::Service, "", "services", "Service"),
    (Kind::Deployment, "apps", "deployments", "Deployment"),
    (Kind::ReplicaSet, "apps", "replicasets", "ReplicaSet"),
    (Kind::StatefulSet, "apps", "statefulsets", "StatefulSet"),
    (Kind::DaemonSet, "apps", "daemonsets", "DaemonSet"),
    (
        Kind::ControllerRevision,
        "apps",
        "controllerrevisions",
        "ControllerRevision",
    ),
];

impl Kind {
    /// Every namespaced kind.
    pub(crate) const NAMESPACED: [Kind; 9] = [
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ControllerRevision,
        Kind::Pod,
        Kind::Event,
        Kind::ServiceAccount,
        Kind::Service,
    ];

    fn entry(self) -> (Kind, &'static str, &'static str, &'static str) {
        KINDS
            .into_iter()
            .find(|e| e.0 == self)
            .unwrap_or((self, "", "", ""))
    }

    pub(crate) fn from_plural(group: &str, plural: &str) -> Option<Kind> {
        KINDS
            .into_iter()
            .find(|e| e.1 == group && e.2 == plural)
            .map(|e| e.0)
    }
    pub(crate) fn from_kind(kind: &str) -> Option<Kind> {
        KINDS.into_iter().find(|e| e.3 == kind).map(|e| e.0)
    }
    pub(crate) fn plural(self) -> &'static str {
        self.entry().2
    }
    pub(crate) fn group(self) -> &'static str {
        self.entry().1
    }
    pub(crate) fn api_version(self) -> &'static str {
        match self.group() {
            "" => "v1",
            _ => "apps/v1",
        }
    }
    pub(crate) fn kind(self) -> &'static str {
        self.entry().3
    }
    pub(crate) fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }
    /// `deployments.apps` / `pods`: the resource name used in API messages.
    pub(crate) fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_string(),
            g => format!("{}.{g}", self.plural()),
        }
    }
    /// The workload kinds whose spec changes bump `metadata.generation`.
    fn has_generation(self) -> bool {
        matches!(
            self,
            Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet | Kind::DaemonSet
        )
    }
}

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) kind: Kind,
    pub(crate) rv: u64,
    pub(crate) event_type: &'static str,
    pub(crate) object: Value,
}

/// Who is writing: generation rules differ between user writes and the
/// controllers' status updates (status writes never bump generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    User,
    Status,
    Controller,
}

pub(crate) struct Store {
    objects: BTreeMap<(Kind, String, String), Value>,
    rv: u64,
    uid_counter: u64,
    history: HashMap<Kind, VecDeque<Change>>,
    /// Highest resourceVersion pushed out of each kind's window.
    evicted: HashMap<Kind, u64>,
    window: usize,
    pub(crate) tx: broadcast::Sender<Change>,
    /// Added to the wall clock (`ControllerHandle::advance`), so progress
    /// deadlines can pass without waiting.
    pub(crate) clock_offset: std::time::Duration,
}

/// RFC 3339 seconds, as the API server prints timestamps.
pub(crate) fn format_ts(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Store {
    pub(crate) fn new(window: usize) -> Store {
        let (tx, _) = broadcast::channel(4096);
        Store {
            objects: BTreeMap::new(),
            // A fresh real cluster is already at a few hundred; start above 1 so
            // that "resourceVersion 1" is a valid, old version.
            rv: 100,
            uid_counter: 0,
            history: HashMap::new(),
            evicted: HashMap::new(),
            window: window.max(1),
            tx,
            clock_offset: std::time::Duration::ZERO,
        }
    }

    pub(crate) fn now(&self) -> jiff::Timestamp {
        let now = jiff::Timestamp::now();
        jiff::SignedDuration::try_from(self.clock_offset)
            .ok()
            .and_then(|d| now.checked_add(d).ok())
            .unwrap_or(now)
    }

    pub(crate) fn now_string(&self) -> String {
        format_ts(self.now())
    }

    pub(crate) fn current_rv(&self) -> u64 {
        self.rv
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub(crate) fn new_uid(&mut self) -> String {
        use sha2::Digest as _;
        self.uid_counter += 1;
        let digest =
            sha2::Sha256::digest(format!("{}-{}", self.uid_counter, crate::random_suffix(8)));
        let h: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    pub(crate) fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<&Value> {
        let ns = if kind.namespaced() { ns } else { "" };
        self.objects.get(&(kind, ns.to_string(), name.to_string()))
    }

    pub(crate) fn exists(&self, kind: Kind, ns: &str, name: &str) -> bool {
        self.get(kind, ns, name).is_some()
    }

    /// Objects of `kind` (in `ns` when given and `kind` is namespaced), in
    /// (namespace, name) order. A range of the ordered map, not a scan of
    /// every object: the controller emulation calls this for each object on
    /// every pass, so a scan made a server holding a few hundred objects
    /// (a long benchmark, the storm tests) quadratically slower.
    pub(crate) fn list(&self, kind: Kind, ns: Option<&str>) -> Vec<&Value> {
        let ns = ns.filter(|_| kind.namespaced());
        let start = (kind, ns.unwrap_or_default().to_string(), String::new());
        self.objects
            .range(start..)
            .take_while(|((k, n, _), _)| *k == kind && ns.is_none_or(|ns| n == ns))
            .map(|(_, v)| v)
            .collect()
    }

    fn record(&mut self, kind: Kind, rv: u64, event_type: &'static str, object: Value) {
        let change = Change {
            kind,
            rv,
            event_type,
            object,
        };
        let q = self.history.entry(kind).or_default();
        q.push_back(change.clone());
        while q.len() > self.window {
            if let Some(old) = q.pop_front() {
                self.evicted.insert(kind, old.rv);
            }
        }
        let _ = self.tx.send(change);
    }

    /// Changes of `kind` after `rv`, or `Err(oldest_kept_rv)` if some were evicted.
    pub(crate) fn changes_since(&self, kind: Kind, rv: u64) -> Result<Vec<Change>, u64> {
        let evicted = self.evicted.get(&kind).copied().unwrap_or(0);
        if rv < evicted {
            let oldest = self
                .history
                .get(&kind)
                .and_then(|q| q.front())
                .map_or(self.rv, |c| c.rv);
            return Err(oldest);
        }
        Ok(self
            .history
            .get(&kind)
            .map(|q| q.iter().filter(|c| c.rv > rv).cloned().collect())
            .unwrap_or_default())
    }

    /// Stores a new object. The caller has validated and defaulted it and
    /// checked that the name is free; this fills in server-owned metadata.
    pub(crate) fn create(&mut self, kind: Kind, ns: &str, mut obj: Value, dry_run: bool) -> Value {
        let uid = self.new_uid();
        let rv = if dry_run { self.rv } else { self.next_rv() };
        let now = self.now_string();
        if let Some(map) = obj.as_object_mut() {
            map.insert("kind".into(), json!(kind.kind()));
            map.insert("apiVersion".into(), json!(kind.api_version()));
            let meta = map.entry("metadata").or_insert_with(|| json!({}));
            if let Some(meta) = meta.as_object_mut() {
                if kind.namespaced() {
                    meta.insert("namespace".into(), json!(ns));
                } else {
                    meta.remove("namespace");
                }
                meta.insert("uid".into(), json!(uid));
                if !dry_run {
                    meta.insert("resourceVersion".into(), json!(rv.to_string()));
                } else {
                    meta.remove("resourceVersion");
                }
                meta.insert("creationTimestamp".into(), json!(now));
                if kind.has_generation() {
                    meta.insert("generation".into(), json!(1));
                } else {
                    meta.remove("generation");
                }
                meta.remove("managedFields");
                meta.remove("deletionTimestamp");
            }
        }
        if kind == Kind::DaemonSet {
            set_template_generation(&mut obj, 1);
        }
        if !dry_run {
            let name = name_of(&obj).to_string();
            let key_ns = if kind.namespaced() {
                ns.to_string()
            } else {
                String::new()
            };
            self.objects.insert((kind, key_ns, name), obj.clone());
            self.record(kind, rv, "ADDED", obj.clone());
        }
        obj
    }

    /// Replaces an existing object (which must exist): bumps generation
    /// according to `writer`, assigns a new resourceVersion, records MODIFIED.
    /// Returns the stored object; a write that changes nothing is a no-op.
    pub(crate) fn update(
        &mut self,
        kind: Kind,
        ns: &str,
        mut obj: Value,
        writer: Writer,
        dry_run: bool,
    ) -> Value {
        let name = name_of(&obj).to_string();
        let key_ns = if kind.namespaced() {
            ns.to_string()
        } else {
            String::new()
        };
        let key = (kind, key_ns, name);
        let Some(old) = self.objects.get(&key).cloned() else {
            return obj;
        };
        // Server-owned metadata always comes from the stored object.
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
            "namespace",
            "generateName",
        ] {
            match old.pointer(&format!("/metadata/{field}")) {
                Some(v) => set_meta(&mut obj, field, v.clone()),
                None => remove_meta(&mut obj, field),
            }
        }
        if let Some(map) = obj.as_object_mut() {
            map.insert("kind".into(), json!(kind.kind()));
            map.insert("apiVersion".into(), json!(kind.api_version()));
            if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
        if kind.has_generation() && writer != Writer::Status {
            let spec_changed = old.get("spec") != obj.get("spec");
            let ann_changed = kind == Kind::Deployment
                && writer == Writer::User
                && old
                    .pointer("/metadata/annotations")
                    .filter(|v| !is_empty_map(v))
                    != obj
                        .pointer("/metadata/annotations")
                        .filter(|v| !is_empty_map(v));
            if kind == Kind::DaemonSet {
                let template_changed =
                    old.pointer("/spec/template") != obj.pointer("/spec/template");
                let current = template_generation(&old);
                set_template_generation(&mut obj, current + i64::from(template_changed));
            }
            if spec_changed || ann_changed {
                let g = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                set_meta(&mut obj, "generation", json!(g + 1));
            }
        }
        if obj == old {
            return old;
        }
        if dry_run {
            return obj;
        }
        let rv = self.next_rv();
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        self.objects.insert(key, obj.clone());
        self.record(kind, rv, "MODIFIED", obj.clone());
        obj
    }

    pub(crate) fn delete(&mut self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let key_ns = if kind.namespaced() {
            ns.to_string()
        } else {
            String::new()
        };
        let mut obj = self.objects.remove(&(kind, key_ns, name.to_string()))?;
        let rv = self.next_rv();
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        self.record(kind, rv, "DELETED", obj.clone());
        Some(obj)
    }

    /// Direct seeding (no HTTP): see `TestServer::apply_objects`.
    pub(crate) fn seed(&mut self, mut obj: Value) -> Result<(), String> {
        let kind_name = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind =
            Kind::from_kind(&kind_name).ok_or_else(|| format!("unsupported kind {kind_name:?}"))?;
        let name = name_of(&obj).to_string();
        if name.is_empty() {
            return Err("object without metadata.name".into());
        }
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        if kind.namespaced() && !self.exists(Kind::Namespace, "", &ns) {
            let ns_obj = defaults::namespace(json!({"metadata": {"name": ns}}));
            self.create(Kind::Namespace, "", ns_obj, false);
        }
        obj = defaults::apply(kind, obj).map_err(|e| e.to_string())?;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            if kind.namespaced() {
                meta.insert("namespace".into(), json!(ns));
            }
            let uid = meta.get("uid").and_then(Value::as_str).map(str::to_string);
            meta.insert("uid".into(), json!(uid.unwrap_or_else(|| self.new_uid())));
            let now = self.now_string();
            meta.entry("creationTimestamp")
                .or_insert_with(|| json!(now));
            if kind.has_generation() {
                meta.entry("generation").or_insert(json!(1));
            }
            meta.remove("managedFields");
        }
        if kind == Kind::DaemonSet {
            let generation = template_generation(&obj);
            set_template_generation(&mut obj, generation);
        }
        if let Some(map) = obj.as_object_mut() {
            map.insert("kind".into(), json!(kind.kind()));
            map.insert("apiVersion".into(), json!(kind.api_version()));
        }
        let rv = self.next_rv();
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        let key_ns = if kind.namespaced() { ns } else { String::new() };
        let existed = self
            .objects
            .insert((kind, key_ns, name), obj.clone())
            .is_some();
        self.record(kind, rv, if existed { "MODIFIED" } else { "ADDED" }, obj);
        Ok(())
    }
}

/// The DaemonSet's `spec.templateGeneration`, which apps/v1 shows as this
/// annotation: server-owned, 1 on create, +1 on each template change.
pub(crate) const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

pub(crate) fn template_generation(ds: &Value) -> i64 {
    ds.pointer("/metadata/annotations")
        .and_then(|a| a.get(TEMPLATE_GENERATION))
        .and_then(Value::as_str)
        .and_then(|g| g.parse().ok())
        .unwrap_or(1)
}

fn set_template_generation(ds: &mut Value, generation: i64) {
    let Some(map) = ds.as_object_mut() else {
        return;
    };
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let ann = meta.entry("annotations").or_insert_with(|| json!({}));
        if !ann.is_object() {
            *ann = json!({});
        }
        ann[TEMPLATE_GENERATION] = json!(generation.to_string());
    }
}

pub(crate) fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn is_empty_map(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty) || v.is_null()
}

pub(crate) fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(field.to_string(), value);
        }
    }
}

pub(crate) fn remove_meta(obj: &mut Value, field: &str) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove(field);
    }
}
