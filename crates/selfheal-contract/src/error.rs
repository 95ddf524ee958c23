//! Errors of the contract and the pure core: bad input only. Guard refusals
//! are outcomes, not errors.

/// JSON that did not decode, with the path of the offending field, so
/// `"dryRun": "yes"` says `dryRun` and not only "expected a boolean".
#[derive(Debug, thiserror::Error)]
#[error("{}{source}", at(path))]
pub struct Malformed {
    /// Dotted path (`target.deployment`, `alarm.impactScore`); `.` for the document itself.
    pub path: String,
    #[source]
    pub source: serde_json::Error,
}

fn at(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        format!("at `{path}`: ")
    }
}

/// What a JSON value is, for "expected an object, got an array" messages.
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes `T` from a JSON value, naming the offending field on failure.
pub fn decode<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, Malformed> {
    serde_path_to_error::deserialize(value).map_err(|e| Malformed {
        path: e.path().to_string(),
        source: e.into_inner(),
    })
}

/// [`decode`] from JSON text.
pub fn decode_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Malformed> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| Malformed {
        path: e.path().to_string(),
        source: e.into_inner(),
    })?;
    // Trailing characters after the document, as serde_json::from_str refuses them.
    deserializer.end().map_err(|source| Malformed {
        path: ".".into(),
        source,
    })?;
    Ok(value)
}

/// Input the core cannot plan with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Request JSON that does not parse: unknown action, missing field, wrong type.
    #[error("malformed remediation request: {source}")]
    MalformedRequest {
        #[source]
        source: Malformed,
    },
    /// Request that parses but cannot be acted on.
    #[error("invalid remediation request: {0}")]
    InvalidRequest(String),
    /// `target.cluster` starts like an ARN but is not an EKS cluster ARN
    /// (`arn:aws:eks:REGION:ACCOUNT:cluster/NAME`).
    #[error("invalid cluster ARN {arn:?}: {reason}")]
    InvalidClusterArn { arn: String, reason: String },
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
    /// Shorthand for [`Error::InvalidObject`] on a Deployment (the planner's).
    pub fn deployment(reason: impl Into<String>) -> Self {
        Error::InvalidObject {
            kind: "Deployment",
            reason: reason.into(),
        }
    }
}
