//! Errors of the pure core: bad input only. Guard refusals are outcomes, not errors.

/// Input the core cannot plan with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Request JSON that does not parse: unknown action, missing field, wrong type.
    #[error("malformed remediation request: {source}")]
    MalformedRequest {
        #[source]
        source: serde_json::Error,
    },
    /// Request that parses but cannot be acted on.
    #[error("invalid remediation request: {0}")]
    InvalidRequest(String),
    /// A Kubernetes object lacks something every real object has (name, spec, template).
    #[error("invalid {kind} object: {reason}")]
    InvalidObject { kind: &'static str, reason: String },
    /// A policy variable (see [`crate::policy::POLICY_VARIABLES`]) holds a value we cannot use.
    #[error("invalid configuration {variable}={value:?}: {reason}")]
    InvalidConfig {
        variable: String,
        value: String,
        reason: String,
    },
    /// A JSON value we build for the patch did not serialize (should not happen
    /// with k8s-openapi types; kept typed rather than panicking).
    #[error("cannot serialize {what} for the patch: {source}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidObject`] on a Deployment.
    pub(crate) fn deployment(reason: impl Into<String>) -> Self {
        Error::InvalidObject {
            kind: "Deployment",
            reason: reason.into(),
        }
    }
}
