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
    /// `--snapshot`: the snapshot did not parse, lacks the target, or the
    /// plan could not be applied to it (messages from `selfheal-snapshot`).
    #[error("{source}")]
    Snapshot {
        #[source]
        source: selfheal_snapshot::Error,
    },
    #[error("`--{flag}` must be NAMESPACE/NAME, got {given:?}")]
    WorkloadRef { flag: &'static str, given: String },
    /// A positional `KIND/NAME` whose kind selfheal does not act on.
    #[error(
        "{given:?}: selfheal acts on deployment/NAME, statefulset/NAME or daemonset/NAME (or a bare Deployment NAME)"
    )]
    WorkloadKind { given: String },
    /// kubeconfig mode: the request's `target.cluster` is not the cluster of
    /// the context in use (README, CLI: how the names are matched).
    #[error(
        "the request targets cluster {requested:?}, but kubeconfig context {context:?} is cluster {cluster:?}{}; nothing was sent (pick the cluster's context with --context, or leave target.cluster out)",
        eks_hint(cluster, eks_names)
    )]
    ClusterMismatch {
        requested: String,
        context: String,
        cluster: String,
        eks_names: Vec<String>,
    },
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

/// ` (EKS cluster "a")` when the kubeconfig names the EKS cluster otherwise.
fn eks_hint(cluster: &str, eks_names: &[String]) -> String {
    let other: Vec<String> = eks_names
        .iter()
        .filter(|n| n.as_str() != cluster)
        .map(|n| format!("{n:?}"))
        .collect();
    if other.is_empty() {
        String::new()
    } else {
        format!(" (EKS cluster {})", other.join(" or "))
    }
}

impl Error {
    /// The message with its source chain on one line (`error: a: b: c`);
    /// Kubernetes API errors in kubectl's words (`Error from server (…): …`).
    pub fn one_line(&self) -> String {
        if let Error::Kube { source } = self {
            return source.kubectl_line();
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_error_is_one_line_with_its_source() {
        let source = selfheal_snapshot::Snapshot::parse("{\"kind\":\n").unwrap_err();
        let line = Error::Snapshot { source }.one_line();
        assert!(line.starts_with("snapshot is not valid JSON: "), "{line}");
        // The source's text is in the message once, not repeated by the chain.
        assert_eq!(line.matches("EOF while parsing").count(), 1, "{line}");
        assert!(!line.contains('\n'));
    }
}
