//! Non-JSON payloads as our own `NonRetryableInvalidRequest`.
//!
//! lambda_runtime parses the payload before calling the handler; a body that
//! is not JSON at all never reaches it and fails with the `errorType`
//! `&lambda_runtime::deserializer::DeserializeError` (a Rust type name no
//! `Retry`/`Catch` should have to know). [`RejectNonJson`] sits in front of
//! that step: a body that does not parse is replaced by a small JSON marker
//! object, which the handlers turn into a typed error naming the parse error.

use std::task::{Context, Poll};

use lambda_runtime::LambdaInvocation;
use lambda_runtime::tower::{Layer, Service};

use crate::error::HandlerError;

/// Key of the marker object that stands in for an unparseable body.
pub const NOT_JSON_MARKER: &str = "selfheal.dev/payload-not-json";

/// The typed error for a marker payload, if `payload` is one.
pub fn not_json_error(payload: &serde_json::Value) -> Option<HandlerError> {
    let reason = payload.as_object()?.get(NOT_JSON_MARKER)?.as_str()?;
    Some(HandlerError::InvalidRequest {
        reason: format!("payload is not JSON: {reason}"),
    })
}

/// Tower layer for `lambda_runtime::Runtime::layer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectNonJson;

impl<S> Layer<S> for RejectNonJson {
    type Service = RejectNonJsonService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RejectNonJsonService { inner }
    }
}

/// Service built by [`RejectNonJson`].
#[derive(Debug, Clone)]
pub struct RejectNonJsonService<S> {
    inner: S,
}

impl<S> Service<LambdaInvocation> for RejectNonJsonService<S>
where
    S: Service<LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        if let Some(body) = replacement_body(&invocation.body) {
            invocation.body = body;
        }
        self.inner.call(invocation)
    }
}

/// `Some(marker)` when `body` is not a JSON document.
fn replacement_body(body: &[u8]) -> Option<bytes::Bytes> {
    let error = serde_json::from_slice::<serde::de::IgnoredAny>(body).err()?;
    let marker = serde_json::json!({ NOT_JSON_MARKER: error.to_string() });
    Some(bytes::Bytes::from(marker.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_pass_untouched() {
        for body in [
            &b"{}"[..],
            b"null",
            b"[1,2]",
            b" \"x\" ",
            br#"{"action":"pause"}"#,
        ] {
            assert_eq!(
                replacement_body(body),
                None,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn non_json_becomes_a_typed_invalid_request() {
        for body in [
            &b""[..],
            b"{\"action\": \"roll",
            b"[1,2",
            b"\xff\xfe",
            b"{} {}",
            b"nope",
        ] {
            let replaced = replacement_body(body).expect("replaced");
            let value: serde_json::Value = serde_json::from_slice(&replaced).unwrap();
            let err = not_json_error(&value).expect("marker");
            assert_eq!(err.error_type(), "NonRetryableInvalidRequest");
            assert!(
                err.to_string()
                    .starts_with("invalid request: payload is not JSON: "),
                "{err}"
            );
        }
        assert!(not_json_error(&serde_json::json!({"action": "pause"})).is_none());
    }
}
