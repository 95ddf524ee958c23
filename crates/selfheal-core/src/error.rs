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
}
