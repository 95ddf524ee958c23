//! The three workload kinds as one bound, so the remediator, the status
//! watch and the audit Event are written once and typed per kind
//! (`Api<Deployment>`, `Api<StatefulSet>`, `Api<DaemonSet>`).

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::serde::Serialize;
use k8s_openapi::serde::de::DeserializeOwned;
use selfheal_core::{WorkloadKind, WorkloadRef};

/// A workload type the adapter reads, patches and watches.
pub trait WorkloadObject:
    kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    const KIND: WorkloadKind;

    /// The core's view of the object, for planning, guards and status.
    fn workload(&self) -> WorkloadRef<'_>;
}

impl WorkloadObject for Deployment {
    const KIND: WorkloadKind = WorkloadKind::Deployment;

    fn workload(&self) -> WorkloadRef<'_> {
        self.into()
    }
}

impl WorkloadObject for StatefulSet {
    const KIND: WorkloadKind = WorkloadKind::StatefulSet;

    fn workload(&self) -> WorkloadRef<'_> {
        self.into()
    }
}

impl WorkloadObject for DaemonSet {
    const KIND: WorkloadKind = WorkloadKind::DaemonSet;

    fn workload(&self) -> WorkloadRef<'_> {
        self.into()
    }
}
