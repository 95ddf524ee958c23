//! Kubernetes adapter for selfheal: the only crate that talks to the API
//! server on behalf of the remediation functions.
//!
//! [`Remediator`] is built once per process from a [`kube::Client`] (see
//! [`client_from_kubeconfig`], [`client_from_parts`]) and a
//! [`selfheal_core::Policy`]; each [`Remediator::remediate`] call reads the
//! workload (Deployment, StatefulSet or DaemonSet, [`WorkloadObject`]; and
//! its ReplicaSets or ControllerRevisions for a rollback), lets the pure core decide,
//! sends the one guarded JSON Patch, and records an audit Event. Errors carry
//! stable [`Error::error_type`] names for the state machine's `Retry`/`Catch`.

pub mod client;
pub mod context;
pub mod error;
pub mod events;
pub mod kind;
pub mod remediator;
pub mod resolve;
pub mod watch;

pub use client::{
    CaError, EndpointError, client_from_kubeconfig, client_from_parts, parse_endpoint, pem_to_der,
};
pub use context::{KubeconfigContext, eks_cluster_name};
pub use error::{Error, Result};
pub use events::Reporter;
pub use kind::WorkloadObject;
pub use remediator::{Clock, DEFAULT_REPLAN_BUDGET, Remediator, Resolved, Snapshot};
pub use resolve::{PodOwner, label_selector, pod_owner};
pub use watch::{WATCH_SEGMENT, WATCH_WINDOW};

/// `fieldManager` of our writes, so `managedFields` show who changed what.
pub const FIELD_MANAGER: &str = "selfheal";

/// Default `reportingComponent` / `source.component` of our Events.
pub const REPORTING_COMPONENT: &str = "selfheal";
