//! Cluster mode: the kube adapter does the reads, the plan and the PATCH.

use std::path::Path;

use selfheal_core::{Policy, RemediationOutcome, RolloutStatus, ValidRequest, WorkloadKind};
use selfheal_kube::{KubeconfigContext, Remediator};

use crate::Error;

/// The context `--context` (else the current one) names, and its cluster's names.
pub(crate) fn context(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<KubeconfigContext, Error> {
    KubeconfigContext::load(kubeconfig, context).map_err(|source| Error::Kube { source })
}

pub(crate) async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, Error> {
    selfheal_kube::client_from_kubeconfig(kubeconfig, context)
        .await
        .map_err(|source| Error::Kube { source })
}

pub(crate) async fn remediate(
    client: kube::Client,
    policy: Policy,
    request: &ValidRequest,
) -> Result<RemediationOutcome, Error> {
    Remediator::new(client, policy)
        .remediate_valid(request)
        .await
        .map_err(|source| Error::Kube { source })
}

pub(crate) async fn status(
    remediator: Remediator,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
) -> Result<RolloutStatus, Error> {
    remediator
        .status_of(namespace, kind, name)
        .await
        .map_err(|source| Error::Kube { source })
}
