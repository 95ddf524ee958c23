//! `?watch=true`: newline-delimited `{"type", "object"}` events, replayed from
//! the store's change window and then streamed live (tests/fixtures/k8s/watch.json).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::Shared;
use crate::http::Body;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Change, Kind};

#[derive(Debug)]
pub(crate) struct WatchParams {
    pub(crate) kind: Kind,
    pub(crate) ns: Option<String>,
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    /// `None` (or "0"): start with synthetic ADDED events for current objects.
    pub(crate) resource_version: Option<u64>,
    pub(crate) timeout: Duration,
    pub(crate) bookmarks: bool,
}

impl WatchParams {
    fn matches(&self, kind: Kind, obj: &Value) -> bool {
        if kind != self.kind {
            return false;
        }
        if let Some(ns) = &self.ns
            && self.kind.namespaced()
            && obj.pointer("/metadata/namespace").and_then(Value::as_str) != Some(ns)
        {
            return false;
        }
        self.labels.matches_object(obj) && self.fields.matches_object(obj)
    }
}

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": event_type, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(kind: Kind, rv: u64) -> Value {
    let mut obj = json!({"kind": kind.kind(), "apiVersion": kind.api_version(),
        "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null}});
    if kind == Kind::Deployment {
        obj["spec"] = json!({"replicas": 0, "selector": null,
            "template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}, "strategy": {}});
        obj["status"] = json!({});
    }
    obj
}

/// Builds the streaming body. Subscribing and reading the backlog happen under
/// one store lock, so no change falls between replay and live events.
pub(crate) fn stream(
    shared: &Arc<Shared>,
    params: WatchParams,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let (mut live, backlog, mut last_rv): (
        broadcast::Receiver<Change>,
        Result<Vec<Bytes>, String>,
        u64,
    ) = {
        let store = shared.store();
        let live = store.tx.subscribe();
        let current = store.current_rv();
        let backlog = match params.resource_version {
            None | Some(0) => Ok(store
                .list(params.kind, params.ns.as_deref())
                .into_iter()
                .filter(|o| params.matches(params.kind, o))
                .map(|o| line("ADDED", o))
                .collect()),
            Some(rv) => match store.changes_since(params.kind, rv) {
                Ok(changes) => Ok(changes
                    .iter()
                    .filter(|c| params.matches(c.kind, &c.object))
                    .map(|c| line(c.event_type, &c.object))
                    .collect()),
                Err(oldest) => Err(format!(
                    "too old resource version: {rv} ({})",
                    oldest.saturating_sub(1)
                )),
            },
        };
        (live, backlog, current)
    };
    let ends = shared
        .faults
        .lock()
        .map(|f| f.ends.clone())
        .unwrap_or_default();
    tokio::spawn(async move {
        let ended = ends.notified();
        tokio::pin!(ended);
        ended.as_mut().enable();
        let lines = match backlog {
            Ok(lines) => lines,
            Err(message) => {
                let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": "Expired", "code": 410});
                let _ = tx.send(line("ERROR", &status)).await;
                return;
            }
        };
        for l in lines {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + params.timeout;
        let bookmark_every = Duration::from_secs(1);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = shutdown.changed() => return,
                _ = &mut ended => return,
                _ = tokio::time::sleep(bookmark_every), if params.bookmarks => {
                    if tx.send(line("BOOKMARK", &bookmark(params.kind, last_rv))).await.is_err() {
                        return;
                    }
                }
                msg = live.recv() => match msg {
                    Ok(change) => {
                        if change.rv <= last_rv && params.resource_version.is_some() {
                            continue;
                        }
                        last_rv = last_rv.max(change.rv);
                        if params.matches(change.kind, &change.object)
                            && tx.send(line(change.event_type, &change.object)).await.is_err()
                        {
                            return;
                        }
                    }
                    // A watcher that fell too far behind is closed, like the real server does.
                    Err(_) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    http_body_util::StreamBody::new(stream).boxed()
}
