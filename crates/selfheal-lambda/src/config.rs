//! The functions' configuration: environment variables parsed once at start-up
//! into a typed struct, so a bad value fails the start-up with
//! one clear message (which every invocation then answers, see
//! [`crate::Startup`]) instead of failing each invocation differently.
//!
//! Every variable is listed in functions/README.md. Empty values count as unset
//! (CloudFormation cannot delete a variable, only blank it).

use std::path::PathBuf;
use std::time::Duration;

use selfheal_aws::SwitchConfig;
use selfheal_core::{Policy, env};
use selfheal_kube::EndpointError;

use crate::error::HandlerError;

/// Kubeconfig file for local runs (`cargo lambda watch`, tests); its presence selects local mode.
pub const KUBECONFIG: &str = "SELFHEAL_KUBECONFIG";
/// Context inside [`KUBECONFIG`] (default: its current context).
pub const KUBE_CONTEXT: &str = "SELFHEAL_KUBE_CONTEXT";
/// EKS API server URL; skips `eks:DescribeCluster`. It is one cluster's
/// server, so it needs [`DEFAULT_CLUSTER`] to name that cluster.
pub const CLUSTER_ENDPOINT: &str = "SELFHEAL_CLUSTER_ENDPOINT";
/// CA of [`CLUSTER_ENDPOINT`], PEM or base64 of PEM (as EKS gives it).
pub const CLUSTER_CA: &str = "SELFHEAL_CLUSTER_CA";
/// Cluster used when a request's `target.cluster` is absent; with
/// [`CLUSTER_ENDPOINT`], the only cluster the function serves.
pub const DEFAULT_CLUSTER: &str = "SELFHEAL_DEFAULT_CLUSTER";
/// How long an EKS token (and its client) is used before a fresh one is signed.
pub const TOKEN_LIFETIME_SECONDS: &str = "SELFHEAL_TOKEN_LIFETIME_SECONDS";
/// Re-plans after a 409/422 before answering `RetryableConflict`.
pub const REPLAN_BUDGET: &str = "SELFHEAL_REPLAN_BUDGET";

/// Every variable this crate reads itself (the policy's own are read by
/// [`Policy::from_lookup`], the off switch's by [`SwitchConfig::from_lookup`]).
pub const FUNCTION_VARIABLES: &[&str] = &[
    KUBECONFIG,
    KUBE_CONTEXT,
    CLUSTER_ENDPOINT,
    CLUSTER_CA,
    DEFAULT_CLUSTER,
    TOKEN_LIFETIME_SECONDS,
    REPLAN_BUDGET,
    selfheal_core::cluster::CLUSTER_ROLES,
];

/// EKS tokens are accepted for 15 minutes from signing; a client must be
/// replaced before that, so longer lifetimes are refused.
pub const MAX_TOKEN_LIFETIME: Duration = selfheal_eks::token::TOKEN_LIFETIME;

/// More re-plans than this only delays the state machine's own retry.
pub const MAX_REPLAN_BUDGET: u32 = 10;

/// How the function reaches the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAccess {
    /// Local runs: the kubeconfig's own server and credentials, for every cluster name.
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
    /// In AWS: presigned STS tokens (docs/eks-token.md); endpoint and CA from
    /// `DescribeCluster` unless `endpoint` is configured (then only its
    /// cluster is served).
    Eks {
        endpoint: Option<ConfiguredEndpoint>,
        token_lifetime: Duration,
    },
}

/// A fixed API endpoint, so the function needs no `eks:DescribeCluster` call.
/// It is the API server of one cluster: tokens are signed for that name, and
/// a request for another cluster is refused before any call
/// ([`FunctionConfig::cluster_for`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredEndpoint {
    /// The cluster this endpoint belongs to ([`DEFAULT_CLUSTER`]).
    pub cluster: String,
    pub url: String,
    /// PEM text; `None` trusts the platform roots.
    pub ca_pem: Option<String>,
}

/// Everything a function needs from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    pub policy: Policy,
    pub access: ClusterAccess,
    pub default_cluster: Option<String>,
    pub replan_budget: u32,
    /// The off switch (`selfheal_aws::switch::VARIABLES`); `None`: no
    /// switch, the function always acts (local runs, the CLI's tests).
    pub switch: Option<SwitchConfig>,
    /// Roles assumed for clusters in other accounts (`SELFHEAL_CLUSTER_ROLES`).
    pub cluster_roles: selfheal_eks::ClusterRoles,
}

fn invalid(variable: &'static str, reason: impl Into<String>) -> HandlerError {
    HandlerError::Config {
        variable,
        reason: reason.into(),
    }
}

impl FunctionConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, HandlerError> {
        Self::from_lookup(env::process)
    }

    /// From any lookup (tests pass a map instead of mutating the environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, HandlerError> {
        let get = |name: &str| env::get(&lookup, name);
        let policy =
            Policy::from_lookup(&lookup).map_err(|source| HandlerError::Policy { source })?;

        let kubeconfig = get(KUBECONFIG);
        let context = get(KUBE_CONTEXT);
        let endpoint = get(CLUSTER_ENDPOINT);
        let ca = get(CLUSTER_CA);
        let default_cluster = get(DEFAULT_CLUSTER);
        let token_lifetime = match get(TOKEN_LIFETIME_SECONDS) {
            None => MAX_TOKEN_LIFETIME,
            Some(text) => parse_token_lifetime(&text)?,
        };
        let access = match kubeconfig {
            Some(path) => {
                if endpoint.is_some() {
                    return Err(invalid(
                        CLUSTER_ENDPOINT,
                        format!(
                            "set together with {KUBECONFIG}; choose local (kubeconfig) or EKS access"
                        ),
                    ));
                }
                ClusterAccess::Kubeconfig {
                    path: PathBuf::from(path),
                    context,
                }
            }
            None => {
                if context.is_some() {
                    return Err(invalid(KUBE_CONTEXT, format!("set without {KUBECONFIG}")));
                }
                let endpoint = match endpoint {
                    Some(url) => Some(parse_endpoint(url, ca, default_cluster.clone())?),
                    None if ca.is_some() => {
                        return Err(invalid(
                            CLUSTER_CA,
                            format!("set without {CLUSTER_ENDPOINT}"),
                        ));
                    }
                    None => None,
                };
                ClusterAccess::Eks {
                    endpoint,
                    token_lifetime,
                }
            }
        };
        let replan_budget = match get(REPLAN_BUDGET) {
            None => selfheal_kube::DEFAULT_REPLAN_BUDGET,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if n <= MAX_REPLAN_BUDGET => n,
                _ => {
                    return Err(invalid(
                        REPLAN_BUDGET,
                        format!("expected a whole number 0..={MAX_REPLAN_BUDGET}, got {text:?}"),
                    ));
                }
            },
        };
        let switch = SwitchConfig::from_lookup(&lookup).map_err(|error| match error {
            selfheal_aws::Error::Config(env::Invalid { variable, reason }) => {
                invalid(variable, reason)
            }
            other => invalid(selfheal_aws::switch::PARAMETER_VAR, other.to_string()),
        })?;
        let cluster_roles = get(selfheal_core::cluster::CLUSTER_ROLES)
            .map(|text| selfheal_eks::ClusterRoles::parse(&text))
            .transpose()
            .map_err(|source| HandlerError::Policy { source })?
            .unwrap_or_default();
        Ok(FunctionConfig {
            policy,
            access,
            default_cluster,
            replan_budget,
            switch,
            cluster_roles,
        })
    }

    /// The cluster a request is for: its own, else the configured default.
    /// Local (kubeconfig) access serves any name, so there the name is optional.
    /// A configured endpoint serves only its own cluster: another name is
    /// refused here, before any network call.
    pub fn cluster_for(&self, requested: Option<&str>) -> Result<Option<String>, HandlerError> {
        let requested = requested.map(str::trim).filter(|c| !c.is_empty());
        let cluster = match (requested, &self.default_cluster, &self.access) {
            (Some(cluster), _, _) => Some(cluster.to_owned()),
            (None, Some(default), _) => Some(default.clone()),
            (None, None, ClusterAccess::Kubeconfig { .. }) => None,
            (None, None, ClusterAccess::Eks { .. }) => {
                return Err(HandlerError::InvalidRequest {
                    reason: format!("target.cluster is missing and {DEFAULT_CLUSTER} is not set"),
                });
            }
        };
        if let (
            Some(requested),
            ClusterAccess::Eks {
                endpoint: Some(endpoint),
                ..
            },
        ) = (&cluster, &self.access)
            && *requested != endpoint.cluster
        {
            return Err(HandlerError::ClusterNotServed {
                requested: requested.clone(),
                configured: endpoint.cluster.clone(),
            });
        }
        Ok(cluster)
    }
}

fn parse_token_lifetime(text: &str) -> Result<Duration, HandlerError> {
    let max = MAX_TOKEN_LIFETIME.as_secs();
    match text.parse::<u64>() {
        Ok(secs) if (1..=max).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(invalid(
            TOKEN_LIFETIME_SECONDS,
            format!(
                "expected whole seconds 1..={max} (tokens expire after 15 minutes), got {text:?}"
            ),
        )),
    }
}

/// [`CLUSTER_ENDPOINT`] and [`CLUSTER_CA`], checked now; `cluster` is
/// [`DEFAULT_CLUSTER`], required: a token is signed for one cluster name, so
/// without it the endpoint would get requests (and 401s) for any cluster.
fn parse_endpoint(
    url: String,
    ca: Option<String>,
    cluster: Option<String>,
) -> Result<ConfiguredEndpoint, HandlerError> {
    selfheal_kube::parse_endpoint(&url).map_err(|e| {
        let reason = match e {
            EndpointError::Syntax(e) => format!("{url:?} is not a URL: {e}"),
            EndpointError::Relative => format!(
                "{url:?} needs a scheme and host, e.g. https://ABC.gr7.eu-west-1.eks.amazonaws.com"
            ),
        };
        invalid(CLUSTER_ENDPOINT, reason)
    })?;
    let ca_pem = match ca {
        None => None,
        Some(ca) => {
            // EKS hands out base64 of PEM; accept PEM too, and check it holds a
            // certificate now rather than at the first invocation.
            let endpoint = selfheal_eks::ClusterEndpoint {
                endpoint: url.clone(),
                ca_data: Some(ca),
            };
            let pem = endpoint
                .ca_pem()
                .map_err(|e| invalid(CLUSTER_CA, e.to_string()))?
                .unwrap_or_default();
            Some(pem)
        }
    };
    let cluster = cluster.ok_or_else(|| {
        invalid(
            DEFAULT_CLUSTER,
            format!(
                "required with {CLUSTER_ENDPOINT}: the endpoint is one cluster's API server, and this variable names that cluster"
            ),
        )
    })?;
    Ok(ConfiguredEndpoint {
        cluster,
        url,
        ca_pem,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // A self-signed P-256 test CA, shared with selfheal-kube's client
    // tests; only parsed, never trusted.
    const PEM: &str = include_str!("../../../tests/fixtures/test-ca.pem");

    fn parse(vars: &[(&str, &str)]) -> Result<FunctionConfig, HandlerError> {
        FunctionConfig::from_lookup(selfheal_core::env::from_pairs(vars))
    }

    fn config_error(vars: &[(&str, &str)]) -> (String, String) {
        let err = parse(vars).unwrap_err();
        assert_eq!(err.error_type(), "NonRetryableConfig", "{err}");
        match &err {
            HandlerError::Config { variable, .. } => ((*variable).to_owned(), err.to_string()),
            HandlerError::Policy { .. } => ("policy".to_owned(), err.to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn cluster_roles_are_read_and_a_bad_one_fails_the_start_up() {
        let role = "arn:aws:iam::111111111111:role/selfheal";
        let config = parse(&[("SELFHEAL_CLUSTER_ROLES", role)]).unwrap();
        let cluster = selfheal_core::cluster::ClusterRef::parse(
            "arn:aws:eks:us-east-1:111111111111:cluster/prod",
        )
        .unwrap();
        assert_eq!(
            config
                .cluster_roles
                .role_for("arn:aws:eks:us-east-1:111111111111:cluster/prod", &cluster),
            Some(role)
        );
        assert!(parse(&[]).unwrap().cluster_roles.is_empty());
        let (_, message) = config_error(&[("SELFHEAL_CLUSTER_ROLES", "not-a-role")]);
        assert!(message.contains("SELFHEAL_CLUSTER_ROLES"), "{message}");
    }

    #[test]
    fn defaults_are_eks_with_describe_cluster() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.policy, Policy::default());
        assert_eq!(
            config.access,
            ClusterAccess::Eks {
                endpoint: None,
                token_lifetime: MAX_TOKEN_LIFETIME,
            }
        );
        assert_eq!(config.default_cluster, None);
        assert_eq!(config.replan_budget, selfheal_kube::DEFAULT_REPLAN_BUDGET);
        assert_eq!(config.switch, None);
    }

    #[test]
    fn off_switch_variables_are_read() {
        use selfheal_aws::switch::{CACHE_SECONDS_VAR, DEFAULT_CACHE, PARAMETER_VAR};
        let config =
            parse(&[(KUBECONFIG, "/k"), (PARAMETER_VAR, "/selfheal/prod/switch")]).unwrap();
        assert_eq!(
            config.switch,
            Some(SwitchConfig {
                parameter: "/selfheal/prod/switch".into(),
                cache: DEFAULT_CACHE,
            })
        );
        let config = parse(&[(PARAMETER_VAR, "/p"), (CACHE_SECONDS_VAR, "2")]).unwrap();
        assert_eq!(config.switch.unwrap().cache, Duration::from_secs(2));
        let (variable, message) =
            config_error(&[(PARAMETER_VAR, "/p"), (CACHE_SECONDS_VAR, "600")]);
        assert_eq!(variable, CACHE_SECONDS_VAR);
        assert!(message.contains("0..=300"), "{message}");
    }

    #[test]
    fn kubeconfig_mode_with_context() {
        let config = parse(&[
            (KUBECONFIG, "/tmp/kc.yaml"),
            (KUBE_CONTEXT, "kind-dev"),
            (DEFAULT_CLUSTER, "dev"),
        ])
        .unwrap();
        assert_eq!(
            config.access,
            ClusterAccess::Kubeconfig {
                path: PathBuf::from("/tmp/kc.yaml"),
                context: Some("kind-dev".into()),
            }
        );
        assert_eq!(config.default_cluster.as_deref(), Some("dev"));
    }

    #[test]
    fn eks_mode_with_endpoint_ca_lifetime_and_budget() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(PEM);
        for ca in [PEM.to_owned(), b64] {
            let config = parse(&[
                (
                    CLUSTER_ENDPOINT,
                    "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
                ),
                (CLUSTER_CA, &ca),
                (TOKEN_LIFETIME_SECONDS, "5"),
                (REPLAN_BUDGET, "0"),
                (DEFAULT_CLUSTER, " prod-eks "),
            ])
            .unwrap();
            let ClusterAccess::Eks {
                endpoint: Some(endpoint),
                token_lifetime,
            } = config.access
            else {
                panic!("expected a configured EKS endpoint: {config:?}");
            };
            assert_eq!(endpoint.cluster, "prod-eks");
            assert_eq!(endpoint.url, "https://ABC.gr7.eu-west-1.eks.amazonaws.com");
            assert_eq!(endpoint.ca_pem.as_deref().map(str::trim), Some(PEM.trim()));
            assert_eq!(token_lifetime, Duration::from_secs(5));
            assert_eq!(config.replan_budget, 0);
            assert_eq!(config.default_cluster.as_deref(), Some("prod-eks"));
        }
    }

    #[test]
    fn policy_variables_are_read() {
        let config = parse(&[
            ("SELFHEAL_REQUIRE_OPT_IN", "false"),
            ("SELFHEAL_COOLDOWN_SECONDS", "0"),
            ("SELFHEAL_DRY_RUN", "true"),
            ("SELFHEAL_ALLOWED_NAMESPACES", "shop,payments"),
        ])
        .unwrap();
        assert!(!config.policy.require_opt_in);
        assert!(config.policy.dry_run);
        assert_eq!(config.policy.cooldown, Duration::ZERO);
        assert_eq!(
            config.policy.allowed_namespaces,
            Some(vec!["shop".to_owned(), "payments".to_owned()])
        );
    }

    #[test]
    fn blank_values_count_as_unset() {
        let config = parse(&[
            (KUBECONFIG, "  "),
            (CLUSTER_ENDPOINT, ""),
            (DEFAULT_CLUSTER, ""),
            (TOKEN_LIFETIME_SECONDS, ""),
        ])
        .unwrap();
        assert!(matches!(
            config.access,
            ClusterAccess::Eks { endpoint: None, .. }
        ));
        assert_eq!(config.default_cluster, None);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
        // `variable` set to `value` alone, named in an error that says `needle`.
        let one = |variable, value, needle| (vec![(variable, value)], variable, needle);
        let cases: Vec<Case> = vec![
            one(TOKEN_LIFETIME_SECONDS, "0", "1..=840"),
            one(TOKEN_LIFETIME_SECONDS, "900", "1..=840"),
            one(TOKEN_LIFETIME_SECONDS, "ten", "\"ten\""),
            one(REPLAN_BUDGET, "-1", "0..=10"),
            one(REPLAN_BUDGET, "11", "0..=10"),
            one(KUBE_CONTEXT, "dev", "without SELFHEAL_KUBECONFIG"),
            one(CLUSTER_CA, PEM, "without SELFHEAL_CLUSTER_ENDPOINT"),
            (
                vec![(KUBECONFIG, "/k"), (CLUSTER_ENDPOINT, "https://x")],
                CLUSTER_ENDPOINT,
                "choose local",
            ),
            (
                vec![(CLUSTER_ENDPOINT, "https://x")],
                DEFAULT_CLUSTER,
                "required with SELFHEAL_CLUSTER_ENDPOINT",
            ),
            (
                vec![(CLUSTER_ENDPOINT, "https://x"), (DEFAULT_CLUSTER, " ")],
                DEFAULT_CLUSTER,
                "required with SELFHEAL_CLUSTER_ENDPOINT",
            ),
            one(CLUSTER_ENDPOINT, "not a url", "not a URL"),
            one(CLUSTER_ENDPOINT, "/just/a/path", "scheme and host"),
            (
                vec![
                    (CLUSTER_ENDPOINT, "https://x"),
                    (CLUSTER_CA, "%%% not base64"),
                ],
                CLUSTER_CA,
                "base64",
            ),
            (
                vec![
                    (CLUSTER_ENDPOINT, "https://x"),
                    (
                        CLUSTER_CA,
                        "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----",
                    ),
                ],
                CLUSTER_CA,
                "PEM",
            ),
        ];
        for (vars, variable, needle) in &cases {
            let (got, message) = config_error(vars);
            assert_eq!(got, *variable, "{vars:?}: {message}");
            assert!(
                message.contains(needle),
                "{vars:?}: {message:?} lacks {needle:?}"
            );
        }
    }

    #[test]
    fn invalid_policy_is_a_config_error() {
        for (var, value) in [
            ("SELFHEAL_REQUIRE_OPT_IN", "maybe"),
            ("SELFHEAL_COOLDOWN_SECONDS", "-5"),
            ("SELFHEAL_PAUSE_IMPACT_THRESHOLD", "NaN"),
            ("SELFHEAL_DENIED_NAMESPACES", "kube system"),
        ] {
            let (kind, message) = config_error(&[(var, value)]);
            assert_eq!(kind, "policy");
            assert!(message.contains(var), "{message}");
        }
    }

    #[test]
    fn cluster_for_request_default_and_local_mode() {
        let eks = parse(&[(DEFAULT_CLUSTER, "prod-eks")]).unwrap();
        assert_eq!(
            eks.cluster_for(Some("other")).unwrap().as_deref(),
            Some("other")
        );
        assert_eq!(eks.cluster_for(None).unwrap().as_deref(), Some("prod-eks"));
        assert_eq!(
            eks.cluster_for(Some(" ")).unwrap().as_deref(),
            Some("prod-eks")
        );

        let no_default = parse(&[]).unwrap();
        let err = no_default.cluster_for(None).unwrap_err();
        assert_eq!(err.error_type(), "NonRetryableInvalidRequest");
        assert!(err.to_string().contains(DEFAULT_CLUSTER), "{err}");

        let local = parse(&[(KUBECONFIG, "/k")]).unwrap();
        assert_eq!(local.cluster_for(None).unwrap(), None);
        assert_eq!(
            local.cluster_for(Some("any")).unwrap().as_deref(),
            Some("any")
        );
    }

    /// A configured endpoint is one cluster's API server: its own name (asked
    /// for or defaulted) passes, any other is `NonRetryableClusterNotFound`
    /// naming both clusters and the variables, decided without any call.
    #[test]
    fn configured_endpoint_serves_only_its_cluster() {
        let config = parse(&[
            (
                CLUSTER_ENDPOINT,
                "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
            ),
            (DEFAULT_CLUSTER, "prod-eks"),
        ])
        .unwrap();
        for requested in [None, Some("prod-eks"), Some(" prod-eks "), Some("")] {
            assert_eq!(
                config.cluster_for(requested).unwrap().as_deref(),
                Some("prod-eks"),
                "{requested:?}"
            );
        }
        for other in ["staging-eks", "PROD-EKS", "prod-eks-2"] {
            let err = config.cluster_for(Some(other)).unwrap_err();
            assert!(
                matches!(
                    &err,
                    HandlerError::ClusterNotServed { requested, configured }
                        if requested == other && configured == "prod-eks"
                ),
                "{err:?}"
            );
            assert_eq!(err.error_type(), "NonRetryableClusterNotFound");
            assert!(!err.is_retryable());
            let message = err.to_string();
            for needle in [other, "prod-eks", CLUSTER_ENDPOINT, DEFAULT_CLUSTER] {
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            }
        }
    }
}
