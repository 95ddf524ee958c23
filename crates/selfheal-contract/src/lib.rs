//! selfheal's public contract, without Kubernetes types: what a console user
//! types into a Step Functions execution and what every function returns
//! ([`model`], docs/contract.md), the `errorType` names a state machine's
//! `Retry`/`Catch` match ([`ErrorType`]), and the one rule every function
//! reads its configuration variables by ([`env`]).
//!
//! The alarm, ingest and notify crates build on this alone; `selfheal-core`
//! re-exports it beside the planners that need `k8s-openapi`.

pub mod approval;
pub mod cluster;
pub mod env;
pub mod error;
pub mod error_type;
pub mod evidence;
pub mod execution;
pub mod model;
pub mod rollout;
pub mod verify;

pub use cluster::{ClusterLocation, ClusterRef, ClusterRoles};
pub use error::{Error, Malformed, decode, decode_str};
pub use error_type::ErrorType;
pub use evidence::{ContainerEvidence, Verdict};
pub use model::{
    Action, AlarmRef, ApprovedBy, Change, GitopsManager, Guard, OutcomeStatus, RemediationOutcome,
    RemediationRequest, RevisionInfo, Scope, Target, ValidRequest, Workload, WorkloadKind,
};
pub use rollout::{RolloutState, RolloutStatus};
pub use verify::{VerifyOutput, WatchSpan};
