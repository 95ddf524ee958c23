//! The adapter's one error type, classified for the state machine's
//! `Retry`/`Catch` (docs/contract.md §4). A guard refusal is an outcome, never an error.

use kube::core::Status;
use selfheal_core::ErrorType;

/// Everything that can go wrong talking to the Kubernetes API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be acted on (empty names, both pod and deployment, …).
    /// The core's message already says "invalid remediation request".
    #[error("{source}")]
    InvalidRequest {
        #[source]
        source: selfheal_core::Error,
    },

    /// The named object does not exist (HTTP 404).
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },

    /// Authenticated, but RBAC denies the call (HTTP 403).
    #[error("forbidden to {request}: {message}")]
    Forbidden {
        request: Request,
        message: String,
        #[source]
        source: Box<kube::Error>,
    },

    /// The credentials were rejected (HTTP 401) or could not be produced.
    #[error("unauthorized: {message}")]
    Unauthorized {
        message: String,
        #[source]
        source: Box<kube::Error>,
    },

    /// The Deployment kept changing between read and write beyond the re-plan
    /// budget; retrying later is the right answer.
    #[error(
        "deployment {namespace}/{name} kept changing under us: {attempts} patch attempts rejected (last HTTP {last_code})"
    )]
    ConflictBudgetExhausted {
        namespace: String,
        name: String,
        attempts: u32,
        last_code: u16,
    },

    /// The API server failed or throttled us (HTTP 5xx, 429, 408).
    #[error("API server error {code} on {request}: {message}")]
    ServerError {
        code: u16,
        request: Request,
        message: String,
        #[source]
        source: Box<kube::Error>,
    },

    /// The server rejected the request itself (another 4xx): our bug or bad input.
    #[error("API server rejected {request} with HTTP {code}: {message}")]
    Rejected {
        code: u16,
        request: Request,
        message: String,
        #[source]
        source: Box<kube::Error>,
    },

    /// No answer: connection refused, TLS failure, timeout, broken stream.
    #[error("transport error on {request}: {source}")]
    Transport {
        request: Request,
        #[source]
        source: Box<kube::Error>,
    },

    /// The pod's controller chain does not end at a workload selfheal acts
    /// on (bare pod, Job, a ReplicaSet without a Deployment, an owner
    /// replaced under the same name, …).
    #[error(
        "pod {namespace}/{pod} is not owned by a Deployment, StatefulSet or DaemonSet ({found})"
    )]
    PodNotOwnedByDeployment {
        namespace: String,
        pod: String,
        /// What the chain ended at, e.g. `no controller`, `StatefulSet/web`.
        found: String,
    },

    /// A Kubernetes object lacks something every real object has, or the
    /// response body was not the object we asked for.
    #[error("invalid {kind} object {name}: {reason}")]
    InvalidObject {
        kind: &'static str,
        name: String,
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// Client construction failed: kubeconfig, endpoint URL, CA bundle.
    #[error("kubernetes client configuration: {reason}")]
    Config {
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether trying the same request again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::ServerError { .. }
                | Error::Transport { .. }
                | Error::ConflictBudgetExhausted { .. }
        )
    }

    /// Stable name for Lambda's `errorType` and Step Functions `ErrorEquals`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::ServerError { .. } | Error::Transport { .. } => ErrorType::RetryableApiError,
            Error::ConflictBudgetExhausted { .. } => ErrorType::RetryableConflict,
            Error::NotFound { .. } => ErrorType::NonRetryableNotFound,
            Error::Forbidden { .. } | Error::Unauthorized { .. } => {
                ErrorType::NonRetryableForbidden
            }
            Error::InvalidRequest { .. } | Error::Rejected { .. } => {
                ErrorType::NonRetryableInvalidRequest
            }
            Error::PodNotOwnedByDeployment { .. } | Error::InvalidObject { .. } => {
                ErrorType::NonRetryableInvalidObject
            }
            Error::Config { .. } => ErrorType::NonRetryableConfig,
        }
        .as_str()
    }

    /// HTTP status of the API answer behind this error, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::NotFound { source, .. }
            | Error::Forbidden { source, .. }
            | Error::Unauthorized { source, .. }
            | Error::ServerError { source, .. }
            | Error::Rejected { source, .. } => api_status(source).map(|s| s.code),
            Error::ConflictBudgetExhausted { last_code, .. } => Some(*last_code),
            _ => None,
        }
    }

    /// Map a core error (the request or an object the planner could not use).
    pub(crate) fn from_core(source: selfheal_core::Error, name: &str) -> Self {
        match source {
            selfheal_core::Error::InvalidObject { kind, reason } => Error::InvalidObject {
                kind,
                name: name.to_owned(),
                reason,
                source: None,
            },
            other => Error::InvalidRequest { source: other },
        }
    }
}

/// What a 403 from the API server means for selfheal, and where the fix is.
pub const FORBIDDEN_HINT: &str = "selfheal's identity lacks a permission in deploy/rbac.yaml (kubectl apply -f deploy/rbac.yaml)";

/// What a 401 means: the credentials themselves were not accepted.
pub const UNAUTHORIZED_HINT: &str = "check the kubeconfig user's credentials or, on EKS, the access entry that maps selfheal's role (deploy/README.md)";

impl Error {
    /// One line for a person, in kubectl's words where kubectl has them: an
    /// API answer reads `Error from server (Reason): <the server's message>`
    /// (`You must be logged in to the server (…)` for 401), a connection
    /// failure `Unable to connect to the server: …`, with a hint where one
    /// helps (a 403 points at deploy/rbac.yaml). Other errors give their
    /// message and causes, each sentence once. [`Display`](std::fmt::Display)
    /// stays what the Lambdas report as `errorMessage`.
    pub fn kubectl_line(&self) -> String {
        let status = match self {
            Error::NotFound { source, .. }
            | Error::Forbidden { source, .. }
            | Error::Unauthorized { source, .. }
            | Error::ServerError { source, .. }
            | Error::Rejected { source, .. } => api_status(source),
            _ => None,
        };
        let line = match (self, status) {
            (Error::Unauthorized { message, .. }, Some(_)) => {
                format!("You must be logged in to the server ({message}); {UNAUTHORIZED_HINT}")
            }
            (_, Some(status)) => {
                let message = if status.message.is_empty() {
                    self.to_string()
                } else {
                    status.message.clone()
                };
                let mut line = if status.reason.is_empty() {
                    format!("Error from server: {message}")
                } else {
                    format!("Error from server ({}): {message}", status.reason)
                };
                if status.code == 403 {
                    line.push_str(&format!(" (hint: {FORBIDDEN_HINT})"));
                }
                line
            }
            (Error::Transport { source, .. }, None) => {
                format!(
                    "Unable to connect to the server: {}",
                    causes(source.as_ref())
                )
            }
            (Error::Unauthorized { source, .. }, None) => format!(
                "cannot get credentials for the server: {}; {UNAUTHORIZED_HINT}",
                causes(source.as_ref())
            ),
            _ => causes(self),
        };
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// `error` and its sources as `a: b: c`, each text once: a cause whose text
/// is already in the line is left out, kube's wrappers that only prefix their
/// source (`HyperError: …`, `ServiceError: …`) give way to that source, and
/// an API error gives the server's message (kube's own text for it embeds a
/// debug dump of the Status).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut texts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        next = cause.source();
        let text = match cause.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(status)) => {
                texts.push(status.message.clone());
                break;
            }
            Some(kube::Error::HyperError(_) | kube::Error::Service(_)) if next.is_some() => {
                continue;
            }
            _ => cause.to_string(),
        };
        if !texts.iter().any(|t| t.contains(&text)) {
            texts.push(text);
        }
    }
    texts.join(": ")
}

/// The Status an API error carried, if it is one.
pub(crate) fn api_status(err: &kube::Error) -> Option<&Status> {
    match err {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

/// The request an API error names: `patch Deployment shop/checkout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub verb: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Request {
            verb,
            kind,
            namespace,
            name,
        } = self;
        write!(f, "{verb} {kind} {namespace}/{name}")
    }
}

/// What a request was about; turns a `kube::Error` into a classified [`Error`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub verb: &'static str,
    pub kind: &'static str,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl Call<'_> {
    /// Classify `err` for this call. 409/422 on a patch are handled by the
    /// caller before this (they trigger a re-plan); here they are plain rejections.
    pub(crate) fn error(&self, err: kube::Error) -> Error {
        let err = Box::new(err);
        let namespace = self.namespace.to_owned();
        let name = self.name.to_owned();
        let (verb, kind) = (self.verb, self.kind);
        let request = Request {
            verb,
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
        };
        match &*err {
            kube::Error::Api(status) => {
                let code = status.code;
                let message = status.message.clone();
                match code {
                    401 => Error::Unauthorized {
                        message: non_empty(message, "Unauthorized"),
                        source: err,
                    },
                    403 => Error::Forbidden {
                        request,
                        message,
                        source: err,
                    },
                    404 => Error::NotFound {
                        kind,
                        namespace,
                        name,
                        source: err,
                    },
                    // Throttling and request timeouts clear up by themselves; a
                    // Status without a code says nothing about the request.
                    0 | 408 | 429 | 500..=599 => Error::ServerError {
                        code,
                        request,
                        message,
                        source: err,
                    },
                    _ => Error::Rejected {
                        code,
                        request,
                        message,
                        source: err,
                    },
                }
            }
            kube::Error::Auth(auth) => Error::Unauthorized {
                message: auth.to_string(),
                source: err,
            },
            kube::Error::SerdeError(_) => Error::InvalidObject {
                kind,
                name,
                reason: format!("response to {verb} did not decode"),
                source: Some(err),
            },
            kube::Error::BuildRequest(_) => Error::Rejected {
                code: 0,
                request,
                message: err.to_string(),
                source: err,
            },
            _ => Error::Transport {
                request,
                source: err,
            },
        }
    }
}

fn non_empty(message: String, fallback: &str) -> String {
    if message.is_empty() {
        fallback.to_owned()
    } else {
        message
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    const CALL: Call<'static> = Call {
        verb: "get",
        kind: "Deployment",
        namespace: "shop",
        name: "checkout",
    };

    #[test]
    fn api_codes_map_to_stable_error_types() {
        let cases = [
            (401, "Unauthorized", "NonRetryableForbidden", false),
            (403, "Forbidden", "NonRetryableForbidden", false),
            (404, "NotFound", "NonRetryableNotFound", false),
            (400, "BadRequest", "NonRetryableInvalidRequest", false),
            (409, "Conflict", "NonRetryableInvalidRequest", false),
            (408, "Timeout", "RetryableApiError", true),
            (429, "TooManyRequests", "RetryableApiError", true),
            (500, "InternalError", "RetryableApiError", true),
            (503, "ServiceUnavailable", "RetryableApiError", true),
            (504, "Timeout", "RetryableApiError", true),
        ];
        for (code, reason, ty, retryable) in cases {
            let e = CALL.error(api(code, reason, "m"));
            assert_eq!(e.error_type(), ty, "code {code}");
            assert_eq!(e.is_retryable(), retryable, "code {code}");
            assert_eq!(e.http_status(), Some(code));
        }
    }

    #[test]
    fn not_found_names_the_object() {
        let e = CALL.error(api(
            404,
            "NotFound",
            "deployments.apps \"checkout\" not found",
        ));
        match &e {
            Error::NotFound {
                kind,
                namespace,
                name,
                ..
            } => assert_eq!(
                (*kind, namespace.as_str(), name.as_str()),
                ("Deployment", "shop", "checkout")
            ),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(e.to_string(), "Deployment shop/checkout not found");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn forbidden_keeps_the_server_message() {
        let msg = "deployments.apps \"checkout\" is forbidden: User \"system:serviceaccount:shop:viewer\" cannot get resource \"deployments\"";
        let e = CALL.error(api(403, "Forbidden", msg));
        assert!(e.to_string().contains("system:serviceaccount:shop:viewer"));
    }

    #[test]
    fn api_errors_read_like_kubectl_with_a_hint_for_403() {
        let msg = "deployments.apps \"checkout\" is forbidden: User \"system:serviceaccount:shop:viewer\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"shop\"";
        let line = CALL.error(api(403, "Forbidden", msg)).kubectl_line();
        assert_eq!(
            line,
            format!("Error from server (Forbidden): {msg} (hint: {FORBIDDEN_HINT})")
        );
        assert!(line.contains("deploy/rbac.yaml"));
        let line = CALL
            .error(api(404, "NotFound", "deployments.apps \"nope\" not found"))
            .kubectl_line();
        assert_eq!(
            line,
            "Error from server (NotFound): deployments.apps \"nope\" not found"
        );
        let line = CALL.error(api(503, "", "etcd is down")).kubectl_line();
        assert_eq!(line, "Error from server: etcd is down");
        let line = CALL.error(api(401, "Unauthorized", "")).kubectl_line();
        assert!(
            line.starts_with("You must be logged in to the server (Unauthorized); "),
            "{line}"
        );
        for code in [401, 403, 404, 409, 422, 500] {
            let line = CALL
                .error(api(code, "Reason", "the message"))
                .kubectl_line();
            assert!(!line.contains("Status {"), "{line}");
            assert_eq!(line.matches("the message").count(), 1, "{line}");
        }
    }

    #[test]
    fn transport_and_other_errors_name_each_cause_once() {
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error: Connection refused (os error 111)",
        );
        let e = CALL.error(kube::Error::Service(Box::new(refused)));
        assert_eq!(
            e.kubectl_line(),
            "Unable to connect to the server: tcp connect error: Connection refused (os error 111)"
        );
        let e = Error::from_core(
            selfheal_core::Error::InvalidRequest("target.pod must not be empty".into()),
            "checkout",
        );
        assert_eq!(
            e.kubectl_line(),
            "invalid remediation request: target.pod must not be empty"
        );
        assert_eq!(e.to_string(), e.kubectl_line());
    }

    #[test]
    fn conflict_budget_is_retryable() {
        let e = Error::ConflictBudgetExhausted {
            namespace: "shop".into(),
            name: "checkout".into(),
            attempts: 4,
            last_code: 422,
        };
        assert!(e.is_retryable());
        assert_eq!(e.error_type(), "RetryableConflict");
        assert_eq!(e.http_status(), Some(422));
    }

    #[test]
    fn core_errors_split_into_request_and_object() {
        let e = Error::from_core(selfheal_core::Error::InvalidRequest("x".into()), "checkout");
        assert_eq!(e.error_type(), "NonRetryableInvalidRequest");
        let e = Error::from_core(
            selfheal_core::Error::InvalidObject {
                kind: "Deployment",
                reason: "no spec".into(),
            },
            "checkout",
        );
        assert_eq!(e.error_type(), "NonRetryableInvalidObject");
        assert!(e.to_string().contains("checkout"));
    }

    #[test]
    fn pod_not_owned_is_invalid_object() {
        let e = Error::PodNotOwnedByDeployment {
            namespace: "shop".into(),
            pod: "web-0".into(),
            found: "StatefulSet/web".into(),
        };
        assert_eq!(e.error_type(), "NonRetryableInvalidObject");
        assert!(!e.is_retryable());
    }
}
