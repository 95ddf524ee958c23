//! The `planners` target: arbitrary Deployment/ReplicaSet and
//! StatefulSet/DaemonSet/ControllerRevision objects and requests through
//! [`selfheal_core::decide`] and [`selfheal_core::rollout_status`].
//!
//! Two input modes, chosen by the first byte:
//! - `{`: a JSON [`Case`] (`request`, one of `deployment` (with
//!   `replicaSets`), `statefulSet` or `daemonSet` (with
//!   `controllerRevisions`), optional `pods`, `policy` and `now`), so
//!   recorded objects are seeds as they are (fuzz/corpus/planners/, made by
//!   fuzz/make_seeds.py);
//! - anything else: bytes read by `arbitrary` as [`Mutations`] of one of the
//!   recorded bases in fuzz/bases/: annotation, label, image, container,
//!   status, ownership and field edits drawn from a vocabulary of the values
//!   the planners parse (revision numbers, revision-history lists, the audit
//!   annotations, timestamps). Byte-level mutation of JSON mostly produces
//!   invalid JSON; this mode reaches the planners' rules instead.
//!
//! Properties checked when a plan comes back (beyond "no panic"):
//! - the patch starts with a `test` of `/metadata/generation` (the value the
//!   planner saw), then a `test` of `/metadata/labels` iff there are labels,
//!   then (StatefulSet, DaemonSet) a `test` of `/metadata/annotations` iff
//!   there are annotations;
//! - it applies (`json_patch::patch`) to the object the planner saw, and
//!   still applies after a status-only write (new resourceVersion and status);
//! - the result differs from the input only under paths the patch writes;
//! - the result is still an object of the same kind; its rollout status
//!   evaluates;
//! - a StatefulSet or DaemonSet held by selfheal's pause and then resumed
//!   gets its update strategy back exactly;
//! - a half-brick rollback that names no container, whatever the pods'
//!   statuses say, reverts only containers whose image differs from the
//!   newest older revision (the pods' evidence narrows the choice, never
//!   widens it).

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use json_patch::PatchOperation;
use json_patch::jsonptr::Pointer;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use selfheal_core::history::{self, History};
use selfheal_core::workload::default_strategy;
use selfheal_core::{
    Action, AlarmRef, Decision, OutcomeStatus, Plan, PlanInput, Policy, RemediationRequest, Scope,
    Target, ValidRequest, WorkloadKind, WorkloadRef, decide, keys, rollout_status,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// JSON-mode input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    pub request: RemediationRequest,
    #[serde(default)]
    pub deployment: Value,
    #[serde(default)]
    pub replica_sets: Vec<Value>,
    /// Instead of `deployment`: a StatefulSet …
    #[serde(default)]
    pub stateful_set: Option<Value>,
    /// … or a DaemonSet, with its ControllerRevisions.
    #[serde(default)]
    pub daemon_set: Option<Value>,
    #[serde(default)]
    pub controller_revisions: Vec<Value>,
    /// Pods with statuses, the evidence for the half-brick choice.
    #[serde(default)]
    pub pods: Vec<Value>,
    #[serde(default)]
    pub policy: CasePolicy,
    /// Unix seconds; default 2026-11-26T20:00:00Z.
    #[serde(default)]
    pub now: Option<i64>,
}

/// Policy overrides; unset fields keep [`Policy::default`] except
/// `requireOptIn`, which the bases satisfy with the opt-in label.
#[derive(Debug, Clone, Default, Deserialize, Arbitrary)]
#[serde(rename_all = "camelCase")]
pub struct CasePolicy {
    pub require_opt_in: Option<bool>,
    pub allowed_namespaces: Option<Vec<String>>,
    pub denied_namespaces: Option<Vec<String>>,
    pub cooldown_seconds: Option<u32>,
    pub allow_gitops: Option<bool>,
    pub dry_run: Option<bool>,
    pub pause_impact_threshold: Option<f64>,
}

impl CasePolicy {
    fn policy(&self) -> Policy {
        let mut p = Policy::default();
        if let Some(v) = self.require_opt_in {
            p.require_opt_in = v;
        }
        if let Some(v) = &self.allowed_namespaces {
            p.allowed_namespaces = Some(v.clone());
        }
        if let Some(v) = &self.denied_namespaces {
            p.denied_namespaces = v.clone();
        }
        if let Some(v) = self.cooldown_seconds {
            p.cooldown = std::time::Duration::from_secs(u64::from(v));
        }
        if let Some(v) = self.allow_gitops {
            p.allow_gitops = v;
        }
        if let Some(v) = self.dry_run {
            p.dry_run = v;
        }
        if let Some(v) = self.pause_impact_threshold {
            p.pause_impact_threshold = v;
        }
        p
    }
}

const DEFAULT_NOW: i64 = 1_795_723_200; // 2026-11-26T20:00:00Z

fn timestamp(seconds: Option<i64>) -> jiff::Timestamp {
    let fallback = jiff::Timestamp::from_second(DEFAULT_NOW).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    seconds
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(fallback)
}

/// With `SELFHEAL_FUZZ_STATS` set, print what each input led to, so a
/// corpus can be checked for depth (`fuzz/README.md`, "Is it reaching the
/// planners?"). Read once; a no-op otherwise.
fn note(verdict: &str) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("SELFHEAL_FUZZ_STATS").is_some()) {
        eprintln!("selfheal-fuzz verdict: {verdict}");
    }
}

/// Entry point of the `planners` target.
pub fn planners(data: &[u8]) {
    if data.first() == Some(&b'{') {
        let Ok(case) = serde_json::from_slice::<Case>(data) else {
            return note("json-unreadable");
        };
        run(&case);
    } else {
        let mut u = Unstructured::new(data);
        let Ok(mutations) = Mutations::arbitrary(&mut u) else {
            return note("arbitrary-unreadable");
        };
        match mutations.apply() {
            Some(case) => run(&case),
            None => note("no-case"),
        }
    }
}

/// The workload a case names: its kind and JSON.
fn workload_of(case: &Case) -> (WorkloadKind, &Value) {
    match (&case.stateful_set, &case.daemon_set) {
        (Some(sts), _) => (WorkloadKind::StatefulSet, sts),
        (None, Some(ds)) => (WorkloadKind::DaemonSet, ds),
        (None, None) => (WorkloadKind::Deployment, &case.deployment),
    }
}

/// A typed workload of any kind, owned.
enum Owned {
    Deployment(Deployment),
    StatefulSet(StatefulSet),
    DaemonSet(DaemonSet),
}

impl Owned {
    fn parse(kind: WorkloadKind, value: &Value) -> Option<Owned> {
        let value = value.clone();
        Some(match kind {
            WorkloadKind::Deployment => Owned::Deployment(serde_json::from_value(value).ok()?),
            WorkloadKind::StatefulSet => Owned::StatefulSet(serde_json::from_value(value).ok()?),
            WorkloadKind::DaemonSet => Owned::DaemonSet(serde_json::from_value(value).ok()?),
        })
    }

    fn get(&self) -> WorkloadRef<'_> {
        match self {
            Owned::Deployment(d) => d.into(),
            Owned::StatefulSet(s) => s.into(),
            Owned::DaemonSet(d) => d.into(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Owned::Deployment(d) => serde_json::to_value(d),
            Owned::StatefulSet(s) => serde_json::to_value(s),
            Owned::DaemonSet(d) => serde_json::to_value(d),
        }
        .expect("a workload serializes")
    }
}

fn parsed<T: serde::de::DeserializeOwned>(values: &[Value]) -> Vec<T> {
    values
        .iter()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect()
}

/// Plan `case` and check the properties listed in the module docs.
pub fn run(case: &Case) {
    let (kind, value) = workload_of(case);
    let Some(owned) = Owned::parse(kind, value) else {
        return note(&format!("not-a-{}", kind.noun()));
    };
    let replica_sets: Vec<ReplicaSet> = parsed(&case.replica_sets);
    let revisions: Vec<ControllerRevision> = parsed(&case.controller_revisions);
    let pods: Vec<Pod> = parsed(&case.pods);
    let workload = owned.get();
    let _ = rollout_status(workload);
    let policy = case.policy.policy();
    let now = timestamp(case.now);
    // Planning takes a validated request, as every adapter hands it over;
    // one that fails the contract's checks is noted as an error.
    let request = match ValidRequest::new(case.request.clone()) {
        Ok(request) => request,
        Err(e) => return note(&format!("error: {e}")),
    };
    let plan_for = |workload: WorkloadRef<'_>, request: &ValidRequest| {
        decide(PlanInput {
            request,
            workload,
            replica_sets: &replica_sets,
            controller_revisions: &revisions,
            pods: &pods,
            policy: &policy,
            now,
        })
    };
    let decision = match plan_for(workload, &request) {
        Ok(decision) => decision,
        Err(e) => return note(&format!("error: {e}")),
    };
    let plan = match decision {
        Decision::Done(outcome) => {
            assert!(
                matches!(
                    outcome.status,
                    OutcomeStatus::Skipped | OutcomeStatus::Refused
                ),
                "a decision without a patch reports {:?}",
                outcome.status
            );
            assert_eq!(
                outcome.guard.is_some(),
                outcome.status == OutcomeStatus::Refused,
                "guard set iff refused: {outcome:?}"
            );
            return note(&format!("{:?} {:?}", outcome.status, outcome.guard));
        }
        Decision::Apply(plan) => plan,
    };
    assert_eq!(plan.outcome.status, OutcomeStatus::Applied);
    if case.request.action == Action::Rollback
        && case.request.scope == Scope::Container
        && case.request.target.container.is_none()
    {
        let changed = changed_containers(workload, &replica_sets, &revisions);
        for c in &plan.outcome.changes {
            assert!(
                changed.contains(&c.container.as_str()),
                "rolled back {:?}, whose image did not change (changed: {changed:?}); evidence: {:?}",
                c.container,
                plan.outcome.evidence
            );
        }
    }
    check_guard_prefix(workload, &plan);
    let after = check_applies(&owned.json(), &plan);
    let Some(patched) = Owned::parse(kind, &after) else {
        panic!("patched object is no longer a {kind}: {after}");
    };
    let _ = rollout_status(patched.get());
    if kind != WorkloadKind::Deployment && case.request.action == Action::Pause {
        // Resume selfheal's own hold: the strategy comes back exactly.
        let mut resume = case.request.clone();
        resume.action = Action::Resume;
        resume.alarm = None;
        if let Ok(resume) = ValidRequest::new(resume)
            && let Ok(Decision::Apply(plan)) = plan_for(patched.get(), &resume)
        {
            let mut resumed = after.clone();
            json_patch::patch(&mut resumed, &plan.patch)
                .unwrap_or_else(|e| panic!("the resume of selfheal's hold does not apply: {e}"));
            let expected = workload
                .update_strategy()
                .unwrap_or_else(|| default_strategy(kind));
            assert_eq!(
                resumed.pointer("/spec/updateStrategy"),
                Some(&expected),
                "pause then resume changed the update strategy"
            );
        }
    }
    note(&format!(
        "applied {kind} {:?} {:?}",
        case.request.action, case.request.scope
    ));
}

/// `test /metadata/generation` (the value the planner saw), then
/// `test /metadata/labels` iff there are labels, then (StatefulSet,
/// DaemonSet) `test /metadata/annotations` iff there are annotations.
fn check_guard_prefix(workload: WorkloadRef<'_>, plan: &Plan) {
    let generation = workload.generation().map(Value::from);
    match plan.patch.0.first() {
        Some(PatchOperation::Test(t))
            if t.path.as_str() == "/metadata/generation"
                && Some(&t.value) == generation.as_ref() => {}
        other => panic!(
            "patch does not start with test /metadata/generation = {generation:?}: {other:?}"
        ),
    }
    let meta = workload.metadata();
    let has_labels = meta.labels.as_ref().is_some_and(|l| !l.is_empty());
    let tests = |i: usize, path: &str| {
        matches!(plan.patch.0.get(i),
            Some(PatchOperation::Test(t)) if t.path.as_str() == path)
    };
    assert_eq!(
        has_labels,
        tests(1, "/metadata/labels"),
        "labels tested iff present: {:?}",
        plan.patch
    );
    if !workload.generation_covers_annotations() {
        let has_annotations = meta.annotations.as_ref().is_some_and(|a| !a.is_empty());
        assert_eq!(
            has_annotations,
            tests(1 + usize::from(has_labels), "/metadata/annotations"),
            "a {} patch tests its annotations iff present: {:?}",
            workload.kind(),
            plan.patch
        );
    }
}

/// The patch applies to `before`, still applies after a status-only write,
/// and changes nothing outside the paths it names; the patched object.
fn check_applies(before: &Value, plan: &Plan) -> Value {
    let mut after = before.clone();
    if let Err(e) = json_patch::patch(&mut after, &plan.patch) {
        panic!(
            "planned patch does not apply to the object it was planned for: {e}\npatch: {}\nobject: {before}",
            serde_json::to_string(&plan.patch).unwrap_or_default()
        );
    }
    let mut churned = before.clone();
    churned["metadata"]["resourceVersion"] = json!("fuzz-status-write");
    churned["status"] = json!({"observedGeneration": 0, "replicas": 99, "unavailableReplicas": 99});
    if let Err(e) = json_patch::patch(&mut churned, &plan.patch) {
        panic!(
            "a status-only write made the planned patch fail: {e}\npatch: {}",
            serde_json::to_string(&plan.patch).unwrap_or_default()
        );
    }
    let written: Vec<&Pointer> = plan
        .patch
        .0
        .iter()
        .flat_map(|op| match op {
            PatchOperation::Test(_) => vec![],
            PatchOperation::Move(m) => vec![m.path.as_ref(), m.from.as_ref()],
            other => vec![other.path()],
        })
        .collect();
    for change in json_patch::diff(before, &after).0 {
        let path = change.path();
        assert!(
            written.iter().any(|w| path.starts_with(w)),
            "patch changed {path}, which no op of the patch names\npatch: {}",
            serde_json::to_string(&plan.patch).unwrap_or_default()
        );
    }
    after
}

/// The containers (init containers included) whose image differs between the
/// Deployment's template and the newest older revision: "older" skips
/// revisions that equal the template apart from `restartedAt`, as the
/// half-brick planner does (docs/kubectl-semantics.md §2).
fn changed_containers<'d>(
    workload: WorkloadRef<'d>,
    replica_sets: &[ReplicaSet],
    revisions: &[ControllerRevision],
) -> Vec<&'d str> {
    fn without_restart(t: &PodTemplateSpec) -> PodTemplateSpec {
        let mut t = t.clone();
        if let Some(meta) = t.metadata.as_mut() {
            if let Some(annotations) = meta.annotations.as_mut() {
                annotations.remove(keys::RESTARTED_AT);
            }
            if meta.annotations.as_ref().is_some_and(|a| a.is_empty()) {
                meta.annotations = None;
            }
        }
        t
    }
    let Some(current) = workload.template() else {
        return Vec::new();
    };
    let history = History::of_workload(workload, replica_sets, revisions);
    let newest_older = history.newest_first().find(|r| {
        r.template().is_some_and(|t| {
            !(t.spec == current.spec
                && history::equal_ignoring_hash(&without_restart(t), &without_restart(current)))
        })
    });
    let Some(older) = newest_older else {
        return Vec::new();
    };
    history::container_images(current)
        .filter(|(name, image)| older.image(name).is_some_and(|old| old != *image))
        .map(|(name, _)| name)
        .collect()
}

// ------------------------------------------------------------ arbitrary mode --

fn bases() -> &'static [Value] {
    static BASES: OnceLock<Vec<Value>> = OnceLock::new();
    BASES.get_or_init(|| {
        [
            include_str!("../bases/base0.json"),
            include_str!("../bases/base1.json"),
            include_str!("../bases/base2.json"),
            include_str!("../bases/base3.json"),
            include_str!("../bases/base4.json"),
        ]
        .iter()
        .filter_map(|text| serde_json::from_str(text).ok())
        .collect()
    })
}

/// Values the planners parse or compare; `Raw` lets the fuzzer go elsewhere.
const VOCABULARY: &[&str] = &[
    "",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "8",
    "-1",
    "01",
    " 3",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1,2",
    "3,5",
    "1,,2",
    ",",
    "true",
    "false",
    "selfheal",
    "someone-else",
    "api",
    "envoy",
    "app",
    "sidecar",
    "checkout",
    "web",
    "shop",
    "watchdemo",
    "kube-system",
    "registry.example/shop/api:1.0.0",
    "registry.example/shop/api:1.1.0",
    "registry.example/shop/api:1.2.0",
    "registry.example/envoy:1.27",
    "registry.example/envoy:1.28",
    "registry.example/watchdemo/app:1.0.0",
    "registry.example/watchdemo/app:1.1.0",
    "registry.example/watchdemo/sidecar:1.0.0",
    "2026-11-26T20:00:00Z",
    "2026-11-26T19:59:00Z",
    "2026-11-26T21:00:00Z",
    "9999-12-31T23:59:59Z",
    "not a time",
    r#"{"action":"rollback","at":"2026-11-26T19:59:00Z","execution":null,"changes":[{"container":"api","from":"registry.example/shop/api:1.2.0","to":"registry.example/shop/api:1.1.0"}]}"#,
    r#"{"action":"pause","at":"2026-11-26T19:59:30Z","execution":"e1","changes":[]}"#,
    r#"{"action":"restart","at":"9999-12-31T23:59:59Z","execution":null,"changes":[]}"#,
    r#"[{"action":"rollback","at":"2026-11-26T19:58:00Z","execution":null,"reason":"5xx","changes":[{"container":"api","from":"registry.example/shop/api:1.2.0","to":"registry.example/shop/api:1.1.0"}]},{"action":"pause","at":"2026-11-26T19:59:00Z","execution":"e1","reason":null,"changes":[]},{"action":"resume","at":"2026-11-26T19:59:30Z","execution":"e1","changes":[]}]"#,
    r#"[{"action":"pause"},7,{"action":"rollback","at":"not a time","changes":[]}]"#,
    r#"{"api":["registry.example/shop/api:1.2.0"]}"#,
    r#"{"api":["registry.example/shop/api:1.1.0","registry.example/shop/api:1.0.0"],"envoy":["registry.example/envoy:1.28"]}"#,
    r#"{"api":3}"#,
    "[]",
    "3a4925c1-786f-4b23-adb6-0d3b57e345db",
    "ledger",
    "node-agent",
    "data",
    "db",
    "metrics",
    "agent",
    "registry.example/data/db:15.1",
    "registry.example/data/db:15.2",
    "registry.example/data/db:15.3",
    "registry.example/obs/agent:2.1",
    "registry.example/obs/agent:2.2",
    "ledger-6bf67cdfbc",
    "ledger-59588b4d6",
    "69dcdbd67c",
    "RollingUpdate",
    "OnDelete",
    r#"{"type":"RollingUpdate","rollingUpdate":{"partition":0}}"#,
    r#"{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":0}}"#,
    r#"{"type":"OnDelete"}"#,
    r#"{"type":7}"#,
    r#"{"rollingUpdate":{"partition":2}}"#,
    "ProgressDeadlineExceeded",
    "NewReplicaSetAvailable",
    "Progressing",
    "Available",
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
];

/// Keys the planners and guards read.
const KEYS: &[&str] = &[
    keys::ENABLED_LABEL,
    keys::LAST_REMEDIATION,
    keys::HISTORY,
    keys::BAD_IMAGES,
    keys::PAUSED_BY,
    keys::REVISION,
    keys::REVISION_HISTORY,
    keys::DESIRED_REPLICAS,
    keys::MAX_REPLICAS,
    keys::LAST_APPLIED,
    keys::ROLLBACK_TO,
    keys::RESTARTED_AT,
    keys::POD_TEMPLATE_HASH,
    keys::CHANGE_CAUSE,
    keys::HELD_STRATEGY,
    keys::CONTROLLER_REVISION_HASH,
    "argocd.argoproj.io/tracking-id",
    "argocd.argoproj.io/instance",
    "kustomize.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/name",
    "app",
    "a/b~c",
];

#[derive(Debug, Arbitrary)]
enum Text {
    Known(u8),
    Raw(String),
}

impl Text {
    fn get(&self) -> String {
        self.pick(VOCABULARY)
    }

    /// The known word `i` of `words` (wrapping), or the raw text.
    fn pick(&self, words: &[&str]) -> String {
        match self {
            Text::Known(i) => words[usize::from(*i) % words.len()].to_owned(),
            Text::Raw(s) => s.clone(),
        }
    }
}

/// A label or annotation key: mostly one of [`KEYS`], sometimes any text.
#[derive(Debug, Arbitrary)]
struct Key(Text);

impl Key {
    fn get(&self) -> String {
        self.0.pick(KEYS)
    }
}

/// One edit of a workload or of a revision object (ReplicaSet,
/// ControllerRevision); the paths are the same where the kinds share them.
#[derive(Debug, Arbitrary)]
enum Edit {
    SetAnnotation(Key, Text),
    RemoveAnnotation(Key),
    SetLabel(Key, Text),
    RemoveLabel(Key),
    SetTemplateLabel(Key, Text),
    SetTemplateAnnotation(Key, Text),
    SetSelectorLabel(Key, Text),
    AddSelectorExpression {
        key: Key,
        operator: Text,
        values: Vec<Text>,
    },
    SetImage {
        container: u8,
        image: Text,
    },
    RemoveImage(u8),
    SetContainerName {
        container: u8,
        name: Text,
    },
    RemoveContainer(u8),
    DuplicateContainer(u8),
    SwapContainers(u8, u8),
    SetPaused(Option<bool>),
    SetGeneration(Option<i64>),
    SetObservedGeneration(Option<i64>),
    SetReplicas(Option<i32>),
    SetStatusCount {
        field: u8,
        value: Option<i32>,
    },
    AddCondition {
        kind: Text,
        status: u8,
        reason: Text,
    },
    ClearConditions,
    SetName(Text),
    SetNamespace(Option<Text>),
    SetUid(Option<Text>),
    SetResourceVersion(Option<Text>),
    SetOwnerUid(Option<Text>),
    SetOwnerController(Option<bool>),
    SetOwnerKind(Text),
    RemoveOwnerReferences,
    RemoveAnnotations,
    RemoveTemplateMetadata,
    RemoveTemplateSpec,
    RemoveSpec,
    RemoveStatus,
    /// StatefulSet/DaemonSet `spec.updateStrategy.type`.
    SetStrategyType(Text),
    /// StatefulSet `spec.updateStrategy.rollingUpdate.partition`.
    SetPartition(Option<i32>),
    RemoveUpdateStrategy,
    /// StatefulSet `status.currentRevision` / `status.updateRevision`.
    SetStatusRevision {
        update: bool,
        value: Option<Text>,
    },
    /// A ControllerRevision's `revision`.
    SetRevisionNumber(i64),
    /// A ControllerRevision's template image, in `data.spec.template`.
    SetRevisionImage {
        container: u8,
        image: Text,
    },
    RemoveRevisionData,
}

#[derive(Debug, Arbitrary)]
struct ArbRequest {
    action: u8,
    template_scope: bool,
    /// 0: the base's deployment, 1: another name, 2: a pod.
    target: u8,
    namespace: Option<Text>,
    container: Option<Text>,
    cluster: Option<Text>,
    reason: Option<String>,
    dry_run: bool,
    force: bool,
    to_revision: Option<i64>,
    approval: bool,
    alarm: Option<(Option<Text>, Option<f64>)>,
    execution: Option<Text>,
}

/// One container status as the kubelet might report it.
#[derive(Debug, Arbitrary)]
struct ArbStatus {
    /// Index into the template's containers (init containers first); past
    /// the end, a name the template does not have.
    container: u8,
    /// 0 running, 1 waiting, 2 terminated, else no state.
    state: u8,
    reason: Text,
    ready: bool,
    restarts: i32,
    exit_code: i32,
    last_exit_code: Option<i32>,
}

/// A pod of one of the ReplicaSets (or of none), with arbitrary statuses.
#[derive(Debug, Arbitrary)]
struct ArbPod {
    /// Which ReplicaSet's `pod-template-hash` it carries (past the end: none).
    replica_set: u8,
    statuses: Vec<ArbStatus>,
    init_statuses: Vec<ArbStatus>,
    without_status: bool,
}

const WAITING_REASONS: [&str; 8] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "ContainerCreating",
    "PodInitializing",
    "RunContainerError",
    "",
];

impl ArbStatus {
    fn json(&self, names: &[String]) -> Value {
        let name = names
            .get(usize::from(self.container))
            .cloned()
            .unwrap_or_else(|| format!("unknown-{}", self.container));
        let reason = match &self.reason {
            Text::Known(i) => WAITING_REASONS[usize::from(*i) % WAITING_REASONS.len()].to_owned(),
            raw => raw.get(),
        };
        let state = match self.state % 4 {
            0 => json!({"running": {"startedAt": "2026-11-26T19:50:00Z"}}),
            1 => json!({"waiting": {"reason": reason, "message": "fuzz"}}),
            2 => json!({"terminated": {"exitCode": self.exit_code, "reason": reason}}),
            _ => json!({}),
        };
        let last = self.last_exit_code.map_or_else(
            || json!({}),
            |code| json!({"terminated": {"exitCode": code, "reason": "Error"}}),
        );
        json!({"name": name, "image": "fuzz", "imageID": "", "ready": self.ready,
               "restartCount": self.restarts, "state": state, "lastState": last})
    }
}

impl ArbPod {
    fn json(
        &self,
        kind: WorkloadKind,
        deployment: &Value,
        replica_sets: &[Value],
        i: usize,
    ) -> Value {
        let names: Vec<String> = ["initContainers", "containers"]
            .iter()
            .filter_map(|list| deployment.pointer(&format!("/spec/template/spec/{list}")))
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        let mut labels = deployment
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}));
        // The label a revision's pods carry: a ReplicaSet's hash, a
        // DaemonSet revision's hash label, a StatefulSet revision's name.
        let (key, pointers) = match kind {
            WorkloadKind::Deployment => (
                keys::POD_TEMPLATE_HASH,
                &["/metadata/labels/pod-template-hash"][..],
            ),
            _ => (
                keys::CONTROLLER_REVISION_HASH,
                &[
                    "/metadata/labels/controller-revision-hash",
                    "/metadata/name",
                ][..],
            ),
        };
        if let Some(revision) = replica_sets.get(usize::from(self.replica_set))
            && let Some(hash) = pointers.iter().find_map(|p| revision.pointer(p))
            && let Some(map) = labels.as_object_mut()
        {
            map.insert(key.to_owned(), hash.clone());
        }
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("fuzz-{i}"), "namespace": deployment.pointer("/metadata/namespace"), "labels": labels},
            "spec": {"containers": []}});
        if !self.without_status {
            pod["status"] = json!({"phase": "Running",
                "containerStatuses": self.statuses.iter().map(|s| s.json(&names)).collect::<Vec<_>>(),
                "initContainerStatuses": self.init_statuses.iter().map(|s| s.json(&names)).collect::<Vec<_>>()});
        }
        pod
    }
}

/// Arbitrary-mode input: a base, a request and edits.
#[derive(Debug, Arbitrary)]
pub struct Mutations {
    base: u8,
    request: ArbRequest,
    policy: CasePolicy,
    now_offset: Option<i64>,
    deployment_edits: Vec<Edit>,
    replica_set_edits: Vec<(u8, Edit)>,
    drop_replica_sets: Vec<u8>,
    duplicate_replica_set: Option<u8>,
    pods: Vec<ArbPod>,
}

fn object<'v>(value: &'v mut Value, path: &[&str]) -> Option<&'v mut Map<String, Value>> {
    let mut here = value;
    for key in path {
        let map = here.as_object_mut()?;
        here = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if here.is_null() {
            *here = Value::Object(Map::new());
        }
    }
    here.as_object_mut()
}

fn remove(value: &mut Value, path: &[&str], key: &str) {
    if let Some(map) = object(value, path) {
        map.remove(key);
    }
}

fn containers(value: &mut Value) -> Option<&mut Vec<Value>> {
    object(value, &["spec", "template", "spec"])?
        .entry("containers")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
}

fn nth(len: usize, i: u8) -> Option<usize> {
    (len > 0).then(|| usize::from(i) % len)
}

/// Container `i` (wrapping) of the pod template, when there is one.
fn container(value: &mut Value, i: u8) -> Option<&mut Map<String, Value>> {
    let list = containers(value)?;
    let i = nth(list.len(), i)?;
    list[i].as_object_mut()
}

fn set(value: &mut Value, path: &[&str], key: &str, v: Value) {
    if let Some(map) = object(value, path) {
        map.insert(key.to_owned(), v);
    }
}

fn opt<T: Into<Value>>(v: Option<T>) -> Value {
    v.map_or(Value::Null, Into::into)
}

impl Edit {
    fn apply(&self, o: &mut Value) {
        match self {
            Edit::SetAnnotation(k, v) => {
                set(o, &["metadata", "annotations"], &k.get(), v.get().into());
            }
            Edit::RemoveAnnotation(k) => remove(o, &["metadata", "annotations"], &k.get()),
            Edit::SetLabel(k, v) => set(o, &["metadata", "labels"], &k.get(), v.get().into()),
            Edit::RemoveLabel(k) => remove(o, &["metadata", "labels"], &k.get()),
            Edit::SetTemplateLabel(k, v) => set(
                o,
                &["spec", "template", "metadata", "labels"],
                &k.get(),
                v.get().into(),
            ),
            Edit::SetTemplateAnnotation(k, v) => set(
                o,
                &["spec", "template", "metadata", "annotations"],
                &k.get(),
                v.get().into(),
            ),
            Edit::SetSelectorLabel(k, v) => set(
                o,
                &["spec", "selector", "matchLabels"],
                &k.get(),
                v.get().into(),
            ),
            Edit::AddSelectorExpression {
                key,
                operator,
                values,
            } => {
                if let Some(selector) = object(o, &["spec", "selector"]) {
                    let list = selector
                        .entry("matchExpressions")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Some(list) = list.as_array_mut() {
                        list.push(json!({
                            "key": key.get(),
                            "operator": operator.get(),
                            "values": values.iter().map(Text::get).collect::<Vec<_>>(),
                        }));
                    }
                }
            }
            Edit::SetImage {
                container: i,
                image,
            } => {
                if let Some(c) = container(o, *i) {
                    c.insert("image".into(), image.get().into());
                }
            }
            Edit::RemoveImage(i) => {
                if let Some(c) = container(o, *i) {
                    c.remove("image");
                }
            }
            Edit::SetContainerName { container: i, name } => {
                if let Some(c) = container(o, *i) {
                    c.insert("name".into(), name.get().into());
                }
            }
            Edit::RemoveContainer(container) => {
                if let Some(list) = containers(o)
                    && let Some(i) = nth(list.len(), *container)
                {
                    list.remove(i);
                }
            }
            Edit::DuplicateContainer(container) => {
                if let Some(list) = containers(o)
                    && let Some(i) = nth(list.len(), *container)
                {
                    let copy = list[i].clone();
                    list.push(copy);
                }
            }
            Edit::SwapContainers(a, b) => {
                if let Some(list) = containers(o)
                    && let (Some(a), Some(b)) = (nth(list.len(), *a), nth(list.len(), *b))
                {
                    list.swap(a, b);
                }
            }
            Edit::SetPaused(v) => set(o, &["spec"], "paused", opt(*v)),
            Edit::SetGeneration(v) => set(o, &["metadata"], "generation", opt(*v)),
            Edit::SetObservedGeneration(v) => set(o, &["status"], "observedGeneration", opt(*v)),
            Edit::SetReplicas(v) => set(o, &["spec"], "replicas", opt(*v)),
            Edit::SetStatusCount { field, value } => {
                const FIELDS: [&str; 11] = [
                    "replicas",
                    "updatedReplicas",
                    "readyReplicas",
                    "availableReplicas",
                    "unavailableReplicas",
                    "terminatingReplicas",
                    "currentReplicas",
                    "desiredNumberScheduled",
                    "updatedNumberScheduled",
                    "numberAvailable",
                    "currentNumberScheduled",
                ];
                let field = FIELDS[usize::from(*field) % FIELDS.len()];
                set(o, &["status"], field, opt(*value));
            }
            Edit::AddCondition {
                kind,
                status,
                reason,
            } => {
                if let Some(s) = object(o, &["status"]) {
                    let list = s
                        .entry("conditions")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    let status = ["True", "False", "Unknown"][usize::from(*status) % 3];
                    if let Some(list) = list.as_array_mut() {
                        list.push(json!({
                            "type": kind.get(),
                            "status": status,
                            "reason": reason.get(),
                        }));
                    }
                }
            }
            Edit::ClearConditions => remove(o, &["status"], "conditions"),
            Edit::SetName(v) => set(o, &["metadata"], "name", v.get().into()),
            Edit::SetNamespace(v) => {
                set(
                    o,
                    &["metadata"],
                    "namespace",
                    opt(v.as_ref().map(Text::get)),
                );
            }
            Edit::SetUid(v) => set(o, &["metadata"], "uid", opt(v.as_ref().map(Text::get))),
            Edit::SetResourceVersion(v) => set(
                o,
                &["metadata"],
                "resourceVersion",
                opt(v.as_ref().map(Text::get)),
            ),
            Edit::SetOwnerUid(v) => owner_field(o, "uid", opt(v.as_ref().map(Text::get))),
            Edit::SetOwnerController(v) => owner_field(o, "controller", opt(*v)),
            Edit::SetOwnerKind(v) => owner_field(o, "kind", v.get().into()),
            Edit::RemoveOwnerReferences => remove(o, &["metadata"], "ownerReferences"),
            Edit::RemoveAnnotations => remove(o, &["metadata"], "annotations"),
            Edit::RemoveTemplateMetadata => remove(o, &["spec", "template"], "metadata"),
            Edit::RemoveTemplateSpec => remove(o, &["spec", "template"], "spec"),
            Edit::RemoveSpec => remove(o, &[], "spec"),
            Edit::RemoveStatus => remove(o, &[], "status"),
            Edit::SetStrategyType(v) => set(o, &["spec", "updateStrategy"], "type", v.get().into()),
            Edit::SetPartition(v) => set(
                o,
                &["spec", "updateStrategy", "rollingUpdate"],
                "partition",
                opt(*v),
            ),
            Edit::RemoveUpdateStrategy => remove(o, &["spec"], "updateStrategy"),
            Edit::SetStatusRevision { update, value } => {
                let field = if *update {
                    "updateRevision"
                } else {
                    "currentRevision"
                };
                set(o, &["status"], field, opt(value.as_ref().map(Text::get)));
            }
            Edit::SetRevisionNumber(n) => set(o, &[], "revision", (*n).into()),
            Edit::SetRevisionImage {
                container: i,
                image,
            } => {
                let list = object(o, &["data", "spec", "template", "spec"])
                    .and_then(|spec| spec.get_mut("containers"))
                    .and_then(Value::as_array_mut);
                if let Some(list) = list
                    && let Some(i) = nth(list.len(), *i)
                    && let Some(c) = list[i].as_object_mut()
                {
                    c.insert("image".into(), image.get().into());
                }
            }
            Edit::RemoveRevisionData => remove(o, &[], "data"),
        }
    }
}

/// Edit the first ownerReference (kept a valid OwnerReference: required
/// string fields stay strings).
fn owner_field(o: &mut Value, field: &str, value: Value) {
    let Some(meta) = object(o, &["metadata"]) else {
        return;
    };
    let Some(Value::Array(list)) = meta.get_mut("ownerReferences") else {
        return;
    };
    if let Some(Value::Object(first)) = list.first_mut() {
        let required = matches!(field, "uid" | "kind");
        if value.is_null() && required {
            first.insert(field.to_owned(), Value::String(String::new()));
        } else {
            first.insert(field.to_owned(), value);
        }
    }
}

impl Mutations {
    /// The case these mutations describe (`replica_set_edits` edit a
    /// Deployment's ReplicaSets or a StatefulSet's or DaemonSet's
    /// ControllerRevisions).
    pub fn apply(&self) -> Option<Case> {
        let bases = bases();
        let base = &bases[nth(bases.len(), self.base)?];
        let kind = WorkloadKind::ALL
            .into_iter()
            .find(|k| base.get(k.field()).is_some())?;
        let mut deployment = base.get(kind.field())?.clone();
        let history_field = match kind {
            WorkloadKind::Deployment => "replicaSets",
            _ => "controllerRevisions",
        };
        let mut replica_sets: Vec<Value> = base
            .get(history_field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let name = deployment
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let base_namespace = deployment
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();

        for edit in &self.deployment_edits {
            edit.apply(&mut deployment);
        }
        if let Some(i) = self.duplicate_replica_set
            && let Some(i) = nth(replica_sets.len(), i)
        {
            let copy = replica_sets[i].clone();
            replica_sets.push(copy);
        }
        for (which, edit) in &self.replica_set_edits {
            if let Some(i) = nth(replica_sets.len(), *which) {
                edit.apply(&mut replica_sets[i]);
            }
        }
        for which in &self.drop_replica_sets {
            if let Some(i) = nth(replica_sets.len(), *which) {
                replica_sets.remove(i);
            }
        }

        let r = &self.request;
        let action = match r.action % 4 {
            0 => Action::Rollback,
            1 => Action::Pause,
            2 => Action::Resume,
            _ => Action::Restart,
        };
        let (workload_name, pod) = match r.target % 3 {
            0 => (Some(name), None),
            1 => (
                Some(r.container.as_ref().map_or_else(String::new, Text::get)),
                None,
            ),
            _ => (None, Some(format!("{name}-7f6945459f-abcde"))),
        };
        let request = RemediationRequest {
            action,
            target: Target {
                cluster: r.cluster.as_ref().map(Text::get),
                namespace: r.namespace.as_ref().map_or(base_namespace, Text::get),
                deployment: workload_name
                    .clone()
                    .filter(|_| kind == WorkloadKind::Deployment),
                stateful_set: workload_name
                    .clone()
                    .filter(|_| kind == WorkloadKind::StatefulSet),
                daemon_set: workload_name.filter(|_| kind == WorkloadKind::DaemonSet),
                pod,
                container: r.container.as_ref().map(Text::get),
            },
            reason: r.reason.clone(),
            dry_run: r.dry_run,
            force: r.force,
            scope: if r.template_scope {
                Scope::Template
            } else {
                Scope::Container
            },
            to_revision: r.to_revision,
            approval: r.approval,
            alarm: r.alarm.as_ref().map(|(name, score)| AlarmRef {
                source: "cloudwatch".into(),
                name: name.as_ref().map(Text::get),
                id: None,
                impact_score: *score,
            }),
            execution: r.execution.as_ref().map(Text::get),
            approved_by: None,
        };
        let mut pods: Vec<Value> = self
            .pods
            .iter()
            .enumerate()
            .map(|(i, p)| p.json(kind, &deployment, &replica_sets, i))
            .collect();
        if let Some(recorded) = base.get("pods").and_then(Value::as_array) {
            pods.extend(recorded.iter().cloned());
        }
        let mut case = Case {
            request,
            deployment: Value::Null,
            replica_sets: Vec::new(),
            stateful_set: None,
            daemon_set: None,
            controller_revisions: Vec::new(),
            pods,
            policy: self.policy.clone(),
            now: Some(DEFAULT_NOW.saturating_add(self.now_offset.unwrap_or(0))),
        };
        match kind {
            WorkloadKind::Deployment => {
                case.deployment = deployment;
                case.replica_sets = replica_sets;
            }
            WorkloadKind::StatefulSet => {
                case.stateful_set = Some(deployment);
                case.controller_revisions = replica_sets;
            }
            WorkloadKind::DaemonSet => {
                case.daemon_set = Some(deployment);
                case.controller_revisions = replica_sets;
            }
        }
        Some(case)
    }
}
