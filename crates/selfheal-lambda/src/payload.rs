//! Non-JSON payloads as `HandlerError::InvalidRequest`: the layer and the
//! marker are `selfheal_runtime`'s, shared by all eight functions.

pub use selfheal_runtime::payload::{NOT_JSON_MARKER, RejectNonJson, RejectNonJsonService};

use crate::error::HandlerError;

/// The typed error for a marker payload, if `payload` is one.
pub fn not_json_error(payload: &serde_json::Value) -> Option<HandlerError> {
    let not_json = selfheal_runtime::not_json(payload)?;
    Some(HandlerError::InvalidRequest {
        reason: not_json.to_string(),
    })
}
