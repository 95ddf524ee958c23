//! What the current revision's pods say about each container: the record a
//! rollback outcome carries (`evidence`) and its one-line descriptions.
//! `selfheal-core`'s `evidence` module computes it from pod statuses.

use serde::{Deserialize, Serialize};

/// One container's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// At least one pod of the current revision shows it failing.
    Failing,
    /// Every pod of the current revision that reports it shows it fine.
    Healthy,
    /// No pod of the current revision reports a status for it yet.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Failing => "failing",
            Verdict::Healthy => "healthy",
            Verdict::Unknown => "unknown",
        }
    }
}

/// What the current revision's pods say about one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEvidence {
    pub container: String,
    /// An init container (`initContainerStatuses`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    pub verdict: Verdict,
    /// The failing reason seen on most affected pods (a waiting reason,
    /// `Error`/`OOMKilled`-style termination reason, or `NotReady`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Pods of the current revision where this container is failing.
    pub pods_affected: u32,
    /// Pods of the current revision that report a status for it.
    pub pods_seen: u32,
    /// Sum of `restartCount` over those pods.
    pub restarts: i64,
    /// The last non-zero exit code seen (`lastState` or `state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The waiting message the kubelet gave (`Back-off pulling image ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ContainerEvidence {
    pub fn is_failing(&self) -> bool {
        self.verdict == Verdict::Failing
    }

    /// `api: CrashLoopBackOff on 2/2 new pods, 7 restarts`, `envoy: healthy`.
    pub fn describe(&self) -> String {
        match self.verdict {
            Verdict::Failing => {
                let reason = self.reason.as_deref().unwrap_or("failing");
                let mut text = format!(
                    "{}: {reason} on {}/{} new pods",
                    self.container, self.pods_affected, self.pods_seen
                );
                if self.restarts > 0 {
                    let s = if self.restarts == 1 { "" } else { "s" };
                    text.push_str(&format!(", {} restart{s}", self.restarts));
                }
                if let Some(code) = self.exit_code {
                    text.push_str(&format!(", exit code {code}"));
                }
                text
            }
            verdict => format!("{}: {}", self.container, verdict.as_str()),
        }
    }
}

/// Every container's description joined with `; `, for messages, Events and
/// notifications.
pub fn summary(evidence: &[ContainerEvidence]) -> String {
    evidence
        .iter()
        .map(ContainerEvidence::describe)
        .collect::<Vec<_>>()
        .join("; ")
}
