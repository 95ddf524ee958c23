//! Offline snapshots: what `kubectl get deploy,rs[,pods] -n NS -o yaml|json`
//! (or `kubectl get sts,ds,controllerrevisions,pods`, or all of them in one
//! list) prints stands in for the API server, so a remediation can be tried
//! (and tested) without a cluster or an AWS account.
//!
//! This is its own crate, pure and without I/O (the caller reads and writes
//! the files), for two users: the offline `--snapshot` mode of the `selfheal`
//! CLI, and the `snapshot_parse` fuzz target (fuzz/), which can then be built
//! (release, sanitizer coverage) without the CLI's kube client, hyper, rustls
//! and AWS SDK dependency tree.
//!
//! Objects are kept as raw JSON values so that writing the snapshot back
//! changes nothing but what the plan's JSON Patch changed; typed k8s-openapi
//! views are parsed from them for planning.

mod error;

pub use error::Error;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Value, json};

use selfheal_core::{
    Decision, OutcomeStatus, PlanInput, Policy, RemediationOutcome, RemediationRequest,
    RolloutStatus, ValidRequest, WorkloadKind, WorkloadRef, decide, plan::needs_history,
    pod::check_pod_target_of, rollout_status,
};

/// A workload object of the snapshot, typed: what the planner reads.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadObject {
    Deployment(Deployment),
    StatefulSet(StatefulSet),
    DaemonSet(DaemonSet),
}

impl WorkloadObject {
    /// The raw object as `kind`.
    fn parse(object: &Value, kind: WorkloadKind) -> Result<Self, Error> {
        let name = kind.as_str();
        Ok(match kind {
            WorkloadKind::Deployment => WorkloadObject::Deployment(typed(object, name)?),
            WorkloadKind::StatefulSet => WorkloadObject::StatefulSet(typed(object, name)?),
            WorkloadKind::DaemonSet => WorkloadObject::DaemonSet(typed(object, name)?),
        })
    }

    /// The borrowed view the core's planners and guards take.
    pub fn as_ref(&self) -> WorkloadRef<'_> {
        match self {
            WorkloadObject::Deployment(d) => d.into(),
            WorkloadObject::StatefulSet(s) => s.into(),
            WorkloadObject::DaemonSet(d) => d.into(),
        }
    }
}

/// YAML 1.2 core-schema scalars, as kubectl's output means them: an
/// unquoted `on`, `yes`, `012` or `1_000` is a string, not a bool or number.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    }
}

/// How the snapshot was written; it is written back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// The objects of one snapshot file, flattened out of their lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    format: Format,
    objects: Vec<Value>,
}

impl Snapshot {
    /// Parse a `kind: List` (or a typed list such as `DeploymentList`), a
    /// single object, or multi-document YAML of any of these. JSON is
    /// recognised by its leading `{`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let (format, documents) = if text.trim_start().starts_with('{') {
            let doc: Value = serde_json::from_str(text).map_err(|source| Error::Json { source })?;
            (Format::Json, vec![doc])
        } else {
            let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(text, yaml_options())
                .map_err(|source| Error::Yaml { source })?;
            let docs = docs.into_iter().filter(|d| !d.is_null()).collect();
            (Format::Yaml, docs)
        };
        let mut objects = Vec::new();
        for doc in documents {
            flatten(doc, &mut objects)?;
        }
        if objects.is_empty() {
            return Err(Error::Invalid("no objects found".into()));
        }
        Ok(Snapshot { format, objects })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Every object, in input order.
    pub fn objects(&self) -> &[Value] {
        &self.objects
    }

    /// Render as one `kind: List`, in the input's format.
    pub fn render(&self) -> Result<String, Error> {
        let list = json!({
            "apiVersion": "v1",
            "items": self.objects,
            "kind": "List",
            "metadata": { "resourceVersion": "" },
        });
        match self.format {
            Format::Json => serde_json::to_string_pretty(&list)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|source| Error::RenderJson { source }),
            Format::Yaml => {
                serde_saphyr::to_string(&list).map_err(|source| Error::RenderYaml { source })
            }
        }
    }

    /// The Deployment `namespace/name` (objects without a namespace match any).
    pub fn deployment(&self, namespace: &str, name: &str) -> Result<Deployment, Error> {
        self.workload_index(WorkloadKind::Deployment, namespace, name)
            .and_then(|index| typed::<Deployment>(&self.objects[index], "Deployment"))
    }

    /// The Deployment, StatefulSet or DaemonSet `namespace/name`.
    pub fn workload(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Result<WorkloadObject, Error> {
        self.workload_index(kind, namespace, name)
            .and_then(|index| WorkloadObject::parse(&self.objects[index], kind))
    }

    fn workload_index(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Result<usize, Error> {
        self.objects
            .iter()
            .position(|o| is(o, kind.as_str(), namespace, name))
            .ok_or_else(|| Error::WorkloadNotFound {
                kind,
                namespace: namespace.into(),
                name: name.into(),
            })
    }

    /// The ReplicaSets the Deployment controls: what the adapter's LIST by
    /// selector returns, narrowed to controller ownerReferences as the
    /// revision history requires (docs/kubectl-semantics.md §1).
    pub fn replica_sets_of(&self, deployment: &Deployment) -> Result<Vec<ReplicaSet>, Error> {
        self.owned_by(deployment.into(), "ReplicaSet", |rs: &ReplicaSet| {
            &rs.metadata
        })
    }

    /// The ControllerRevisions a StatefulSet or DaemonSet controls, by the
    /// same rule as [`Snapshot::replica_sets_of`].
    pub fn controller_revisions_of<'w>(
        &self,
        workload: impl Into<WorkloadRef<'w>>,
    ) -> Result<Vec<ControllerRevision>, Error> {
        self.owned_by(
            workload.into(),
            "ControllerRevision",
            |cr: &ControllerRevision| &cr.metadata,
        )
    }

    /// The objects of `kind` in `owner`'s namespace that it controls.
    fn owned_by<T: serde::de::DeserializeOwned>(
        &self,
        owner: WorkloadRef<'_>,
        kind: &'static str,
        meta: impl Fn(&T) -> &ObjectMeta,
    ) -> Result<Vec<T>, Error> {
        let namespace = owner.metadata().namespace.as_deref();
        let mut out = Vec::new();
        for object in self.objects.iter().filter(|o| kind_of(o) == Some(kind)) {
            let item = typed::<T>(object, kind)?;
            if same_namespace(namespace, meta(&item))
                && controlled_by(meta(&item), owner.kind().as_str(), owner.metadata())
            {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// The workload's pods: in its namespace and matching its selector,
    /// as the adapter's LIST returns them (the evidence keeps only those of
    /// the current revision).
    pub fn pods_of<'w>(&self, workload: impl Into<WorkloadRef<'w>>) -> Result<Vec<Pod>, Error> {
        let workload = workload.into();
        let namespace = workload.metadata().namespace.as_deref();
        let Some(selector) = workload.selector() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for object in self.objects.iter().filter(|o| kind_of(o) == Some("Pod")) {
            let pod = typed::<Pod>(object, "Pod")?;
            if same_namespace(namespace, &pod.metadata)
                && selfheal_core::history::selector_matches(selector, pod.metadata.labels.as_ref())
            {
                out.push(pod);
            }
        }
        Ok(out)
    }

    /// The pod `namespace/name`.
    fn pod(&self, namespace: &str, pod: &str) -> Result<Pod, Error> {
        let object = self
            .objects
            .iter()
            .find(|o| is(o, "Pod", namespace, pod))
            .ok_or_else(|| Error::PodNotFound {
                namespace: namespace.into(),
                name: pod.into(),
            })?;
        typed::<Pod>(object, "Pod")
    }

    /// The workload a pod belongs to, by ownerReferences: controlling
    /// ReplicaSet → its controlling Deployment, or directly the controlling
    /// StatefulSet or DaemonSet (docs/contract.md §2).
    pub fn resolve_pod(&self, namespace: &str, pod: &str) -> Result<(WorkloadKind, String), Error> {
        let owner_error = |reason: String| Error::PodOwner {
            namespace: namespace.into(),
            name: pod.into(),
            reason,
        };
        let pod_obj = self.pod(namespace, pod)?;
        let owner = controller_ref(&pod_obj.metadata).ok_or_else(|| {
            owner_error("it is not controlled by a ReplicaSet, StatefulSet or DaemonSet".into())
        })?;
        if let Some(kind) =
            WorkloadKind::from_kind(&owner.kind).filter(|k| *k != WorkloadKind::Deployment)
        {
            // Checked when the snapshot holds it; a missing one is
            // `WorkloadNotFound` when the plan looks it up.
            if let Some(object) = self
                .objects
                .iter()
                .find(|o| is(o, kind.as_str(), namespace, &owner.name))
            {
                same_uid(object, owner).map_err(owner_error)?;
            }
            return Ok((kind, owner.name.clone()));
        }
        if owner.kind != "ReplicaSet" {
            return Err(owner_error(format!(
                "it is controlled by {} {}, not a ReplicaSet, StatefulSet or DaemonSet",
                owner.kind, owner.name
            )));
        }
        let rs_object = self
            .objects
            .iter()
            .find(|o| is(o, "ReplicaSet", namespace, &owner.name))
            .ok_or_else(|| {
                owner_error(format!(
                    "its ReplicaSet {} is not in the snapshot",
                    owner.name
                ))
            })?;
        same_uid(rs_object, owner).map_err(owner_error)?;
        let rs = typed::<ReplicaSet>(rs_object, "ReplicaSet")?;
        let deploy_ref = controller_ref(&rs.metadata)
            .filter(|r| r.kind == "Deployment")
            .ok_or_else(|| {
                owner_error(format!(
                    "ReplicaSet {} is not controlled by a Deployment",
                    owner.name
                ))
            })?;
        Ok((WorkloadKind::Deployment, deploy_ref.name.clone()))
    }

    /// Plan `request` against the snapshot and, unless it is a dry run, keep
    /// the patched workload (with `metadata.generation` bumped like the
    /// server does; `resourceVersion` is left alone). A dry run still applies
    /// the patch to a copy, so a patch that would not apply is an error either way.
    pub fn remediate(
        &mut self,
        request: &RemediationRequest,
        policy: &Policy,
        now: jiff::Timestamp,
    ) -> Result<RemediationOutcome, Error> {
        let request =
            ValidRequest::new(request.clone()).map_err(|source| Error::Request { source })?;
        self.remediate_valid(&request, policy, now)
    }

    /// [`Snapshot::remediate`] for a request its caller validated already.
    pub fn remediate_valid(
        &mut self,
        request: &ValidRequest,
        policy: &Policy,
        now: jiff::Timestamp,
    ) -> Result<RemediationOutcome, Error> {
        let namespace = request.target.namespace.clone();
        let target = request.workload();
        let (kind, name, pod) = match target.kind() {
            Some(kind) => (kind, target.name().to_owned(), None),
            None => {
                let (kind, name) = self.resolve_pod(&namespace, target.name())?;
                (kind, name, Some(target.name().to_owned()))
            }
        };
        // The core plans for a workload target; the outcome gets the pod back.
        let planned = match pod {
            Some(_) => request
                .for_workload(kind, &name)
                .map_err(|source| Error::Plan { source })?,
            None => request.clone(),
        };

        let index = self.workload_index(kind, &namespace, &name)?;
        let object = WorkloadObject::parse(&self.objects[index], kind)?;
        let workload = object.as_ref();
        // A pod target needs the history too: the stale-pod guard compares
        // the pod with the workload's current revision.
        let history = needs_history(&planned, kind) || pod.is_some();
        let replica_sets = match workload {
            WorkloadRef::Deployment(d) if history => self.replica_sets_of(d)?,
            _ => Vec::new(),
        };
        let controller_revisions = match workload {
            WorkloadRef::Deployment(_) => Vec::new(),
            _ if history => self.controller_revisions_of(workload)?,
            _ => Vec::new(),
        };
        // A rollback that names no container chooses from the pods' evidence.
        let pods = if selfheal_core::needs_pods(&planned) {
            self.pods_of(workload)?
        } else {
            Vec::new()
        };
        let decision = decide(PlanInput {
            request: &planned,
            workload,
            replica_sets: &replica_sets,
            controller_revisions: &controller_revisions,
            pods: &pods,
            policy,
            now,
        })
        .map_err(|source| Error::Plan { source })?;

        // Only a write needs the pod to speak for the workload (as in selfheal-kube).
        let stale = match (&pod, &decision) {
            (Some(pod), Decision::Apply(_)) => check_pod_target_of(
                &self.pod(&namespace, pod)?,
                request,
                workload,
                &replica_sets,
                &controller_revisions,
            )
            .err(),
            _ => None,
        };
        let mut outcome = match (decision, stale) {
            (Decision::Done(outcome), _) => outcome,
            (Decision::Apply(plan), Some(refusal)) => plan.refuse(refusal),
            (Decision::Apply(plan), None) => {
                let mut updated = self.objects[index].clone();
                json_patch::patch(&mut updated, &plan.patch)
                    .map_err(|source| Error::Patch { kind, source })?;
                // The patched object must still be a workload of its kind.
                WorkloadObject::parse(&updated, kind)?;
                let mut outcome = plan.outcome;
                if plan.dry_run {
                    outcome.status = OutcomeStatus::DryRun;
                } else {
                    bump_generation(kind, &self.objects[index], &mut updated);
                    self.objects[index] = updated;
                }
                outcome
            }
        };
        // A pod target keeps its pod and gains its workload (docs/contract.md §2).
        if pod.is_some() {
            outcome.target.set_workload(kind, &name);
            outcome.target.pod = pod;
        }
        Ok(outcome)
    }

    /// `kubectl rollout status` of a Deployment in the snapshot.
    pub fn status(&self, namespace: &str, name: &str) -> Result<RolloutStatus, Error> {
        self.status_of(WorkloadKind::Deployment, namespace, name)
    }

    /// `kubectl rollout status` of any workload kind in the snapshot.
    pub fn status_of(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Result<RolloutStatus, Error> {
        self.workload(kind, namespace, name)
            .map(|w| rollout_status(w.as_ref()))
    }
}

/// Append the objects of one document (a list or a single object).
fn flatten(doc: Value, out: &mut Vec<Value>) -> Result<(), Error> {
    let Value::Object(mut map) = doc else {
        return Err(Error::Invalid("every document must be an object".into()));
    };
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Invalid("an object has no `kind`".into()))?
        .to_owned();
    if !kind.ends_with("List") {
        out.push(Value::Object(map));
        return Ok(());
    }
    let items = match map.remove("items") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(_) => return Err(Error::Invalid(format!("`items` of {kind} is not a list"))),
    };
    // Items of a typed list (`DeploymentList`) omit kind and apiVersion.
    let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
    let api_version = map.get("apiVersion").cloned();
    for item in items {
        let Value::Object(mut object) = item else {
            return Err(Error::Invalid(format!(
                "an item of {kind} is not an object"
            )));
        };
        if !object.contains_key("kind") {
            let Some(item_kind) = item_kind else {
                return Err(Error::Invalid(
                    "an item of a `kind: List` has no `kind`".into(),
                ));
            };
            object.insert("kind".into(), Value::String(item_kind.into()));
            if let Some(api_version) = &api_version {
                object
                    .entry("apiVersion")
                    .or_insert_with(|| api_version.clone());
            }
        }
        flatten(Value::Object(object), out)?;
    }
    Ok(())
}

fn kind_of(object: &Value) -> Option<&str> {
    object.get("kind").and_then(Value::as_str)
}

fn is(object: &Value, kind: &str, namespace: &str, name: &str) -> bool {
    let meta = object.get("metadata");
    let field = |key: &str| meta.and_then(|m| m.get(key)).and_then(Value::as_str);
    kind_of(object) == Some(kind)
        && field("name") == Some(name)
        && field("namespace").is_none_or(|ns| ns == namespace)
}

fn typed<T: serde::de::DeserializeOwned>(object: &Value, kind: &'static str) -> Result<T, Error> {
    serde_json::from_value(object.clone()).map_err(|source| Error::Object {
        kind,
        name: object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_owned(),
        source,
    })
}

fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Controlled by `owner`: by uid when both sides have one (a recreated
/// Deployment with the same name must not inherit old ReplicaSets), else by name.
fn controlled_by(meta: &ObjectMeta, kind: &str, owner: &ObjectMeta) -> bool {
    controller_ref(meta).is_some_and(|r| {
        r.kind == kind
            && match owner.uid.as_deref() {
                Some(uid) if !r.uid.is_empty() => r.uid == uid,
                _ => Some(r.name.as_str()) == owner.name.as_deref(),
            }
    })
}

/// Same namespace, or either side has none (an offline snapshot may omit it).
fn same_namespace(namespace: Option<&str>, meta: &ObjectMeta) -> bool {
    match (namespace, meta.namespace.as_deref()) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// The owner `object` is the one `reference` names: its uid matches when
/// both have one.
fn same_uid(object: &Value, reference: &OwnerReference) -> Result<(), String> {
    match object.pointer("/metadata/uid").and_then(Value::as_str) {
        Some(uid) if !reference.uid.is_empty() && uid != reference.uid => Err(format!(
            "{} {} has uid {uid}, the pod's owner reference says {}",
            reference.kind, reference.name, reference.uid
        )),
        _ => Ok(()),
    }
}

/// The server's generation rules for a write from `before` to `after`
/// (tests/fixtures/k8s/README.md): a Deployment's generation moves on any
/// change, annotations included; a StatefulSet's and DaemonSet's only on a
/// spec change, and a DaemonSet's template change also moves its
/// `deprecated.daemonset.template.generation` annotation (when it has one).
fn bump_generation(kind: WorkloadKind, before: &Value, after: &mut Value) {
    let changed = match kind {
        WorkloadKind::Deployment => before != after,
        _ => before.get("spec") != after.get("spec"),
    };
    if !changed {
        return;
    }
    let template_changed = before.pointer("/spec/template") != after.pointer("/spec/template");
    let Some(meta) = after.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let next = meta.get("generation").and_then(Value::as_i64).unwrap_or(0) + 1;
    meta.insert("generation".into(), Value::from(next));
    let template_generation = meta
        .get_mut("annotations")
        .and_then(|a| a.get_mut(TEMPLATE_GENERATION));
    if let (WorkloadKind::DaemonSet, true, Some(value)) =
        (kind, template_changed, template_generation)
    {
        let current = value
            .as_str()
            .and_then(|g| g.parse::<i64>().ok())
            .unwrap_or(0);
        *value = Value::from((current + 1).to_string());
    }
}

/// The DaemonSet's `spec.templateGeneration`, which apps/v1 shows as this
/// annotation.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod kinds_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const DEPLOY: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"demo","uid":"d1"},"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"spec":{"containers":[{"name":"app","image":"app:1"}]}}}}"#;

    fn rs(name: &str, owner_uid: &str, namespace: &str) -> Value {
        json!({
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": format!("uid-{name}"),
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                    "uid": owner_uid, "controller": true
                }]
            },
            "spec": { "selector": { "matchLabels": { "app": "web" } } }
        })
    }

    #[test]
    fn typed_list_items_get_kind_and_api_version() {
        let list = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSetList",
            "items": [rs("web-1", "d1", "demo")]
        });
        let snap = Snapshot::parse(&list.to_string()).unwrap();
        assert_eq!(snap.format(), Format::Json);
        assert_eq!(snap.objects()[0]["kind"], "ReplicaSet");
        assert_eq!(snap.objects()[0]["apiVersion"], "apps/v1");
    }

    #[test]
    fn multi_document_yaml_with_lists_and_single_objects() {
        let deploy: Value = serde_json::from_str(DEPLOY).unwrap();
        let mut other_owner = rs("web-old", "someone-else", "demo");
        other_owner["kind"] = json!("ReplicaSet");
        let text = format!(
            "---\n{}\n---\n# empty document follows\n---\n{}\n",
            serde_saphyr::to_string(&deploy).unwrap(),
            serde_saphyr::to_string(&json!({
                "apiVersion": "v1", "kind": "List",
                "items": [
                    { "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": rs("web-1", "d1", "demo")["metadata"], "spec": rs("web-1", "d1", "demo")["spec"] },
                    { "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": rs("web-2", "d1", "other")["metadata"], "spec": rs("web-2", "d1", "other")["spec"] },
                    other_owner
                ]
            }))
            .unwrap()
        );
        let snap = Snapshot::parse(&text).unwrap();
        assert_eq!(snap.format(), Format::Yaml);
        assert_eq!(snap.objects().len(), 4);
        let d = snap.deployment("demo", "web").unwrap();
        let owned: Vec<_> = snap
            .replica_sets_of(&d)
            .unwrap()
            .into_iter()
            .map(|r| r.metadata.name.unwrap())
            .collect();
        // Other namespace and other owner uid are not this Deployment's history.
        assert_eq!(owned, vec!["web-1".to_owned()]);
        // Written back as one kind: List that parses to the same objects.
        let again = Snapshot::parse(&snap.render().unwrap()).unwrap();
        assert_eq!(again, snap);
    }

    #[test]
    fn bad_snapshots_are_typed_errors() {
        assert!(matches!(Snapshot::parse("[1, 2"), Err(Error::Yaml { .. })));
        assert!(matches!(
            Snapshot::parse("{\"kind\":"),
            Err(Error::Json { .. })
        ));
        assert!(matches!(Snapshot::parse(""), Err(Error::Invalid(_))));
        assert!(matches!(
            Snapshot::parse("- a\n- b\n"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            Snapshot::parse("kind: List\nitems:\n- metadata: {name: x}\n"),
            Err(Error::Invalid(m)) if m.contains("no `kind`")
        ));
        let snap =
            Snapshot::parse(r#"{"kind":"Deployment","metadata":{"name":"web"},"spec":"nonsense"}"#)
                .unwrap();
        assert!(matches!(
            snap.deployment("demo", "web"),
            Err(Error::Object {
                kind: "Deployment",
                ..
            })
        ));
        assert!(matches!(
            snap.deployment("demo", "api"),
            Err(Error::WorkloadNotFound {
                kind: WorkloadKind::Deployment,
                ..
            })
        ));
    }

    #[test]
    fn pod_without_owner_chain_is_a_typed_error() {
        let text = json!({
            "kind": "List", "apiVersion": "v1",
            "items": [
                serde_json::from_str::<Value>(DEPLOY).unwrap(),
                { "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "bare", "namespace": "demo" } },
                { "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "orphan", "namespace": "demo",
                  "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-gone", "uid": "x", "controller": true }] } }
            ]
        })
        .to_string();
        let snap = Snapshot::parse(&text).unwrap();
        assert!(
            matches!(snap.resolve_pod("demo", "bare"), Err(Error::PodOwner { reason, .. }) if reason.contains("not controlled"))
        );
        assert!(
            matches!(snap.resolve_pod("demo", "orphan"), Err(Error::PodOwner { reason, .. }) if reason.contains("web-gone"))
        );
        assert!(matches!(
            snap.resolve_pod("demo", "ghost"),
            Err(Error::PodNotFound { .. })
        ));
    }

    /// The recorded `shop/checkout` snapshot the README and the CLI tests use.
    const CHECKOUT: &str = include_str!("../../../examples/checkout-snapshot.yaml");

    /// Plan and apply a request given as JSON, with the default policy.
    fn run(snap: &mut Snapshot, request: &str) -> Result<RemediationOutcome, Error> {
        let request = RemediationRequest::from_json(request).unwrap();
        snap.remediate(&request, &Policy::default(), now())
    }

    /// `request` run on the example snapshot: the snapshot before and after,
    /// and the outcome.
    fn run_on_checkout(request: &str) -> (Snapshot, Snapshot, RemediationOutcome) {
        let mut snap = Snapshot::parse(CHECKOUT).unwrap();
        let before = snap.clone();
        let outcome = run(&mut snap, request).unwrap();
        (before, snap, outcome)
    }

    fn now() -> jiff::Timestamp {
        "2026-11-26T20:00:00Z".parse().unwrap()
    }

    fn images(snap: &Snapshot) -> Vec<String> {
        let d = snap.deployment("shop", "checkout").unwrap();
        let template = d.spec.unwrap().template;
        selfheal_core::history::container_images(&template)
            .map(|(_, image)| image.to_owned())
            .collect()
    }

    #[test]
    fn rollback_patches_the_deployment_in_memory_and_bumps_generation() {
        let (before, snap, outcome) = run_on_checkout(
            r#"{"action":"rollback","target":{"namespace":"shop","deployment":"checkout","container":"api"}}"#,
        );
        assert_eq!(outcome.status, OutcomeStatus::Applied);
        // Half-brick: only `api` goes back, the envoy sidecar keeps its image.
        assert_eq!(
            images(&snap),
            [
                "registry.example/shop/api:1.1.0",
                "registry.example/envoy:1.28"
            ]
        );
        let deployment = snap.deployment("shop", "checkout").unwrap();
        assert_eq!(deployment.metadata.generation, Some(5));
        // Nothing but the Deployment changed.
        let changed: Vec<_> = before
            .objects()
            .iter()
            .zip(snap.objects())
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a["kind"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(changed, ["Deployment"]);
        // And the result still renders and re-parses to the same objects.
        let again = Snapshot::parse(&snap.render().unwrap()).unwrap();
        assert_eq!(again, snap);
    }

    #[test]
    fn dry_run_and_pod_target_keep_the_objects() {
        let (before, snap, outcome) = run_on_checkout(
            r#"{"action":"rollback","dryRun":true,"target":{"namespace":"shop","pod":"checkout-64db67cc5-b984x"}}"#,
        );
        assert_eq!(outcome.status, OutcomeStatus::DryRun);
        assert_eq!(
            outcome.target.pod.as_deref(),
            Some("checkout-64db67cc5-b984x")
        );
        assert_eq!(outcome.target.deployment.as_deref(), Some("checkout"));
        assert_eq!(snap, before);
    }

    #[test]
    fn request_without_target_is_a_typed_error() {
        let mut snap = Snapshot::parse(CHECKOUT).unwrap();
        // Built without `from_json`'s validation, as the fuzz target does.
        let unvalidated: RemediationRequest =
            serde_json::from_value(json!({"action": "pause", "target": {"namespace": "shop"}}))
                .unwrap();
        let err = snap
            .remediate(&unvalidated, &Policy::default(), now())
            .unwrap_err();
        assert!(matches!(err, Error::Request { .. }), "{err:?}");
        assert!(err.to_string().contains("`daemonSet` or `pod`"), "{err}");
    }

    #[test]
    fn messages_name_the_snapshot() {
        let snap = Snapshot::parse(CHECKOUT).unwrap();
        assert_eq!(
            snap.deployment("shop", "payments").unwrap_err().to_string(),
            "deployment shop/payments not found in snapshot"
        );
        let err = Snapshot::parse("{\"kind\":\n").unwrap_err();
        assert!(
            err.to_string().starts_with("snapshot is not valid JSON: "),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
