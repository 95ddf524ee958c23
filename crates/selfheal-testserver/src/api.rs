//! Resource handlers: get, list, watch, create, update, patch, delete.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{ApiRequest, DEFAULT_WATCH_TIMEOUT, Reply};
use crate::patch::{self, PatchError};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError};
use crate::store::{Kind, Store, Writer, name_of, set_meta};
use crate::{Shared, defaults, watch};

pub(crate) fn handle(
    shared: &Arc<Shared>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    r: &ApiRequest,
) -> Reply {
    let result = match (r.method.as_str(), &r.name) {
        ("GET", Some(name)) => get(shared, r, name),
        ("GET", None) => {
            if r.query
                .get("watch")
                .is_some_and(|w| w == "true" || w == "1")
            {
                return match watch_params(r) {
                    Ok(p) => Reply::Stream(watch::stream(shared, p, shutdown)),
                    Err(e) => e.into(),
                };
            }
            list(shared, r)
        }
        ("POST", None) => create(shared, r),
        ("POST", Some(name))
            if r.kind == Kind::ServiceAccount && r.sub.as_deref() == Some("token") =>
        {
            token_request(shared, r, name)
        }
        ("PUT", Some(name)) => update(shared, r, name),
        ("PATCH", Some(name)) => patch_object(shared, r, name),
        ("DELETE", Some(name)) => delete(shared, r, name),
        _ => Err(status::status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        )),
    };
    match result {
        Ok((code, v)) => Reply::Json(code, v),
        Err(e) => e.into(),
    }
}

type Answer = Result<(u16, Value), ApiError>;

fn ns_of(r: &ApiRequest) -> &str {
    r.ns.as_deref().unwrap_or_default()
}

fn get(shared: &Arc<Shared>, r: &ApiRequest, name: &str) -> Answer {
    if r.sub.as_deref().is_some_and(|s| s != "status") {
        return Err(status::not_found(r.kind, name));
    }
    let store = shared.store();
    store
        .get(r.kind, ns_of(r), name)
        .map(|v| (200, v.clone()))
        .ok_or_else(|| status::not_found(r.kind, name))
}

fn selectors(r: &ApiRequest) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let query = |key: &str| r.query.get(key).map(String::as_str).unwrap_or_default();
    let labels =
        LabelSelector::parse(query("labelSelector")).map_err(|e| status::bad_request(&e))?;
    let fields =
        FieldSelector::parse(query("fieldSelector")).map_err(|e| status::bad_request(&e))?;
    Ok((labels, fields))
}

fn list(shared: &Arc<Shared>, r: &ApiRequest) -> Answer {
    let (labels, fields) = selectors(r)?;
    let store = shared.store();
    let items: Vec<Value> = store
        .list(r.kind, r.ns.as_deref())
        .into_iter()
        .filter(|o| labels.matches_object(o) && fields.matches_object(o))
        .map(|o| {
            // The real server leaves kind/apiVersion out of list items.
            let mut o = o.clone();
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    Ok((
        200,
        json!({"kind": format!("{}List", r.kind.kind()), "apiVersion": r.kind.api_version(),
            "metadata": {"resourceVersion": store.current_rv().to_string()}, "items": items}),
    ))
}

fn watch_params(r: &ApiRequest) -> Result<watch::WatchParams, ApiError> {
    let (labels, fields) = selectors(r)?;
    let resource_version = match r.query.get("resourceVersion").map(String::as_str) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| status::bad_request(&format!("invalid resource version: {s}")))?,
        ),
    };
    let timeout = r
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    Ok(watch::WatchParams {
        kind: r.kind,
        ns: r.ns.clone(),
        labels,
        fields,
        resource_version,
        timeout,
        bookmarks: r
            .query
            .get("allowWatchBookmarks")
            .is_some_and(|b| b == "true"),
    })
}

fn parse_body(r: &ApiRequest) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(&r.body)
        .map_err(|e| status::bad_request(&patch::go_json_message(&e)))?;
    if !v.is_object() {
        return Err(status::bad_request(
            "json: cannot unmarshal into Go value of type struct: expected an object",
        ));
    }
    Ok(v)
}

fn decode(kind: Kind, obj: Value) -> Result<Value, ApiError> {
    defaults::apply(kind, obj)
        .map_err(|e| status::bad_request(&format!("error decoding request body: {e}")))
}

fn namespace_missing(store: &Store, r: &ApiRequest) -> Option<ApiError> {
    let ns = r.ns.as_deref()?;
    (!store.exists(Kind::Namespace, "", ns)).then(|| status::not_found(Kind::Namespace, ns))
}

fn validate(kind: Kind, ns: &str, obj: &Value) -> Result<(), ApiError> {
    let name = name_of(obj);
    match kind {
        Kind::Event => {
            let io_ns = obj
                .pointer("/involvedObject/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !io_ns.is_empty() && io_ns != ns {
                return Err(status::invalid(
                    kind,
                    name,
                    "involvedObject.namespace",
                    io_ns,
                    "does not match event.namespace",
                ));
            }
        }
        Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet | Kind::DaemonSet => {
            if kind == Kind::StatefulSet {
                validate_stateful_set_strategy(name, obj)?;
            }
            let Some(sel) = obj.pointer("/spec/selector").filter(|s| !s.is_null()) else {
                return Err(status::required(kind, name, "spec.selector", "")).map_err(|mut e| {
                    e.body["details"]["group"] = json!("apps");
                    e
                });
            };
            let selector = LabelSelector::from_label_selector(sel);
            let labels =
                crate::selector::labels_of(obj.pointer("/spec/template").unwrap_or(&Value::Null));
            if !selector.matches(&labels) {
                let mut e = status::invalid(
                    kind,
                    name,
                    "spec.template.metadata.labels",
                    &format!("{labels:?}"),
                    "`selector` does not match template `labels`",
                );
                e.body["details"]["group"] = json!("apps");
                return Err(e);
            }
            let containers = obj
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array);
            if containers.is_none_or(|c| c.is_empty()) {
                let mut e = status::required(kind, name, "spec.template.spec.containers", "");
                e.body["details"]["group"] = json!("apps");
                return Err(e);
            }
        }
        _ => {}
    }
    Ok(())
}

/// ValidateStatefulSetSpec: `rollingUpdate` only with the RollingUpdate
/// strategy (an OnDelete hold must drop it), a partition not below 0.
fn validate_stateful_set_strategy(name: &str, obj: &Value) -> Result<(), ApiError> {
    let strategy = obj.pointer("/spec/updateStrategy");
    let kind = strategy.and_then(|s| s.get("type")).and_then(Value::as_str);
    let rolling = strategy
        .and_then(|s| s.get("rollingUpdate"))
        .filter(|r| !r.is_null());
    let invalid = |field: &str, value: &str, detail: &str| {
        let mut e = status::invalid(Kind::StatefulSet, name, field, value, detail);
        e.body["details"]["group"] = json!("apps");
        e
    };
    if kind == Some("OnDelete")
        && let Some(r) = rolling
    {
        return Err(invalid(
            "spec.updateStrategy.rollingUpdate",
            &r.to_string(),
            "only allowed for updateStrategy 'RollingUpdate'",
        ));
    }
    let partition = rolling
        .and_then(|r| r.get("partition"))
        .and_then(Value::as_i64);
    if let Some(p) = partition.filter(|p| *p < 0) {
        return Err(invalid(
            "spec.updateStrategy.rollingUpdate.partition",
            &p.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    Ok(())
}

/// What admission adds to a new object: the `not-ready` taint on a Node
/// (TaintNodesByCondition; removed once the node is ready), a cluster IP on
/// a Service that is not headless.
fn admit(store: &Store, kind: Kind, obj: &mut Value) {
    if !matches!(kind, Kind::Node | Kind::Service) {
        return;
    }
    let Some(spec) = obj
        .as_object_mut()
        .map(|o| o.entry("spec").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    match kind {
        Kind::Node => {
            let taint = json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"});
            spec.insert("taints".into(), json!([taint]));
        }
        Kind::Service if spec.get("clusterIP").is_none_or(Value::is_null) => {
            let n = store.list(Kind::Service, None).len() + 1;
            let ip = format!("10.96.{}.{}", n / 250, n % 250 + 1);
            spec.insert("clusterIP".into(), json!(ip));
        }
        _ => {}
    }
}

/// Status is owned by the controllers: writes to the main resource keep the
/// stored status (and a create starts from an empty one).
fn reset_status(kind: Kind, obj: &mut Value, old: Option<&Value>) {
    if !matches!(
        kind,
        Kind::Deployment
            | Kind::ReplicaSet
            | Kind::StatefulSet
            | Kind::DaemonSet
            | Kind::Pod
            | Kind::Namespace
            | Kind::Node
            | Kind::Service
    ) {
        return;
    }
    if let Some(m) = obj.as_object_mut() {
        match old.and_then(|o| o.get("status")) {
            Some(s) => {
                m.insert("status".into(), s.clone());
            }
            None => {
                m.remove("status");
            }
        }
    }
}

fn create(shared: &Arc<Shared>, r: &ApiRequest) -> Answer {
    let mut obj = parse_body(r)?;
    let ns = ns_of(r).to_string();
    let mut store = shared.store();
    if let Some(e) = namespace_missing(&store, r) {
        return Err(e);
    }
    if let Some(body_ns) = obj.pointer("/metadata/namespace").and_then(Value::as_str)
        && r.kind.namespaced()
        && !body_ns.is_empty()
        && body_ns != ns
    {
        return Err(status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if name_of(&obj).is_empty() {
        let generate = obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if generate.is_empty() {
            return Err(status::required(
                r.kind,
                "",
                "metadata.name",
                "name or generateName is required",
            ));
        }
        let mut name = format!("{generate}{}", crate::random_suffix(5));
        while store.exists(r.kind, &ns, &name) {
            name = format!("{generate}{}", crate::random_suffix(5));
        }
        set_meta(&mut obj, "name", json!(name));
    }
    let name = name_of(&obj).to_string();
    if store.exists(r.kind, &ns, &name) {
        return Err(status::already_exists(r.kind, &name));
    }
    reset_status(r.kind, &mut obj, None);
    admit(&store, r.kind, &mut obj);
    let obj = decode(r.kind, obj)?;
    validate(r.kind, &ns, &obj)?;
    let obj = if r.kind == Kind::Namespace {
        defaults::namespace(obj)
    } else {
        obj
    };
    let created = store.create(r.kind, &ns, obj, r.dry_run());
    Ok((201, created))
}

/// Applies the write path shared by PUT and PATCH: conflict check, status
/// ownership, defaulting, validation, storing.
fn write(store: &mut Store, r: &ApiRequest, name: &str, current: &Value, mut new: Value) -> Answer {
    let ns = ns_of(r).to_string();
    let cur_rv = current
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(rv) = new
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        && !rv.is_empty()
        && rv != cur_rv
    {
        return Err(status::conflict(r.kind, name));
    }
    set_meta(&mut new, "name", json!(name));
    let writer = if r.sub.as_deref() == Some("status") {
        // Status subresource: only status changes are taken.
        let status = new.get("status").cloned();
        new = current.clone();
        if let (Some(m), Some(s)) = (new.as_object_mut(), status) {
            m.insert("status".into(), s);
        }
        Writer::Status
    } else {
        reset_status(r.kind, &mut new, Some(current));
        Writer::User
    };
    let new = decode(r.kind, new)?;
    validate(r.kind, &ns, &new)?;
    let stored = store.update(r.kind, &ns, new, writer, r.dry_run());
    Ok((200, stored))
}

fn update(shared: &Arc<Shared>, r: &ApiRequest, name: &str) -> Answer {
    let body = parse_body(r)?;
    let body_name = name_of(&body);
    if !body_name.is_empty() && body_name != name {
        return Err(status::bad_request(&format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let mut store = shared.store();
    let current = store
        .get(r.kind, ns_of(r), name)
        .cloned()
        .ok_or_else(|| status::not_found(r.kind, name))?;
    write(&mut store, r, name, &current, body)
}

/// A PUT of `obj` (to the object or its `status` subresource) without HTTP,
/// for [`crate::TestServer::update`]: the same conflict, generation, status
/// and validation rules as a client's write. Errors carry the API status message.
pub(crate) fn update_out_of_band(
    shared: &Arc<Shared>,
    kind: Kind,
    ns: &str,
    obj: &Value,
    status_subresource: bool,
) -> Result<Value, String> {
    let name = name_of(obj).to_string();
    let r = ApiRequest {
        method: "PUT".into(),
        query: Default::default(),
        content_type: "application/json".into(),
        body: serde_json::to_vec(obj).map_err(|e| e.to_string())?.into(),
        kind,
        ns: kind.namespaced().then(|| ns.to_string()),
        name: Some(name.clone()),
        sub: status_subresource.then(|| "status".to_string()),
    };
    update(shared, &r, &name)
        .map(|(_, stored)| stored)
        .map_err(|e| {
            let message = e
                .body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            format!("{} {message}", e.code)
        })
}

fn patch_object(shared: &Arc<Shared>, r: &ApiRequest, name: &str) -> Answer {
    let mut store = shared.store();
    let current = store
        .get(r.kind, ns_of(r), name)
        .cloned()
        .ok_or_else(|| status::not_found(r.kind, name))?;
    let patched = patch::apply(&r.content_type, &current, &r.body).map_err(|e| match e {
        PatchError::Malformed(m) => status::bad_request(&m),
        PatchError::Failed(_) => status::patch_failed(),
        PatchError::Unsupported(_) => status::status(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
            None,
        ),
    })?;
    if !patched.is_object() {
        return Err(status::patch_failed());
    }
    write(&mut store, r, name, &current, patched)
}

fn delete(shared: &Arc<Shared>, r: &ApiRequest, name: &str) -> Answer {
    let mut store = shared.store();
    let ns = ns_of(r).to_string();
    let current = store
        .get(r.kind, &ns, name)
        .cloned()
        .ok_or_else(|| status::not_found(r.kind, name))?;
    if !r.dry_run() {
        store.delete(r.kind, &ns, name);
        if r.kind == Kind::Namespace {
            for kind in Kind::NAMESPACED {
                let names: Vec<String> = store
                    .list(kind, Some(name))
                    .iter()
                    .map(|o| name_of(o).to_string())
                    .collect();
                for n in names {
                    store.delete(kind, name, &n);
                }
            }
        }
    }
    let uid = current
        .pointer("/metadata/uid")
        .cloned()
        .unwrap_or(Value::Null);
    let mut details = json!({"name": name, "kind": r.kind.plural(), "uid": uid});
    if !r.kind.group().is_empty() {
        details["group"] = json!(r.kind.group());
    }
    Ok((
        200,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
    ))
}

/// TokenRequest: issues a token that authenticates as the ServiceAccount
/// (rights: whatever loaded RBAC objects bind to it; none by default, like
/// the recorded `viewer`).
fn token_request(shared: &Arc<Shared>, r: &ApiRequest, name: &str) -> Answer {
    let ns = ns_of(r).to_string();
    if !shared.store().exists(Kind::ServiceAccount, &ns, name) {
        return Err(status::not_found(Kind::ServiceAccount, name));
    }
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(json!({}));
    let token = format!("sa-{}", crate::random_suffix(32));
    shared
        .auth()
        .tokens
        .insert(token.clone(), crate::Identity::service_account(&ns, name));
    let expiration = body
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    let now = shared.store().now();
    let expires = now
        .checked_add(jiff::SignedDuration::from_secs(expiration))
        .unwrap_or(now);
    Ok((
        201,
        json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": crate::store::format_ts(now)},
            "spec": {"audiences": body.pointer("/spec/audiences").cloned().unwrap_or(json!(["https://kubernetes.default.svc"])),
                     "expirationSeconds": expiration, "boundObjectRef": null},
            "status": {"token": token, "expirationTimestamp": crate::store::format_ts(expires)}}),
    ))
}
