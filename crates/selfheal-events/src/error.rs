//! The one error type of this crate: payloads that cannot be read at all.
//!
//! A readable event whose alerts cannot become requests is *not* an error:
//! those alerts land in [`crate::Ingested::ignored`] with a
//! [`crate::Rejection`], so one bad alert never sinks a whole batch.

use selfheal_contract::ErrorType;

use crate::EventKind;

/// Why an event could not be ingested at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Larger than [`crate::MAX_EVENT_BYTES`]; refused before parsing so a
    /// hostile body cannot make us allocate.
    #[error("event is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// Not JSON.
    #[error("event is not valid JSON: {source}")]
    Malformed {
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but none of the shapes we accept.
    #[error("unsupported event: {0}")]
    Unsupported(String),
    /// Recognised as `kind` but a field has the wrong shape.
    #[error("invalid {kind} event: {source}")]
    InvalidEvent {
        kind: EventKind,
        #[source]
        source: serde_json::Error,
    },
    /// A manual request that parses but fails the contract's own checks.
    #[error("invalid manual request: {source}")]
    InvalidRequest {
        #[source]
        source: selfheal_contract::Error,
    },
    /// A default from configuration that is not usable (e.g. an unknown action).
    #[error("invalid value {value:?} for {var}: {reason}")]
    InvalidDefault {
        var: &'static str,
        value: String,
        reason: String,
    },
}

impl Error {
    /// Stable name for a Lambda `errorType` / state machine `ErrorEquals`.
    /// Every variant is bad input: retrying the same event cannot succeed.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => ErrorType::EventTooLarge,
            Error::Malformed { .. } => ErrorType::EventMalformed,
            Error::Unsupported(_) => ErrorType::EventUnsupported,
            Error::InvalidEvent { .. } => ErrorType::EventInvalid,
            Error::InvalidRequest { .. } => ErrorType::RequestInvalid,
            Error::InvalidDefault { .. } => ErrorType::ConfigInvalid,
        }
        .as_str()
    }
}
