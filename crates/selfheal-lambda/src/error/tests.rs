use kube::core::Status;
use lambda_runtime::Diagnostic;

use super::*;

fn api(code: u16, reason: &str) -> kube::Error {
    kube::Error::Api(Status::failure("m", reason).with_code(code).boxed())
}

fn kube_error(code: u16) -> selfheal_kube::Error {
    let (namespace, name) = ("shop".to_owned(), "checkout".to_owned());
    let source = Box::new(api(code, "Reason"));
    let request = |verb| selfheal_kube::error::Request {
        verb,
        kind: "Deployment",
        namespace: namespace.clone(),
        name: name.clone(),
    };
    match code {
        404 => selfheal_kube::Error::NotFound {
            kind: "Deployment",
            namespace,
            name,
            source,
        },
        403 => selfheal_kube::Error::Forbidden {
            request: request("get"),
            message: "forbidden".into(),
            source,
        },
        401 => selfheal_kube::Error::Unauthorized {
            message: "Unauthorized".into(),
            source,
        },
        409 => selfheal_kube::Error::ConflictBudgetExhausted {
            namespace,
            name,
            attempts: 4,
            last_code: 409,
        },
        400 => selfheal_kube::Error::Rejected {
            code,
            request: request("patch"),
            message: "bad".into(),
            source,
        },
        _ => selfheal_kube::Error::ServerError {
            code,
            request: request("get"),
            message: "boom".into(),
            source,
        },
    }
}

fn diagnostic(e: HandlerError) -> Diagnostic {
    Diagnostic::from(e)
}

#[test]
fn kube_errors_keep_their_stable_names() {
    let cases = [
        (404, "NonRetryableNotFound", false),
        (403, "NonRetryableForbidden", false),
        (401, "NonRetryableForbidden", false),
        (409, "RetryableConflict", true),
        (400, "NonRetryableInvalidRequest", false),
        (500, "RetryableApiError", true),
        (503, "RetryableApiError", true),
        (429, "RetryableApiError", true),
    ];
    for (code, name, retryable) in cases {
        let e = HandlerError::from(kube_error(code));
        assert_eq!(e.is_retryable(), retryable, "{code}");
        let message = e.to_string();
        let d = diagnostic(e);
        assert_eq!(d.error_type, name, "{code}");
        assert_eq!(d.error_message, message);
        assert!(ErrorType::name_is_from_kube_functions(&d.error_type));
    }
    let d = diagnostic(kube_error(404).into());
    assert_eq!(d.error_message, "Deployment shop/checkout not found");
}

#[test]
fn invalid_object_and_kube_config_errors() {
    let e = HandlerError::from(selfheal_kube::Error::PodNotOwnedByDeployment {
        namespace: "shop".into(),
        pod: "web-0".into(),
        found: "StatefulSet/web".into(),
    });
    assert_eq!(diagnostic(e).error_type, "NonRetryableInvalidObject");
    let e = HandlerError::from(selfheal_kube::Error::Config {
        reason: "bad kubeconfig".into(),
        source: None,
    });
    assert_eq!(diagnostic(e).error_type, "NonRetryableConfig");
}

#[test]
fn eks_errors_keep_their_stable_names() {
    let cases = [
        selfheal_eks::Error::MissingRegion,
        selfheal_eks::Error::InvalidInput("empty cluster name".into()),
        selfheal_eks::Error::ClusterIncomplete {
            cluster: "prod".into(),
            missing: "endpoint",
        },
        selfheal_eks::Error::ClusterNotConfigured {
            requested: "a".into(),
            configured: "b".into(),
        },
    ];
    for e in cases {
        let name = e.error_type();
        let message = e.to_string();
        let e = HandlerError::from(e);
        assert_eq!(e.is_retryable(), name.starts_with("Retryable"));
        let d = diagnostic(e);
        assert_eq!(d.error_type, name);
        assert_eq!(d.error_message, message);
        assert!(
            ErrorType::name_is_from_kube_functions(name),
            "{name} undocumented"
        );
    }
    let d = diagnostic(selfheal_eks::Error::MissingRegion.into());
    assert_eq!(d.error_type, "NonRetryableAuthConfig");
    let d = diagnostic(
        selfheal_eks::Error::ClusterIncomplete {
            cluster: "prod".into(),
            missing: "endpoint",
        }
        .into(),
    );
    assert_eq!(d.error_type, "RetryableAwsError");
}

#[test]
fn bad_input_is_non_retryable_invalid_request() {
    let malformed =
        selfheal_core::decode_str::<selfheal_core::RemediationRequest>("{}").unwrap_err();
    let cases = [
        HandlerError::InvalidRequest {
            reason: "expected an object".into(),
        },
        HandlerError::MalformedRequest { source: malformed },
        HandlerError::Request {
            source: selfheal_core::Error::InvalidRequest(
                "target.namespace must not be empty".into(),
            ),
        },
        HandlerError::ActionMismatch {
            expected: Action::Pause,
            got: Action::Rollback,
        },
    ];
    for e in cases {
        assert!(!e.is_retryable());
        let d = diagnostic(e);
        assert_eq!(
            d.error_type, "NonRetryableInvalidRequest",
            "{}",
            d.error_message
        );
    }
    let d = diagnostic(HandlerError::ActionMismatch {
        expected: Action::Pause,
        got: Action::Rollback,
    });
    assert_eq!(
        d.error_message,
        "this function performs `pause`, but the request asks for `rollback`"
    );
}

#[test]
fn an_unreadable_switch_is_retryable_aws_error() {
    let d = diagnostic(HandlerError::from(selfheal_aws::Error::SwitchUnavailable {
        parameter: "/selfheal/prod/switch".into(),
        message: "ThrottlingException".into(),
    }));
    assert_eq!(d.error_type, "RetryableAwsError");
    assert!(
        d.error_message.contains("/selfheal/prod/switch"),
        "{}",
        d.error_message
    );
}

#[test]
fn config_errors_are_non_retryable_config() {
    let d = diagnostic(HandlerError::Config {
        variable: "SELFHEAL_REPLAN_BUDGET",
        reason: "expected a whole number".into(),
    });
    assert_eq!(d.error_type, "NonRetryableConfig");
    assert_eq!(
        d.error_message,
        "configuration SELFHEAL_REPLAN_BUDGET: expected a whole number"
    );
}

#[test]
fn diagnostic_serializes_as_lambda_expects() {
    let d = diagnostic(kube_error(503).into());
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["errorType"], "RetryableApiError");
    assert!(v["errorMessage"].as_str().unwrap().contains("503"));
}

#[test]
fn a_refused_invocation_answers_the_startup_error_or_the_parse_error() {
    for &name in ErrorType::ALL {
        let failure = Diagnostic {
            error_type: name.as_str().to_owned(),
            error_message: "configuration SELFHEAL_X: missing".to_owned(),
        };
        let e = HandlerError::from(Refusal::Startup(failure.clone()));
        assert!(matches!(e, HandlerError::Init { .. }), "{e:?}");
        assert_eq!(diagnostic(e), failure);
    }
    let e = HandlerError::from(Refusal::NotJson(selfheal_runtime::NotJson {
        reason: "EOF".to_owned(),
    }));
    assert!(matches!(e, HandlerError::InvalidRequest { .. }), "{e:?}");
    let d = diagnostic(e);
    assert_eq!(d.error_type, "NonRetryableInvalidRequest");
    assert_eq!(d.error_message, "invalid request: payload is not JSON: EOF");
}
