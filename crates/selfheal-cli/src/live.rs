//! Cluster mode: the kube adapter does the reads, the plan and the PATCH.
//! TEMPORARY: selfheal-kube's Remediator has not landed yet.

use std::path::Path;

use selfheal_core::{Policy, RemediationOutcome, RemediationRequest, RolloutStatus};

use crate::Error;

#[derive(Debug)]
pub(crate) struct Client;

pub(crate) async fn client(
    _kubeconfig: Option<&Path>,
    _context: Option<&str>,
) -> Result<Client, Error> {
    Err(Error::Snapshot("cluster mode is not available yet".into()))
}

pub(crate) async fn remediate(
    _c: Client,
    _p: Policy,
    _r: &RemediationRequest,
) -> Result<RemediationOutcome, Error> {
    Err(Error::Snapshot("cluster mode is not available yet".into()))
}

pub(crate) async fn status(
    _c: Client,
    _p: Policy,
    _n: &str,
    _m: &str,
) -> Result<RolloutStatus, Error> {
    Err(Error::Snapshot("cluster mode is not available yet".into()))
}
