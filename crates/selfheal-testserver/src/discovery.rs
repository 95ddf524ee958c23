//! Discovery documents, recorded from the real server (tests/fixtures/k8s/discovery.json);
//! `/apis` is trimmed to the `apps` group so clients never ask for groups we do not serve.

use serde_json::Value;

const VERSION: &str = include_str!("discovery/version.json");
const API: &str = include_str!("discovery/api.json");
const API_V1: &str = include_str!("discovery/api_v1.json");
const APIS: &str = include_str!("discovery/apis.json");
const APIS_APPS: &str = include_str!("discovery/apis_apps.json");
const APIS_APPS_V1: &str = include_str!("discovery/apis_apps_v1.json");

/// The document for a discovery path, if it is one.
pub(crate) fn document(path: &str) -> Option<Value> {
    let text = match path.trim_end_matches('/') {
        "/version" => VERSION,
        "/api" => API,
        "/api/v1" => API_V1,
        "/apis" => APIS,
        "/apis/apps" => APIS_APPS,
        "/apis/apps/v1" => APIS_APPS_V1,
        _ => return None,
    };
    serde_json::from_str(text).ok()
}

pub(crate) fn is_discovery(path: &str) -> bool {
    document(path).is_some()
        || path.starts_with("/openapi")
        || path == "/healthz"
        || path == "/readyz"
        || path == "/livez"
}
