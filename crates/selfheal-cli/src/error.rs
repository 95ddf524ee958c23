//! The CLI's one error type. Every variant renders as one line, because the
//! binary prints exactly `error: <message>` on stderr (scripts grep it).

use std::path::PathBuf;

/// Why a `selfheal` command could not produce an outcome or a status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write snapshot {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The request file did not parse or validate.
    #[error("{source}")]
    Request {
        #[source]
        source: selfheal_core::Error,
    },
    /// No EKS token could be made (no credentials, no region).
    #[error("cannot make an EKS token: {source}")]
    EksToken {
        #[source]
        source: selfheal_eks::Error,
    },
    #[error("invalid policy: {source}")]
    Policy {
        #[source]
        source: selfheal_core::Error,
    },
    /// The planner rejected the objects it was given.
    #[error("{source}")]
    Plan {
        #[source]
        source: selfheal_core::Error,
    },
    #[error("snapshot is not valid YAML: {source}")]
    SnapshotYaml {
        #[source]
        source: serde_yaml::Error,
    },
    #[error("snapshot is not valid JSON: {source}")]
    SnapshotJson {
        #[source]
        source: serde_json::Error,
    },
    /// Parses, but is not what `kubectl get -o yaml|json` prints.
    #[error("invalid snapshot: {0}")]
    Snapshot(String),
    #[error("invalid {kind} {name} in snapshot: {source}")]
    SnapshotObject {
        kind: &'static str,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("deployment {namespace}/{name} not found in snapshot")]
    DeploymentNotFound { namespace: String, name: String },
    #[error("pod {namespace}/{name} not found in snapshot")]
    PodNotFound { namespace: String, name: String },
    /// A pod target whose owner chain does not end at a Deployment in the snapshot.
    #[error("cannot resolve pod {namespace}/{name} to a deployment: {reason}")]
    PodOwner {
        namespace: String,
        name: String,
        reason: String,
    },
    /// The plan's JSON Patch did not apply to the snapshot object (its `test` ops failed).
    #[error("patch does not apply to the snapshot deployment: {source}")]
    Patch {
        #[source]
        source: json_patch::PatchError,
    },
    #[error("`--deployment` must be NAMESPACE/NAME, got {0:?}")]
    DeploymentRef(String),
    #[error("{source}")]
    Kube {
        #[source]
        source: selfheal_kube::Error,
    },
    /// `selfheal event`: not a supported event (or bad SELFHEAL_DEFAULT_*).
    #[error("{source}")]
    Event {
        #[source]
        source: selfheal_events::Error,
    },
    #[error("cannot encode output: {source}")]
    Output {
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// The message with its source chain on one line (`error: a: b: c`).
    pub fn one_line(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}
