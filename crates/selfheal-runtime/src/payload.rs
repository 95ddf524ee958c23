//! Non-JSON payloads as our own `NonRetryableInvalidRequest`.
//!
//! lambda_runtime parses the payload before calling the handler; a body that
//! is not JSON at all never reaches it and fails with the `errorType`
//! `&lambda_runtime::deserializer::DeserializeError` (a Rust type name no
//! `Retry`/`Catch` should have to know). [`RejectNonJson`] sits in front of
//! that step: a body that does not parse is replaced by a small JSON marker
//! object, which [`not_json`] recognises so the handler can answer a typed
//! error naming the parse error.
//!
//! The layer is also the one place that sees the body as Lambda delivered
//! it, before any parsing: it measures it, and the invocation's future
//! carries that size ([`received_bytes`]) to a handler whose limit counts
//! the bytes received (ingest's event size limit).

use std::task::{Context, Poll};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{Diagnostic, LambdaInvocation};
use selfheal_contract::ErrorType;
use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    /// The size in bytes of the body of the invocation being served.
    static RECEIVED_BYTES: usize;
}

/// The size in bytes of the body of the invocation being served, as
/// [`RejectNonJson`] measured it before any parsing; `None` outside the
/// future of an invocation that layer serves.
pub fn received_bytes() -> Option<usize> {
    RECEIVED_BYTES.try_with(|bytes| *bytes).ok()
}

/// Key of the marker object that stands in for an unparseable body.
pub const NOT_JSON_MARKER: &str = "selfheal.dev/payload-not-json";

/// A payload that was not JSON, with the parser's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotJson {
    pub reason: String,
}

impl std::fmt::Display for NotJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "payload is not JSON: {}", self.reason)
    }
}

impl From<NotJson> for Diagnostic {
    fn from(not_json: NotJson) -> Self {
        Diagnostic {
            // The name every selfheal function gives a request it cannot read.
            error_type: ErrorType::NonRetryableInvalidRequest.as_str().to_owned(),
            error_message: format!("invalid request: {not_json}"),
        }
    }
}

/// Why `payload` stands for a body that was not JSON, if it is the marker.
pub fn not_json(payload: &serde_json::Value) -> Option<NotJson> {
    let reason = payload.as_object()?.get(NOT_JSON_MARKER)?.as_str()?;
    Some(NotJson {
        reason: reason.to_owned(),
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
    type Future = TaskLocalFuture<usize, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        let received = invocation.body.len();
        if let Some(body) = replacement_body(&invocation.body) {
            invocation.body = body;
        }
        RECEIVED_BYTES.scope(received, self.inner.call(invocation))
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
            let err = Diagnostic::from(not_json(&value).expect("marker"));
            assert_eq!(err.error_type, "NonRetryableInvalidRequest");
            assert!(
                err.error_message
                    .starts_with("invalid request: payload is not JSON: "),
                "{err:?}"
            );
        }
        assert!(not_json(&serde_json::json!({"action": "pause"})).is_none());
    }

    /// The handler's future sees the size of the body as delivered, JSON or
    /// not (whitespace included), never the marker's.
    #[tokio::test]
    async fn the_invocation_carries_the_size_of_the_body_received() {
        use lambda_runtime::tower::ServiceExt;
        for body in [&b" {\"a\": [1, 2]}\n"[..], b"nope", b""] {
            let inner = lambda_runtime::service_fn(|invocation: LambdaInvocation| async move {
                Ok::<_, Diagnostic>((received_bytes(), invocation.body))
            });
            let (parts, ()) = http::Response::new(()).into_parts();
            let invocation = LambdaInvocation {
                parts,
                body: bytes::Bytes::from_static(body),
                context: lambda_runtime::Context::default(),
            };
            let (received, seen) = RejectNonJson
                .layer(inner)
                .oneshot(invocation)
                .await
                .unwrap();
            assert_eq!(received, Some(body.len()), "{seen:?}");
        }
        assert_eq!(received_bytes(), None);
    }
}
