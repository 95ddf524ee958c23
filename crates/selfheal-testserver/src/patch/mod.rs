//! The four patch types the API server accepts on objects.

pub mod json;
pub mod merge;
pub mod strategic;

use serde_json::Value;

/// Why a patch could not be applied; maps to the recorded HTTP answers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is not valid (400 BadRequest).
    #[error("{0}")]
    Malformed(String),
    /// A JSON Patch `test` failed or a path does not exist (422 Invalid).
    #[error("{0}")]
    Failed(String),
    /// The content type is not a patch type (415).
    #[error("unsupported patch type {0}")]
    Unsupported(String),
}

/// Applies a patch body of the given content type to `target`.
pub fn apply(content_type: &str, target: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    match ct {
        "application/json-patch+json" => json::apply(target, body),
        "application/merge-patch+json" => merge::apply(target, &parse(body)?),
        "application/strategic-merge-patch+json" => strategic::apply(target, &parse(body)?),
        "application/apply-patch+yaml" => {
            // Server-side apply, reduced to a strategic merge of the JSON form
            // (no field ownership); YAML bodies are not supported.
            strategic::apply(target, &parse(body)?)
        }
        other => Err(PatchError::Unsupported(other.to_string())),
    }
}

/// Parses a JSON body with the Go-style messages the real server gives.
pub(crate) fn parse(body: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(body).map_err(|e| PatchError::Malformed(go_json_message(&e)))
}

pub(crate) fn go_json_message(e: &serde_json::Error) -> String {
    if e.is_eof() {
        "unexpected end of JSON input".to_string()
    } else {
        format!("invalid character in JSON input: {e}")
    }
}
