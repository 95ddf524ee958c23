//! Per-process state, built once in `main` and borrowed by every invocation
//! (aws-lambda-rust-runtime's `basic-shared-resource`): SDK config, EKS client
//! cache, one [`Remediator`] per cluster, the off switch's SSM client and
//! cache. A warm function thus reuses its connection pool and token instead
//! of re-authenticating per event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use selfheal_aws::{OffSwitch, SdkConfig};
use selfheal_eks::{ClusterEndpoint, ClusterSource, EksClients};
use selfheal_kube::Remediator;
use tokio::sync::Mutex;

use crate::config::{ClusterAccess, FunctionConfig};
use crate::error::HandlerError;

/// Where kube clients come from.
enum Clients {
    /// One client for the process (local mode ignores the cluster name).
    Kubeconfig(kube::Client),
    /// Token-authenticated clients per cluster, refreshed before expiry
    /// (boxed: it carries an SDK config and the role table).
    Eks(Box<EksClients>),
}

/// A cached Remediator and the expiry of the client inside it; a different
/// expiry from [`EksClients`] means a fresh client (new token) to wrap.
struct CachedRemediator {
    remediator: Remediator,
    valid_until: Option<jiff::Timestamp>,
}

/// Shared by all invocations of one function process.
pub struct AppState {
    config: FunctionConfig,
    clients: Clients,
    remediators: Mutex<HashMap<String, CachedRemediator>>,
    remediators_built: AtomicU64,
    switch: Option<OffSwitch>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.clients {
            Clients::Kubeconfig(_) => "kubeconfig",
            Clients::Eks(_) => "eks",
        };
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("clients", &mode)
            .field("switch", &self.switch.is_some())
            .finish_non_exhaustive()
    }
}

/// Cache key used when local mode gets no cluster name.
const LOCAL: &str = "";

impl AppState {
    /// Configuration from the environment, then [`AppState::new`].
    pub async fn from_env() -> Result<Self, HandlerError> {
        Self::new(FunctionConfig::from_env()?).await
    }

    /// Builds what every invocation shares. Local mode builds its client now
    /// (a broken kubeconfig fails the start-up); EKS clients are built on
    /// first use per cluster, since the cluster comes with the request.
    /// The AWS SDK config comes from the default chain, loaded only when
    /// something needs it (EKS mode, the off switch).
    pub async fn new(config: FunctionConfig) -> Result<Self, HandlerError> {
        Self::build(config, None).await
    }

    /// [`AppState::new`] with a given SDK config (tests point it at moto
    /// instead of changing the process environment).
    pub async fn with_sdk_config(
        config: FunctionConfig,
        sdk: SdkConfig,
    ) -> Result<Self, HandlerError> {
        Self::build(config, Some(sdk)).await
    }

    async fn build(config: FunctionConfig, sdk: Option<SdkConfig>) -> Result<Self, HandlerError> {
        let needs_sdk =
            config.switch.is_some() || matches!(config.access, ClusterAccess::Eks { .. });
        // Loading the SDK config resolves region and the credential chain:
        // expensive, so once per process, and not at all in local mode
        // without a switch (local runs need no AWS).
        // selfheal_aws: explicit connect/attempt/operation timeouts.
        let sdk = match sdk {
            Some(sdk) => Some(sdk),
            None if needs_sdk => Some(selfheal_aws::load().await),
            None => None,
        };
        let switch = match (&config.switch, &sdk) {
            (Some(switch), Some(sdk)) => {
                tracing::info!(
                    parameter = %switch.parameter,
                    cache_seconds = switch.cache.as_secs_f64(),
                    "off switch configured"
                );
                Some(OffSwitch::new(switch, sdk))
            }
            _ => None,
        };
        let clients = match &config.access {
            ClusterAccess::Kubeconfig { path, context } => {
                let client =
                    selfheal_kube::client_from_kubeconfig(Some(path), context.as_deref()).await?;
                tracing::info!(
                    mode = "kubeconfig",
                    kubeconfig = %path.display(),
                    context = context.as_deref(),
                    pid = std::process::id(),
                    "kube client built"
                );
                Clients::Kubeconfig(client)
            }
            ClusterAccess::Eks {
                endpoint,
                token_lifetime,
            } => {
                let sdk_config = match &sdk {
                    Some(sdk) => sdk.clone(),
                    None => selfheal_aws::load().await,
                };
                let source = match endpoint {
                    // Restricted to its cluster here too (FunctionConfig::cluster_for
                    // refuses other names first, with the variables named).
                    Some(endpoint) => ClusterSource::Configured {
                        cluster: Some(endpoint.cluster.clone()),
                        endpoint: ClusterEndpoint {
                            endpoint: endpoint.url.clone(),
                            ca_data: endpoint.ca_pem.clone(),
                        },
                    },
                    None => ClusterSource::describe(&sdk_config),
                };
                Clients::Eks(Box::new(
                    EksClients::new(&sdk_config, source)
                        .with_token_lifetime(*token_lifetime)
                        .with_roles(config.cluster_roles.clone()),
                ))
            }
        };
        Ok(AppState {
            config,
            clients,
            remediators: Mutex::new(HashMap::new()),
            remediators_built: AtomicU64::new(0),
            switch,
        })
    }

    /// The off switch, when one is configured.
    pub fn switch(&self) -> Option<&OffSwitch> {
        self.switch.as_ref()
    }

    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }

    /// How many Remediators (kube clients wrapped) this process built; stays
    /// at one per cluster per token lifetime in a warm function.
    pub fn remediators_built(&self) -> u64 {
        self.remediators_built.load(Ordering::Relaxed)
    }

    /// The Remediator for `cluster` (`None`: local mode's only cluster).
    pub async fn remediator(&self, cluster: Option<&str>) -> Result<Remediator, HandlerError> {
        self.remediator_for(cluster, None).await
    }

    /// [`AppState::remediator`], naming `execution` in the session of a role
    /// assumed for the cluster (CloudTrail in the cluster's account).
    pub async fn remediator_for(
        &self,
        cluster: Option<&str>,
        execution: Option<&str>,
    ) -> Result<Remediator, HandlerError> {
        let key = cluster.unwrap_or(LOCAL);
        let client = match &self.clients {
            Clients::Kubeconfig(client) => client.clone(),
            Clients::Eks(eks) => {
                let cluster = cluster.ok_or_else(|| HandlerError::InvalidRequest {
                    reason: format!(
                        "target.cluster is missing and {} is not set",
                        crate::config::DEFAULT_CLUSTER
                    ),
                })?;
                eks.client_for(cluster, execution).await?
            }
        };
        let valid_until = *client.valid_until();
        let mut cache = self.remediators.lock().await;
        if let Some(cached) = cache.get(key)
            && cached.valid_until == valid_until
        {
            return Ok(cached.remediator.clone());
        }
        let remediator = Remediator::new(client, self.config.policy.clone())
            .with_replan_budget(self.config.replan_budget);
        let built = self.remediators_built.fetch_add(1, Ordering::Relaxed) + 1;
        if let Clients::Eks(_) = &self.clients {
            tracing::info!(
                mode = "eks",
                cluster = key,
                valid_until = ?valid_until,
                built,
                pid = std::process::id(),
                "kube client built"
            );
        }
        cache.insert(
            key.to_owned(),
            CachedRemediator {
                remediator: remediator.clone(),
                valid_until,
            },
        );
        Ok(remediator)
    }

    /// Forget the client for `cluster` after the server rejected its
    /// credentials (HTTP 401), so the next invocation signs a fresh token.
    pub async fn invalidate(&self, cluster: Option<&str>) {
        if let Clients::Eks(eks) = &self.clients
            && let Some(cluster) = cluster
        {
            eks.invalidate(cluster).await;
            self.remediators.lock().await.remove(cluster);
        }
    }
}
