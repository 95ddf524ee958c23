//! The approval's JSON: what an approval page shows ([`ApprovalPlan`], kept
//! in the approval record notify writes and approve reads) and what an
//! approval answers the waiting task with ([`ApprovalDecision`] and its
//! [`Decision`], which the state machine hands to notify).
//! `selfheal-approval` re-exports them.

use serde::{Deserialize, Serialize};

use crate::Action;

/// What an approval decides, as the approval page shows it: the workload,
/// the action, the image changes the API server accepted in a dry run when
/// the approval was requested, the pods' evidence and the alarm. `notify`
/// fills it from the execution's state; every text is display-ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPlan {
    /// `rollback`, `restart`, `resume`.
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub namespace: String,
    /// `Deployment checkout`, `StatefulSet ledger`, `DaemonSet node-agent`,
    /// or `pod checkout-7d9f8c6b5-x2x9q`.
    pub workload: String,
    /// Per container, its image now and the one it goes back to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PlannedChange>,
    /// The API server accepted the change in a dry run (`dryRun=All`).
    #[serde(default)]
    pub validated: bool,
    /// What the dry run said (its outcome's sentence), or why there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// Per container, what the new revision's pods show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<PlanEvidence>,
    /// `checkout-5xx (cloudwatch, impact 2.40)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    /// The request's reason (an alarm's state reason or a person's words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One container's image change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    pub container: String,
    pub from: String,
    pub to: String,
}

/// One container's evidence line (`api: CrashLoopBackOff on 2/2 new pods, 7 restarts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEvidence {
    pub container: String,
    #[serde(default)]
    pub failing: bool,
    pub text: String,
}

impl ApprovalPlan {
    /// The plan with every text at most `chars` characters and every list at
    /// most `items` long (a cut list says how many it left out).
    pub fn clipped(&self, chars: usize, items: usize) -> ApprovalPlan {
        let clip = |text: &str| -> String {
            if text.chars().count() <= chars {
                text.to_owned()
            } else {
                let mut cut: String = text.chars().take(chars.saturating_sub(1)).collect();
                cut.push('…');
                cut
            }
        };
        let clip_opt = |text: &Option<String>| text.as_deref().map(clip);
        let mut evidence: Vec<PlanEvidence> = self
            .evidence
            .iter()
            .take(items)
            .map(|e| PlanEvidence {
                container: clip(&e.container),
                failing: e.failing,
                text: clip(&e.text),
            })
            .collect();
        if self.evidence.len() > items {
            evidence.push(PlanEvidence {
                container: String::new(),
                failing: false,
                text: format!("… and {} more containers", self.evidence.len() - items),
            });
        }
        ApprovalPlan {
            action: self.action,
            cluster: clip_opt(&self.cluster),
            namespace: clip(&self.namespace),
            workload: clip(&self.workload),
            // Every change stays whole: the page must not hide one it will make.
            changes: self.changes.clone(),
            validated: self.validated,
            preview: clip_opt(&self.preview),
            evidence,
            alarm: clip_opt(&self.alarm),
            reason: clip_opt(&self.reason),
        }
    }
}

/// Who answered a link, as the Function URL saw the request: logged with the
/// decision and passed to the waiting execution, so the final notification
/// can say who decided. Both come from the client (the IP from the TCP
/// connection, the user agent from a header it chose), so they identify a
/// device, not a person; they are cleaned of control characters and capped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// Longest user agent (or source IP) kept, in characters.
pub const CALLER_FIELD_MAX_CHARS: usize = 256;

impl Caller {
    pub fn new(source_ip: Option<&str>, user_agent: Option<&str>) -> Self {
        let clean = |text: Option<&str>| {
            let text: String = text?
                .chars()
                .filter(|c| !c.is_control())
                .take(CALLER_FIELD_MAX_CHARS)
                .collect();
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        };
        Caller {
            source_ip: clean(source_ip),
            user_agent: clean(user_agent),
        }
    }

    /// `from 203.0.113.7 (curl/8.5.0)`, for sentences.
    pub fn describe(&self) -> String {
        format!(
            "from {} ({})",
            self.source_ip.as_deref().unwrap_or("an unknown address"),
            self.user_agent.as_deref().unwrap_or("no user agent")
        )
    }
}

/// approve | deny: what a link decides, and what an approval answers the
/// waiting task with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    /// Whether a link minted for `self` may make `wanted`: the approve link
    /// may also deny (the page offers both, and denying changes nothing), the
    /// deny link may only deny, so whoever holds it cannot approve.
    pub fn permits(self, wanted: Decision) -> bool {
        self == Decision::Approve || wanted == Decision::Deny
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "approve" => Some(Decision::Approve),
            "deny" => Some(Decision::Deny),
            _ => None,
        }
    }

    /// The contract's name (`approve`, `deny`).
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}

/// What an approval answers the waiting task with (`SendTaskSuccess`
/// output): the state machine continues with it, and notify reports who
/// decided. `approve` only ever sends [`Decision::Approve`] this way (a
/// denial is a `SendTaskFailure`); an output without a known decision reads
/// as the approval step's error ([`crate::execution::Approval::Failed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalDecision {
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Caller>,
}
