//! `Status` bodies with the exact shapes and messages of the recordings.

use serde_json::{Value, json};

use crate::store::Kind;

/// An API error answer: HTTP code plus the `Status` body.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) body: Value,
}

pub(crate) fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> ApiError {
    let mut body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    if let Some(d) = details {
        body["details"] = d;
    }
    if message.is_empty()
        && let Some(m) = body.as_object_mut()
    {
        m.remove("message");
    }
    ApiError { code, body }
}

fn details(kind: Kind, name: Option<&str>) -> Value {
    let mut d = serde_json::Map::new();
    if let Some(n) = name {
        d.insert("name".into(), json!(n));
    }
    if !kind.group().is_empty() {
        d.insert("group".into(), json!(kind.group()));
    }
    d.insert("kind".into(), json!(kind.plural()));
    Value::Object(d)
}

/// An error about one named object: `<kind> "<name>" <what>`, with the
/// object's details.
fn about(kind: Kind, name: &str, code: u16, reason: &str, what: &str) -> ApiError {
    let message = format!("{} \"{name}\" {what}", kind.qualified());
    status(code, reason, &message, Some(details(kind, Some(name))))
}

pub(crate) fn not_found(kind: Kind, name: &str) -> ApiError {
    about(kind, name, 404, "NotFound", "not found")
}

pub(crate) fn already_exists(kind: Kind, name: &str) -> ApiError {
    about(kind, name, 409, "AlreadyExists", "already exists")
}

pub(crate) fn conflict(kind: Kind, name: &str) -> ApiError {
    let message = format!(
        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
        kind.qualified()
    );
    status(409, "Conflict", &message, Some(details(kind, Some(name))))
}

/// The generic 422 a failing JSON Patch gets (json-patch-test-fails.json).
pub(crate) fn patch_failed() -> ApiError {
    status(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        Some(json!({})),
    )
}

pub(crate) fn bad_request(message: &str) -> ApiError {
    status(400, "BadRequest", message, None)
}

/// 422 for one invalid field, in the shape of events.json's namespace mismatch.
pub(crate) fn invalid(kind: Kind, name: &str, field: &str, value: &str, detail: &str) -> ApiError {
    let cause = format!("Invalid value: \"{value}\": {detail}");
    field_error(kind, name, field, "FieldValueInvalid", &cause)
}

/// 422 for a missing required field.
pub(crate) fn required(kind: Kind, name: &str, field: &str, detail: &str) -> ApiError {
    let cause = format!("Required value: {detail}");
    field_error(kind, name, field, "FieldValueRequired", &cause)
}

/// 422 `Invalid` naming one field of object `name` and why (`reason`, `cause`).
fn field_error(kind: Kind, name: &str, field: &str, reason: &str, cause: &str) -> ApiError {
    status(
        422,
        "Invalid",
        &format!("{} \"{name}\" is invalid: {field}: {cause}", kind.kind()),
        Some(
            json!({"name": name, "group": kind.group(), "kind": kind.kind(),
            "causes": [{"reason": reason, "message": cause, "field": field}]}),
        ),
    )
    .strip_empty_group()
}

impl ApiError {
    fn strip_empty_group(mut self) -> ApiError {
        if let Some(d) = self.body.get_mut("details").and_then(Value::as_object_mut)
            && d.get("group").and_then(Value::as_str) == Some("")
        {
            d.remove("group");
        }
        self
    }
}

/// Generic failure bodies for injected faults.
pub(crate) fn for_code(code: u16) -> ApiError {
    match code {
        400 => bad_request("injected fault"),
        401 => status(401, "Unauthorized", "Unauthorized", None),
        403 => status(403, "Forbidden", "forbidden: injected fault", None),
        404 => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        ),
        409 => status(
            409,
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
            None,
        ),
        422 => patch_failed(),
        429 => status(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            Some(json!({"retryAfterSeconds": 1})),
        ),
        500 => status(
            500,
            "InternalError",
            "Internal error occurred: injected fault",
            Some(json!({"causes": [{"message": "injected fault"}]})),
        ),
        503 => status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            None,
        ),
        504 => status(
            504,
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
            None,
        ),
        other => status(other, "InternalError", "injected fault", None),
    }
}
