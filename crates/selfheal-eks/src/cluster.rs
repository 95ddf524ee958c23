//! From a cluster name to a ready `kube::Client`: endpoint and CA from
//! DescribeCluster or configuration, a fresh token, and a per-process cache so
//! a warm Lambda reuses its client until the token is due for refresh.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use selfheal_contract::cluster::role_session_name;
use selfheal_contract::{ClusterRef, ClusterRoles};

use crate::token::{TOKEN_LIFETIME, presign_token};
use crate::{Error, Result};

/// Source of "now", injectable so cache expiry is testable without waiting.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        Self(Mutex::new(start))
    }

    pub fn set(&self, to: SystemTime) {
        if let Ok(mut now) = self.0.lock() {
            *now = to;
        }
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        match self.0.lock() {
            Ok(now) => *now,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

/// Where the API server is and which CA signs its certificate, as
/// DescribeCluster or the configuration gave them (not yet decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// `https://…` URL of the API server.
    pub endpoint: String,
    /// The cluster CA: base64 of PEM (EKS `certificateAuthority.data`,
    /// kubeconfig `certificate-authority-data`) or PEM text; `None` trusts the
    /// system roots.
    pub ca_data: Option<String>,
}

impl ClusterEndpoint {
    /// The CA as PEM text, checked to hold at least one certificate.
    pub fn ca_pem(&self) -> Result<Option<String>> {
        let Some(data) = &self.ca_data else {
            return Ok(None);
        };
        let pem = decode_ca(data)?;
        check_ca(&pem)?;
        Ok(Some(pem))
    }
}

/// Accepts the CA as PEM text or as base64 of PEM (what EKS and kubeconfig carry).
fn decode_ca(value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.starts_with("-----BEGIN") {
        return Ok(trimmed.to_owned());
    }
    let compact: String = trimmed.split_whitespace().collect();
    let bytes = STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| Error::InvalidClusterCa {
            reason: format!("not base64: {e}"),
        })?;
    String::from_utf8(bytes).map_err(|_| Error::InvalidClusterCa {
        reason: "base64 does not decode to PEM text".into(),
    })
}

/// How a cluster name becomes an endpoint and CA.
#[derive(Debug, Clone)]
pub enum ClusterSource {
    /// `eks:DescribeCluster` (endpoint override via `AWS_ENDPOINT_URL_EKS`, honoured by the SDK).
    Describe(aws_sdk_eks::Client),
    /// Fixed endpoint, skipping the call; `cluster` restricts it to one name.
    Configured {
        cluster: Option<String>,
        endpoint: ClusterEndpoint,
    },
    /// Local use: the kubeconfig's own auth, no EKS token.
    Kubeconfig { context: Option<String> },
}

impl ClusterSource {
    /// DescribeCluster with a client from `sdk_config`.
    pub fn describe(sdk_config: &SdkConfig) -> Self {
        ClusterSource::Describe(aws_sdk_eks::Client::new(sdk_config))
    }

    /// Endpoint and CA for `cluster` (not for the kubeconfig source).
    pub async fn resolve(&self, cluster: &str) -> Result<ClusterEndpoint> {
        match self {
            ClusterSource::Describe(eks) => describe(eks, cluster).await,
            ClusterSource::Configured {
                cluster: only,
                endpoint,
            } => match only {
                Some(only) if only != cluster => Err(Error::ClusterNotConfigured {
                    requested: cluster.to_owned(),
                    configured: only.clone(),
                }),
                _ => Ok(endpoint.clone()),
            },
            ClusterSource::Kubeconfig { .. } => Err(Error::InvalidInput(
                "the kubeconfig source has no EKS endpoint to resolve".into(),
            )),
        }
    }
}

/// `eks:DescribeCluster` of `cluster` with `eks` (its region and credentials).
async fn describe(eks: &aws_sdk_eks::Client, cluster: &str) -> Result<ClusterEndpoint> {
    let out = eks
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .map_err(|source| Error::DescribeCluster {
            cluster: cluster.to_owned(),
            source: Box::new(source),
        })?;
    let incomplete = |missing| Error::ClusterIncomplete {
        cluster: cluster.to_owned(),
        missing,
    };
    let described = out.cluster().ok_or_else(|| incomplete("description"))?;
    let endpoint = described
        .endpoint()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| incomplete("endpoint"))?;
    let ca = described
        .certificate_authority()
        .and_then(|c| c.data())
        .filter(|d| !d.is_empty())
        .ok_or_else(|| incomplete("certificate authority"))?;
    Ok(ClusterEndpoint {
        endpoint: endpoint.to_owned(),
        ca_data: Some(ca.to_owned()),
    })
}

/// Builds a kube client (via the kube adapter's `client_from_parts`) for
/// `endpoint_url`, trusting `ca_pem` or the system roots, with bearer `token`.
///
/// The endpoint and CA are checked here first so unparseable text or a bad
/// CA (moto's random bytes, a truncated variable) surfaces as this crate's
/// [`Error::InvalidEndpoint`] or [`Error::InvalidClusterCa`]; a URL without
/// scheme or host is the kube adapter's client-configuration error.
pub fn client_from_parts(
    endpoint_url: &str,
    ca_pem: Option<&str>,
    token: SecretString,
) -> Result<kube::Client> {
    if let Err(selfheal_kube::EndpointError::Syntax(source)) =
        selfheal_kube::parse_endpoint(endpoint_url)
    {
        return Err(Error::InvalidEndpoint {
            endpoint: endpoint_url.to_owned(),
            source,
        });
    }
    if let Some(pem) = ca_pem {
        check_ca(pem)?;
    }
    selfheal_kube::client_from_parts(endpoint_url, ca_pem, token)
        .map_err(|source| Error::KubeClient { source })
}

/// Checks that `pem` holds at least one well-formed certificate block.
fn check_ca(pem: &str) -> Result<()> {
    selfheal_kube::pem_to_der(pem)
        .map(drop)
        .map_err(|e| Error::InvalidClusterCa {
            reason: e.to_string(),
        })
}

/// Kube client from the local kubeconfig (optionally a named context).
pub async fn client_from_kubeconfig(context: Option<&str>) -> Result<kube::Client> {
    selfheal_kube::client_from_kubeconfig(None, context)
        .await
        .map_err(|source| Error::KubeClient { source })
}

/// How long before an assumed role's credentials expire they are replaced,
/// so no token or DescribeCluster is ever signed with nearly dead credentials.
pub const ASSUMED_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// `DurationSeconds` asked of `AssumeRole` (STS's default, the role's usual maximum).
pub const ASSUMED_ROLE_DURATION: Duration = Duration::from_secs(60 * 60);
/// STS refuses an `AssumeRole` `DurationSeconds` below 15 minutes.
pub const MIN_ASSUMED_ROLE_DURATION: Duration = Duration::from_secs(15 * 60);

/// An assumed role's credentials and when to assume it again.
#[derive(Clone)]
struct Assumed {
    credentials: Credentials,
    refresh_at: SystemTime,
}

/// `AssumeRole` of `role` as session `session`, for `duration`: the role's
/// temporary credentials (with their expiry), or a typed error.
pub async fn assume_role(
    sdk_config: &SdkConfig,
    role: &str,
    session: &str,
    duration: Duration,
) -> Result<Credentials> {
    let out = aws_sdk_sts::Client::new(sdk_config)
        .assume_role()
        .role_arn(role)
        .role_session_name(session)
        .duration_seconds(i32::try_from(duration.as_secs()).unwrap_or(3600))
        .send()
        .await
        .map_err(|source| Error::AssumeRole {
            role: role.to_owned(),
            source: Box::new(source),
        })?;
    let given = out
        .credentials()
        .ok_or_else(|| Error::AssumedCredentialsMissing {
            role: role.to_owned(),
        })?;
    Ok(Credentials::new(
        given.access_key_id(),
        given.secret_access_key(),
        Some(given.session_token().to_owned()),
        SystemTime::try_from(*given.expiration()).ok(),
        "selfheal-assume-role",
    ))
}

/// When credentials expiring at `expires_at` are replaced:
/// [`ASSUMED_REFRESH_MARGIN`] before, or halfway when they arrive with less
/// than that left (a skewed clock), so they are not assumed again at once.
fn refresh_assumed_at(expires_at: SystemTime, now: SystemTime) -> SystemTime {
    match expires_at.duration_since(now) {
        Ok(left) if left > ASSUMED_REFRESH_MARGIN => expires_at - ASSUMED_REFRESH_MARGIN,
        Ok(left) => now + left / 2,
        Err(_) => now,
    }
}

/// What one cluster is reached with: its name, region and credentials (the
/// function's own, or an assumed role's with the moment they need replacing).
struct Access {
    name: String,
    region: String,
    credentials: Credentials,
    assumed: bool,
    refresh_at: Option<SystemTime>,
}

#[derive(Clone)]
struct CachedClient {
    client: kube::Client,
    /// `None`: never expires (kubeconfig handles its own auth).
    refresh_at: Option<SystemTime>,
}

/// Per-process EKS access: built once at start-up, shared by every invocation.
pub struct EksClients {
    source: ClusterSource,
    credentials: Option<SharedCredentialsProvider>,
    region: Option<String>,
    token_lifetime: Duration,
    clock: Arc<dyn Clock>,
    cache: tokio::sync::Mutex<HashMap<String, CachedClient>>,
    /// Base for regional EKS and STS clients (endpoint overrides, timeouts).
    sdk_config: SdkConfig,
    roles: ClusterRoles,
    role_duration: Duration,
    /// Assumed credentials by role ARN, shared by the clusters that use it.
    assumed: tokio::sync::Mutex<HashMap<String, Assumed>>,
}

impl fmt::Debug for EksClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EksClients")
            .field("source", &self.source)
            .field("region", &self.region)
            .field("token_lifetime", &self.token_lifetime)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl EksClients {
    /// Credentials and region from `sdk_config`; endpoints from `source`.
    pub fn new(sdk_config: &SdkConfig, source: ClusterSource) -> Self {
        Self {
            source,
            credentials: sdk_config.credentials_provider(),
            region: sdk_config.region().map(|r| r.to_string()),
            token_lifetime: TOKEN_LIFETIME,
            clock: Arc::new(SystemClock),
            cache: tokio::sync::Mutex::new(HashMap::new()),
            sdk_config: sdk_config.clone(),
            roles: ClusterRoles::default(),
            role_duration: ASSUMED_ROLE_DURATION,
            assumed: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Roles to assume per cluster or account (`SELFHEAL_CLUSTER_ROLES`).
    pub fn with_roles(mut self, roles: ClusterRoles) -> Self {
        self.roles = roles;
        self
    }

    /// `DurationSeconds` for `AssumeRole` (default one hour). Raised to
    /// STS's minimum of 15 minutes, which `AssumeRole` would otherwise refuse
    /// on every call.
    pub fn with_role_duration(mut self, duration: Duration) -> Self {
        self.role_duration = duration.max(MIN_ASSUMED_ROLE_DURATION);
        self
    }

    /// How long a client (its token) is used before a fresh one is built.
    /// At most [`TOKEN_LIFETIME`] (the default): the server accepts a token
    /// for 15 minutes, so a longer lifetime would send expired tokens.
    pub fn with_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime.min(TOKEN_LIFETIME);
        self
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The source in use.
    pub fn source(&self) -> &ClusterSource {
        &self.source
    }

    /// A client for `cluster`: the cached one while its token is fresh,
    /// otherwise a new one with a new token (and, for DescribeCluster, a new lookup).
    pub async fn client(&self, cluster: &str) -> Result<kube::Client> {
        self.client_for(cluster, None).await
    }

    /// [`EksClients::client`], naming `execution` in the session of a role
    /// assumed for it. A client built with an assumed role is replaced when
    /// its token or those credentials near expiry, whichever comes first.
    pub async fn client_for(&self, cluster: &str, execution: Option<&str>) -> Result<kube::Client> {
        let mut cache = self.cache.lock().await;
        let now = self.clock.now();
        if let Some(cached) = cache.get(cluster)
            && cached.refresh_at.is_none_or(|at| now < at)
        {
            return Ok(cached.client.clone());
        }
        let fresh = self.build(cluster, now, execution).await?;
        cache.insert(cluster.to_owned(), fresh.clone());
        Ok(fresh.client)
    }

    /// Drops the cached client for `cluster` (e.g. after a 401), forcing a rebuild.
    pub async fn invalidate(&self, cluster: &str) {
        self.cache.lock().await.remove(cluster);
    }

    /// A token for `cluster` signed now with the configured credentials.
    pub async fn token(&self, cluster: &str) -> Result<crate::token::EksToken> {
        self.token_at(cluster, self.clock.now()).await
    }

    /// The credentials `cluster` is reached with now (an assumed role's, or
    /// the function's own): what its tokens are signed with.
    pub async fn credentials(&self, cluster: &str) -> Result<Credentials> {
        Ok(self
            .access(cluster, self.clock.now(), None)
            .await?
            .credentials)
    }

    /// Endpoint and CA of `cluster`: DescribeCluster in the cluster's region
    /// with its credentials, or the configured endpoint.
    pub async fn endpoint(&self, cluster: &str) -> Result<ClusterEndpoint> {
        let access = self.access(cluster, self.clock.now(), None).await?;
        self.resolve(&access).await
    }

    async fn token_at(&self, cluster: &str, now: SystemTime) -> Result<crate::token::EksToken> {
        let access = self.access(cluster, now, None).await?;
        presign_token(&access.credentials, &access.region, &access.name, now)
    }

    /// Name, region and credentials for `requested` (a name or an ARN).
    async fn access(
        &self,
        requested: &str,
        now: SystemTime,
        execution: Option<&str>,
    ) -> Result<Access> {
        let cluster =
            ClusterRef::parse(requested).map_err(|source| Error::InvalidCluster { source })?;
        let region = match (&cluster.location, &self.region) {
            (Some(location), _) => location.region.clone(),
            (None, Some(region)) => region.clone(),
            (None, None) => return Err(Error::MissingRegion),
        };
        if let Some(role) = self.roles.role_for(requested, &cluster) {
            let assumed = self.assume(role, now, execution).await?;
            return Ok(Access {
                name: cluster.name,
                region,
                credentials: assumed.credentials,
                assumed: true,
                refresh_at: Some(assumed.refresh_at),
            });
        }
        let provider = self
            .credentials
            .as_ref()
            .ok_or(Error::MissingCredentialsProvider)?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|source| Error::Credentials { source })?;
        Ok(Access {
            name: cluster.name,
            region,
            credentials,
            assumed: false,
            refresh_at: None,
        })
    }

    /// `role`'s credentials: the cached ones until [`ASSUMED_REFRESH_MARGIN`]
    /// before they expire, then a new `AssumeRole`.
    async fn assume(
        &self,
        role: &str,
        now: SystemTime,
        execution: Option<&str>,
    ) -> Result<Assumed> {
        let mut cache = self.assumed.lock().await;
        if let Some(assumed) = cache.get(role)
            && now < assumed.refresh_at
        {
            return Ok(assumed.clone());
        }
        let session = role_session_name(execution);
        let credentials = assume_role(&self.sdk_config, role, &session, self.role_duration).await?;
        let expires_at = credentials.expiry();
        let expires_at = expires_at.unwrap_or(now + self.role_duration);
        let refresh_at = refresh_assumed_at(expires_at, now);
        tracing::info!(role, session, "assumed role for cluster access");
        let assumed = Assumed {
            credentials,
            refresh_at,
        };
        cache.insert(role.to_owned(), assumed.clone());
        Ok(assumed)
    }

    /// Endpoint and CA for `access`: DescribeCluster with its region and
    /// credentials when they are not the function's own, else the source's.
    async fn resolve(&self, access: &Access) -> Result<ClusterEndpoint> {
        match &self.source {
            ClusterSource::Describe(_)
                if access.assumed || self.region.as_deref() != Some(access.region.as_str()) =>
            {
                let config = aws_sdk_eks::config::Builder::from(&self.sdk_config)
                    .region(aws_config::Region::new(access.region.clone()))
                    .credentials_provider(SharedCredentialsProvider::new(
                        access.credentials.clone(),
                    ))
                    .build();
                describe(&aws_sdk_eks::Client::from_conf(config), &access.name).await
            }
            source => source.resolve(&access.name).await,
        }
    }

    async fn build(
        &self,
        cluster: &str,
        now: SystemTime,
        execution: Option<&str>,
    ) -> Result<CachedClient> {
        if let ClusterSource::Kubeconfig { context } = &self.source {
            return Ok(CachedClient {
                client: client_from_kubeconfig(context.as_deref()).await?,
                refresh_at: None,
            });
        }
        let access = self.access(cluster, now, execution).await?;
        let endpoint = self.resolve(&access).await?;
        let token = presign_token(&access.credentials, &access.region, &access.name, now)?;
        let refresh_at = access.refresh_at.map_or(now + self.token_lifetime, |at| {
            at.min(now + self.token_lifetime)
        });
        let ca_pem = endpoint.ca_pem()?;
        let client = client_from_parts(&endpoint.endpoint, ca_pem.as_deref(), token.token)?
            .with_valid_until(jiff::Timestamp::try_from(refresh_at).ok());
        tracing::debug!(cluster, endpoint = %endpoint.endpoint, "built EKS kube client");
        Ok(CachedClient {
            client,
            refresh_at: Some(refresh_at),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use std::time::UNIX_EPOCH;

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_767_323_045)
    }

    fn sdk_config() -> SdkConfig {
        SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            )))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    fn configured(cluster: Option<&str>) -> ClusterSource {
        ClusterSource::Configured {
            cluster: cluster.map(str::to_owned),
            endpoint: ClusterEndpoint {
                endpoint: "https://127.0.0.1:1".into(),
                ca_data: None,
            },
        }
    }

    fn err_of(result: Result<kube::Client>) -> Error {
        match result {
            Ok(_) => panic!("expected an error, got a client"),
            Err(e) => e,
        }
    }

    fn valid_until(client: &kube::Client) -> SystemTime {
        SystemTime::from(client.valid_until().unwrap())
    }

    #[tokio::test]
    async fn client_reused_before_fourteen_minutes_rebuilt_after() {
        let clock = Arc::new(ManualClock::new(t0()));
        let clients = EksClients::new(&sdk_config(), configured(None)).with_clock(clock.clone());

        let first = clients.client("demo").await.unwrap();
        assert_eq!(valid_until(&first), t0() + Duration::from_secs(840));

        clock.advance(Duration::from_secs(839));
        let reused = clients.client("demo").await.unwrap();
        assert_eq!(valid_until(&reused), t0() + Duration::from_secs(840));

        clock.advance(Duration::from_secs(1));
        let rebuilt = clients.client("demo").await.unwrap();
        assert_eq!(valid_until(&rebuilt), t0() + Duration::from_secs(1680));

        // Each cluster has its own entry.
        let other = clients.client("other").await.unwrap();
        assert_eq!(valid_until(&other), t0() + Duration::from_secs(1680));
        clients.invalidate("demo").await;
        clock.advance(Duration::from_secs(5));
        let after_invalidate = clients.client("demo").await.unwrap();
        assert_eq!(
            valid_until(&after_invalidate),
            t0() + Duration::from_secs(1685)
        );
    }

    #[tokio::test]
    async fn token_lifetime_is_configurable_up_to_the_tokens_own() {
        let clock = Arc::new(ManualClock::new(t0()));
        let clients = EksClients::new(&sdk_config(), configured(None))
            .with_clock(clock.clone())
            .with_token_lifetime(Duration::from_secs(60));
        let first = clients.client("demo").await.unwrap();
        assert_eq!(valid_until(&first), t0() + Duration::from_secs(60));
        clock.advance(Duration::from_secs(60));
        let second = clients.client("demo").await.unwrap();
        assert_eq!(valid_until(&second), t0() + Duration::from_secs(120));

        // Never longer than the token itself lives.
        let capped = EksClients::new(&sdk_config(), configured(None))
            .with_clock(clock.clone())
            .with_token_lifetime(Duration::from_secs(3600));
        let third = capped.client("demo").await.unwrap();
        assert_eq!(
            valid_until(&third),
            t0() + Duration::from_secs(60) + TOKEN_LIFETIME
        );
    }

    #[test]
    fn role_duration_is_at_least_what_sts_accepts() {
        let clients = EksClients::new(&sdk_config(), configured(None));
        assert_eq!(
            clients
                .with_role_duration(Duration::from_secs(60))
                .role_duration,
            MIN_ASSUMED_ROLE_DURATION
        );
    }

    #[tokio::test]
    async fn configured_source_restricted_to_its_cluster() {
        let clients = EksClients::new(&sdk_config(), configured(Some("demo")));
        assert!(clients.client("demo").await.is_ok());
        let err = err_of(clients.client("prod").await);
        assert!(matches!(err, Error::ClusterNotConfigured { .. }), "{err}");
        assert_eq!(err.error_type(), "NonRetryableClusterNotFound");
    }

    #[tokio::test]
    async fn missing_region_or_credentials_is_auth_config_error() {
        let bare = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let clients = EksClients::new(&bare, configured(None));
        let err = err_of(clients.client("demo").await);
        assert!(matches!(err, Error::MissingRegion), "{err}");
        assert_eq!(err.error_type(), "NonRetryableAuthConfig");
        let no_creds = SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let err = err_of(
            EksClients::new(&no_creds, configured(None))
                .client("demo")
                .await,
        );
        assert!(matches!(err, Error::MissingCredentialsProvider), "{err}");
    }

    #[test]
    fn assumed_credentials_are_replaced_five_minutes_before_expiry() {
        let hour = t0() + Duration::from_secs(3600);
        assert_eq!(
            refresh_assumed_at(hour, t0()),
            hour - ASSUMED_REFRESH_MARGIN
        );
        let soon = t0() + Duration::from_secs(120);
        assert_eq!(
            refresh_assumed_at(soon, t0()),
            t0() + Duration::from_secs(60)
        );
        assert_eq!(refresh_assumed_at(t0(), soon), soon);
    }

    #[test]
    fn ca_accepts_pem_or_base64_and_rejects_garbage() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(decode_ca(pem).unwrap(), pem.trim());
        assert_eq!(decode_ca(&STANDARD.encode(pem)).unwrap(), pem);
        assert!(matches!(
            decode_ca("%%%not base64"),
            Err(Error::InvalidClusterCa { .. })
        ));
        let random = ClusterEndpoint {
            endpoint: "https://x".into(),
            ca_data: Some("Zm9vYmFy".repeat(10)),
        };
        assert!(matches!(
            random.ca_pem(),
            Err(Error::InvalidClusterCa { .. })
        ));
        let described = ClusterEndpoint {
            endpoint: "https://x".into(),
            ca_data: Some(STANDARD.encode(pem)),
        };
        assert_eq!(described.ca_pem().unwrap().as_deref(), Some(pem));
        let not_a_cert = check_ca("just some text").unwrap_err();
        assert!(matches!(not_a_cert, Error::InvalidClusterCa { .. }));
        let err = err_of(client_from_parts(
            "https://127.0.0.1:1",
            Some("hello"),
            SecretString::from("t".to_owned()),
        ));
        assert!(matches!(err, Error::InvalidClusterCa { .. }), "{err}");
        assert_eq!(err.error_type(), "NonRetryableAuthConfig");
    }
}
