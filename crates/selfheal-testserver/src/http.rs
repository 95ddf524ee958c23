//! HTTP serving (hyper 1, HTTP/1.1 and HTTP/2, optional TLS), request
//! recording, authentication, fault injection and routing to the handlers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch as tokio_watch;

use crate::auth::Who;
use crate::faults::Reset;
use crate::rbac::Attributes;
use crate::status::{self, ApiError};
use crate::store::Kind;
use crate::{RecordedRequest, Shared, api, discovery};

pub(crate) type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub(crate) fn spawn(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: tokio_watch::Receiver<bool>,
) {
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stop.changed() => return,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else { continue };
            // As kube-apiserver: Go's net package turns Nagle's algorithm off
            // on every TCP connection, accepted ones included. Left on, a
            // response written as several TLS records would wait for the
            // client's delayed ACK (40 ms), a latency no real API server adds.
            let _ = stream.set_nodelay(true);
            // A second handle on the socket, so an injected drop can set
            // SO_LINGER 0 after hyper owns the stream: the close is then a
            // reset, as a network drop looks to the client.
            let Ok((stream, socket)) = duplicate(stream) else {
                continue;
            };
            let drops = shared
                .faults
                .lock()
                .map(|f| f.drops.clone())
                .unwrap_or_default();
            let shared = shared.clone();
            let tls = tls.clone();
            let conn_shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut stop = conn_shutdown.clone();
                let svc_shutdown = conn_shutdown.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    let sd = svc_shutdown.clone();
                    async move { handle(shared, sd, req).await }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let dropped = drops.notified();
                tokio::pin!(dropped);
                dropped.as_mut().enable();
                match tls {
                    Some(acceptor) => {
                        let Ok(s) = acceptor.accept(stream).await else {
                            return;
                        };
                        let conn = builder.serve_connection(TokioIo::new(s), svc);
                        tokio::select! { _ = conn => {}, _ = stop.changed() => {}, _ = dropped => reset(&socket) }
                    }
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), svc);
                        tokio::select! { _ = conn => {}, _ = stop.changed() => {}, _ = dropped => reset(&socket) }
                    }
                }
            });
        }
    });
}

/// The stream and a second handle on the same socket.
fn duplicate(stream: tokio::net::TcpStream) -> std::io::Result<(tokio::net::TcpStream, TcpStream)> {
    let std = stream.into_std()?;
    let twin = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, TcpStream::from_std(twin)?))
}

/// SO_LINGER 0: when the last handle closes, the peer gets RST instead of FIN.
fn reset(socket: &TcpStream) {
    let _ = socket.set_zero_linger();
}

/// What a handler produces.
pub(crate) enum Reply {
    Json(u16, Value),
    Stream(Body),
    /// No answer: the connection is dropped (an injected [`crate::faults::Reset`]).
    Reset,
}

/// The service's error: hyper closes the connection without a response.
#[derive(Debug)]
pub(crate) struct ConnectionReset;

impl std::fmt::Display for ConnectionReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for ConnectionReset {}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::Json(e.code, e.body)
    }
}

/// A parsed request, as the handlers see it.
#[derive(Debug)]
pub(crate) struct ApiRequest {
    pub(crate) method: String,
    pub(crate) query: BTreeMap<String, String>,
    pub(crate) content_type: String,
    pub(crate) body: Bytes,
    pub(crate) kind: Kind,
    pub(crate) ns: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) sub: Option<String>,
}

impl ApiRequest {
    pub(crate) fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }
    fn verb(&self) -> &'static str {
        match (self.method.as_str(), self.name.is_some()) {
            ("GET", true) => "get",
            ("GET", false)
                if self
                    .query
                    .get("watch")
                    .is_some_and(|w| w == "true" || w == "1") =>
            {
                "watch"
            }
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "get",
        }
    }
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let mut resp = json_body(Full::new(Bytes::from(body.to_string())).boxed());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

/// A 200 answer with `body` and the headers the API server sends with JSON
/// (a single object or a watch stream).
fn json_body(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, private"),
    );
    resp
}

async fn handle(
    shared: Arc<Shared>,
    shutdown: tokio_watch::Receiver<bool>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, ConnectionReset> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let header = |name: http::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(http::header::CONTENT_TYPE);
    let authorization = header(http::header::AUTHORIZATION);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let latency = shared.faults.lock().map(|f| f.latency).unwrap_or(None);
    if let Some(d) = latency {
        tokio::time::sleep(d).await;
    }
    let reply = route(
        &shared,
        shutdown,
        &method,
        &path,
        &query,
        content_type.as_deref(),
        authorization.as_deref(),
        body.clone(),
    );
    let (status, response) = match reply {
        Reply::Json(code, v) => (code, Ok(json_response(code, &v))),
        Reply::Reset => (0, Err(ConnectionReset)),
        Reply::Stream(b) => (200, Ok(json_body(b))),
    };
    let recorded = RecordedRequest {
        method,
        path,
        query,
        content_type,
        body: serde_json::from_slice(&body).ok(),
        status,
    };
    shared
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(recorded);
    response
}

/// The authorizer attributes of a resource request, as the real server's
/// RequestInfo derives them: GET without a name is `list` (or `watch`), a
/// `metadata.name=` field selector names the object, and a Namespace
/// object's namespace is its own name.
pub(crate) fn attributes(r: &ApiRequest) -> Attributes {
    let name = r.name.clone().or_else(|| {
        let verb = r.verb();
        if verb != "list" && verb != "watch" {
            return None;
        }
        r.query.get("fieldSelector").and_then(|fs| {
            fs.split(',').find_map(|term| {
                let value = term.trim().strip_prefix("metadata.name=")?;
                let value = value.strip_prefix('=').unwrap_or(value);
                (!value.is_empty()).then(|| value.to_string())
            })
        })
    });
    let namespace = match (r.kind, &r.name) {
        (Kind::Namespace, Some(n)) => Some(n.clone()),
        _ => r.ns.clone(),
    };
    Attributes {
        verb: r.verb().to_string(),
        api_group: r.kind.group().to_string(),
        resource: r.kind.plural().to_string(),
        subresource: r.sub.clone(),
        name,
        namespace,
    }
}

/// The real server's 403 (`responsewriters.Forbidden`): message, reason
/// appended after a colon when the authorizer gave one.
fn forbidden(user: &str, a: &Attributes, reason: Option<&str>) -> ApiError {
    let qualified = if a.api_group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.api_group)
    };
    let subject = match &a.name {
        Some(n) => format!("{qualified} \"{n}\""),
        None => qualified,
    };
    let scope = match &a.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let mut details = serde_json::Map::new();
    if let Some(n) = &a.name {
        details.insert("name".into(), Value::String(n.clone()));
    }
    if !a.api_group.is_empty() {
        details.insert("group".into(), Value::String(a.api_group.clone()));
    }
    details.insert("kind".into(), Value::String(a.resource.clone()));
    let mut message = format!(
        "{subject} is forbidden: User \"{user}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        a.verb,
        a.combined_resource(),
        a.api_group
    );
    if let Some(reason) = reason {
        message.push_str(": ");
        message.push_str(reason);
    }
    status::status(403, "Forbidden", &message, Some(Value::Object(details)))
}

/// Splits `/api/v1/...` and `/apis/apps/v1/...` into kind/namespace/name/subresource.
/// kind, namespace, name, subresource.
type Target = (Kind, Option<String>, Option<String>, Option<String>);

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", "apps", "v1", rest @ ..] => ("apps", rest),
        _ => return None,
    };
    let own = |s: &&str| Some(s.to_string());
    match rest {
        ["namespaces", ns, plural, tail @ ..]
            if Kind::from_plural(group, plural).is_some_and(Kind::namespaced) =>
        {
            let kind = Kind::from_plural(group, plural)?;
            match tail {
                [] => Some((kind, Some(ns.to_string()), None, None)),
                [name] => Some((kind, Some(ns.to_string()), own(name), None)),
                [name, sub] => Some((kind, Some(ns.to_string()), own(name), own(sub))),
                _ => None,
            }
        }
        [plural, tail @ ..] => {
            let kind = Kind::from_plural(group, plural)?;
            match (kind, tail) {
                (_, []) => Some((kind, None, None, None)),
                (_, [name]) if !kind.namespaced() => Some((kind, None, own(name), None)),
                (_, [name, sub]) if !kind.namespaced() => Some((kind, None, own(name), own(sub))),
                _ => None,
            }
        }
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn route(
    shared: &Arc<Shared>,
    shutdown: tokio_watch::Receiver<bool>,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: Bytes,
) -> Reply {
    let who = shared.auth().authenticate(authorization);
    if who == Who::Unauthorized {
        return status::status(401, "Unauthorized", "Unauthorized", None).into();
    }
    if discovery::is_discovery(path) {
        let public =
            path == "/version" || path == "/healthz" || path == "/readyz" || path == "/livez";
        if who == Who::Anonymous && !public {
            return status::status(
                403,
                "Forbidden",
                &format!("forbidden: User \"system:anonymous\" cannot get path \"{path}\""),
                Some(serde_json::json!({})),
            )
            .into();
        }
        return match discovery::document(path) {
            Some(doc) => Reply::Json(200, doc),
            None if path.starts_with("/openapi") => status::status(
                404,
                "NotFound",
                "the server could not find the requested resource",
                Some(serde_json::json!({})),
            )
            .into(),
            None => Reply::Json(200, Value::String("ok".into())),
        };
    }
    let Some((kind, ns, name, sub)) = parse_path(path) else {
        return status::status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(serde_json::json!({})),
        )
        .into();
    };
    let req = ApiRequest {
        method: method.to_string(),
        query: query.clone(),
        content_type: content_type.unwrap_or("application/json").to_string(),
        body,
        kind,
        ns,
        name,
        sub,
    };
    let attrs = attributes(&req);
    let denied = shared.auth().authorize(&who, &attrs);
    if let Err(denied) = denied {
        return forbidden(&denied.user, &attrs, denied.reason.as_deref()).into();
    }
    let hook = shared
        .faults
        .lock()
        .map(|mut f| f.take_hook(method))
        .unwrap_or(None);
    if let Some(hook) = hook {
        (hook.run)();
    }
    let injected = shared
        .faults
        .lock()
        .map(|mut f| f.take_failure())
        .unwrap_or(None);
    if let Some(code) = injected {
        return status::for_code(code).into();
    }
    let reset = shared
        .faults
        .lock()
        .map(|mut f| f.take_reset(&req.method))
        .unwrap_or(None);
    if reset == Some(Reset::BeforeApplying) {
        return Reply::Reset;
    }
    let reply = api::handle(shared, shutdown, &req);
    if req.method != "GET" {
        shared.controller.poke();
    }
    if reset == Some(Reset::AfterApplying) {
        return Reply::Reset;
    }
    reply
}

/// Default watch timeout when the client gives none (the real server picks 30–60 min).
pub(crate) const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let some = |s: &str| Some(s.to_owned());
        let cases = [
            (
                "/apis/apps/v1/namespaces/shop/deployments/checkout",
                (Kind::Deployment, some("shop"), some("checkout"), None),
            ),
            (
                "/api/v1/namespaces/shop/pods/p/status",
                (Kind::Pod, some("shop"), some("p"), some("status")),
            ),
            (
                "/api/v1/namespaces/shop",
                (Kind::Namespace, None, some("shop"), None),
            ),
            ("/api/v1/namespaces", (Kind::Namespace, None, None, None)),
            (
                "/apis/apps/v1/replicasets",
                (Kind::ReplicaSet, None, None, None),
            ),
            (
                "/api/v1/nodes/node-a/status",
                (Kind::Node, None, some("node-a"), some("status")),
            ),
            (
                "/apis/apps/v1/namespaces/data/controllerrevisions",
                (Kind::ControllerRevision, some("data"), None, None),
            ),
            (
                "/apis/apps/v1/namespaces/data/statefulsets/ledger",
                (Kind::StatefulSet, some("data"), some("ledger"), None),
            ),
            (
                "/apis/apps/v1/namespaces/data/daemonsets/node-agent",
                (Kind::DaemonSet, some("data"), some("node-agent"), None),
            ),
            (
                "/api/v1/namespaces/data/services",
                (Kind::Service, some("data"), None, None),
            ),
        ];
        for (path, parsed) in cases {
            assert_eq!(parse_path(path), Some(parsed), "{path}");
        }
        assert_eq!(parse_path("/apis/batch/v1/jobs"), None);
    }

    fn request(method: &str, path: &str, query: &[(&str, &str)]) -> ApiRequest {
        let (kind, ns, name, sub) = parse_path(path).unwrap();
        ApiRequest {
            method: method.into(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            content_type: "application/json".into(),
            body: Bytes::new(),
            kind,
            ns,
            name,
            sub,
        }
    }

    fn message(e: &ApiError) -> &str {
        e.body["message"].as_str().unwrap()
    }

    #[test]
    fn attributes_follow_request_info() {
        let a = attributes(&request(
            "PATCH",
            "/apis/apps/v1/namespaces/shop/deployments/checkout/scale",
            &[],
        ));
        assert_eq!(
            (a.verb.as_str(), a.api_group.as_str(), a.combined_resource()),
            ("patch", "apps", "deployments/scale".to_string())
        );
        assert_eq!(a.name.as_deref(), Some("checkout"));
        assert_eq!(a.namespace.as_deref(), Some("shop"));
        // GET on a collection is list, with watch=true watch; a metadata.name
        // field selector names the object.
        let a = attributes(&request(
            "GET",
            "/apis/apps/v1/namespaces/shop/deployments",
            &[
                ("watch", "true"),
                ("fieldSelector", "metadata.name=checkout"),
            ],
        ));
        assert_eq!(
            (a.verb.as_str(), a.name.as_deref()),
            ("watch", Some("checkout"))
        );
        let a = attributes(&request("GET", "/apis/apps/v1/deployments", &[]));
        assert_eq!((a.verb.as_str(), a.name, a.namespace), ("list", None, None));
        let a = attributes(&request(
            "DELETE",
            "/api/v1/namespaces/shop/pods",
            &[("fieldSelector", "metadata.name!=x")],
        ));
        assert_eq!((a.verb.as_str(), a.name), ("deletecollection", None));
        // A Namespace object is in its own namespace.
        let a = attributes(&request("GET", "/api/v1/namespaces/shop", &[]));
        assert_eq!(a.namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn forbidden_body_is_the_real_one() {
        let r = request(
            "PATCH",
            "/apis/apps/v1/namespaces/shop/deployments/checkout/scale",
            &[],
        );
        let e = forbidden("u", &attributes(&r), None);
        assert_eq!(e.code, 403);
        assert_eq!(
            message(&e),
            "deployments.apps \"checkout\" is forbidden: User \"u\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"shop\""
        );
        assert_eq!(
            e.body["details"],
            serde_json::json!({"name": "checkout", "group": "apps", "kind": "deployments"})
        );
        let r = request("GET", "/apis/apps/v1/deployments", &[]);
        let e = forbidden(
            "u",
            &attributes(&r),
            Some("RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"),
        );
        assert_eq!(
            message(&e),
            "deployments.apps is forbidden: User \"u\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"
        );
        let r = request("POST", "/api/v1/namespaces/shop/events", &[]);
        assert_eq!(
            message(&forbidden("u", &attributes(&r), None)),
            "events is forbidden: User \"u\" cannot create resource \"events\" in API group \"\" in the namespace \"shop\""
        );
    }

    /// The least privilege the StatefulSet and DaemonSet paths need (issue
    /// 13): the workloads get/patch/watch, their ControllerRevisions list.
    /// Request paths become the attributes RBAC rules name, so a rule on
    /// `statefulsets` covers neither `statefulsets/scale` nor a LIST, and
    /// `controllerrevisions` list does not cover get.
    #[test]
    fn workload_paths_authorize_as_rbac_rules_say() {
        let rbac = crate::Rbac::from_yaml(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: healer, namespace: data}
rules:
  - apiGroups: ["apps"]
    resources: ["statefulsets", "daemonsets"]
    verbs: ["get", "patch", "watch"]
  - apiGroups: ["apps"]
    resources: ["controllerrevisions"]
    verbs: ["list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: healer, namespace: data}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: healer}
subjects: [{kind: User, name: healer}]
"#,
        )
        .unwrap();
        let sts = "/apis/apps/v1/namespaces/data/statefulsets";
        let ds = "/apis/apps/v1/namespaces/data/daemonsets";
        let crs = "/apis/apps/v1/namespaces/data/controllerrevisions";
        let watch = [("watch", "true"), ("fieldSelector", "metadata.name=ledger")];
        type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], bool);
        let cases: [Case<'_>; 10] = [
            ("GET", format!("{sts}/ledger"), &[], true),
            ("PATCH", format!("{sts}/ledger"), &[], true),
            ("GET", sts.to_owned(), &watch, true),
            ("PATCH", format!("{ds}/node-agent"), &[], true),
            (
                "GET",
                crs.to_owned(),
                &[("labelSelector", "app=ledger")],
                true,
            ),
            ("GET", sts.to_owned(), &[], false),
            ("PATCH", format!("{sts}/ledger/scale"), &[], false),
            ("PATCH", format!("{ds}/node-agent/status"), &[], false),
            ("GET", format!("{crs}/ledger-abc"), &[], false),
            ("DELETE", format!("{sts}/ledger"), &[], false),
        ];
        for (method, path, query, allowed) in cases {
            let a = attributes(&request(method, &path, query));
            let decision = rbac.authorize("healer", &[], &a);
            assert_eq!(
                decision == crate::rbac::Decision::Allow,
                allowed,
                "{method} {path} {query:?}: {a:?}"
            );
        }
        let a = attributes(&request("GET", &format!("{crs}/ledger-abc"), &[]));
        assert_eq!(
            message(&forbidden("healer", &a, None)),
            "controllerrevisions.apps \"ledger-abc\" is forbidden: User \"healer\" cannot get resource \"controllerrevisions\" in API group \"apps\" in the namespace \"data\""
        );
        // Elsewhere nothing.
        let a = attributes(&request(
            "GET",
            "/apis/apps/v1/namespaces/shop/statefulsets/x",
            &[],
        ));
        assert_ne!(
            rbac.authorize("healer", &[], &a),
            crate::rbac::Decision::Allow
        );
    }
}
