//! Watching one workload (Deployment, StatefulSet or DaemonSet) until
//! `kubectl rollout status` rules say done or failed, within a window
//! (docs/kubectl-semantics.md §6).
//!
//! A GET gives the verdict and a resourceVersion; a watch on that one object
//! (`fieldSelector=metadata.name=…`, kube-rs' [`Api::watch`]) from that
//! version then re-evaluates every event, so the answer comes the moment the
//! controller's status write lands instead of at the next poll. The server
//! may end a watch at any time: at `timeoutSeconds`, early, or with
//! `410 Gone` when the version fell out of its watch cache; each of those is
//! followed by a fresh GET and a new watch. A broken connection is an error
//! (retryable), never a verdict: only a workload read from the server ends
//! the wait as done or failed.
//!
//! A window may be as long as the caller likes (`verify` watches up to 11
//! minutes in one invocation): it is made of watch requests of at most
//! [`WATCH_SEGMENT`] each, so an idle watch always ends at the server (or at
//! the client's grace) before the client's read timeout would break it.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::core::Status;
use selfheal_core::{RolloutState, RolloutStatus, WorkloadKind, rollout_status};
use tokio::time::Instant;

use crate::error::{Call, Error, Result};
use crate::kind::WorkloadObject;
use crate::remediator::Remediator;

/// How long one `selfheal status --watch` round watches, and a `verify`
/// invocation that is given no budget: one segment.
pub const WATCH_WINDOW: Duration = WATCH_SEGMENT;

/// The longest single watch request: below the client's 20 s read timeout,
/// since an idle watch sends nothing.
pub const WATCH_SEGMENT: Duration = Duration::from_secs(15);

/// Past the window's end, how long the client waits for a server that
/// ignores `timeoutSeconds` before it stops listening.
const SERVER_GRACE: Duration = Duration::from_secs(2);

/// What one watch event means for the wait.
#[derive(Debug)]
pub enum Step {
    /// kubectl's rules reached a verdict (done or failed).
    Finished(RolloutStatus),
    /// Still waiting; watch on from `resource_version`, with `status` as
    /// the latest verdict when the event carried the workload.
    Continue {
        status: Option<RolloutStatus>,
        resource_version: Option<String>,
    },
    /// The watch cannot go on from here (`410 Gone`, the object deleted):
    /// read the workload again (a deleted one then answers 404).
    Reread,
    /// Any other error the server sent inside the stream.
    Failed(Box<Status>),
}

/// kubectl's verdict on one watch event.
pub fn step<K: WorkloadObject>(event: WatchEvent<K>) -> Step {
    match event {
        WatchEvent::Added(workload) | WatchEvent::Modified(workload) => {
            let status = rollout_status(workload.workload());
            if status.state == RolloutState::Waiting {
                Step::Continue {
                    status: Some(status),
                    resource_version: workload.meta().resource_version.clone(),
                }
            } else {
                Step::Finished(status)
            }
        }
        WatchEvent::Bookmark(bookmark) => Step::Continue {
            status: None,
            resource_version: Some(bookmark.metadata.resource_version),
        },
        WatchEvent::Deleted(_) => Step::Reread,
        WatchEvent::Error(status) if status.code == 410 => Step::Reread,
        WatchEvent::Error(status) => Step::Failed(status),
    }
}

/// `timeoutSeconds` for a watch with `remaining` of the window left: one
/// segment ([`WATCH_SEGMENT`]) or the rest of the window, in whole seconds
/// rounded to the nearest, so the server ends the watch within half a second
/// of the segment's end; `None` when less than half a second is left (no
/// watch is worth starting).
pub fn server_timeout(remaining: Duration) -> Option<u32> {
    let rounded = (remaining.min(WATCH_SEGMENT) + Duration::from_millis(500)).as_secs();
    u32::try_from(rounded).ok().filter(|&s| s > 0)
}

/// The Status a GET of a missing workload answers, for a LIST by name
/// that finds none.
fn not_found(kind: WorkloadKind, name: &str) -> Status {
    Status::failure(
        &format!("{}.apps \"{name}\" not found", kind.plural()),
        "NotFound",
    )
    .with_code(404)
}

impl Remediator {
    /// `kubectl rollout status` verdict of a Deployment, watching up to
    /// `window` for it to become done or failed; `waiting` (from a fresh
    /// read) when the window ends first. `Duration::ZERO` is one read, like
    /// [`Remediator::status`].
    pub async fn watch_status(
        &self,
        namespace: &str,
        name: &str,
        window: Duration,
    ) -> Result<RolloutStatus> {
        self.watch_status_of(namespace, WorkloadKind::Deployment, name, window)
            .await
    }

    /// [`Self::watch_status`] for a workload of any kind.
    pub async fn watch_status_of(
        &self,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
        window: Duration,
    ) -> Result<RolloutStatus> {
        match kind {
            WorkloadKind::Deployment => self.watch_as::<Deployment>(namespace, name, window).await,
            WorkloadKind::StatefulSet => {
                self.watch_as::<StatefulSet>(namespace, name, window).await
            }
            WorkloadKind::DaemonSet => self.watch_as::<DaemonSet>(namespace, name, window).await,
        }
    }

    async fn watch_as<K: WorkloadObject>(
        &self,
        namespace: &str,
        name: &str,
        window: Duration,
    ) -> Result<RolloutStatus> {
        let deadline = Instant::now() + window;
        let api: Api<K> = Api::namespaced(self.client().clone(), namespace);
        let call = Call {
            verb: "watch",
            kind: K::KIND.as_str(),
            namespace,
            name,
        };
        let read = Call {
            verb: "list",
            ..call
        };
        let fields = format!("metadata.name={name}");
        'read: loop {
            // A LIST by name, as kubectl's rollout status does: its
            // resourceVersion is the collection's (now), which a watch can
            // start from even when the object itself has not changed for
            // longer than the server's watch cache holds events.
            let list = api
                .list(&ListParams::default().fields(&fields))
                .await
                .map_err(|e| read.error(e))?;
            let workload = list
                .items
                .into_iter()
                .next()
                .ok_or_else(|| Error::NotFound {
                    kind: K::KIND.as_str(),
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    source: Box::new(kube::Error::Api(Box::new(not_found(K::KIND, name)))),
                })?;
            let mut status = rollout_status(workload.workload());
            let mut version = list.metadata.resource_version.unwrap_or_default();
            if status.state != RolloutState::Waiting {
                return Ok(status);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(timeout) = server_timeout(left) else {
                return Ok(status);
            };
            let segment_end = Instant::now() + left.min(WATCH_SEGMENT);
            let params = WatchParams::default().fields(&fields).timeout(timeout);
            let events = api
                .watch(&params, &version)
                .await
                .map_err(|e| call.error(e))?;
            let mut events = std::pin::pin!(events);
            loop {
                let next = tokio::time::timeout_at(segment_end + SERVER_GRACE, events.next()).await;
                let event = match next {
                    // The server kept the watch open past the window.
                    Err(_elapsed) if segment_end >= deadline => return Ok(status),
                    // ... or past a segment: read again and watch on.
                    Err(_elapsed) => continue 'read,
                    // The server ended the watch (timeout or early close).
                    Ok(None) => continue 'read,
                    Ok(Some(Err(e))) => return Err(call.error(e)),
                    Ok(Some(Ok(event))) => event,
                };
                match step(event) {
                    Step::Finished(done) => return Ok(done),
                    Step::Continue {
                        status: latest,
                        resource_version,
                    } => {
                        status = latest.unwrap_or(status);
                        version = resource_version.unwrap_or(version);
                    }
                    Step::Reread => continue 'read,
                    Step::Failed(failure) => return Err(call.error(kube::Error::Api(failure))),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The recorded watch (tests/fixtures/k8s/watch.json): the events of a
    /// rollout, and the `ERROR` event a too-old resourceVersion gets.
    fn recorded() -> serde_json::Value {
        serde_json::from_str(include_str!("../../../tests/fixtures/k8s/watch.json")).unwrap()
    }

    fn events(exchange: &serde_json::Value) -> Vec<WatchEvent<Deployment>> {
        exchange["response"]["body"]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| serde_json::from_value(line.clone()).unwrap())
            .collect()
    }

    fn exchange<'a>(recorded: &'a serde_json::Value, note: &str) -> &'a serde_json::Value {
        recorded["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["note"].as_str().unwrap().starts_with(note))
            .unwrap()
    }

    #[test]
    fn a_recorded_rollout_waits_until_its_last_status_write_says_done() {
        let recorded = recorded();
        let rollout = events(exchange(&recorded, "WATCH started"));
        let steps: Vec<Step> = rollout.into_iter().map(step).collect();
        let finished = steps
            .iter()
            .position(|s| matches!(s, Step::Finished(_)))
            .unwrap();
        // Eight MODIFIED events while the rollout runs, the ninth finishes it.
        assert_eq!(finished, 8, "{steps:?}");
        for s in &steps[..finished] {
            match s {
                Step::Continue {
                    status: Some(status),
                    resource_version: Some(_),
                } => assert_eq!(status.state, RolloutState::Waiting, "{}", status.message),
                other => panic!("a mid-rollout event must keep waiting: {other:?}"),
            }
        }
        match &steps[finished] {
            Step::Finished(status) => {
                assert_eq!(status.state, RolloutState::Done);
                assert_eq!(
                    status.message,
                    r#"deployment "web" successfully rolled out"#
                );
            }
            other => panic!("{other:?}"),
        }
        // The bookmarks after it carry a version and no verdict.
        assert!(steps[finished + 1..].iter().all(|s| matches!(
            s,
            Step::Continue {
                status: None,
                resource_version: Some(v)
            } if v == "253"
        )));
    }

    #[test]
    fn a_too_old_version_rereads_and_other_errors_fail() {
        let recorded = recorded();
        let gone = events(exchange(&recorded, "WATCH with the too-old"));
        assert_eq!(gone.len(), 1);
        assert!(matches!(step(gone[0].clone()), Step::Reread));
        let forbidden: WatchEvent<Deployment> = serde_json::from_value(serde_json::json!({
            "type": "ERROR",
            "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "message": "internal error", "reason": "InternalError", "code": 500}
        }))
        .unwrap();
        match step(forbidden) {
            Step::Failed(status) => assert_eq!(status.code, 500),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bookmarks_move_the_version_and_deletion_rereads() {
        let bookmark: WatchEvent<Deployment> = serde_json::from_value(serde_json::json!({
            "type": "BOOKMARK",
            "object": {"kind": "Deployment", "apiVersion": "apps/v1",
                       "metadata": {"resourceVersion": "812"}}
        }))
        .unwrap();
        match step(bookmark) {
            Step::Continue {
                status: None,
                resource_version: Some(v),
            } => assert_eq!(v, "812"),
            other => panic!("{other:?}"),
        }
        let deleted = WatchEvent::Deleted(Deployment::default());
        assert!(matches!(step(deleted), Step::Reread));
    }

    #[test]
    fn the_server_timeout_never_outlasts_the_window() {
        assert_eq!(server_timeout(Duration::from_millis(14_990)), Some(15));
        assert_eq!(server_timeout(Duration::from_millis(15_400)), Some(15));
        assert_eq!(server_timeout(Duration::from_millis(600)), Some(1));
        assert_eq!(server_timeout(Duration::from_millis(499)), None);
        assert_eq!(server_timeout(Duration::ZERO), None);
        // A longer window is watched one segment at a time.
        assert_eq!(server_timeout(Duration::from_secs(660)), Some(15));
        assert_eq!(server_timeout(Duration::from_secs(u64::MAX / 2)), Some(15));
        // An idle watch sends nothing: the server's close (at most half a
        // second late) and the client's grace both come before the read timeout.
        assert!(
            WATCH_SEGMENT + Duration::from_millis(500) + SERVER_GRACE < crate::client::READ_TIMEOUT
        );
    }
}
