//! Which cluster a kubeconfig context talks to, by the names a request's
//! `target.cluster` may use for it.
//!
//! A request names an EKS cluster (`prod-eks`); a kubeconfig names its
//! entries however the tool that wrote it chose: `aws eks update-kubeconfig`
//! uses the cluster ARN as context and cluster name, eksctl uses
//! `NAME.REGION.eksctl.io` (context `USER@NAME.REGION.eksctl.io`), and both
//! put the cluster name into the exec credential plugin's arguments. An EKS
//! endpoint URL (`https://ID.gr7.REGION.eks.amazonaws.com`) carries no name.

use std::path::Path;

use kube::config::{Kubeconfig, NamedContext};

use crate::error::{Error, Result};

/// The context a kubeconfig client uses and the names its cluster goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigContext {
    /// The context's name (`--context`, else `current-context`).
    pub context: String,
    /// The name of the kubeconfig `clusters` entry the context points at.
    pub cluster: String,
    /// That entry's API server URL.
    pub server: Option<String>,
    /// EKS cluster names the kubeconfig gives for it (from an ARN or eksctl
    /// name of the context or cluster, or the credential plugin's
    /// `--cluster-name`/`--cluster-id`), first found first, no duplicates.
    pub eks_names: Vec<String>,
}

impl KubeconfigContext {
    /// Read the kubeconfig (`path`, else `$KUBECONFIG` / `~/.kube/config`)
    /// and describe `context` (else the current context).
    pub fn load(path: Option<&Path>, context: Option<&str>) -> Result<Self> {
        let kubeconfig = match path {
            Some(path) => Kubeconfig::read_from(path).map_err(|e| Error::Config {
                reason: format!("cannot read kubeconfig {}", path.display()),
                source: Some(Box::new(e)),
            })?,
            None => Kubeconfig::read().map_err(|e| Error::Config {
                reason: "cannot load kubeconfig".into(),
                source: Some(Box::new(e)),
            })?,
        };
        Self::of(&kubeconfig, context)
    }

    /// Describe `context` (else the current context) of a parsed kubeconfig.
    pub fn of(kubeconfig: &Kubeconfig, context: Option<&str>) -> Result<Self> {
        let config_error = |reason: String| Error::Config {
            reason,
            source: None,
        };
        let name = context
            .or(kubeconfig.current_context.as_deref())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                config_error("the kubeconfig has no current-context; pass --context".into())
            })?;
        let Some(NamedContext {
            context: Some(ctx), ..
        }) = kubeconfig.contexts.iter().find(|c| c.name == name)
        else {
            return Err(config_error(format!(
                "context {name:?} is not in the kubeconfig"
            )));
        };
        let server = kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone());
        let exec_args = ctx
            .user
            .as_deref()
            .and_then(|user| kubeconfig.auth_infos.iter().find(|a| a.name == user))
            .and_then(|a| a.auth_info.as_ref())
            .and_then(|a| a.exec.as_ref())
            .and_then(|e| e.args.clone())
            .unwrap_or_default();
        let mut eks_names: Vec<String> = Vec::new();
        let found = [eks_cluster_name(name), eks_cluster_name(&ctx.cluster)]
            .into_iter()
            .flatten()
            .chain(exec_cluster_name(&exec_args));
        for found in found {
            if !eks_names.iter().any(|n| n == found) {
                eks_names.push(found.to_owned());
            }
        }
        Ok(KubeconfigContext {
            context: name.to_owned(),
            cluster: ctx.cluster.clone(),
            server,
            eks_names,
        })
    }

    /// Whether a request's `target.cluster` names this context's cluster:
    /// the kubeconfig cluster entry's name or one of its EKS names.
    pub fn matches(&self, requested: &str) -> bool {
        requested == self.cluster || self.eks_names.iter().any(|n| n == requested)
    }

    /// The name to report for the cluster: its EKS name where known, else
    /// the kubeconfig cluster entry's name.
    pub fn cluster_name(&self) -> &str {
        self.eks_names.first().unwrap_or(&self.cluster)
    }
}

/// The EKS cluster name in a kubeconfig context or cluster name written by
/// `aws eks update-kubeconfig` (`arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME`)
/// or eksctl (`NAME.REGION.eksctl.io`, context `USER@NAME.REGION.eksctl.io`).
pub fn eks_cluster_name(name: &str) -> Option<&str> {
    if let Some(rest) = name.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        return match parts.as_slice() {
            [_partition, "eks", _region, _account, resource] => resource
                .strip_prefix("cluster/")
                .filter(|n| !n.is_empty() && !n.contains('/')),
            _ => None,
        };
    }
    let host = name.rsplit_once('@').map_or(name, |(_, host)| host);
    let (cluster, _region) = host.strip_suffix(".eksctl.io")?.rsplit_once('.')?;
    (!cluster.is_empty()).then_some(cluster)
}

/// The cluster an exec credential plugin signs tokens for: `--cluster-name`
/// (`aws eks get-token`, `selfheal eks-token`) or `--cluster-id`/`-i`
/// (aws-iam-authenticator). EKS rejects a token signed for another cluster,
/// so this names the cluster the credentials work for.
fn exec_cluster_name(args: &[String]) -> Option<&str> {
    let mut args = args.iter().map(String::as_str);
    while let Some(arg) = args.next() {
        for flag in ["--cluster-name", "--cluster-id"] {
            if let Some(value) = arg.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
                return Some(value);
            }
        }
        if matches!(arg, "--cluster-name" | "--cluster-id" | "-i") {
            return args.next();
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:eks:us-east-1:123456789012:cluster/prod-us-east-1";

    fn kubeconfig(yaml: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(yaml).unwrap()
    }

    /// What `aws eks update-kubeconfig --name prod-us-east-1` writes.
    fn aws_cli() -> Kubeconfig {
        kubeconfig(&format!(
            "apiVersion: v1
kind: Config
current-context: {ARN}
clusters:
- name: {ARN}
  cluster: {{server: 'https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com'}}
- name: kind-dev
  cluster: {{server: 'https://127.0.0.1:6443'}}
contexts:
- name: {ARN}
  context: {{cluster: {ARN}, user: {ARN}}}
- name: dev
  context: {{cluster: kind-dev, user: dev}}
users:
- name: {ARN}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [--region, us-east-1, eks, get-token, --cluster-name, prod-us-east-1, --output, json]
- name: dev
  user: {{token: abc}}
"
        ))
    }

    #[test]
    fn aws_cli_kubeconfig_names_the_eks_cluster() {
        let ctx = KubeconfigContext::of(&aws_cli(), None).unwrap();
        assert_eq!(ctx.context, ARN);
        assert_eq!(ctx.cluster, ARN);
        assert_eq!(ctx.eks_names, ["prod-us-east-1"]);
        assert_eq!(ctx.cluster_name(), "prod-us-east-1");
        assert!(ctx.matches("prod-us-east-1"));
        assert!(ctx.matches(ARN));
        assert!(!ctx.matches("prod-us-east-1-OTHER"));
        assert!(!ctx.matches("prod"));
        assert_eq!(
            ctx.server.as_deref(),
            Some("https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com")
        );

        let dev = KubeconfigContext::of(&aws_cli(), Some("dev")).unwrap();
        assert_eq!(dev.cluster_name(), "kind-dev");
        assert!(dev.matches("kind-dev"));
        // The context's own name is the user's label, not the cluster's.
        assert!(!dev.matches("dev"));
    }

    #[test]
    fn unknown_or_missing_context_is_a_config_error() {
        let e = KubeconfigContext::of(&aws_cli(), Some("nope")).unwrap_err();
        assert_eq!(e.error_type(), "NonRetryableConfig");
        assert!(e.to_string().contains("\"nope\""), "{e}");
        let e = KubeconfigContext::of(&Kubeconfig::default(), None).unwrap_err();
        assert!(e.to_string().contains("--context"), "{e}");
    }

    #[test]
    fn eks_names_from_arns_and_eksctl() {
        assert_eq!(eks_cluster_name(ARN), Some("prod-us-east-1"));
        assert_eq!(
            eks_cluster_name("arn:aws-cn:eks:cn-north-1:123456789012:cluster/shop"),
            Some("shop")
        );
        assert_eq!(eks_cluster_name("arn:aws:iam::123456789012:role/x"), None);
        assert_eq!(
            eks_cluster_name("arn:aws:eks:us-east-1:1:nodegroup/a/b"),
            None
        );
        assert_eq!(eks_cluster_name("shop.eu-west-1.eksctl.io"), Some("shop"));
        assert_eq!(
            eks_cluster_name("ops@shop.eu-west-1.eksctl.io"),
            Some("shop")
        );
        assert_eq!(eks_cluster_name("prod-eks"), None);
        assert_eq!(eks_cluster_name("eu-west-1.eksctl.io"), None);
    }

    #[test]
    fn exec_arguments_name_the_cluster() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            exec_cluster_name(&args(&["eks", "get-token", "--cluster-name", "a"])),
            Some("a")
        );
        assert_eq!(
            exec_cluster_name(&args(&["eks-token", "--cluster-name=b"])),
            Some("b")
        );
        assert_eq!(exec_cluster_name(&args(&["token", "-i", "c"])), Some("c"));
        assert_eq!(exec_cluster_name(&args(&["token"])), None);
    }
}
