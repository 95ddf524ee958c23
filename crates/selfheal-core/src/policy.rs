//! Function-wide policy (from environment in the Lambdas, flags in the CLI).

use std::time::Duration;

/// What selfheal may do on its own (design.md §3.4, §3.5).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Act only on Deployments labelled `selfheal.dev/enabled=true`.
    pub require_opt_in: bool,
    /// Namespaces allowed; `None` = all except `denied_namespaces`.
    pub allowed_namespaces: Option<Vec<String>>,
    /// Always refused (default: kube-system, kube-public, kube-node-lease).
    pub denied_namespaces: Vec<String>,
    /// Same action on the same Deployment within this window is refused unless `force`.
    pub cooldown: Duration,
    /// Proceed on Argo CD / Flux managed Deployments (the outcome still says so).
    pub allow_gitops: bool,
    /// Every request is a dry run regardless of its own `dryRun`.
    pub dry_run: bool,
    /// Alarm-driven pauses need at least this impact score.
    pub pause_impact_threshold: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            require_opt_in: true,
            allowed_namespaces: None,
            denied_namespaces: vec![
                "kube-system".into(),
                "kube-public".into(),
                "kube-node-lease".into(),
            ],
            cooldown: Duration::from_secs(600),
            allow_gitops: false,
            dry_run: false,
            pause_impact_threshold: 1.0,
        }
    }
}
