//! What can go wrong with a snapshot. Every message is one sentence that
//! names the snapshot, because the CLI prints it as its one `error:` line.

use selfheal_core::WorkloadKind;

/// Why a snapshot could not be parsed, looked up, planned against or rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("snapshot is not valid YAML: {source}")]
    Yaml {
        #[source]
        source: serde_saphyr::Error,
    },
    #[error("snapshot is not valid JSON: {source}")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    /// Parses, but is not what `kubectl get -o yaml|json` prints.
    #[error("invalid snapshot: {0}")]
    Invalid(String),
    /// An object of the snapshot does not deserialize as its kind.
    #[error("invalid {kind} {name} in snapshot: {source}")]
    Object {
        kind: &'static str,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    /// No object of `kind` with that name (`deployment shop/payments not
    /// found in snapshot`).
    #[error("{} {namespace}/{name} not found in snapshot", kind.noun())]
    WorkloadNotFound {
        kind: WorkloadKind,
        namespace: String,
        name: String,
    },
    #[error("pod {namespace}/{name} not found in snapshot")]
    PodNotFound { namespace: String, name: String },
    /// A pod target whose owner chain does not end at a workload (ReplicaSet
    /// → Deployment, or a StatefulSet or DaemonSet) in the snapshot.
    #[error("cannot resolve pod {namespace}/{name} to a workload: {reason}")]
    PodOwner {
        namespace: String,
        name: String,
        reason: String,
    },
    /// The request fails the contract's checks, e.g. names neither a
    /// workload nor a pod (a request that went through
    /// `RemediationRequest::from_json` never does).
    #[error("{source}")]
    Request {
        #[source]
        source: selfheal_core::Error,
    },
    /// The planner rejected the objects it was given.
    #[error("{source}")]
    Plan {
        #[source]
        source: selfheal_core::Error,
    },
    /// The plan's JSON Patch did not apply to the snapshot object (its `test` ops failed).
    #[error("patch does not apply to the snapshot {}: {source}", kind.noun())]
    Patch {
        kind: WorkloadKind,
        #[source]
        source: json_patch::PatchError,
    },
    #[error("cannot render snapshot as JSON: {source}")]
    RenderJson {
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot render snapshot as YAML: {source}")]
    RenderYaml {
        #[source]
        source: serde_saphyr::SerializeError,
    },
}
