//! Which cluster a request names and which role reaches it: `target.cluster`
//! is a plain name (this account and region, as before) or an EKS cluster
//! ARN (`arn:aws:eks:REGION:ACCOUNT:cluster/NAME`), and
//! `SELFHEAL_CLUSTER_ROLES` maps clusters and accounts to the IAM role
//! assumed for them (deploy/README.md, "Other accounts and regions").

use crate::error::Error;

/// The variable holding the roles to assume (README's configuration table).
pub const CLUSTER_ROLES: &str = "SELFHEAL_CLUSTER_ROLES";

/// A cluster as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRef {
    /// The EKS cluster name: `DescribeCluster`'s name, the token's `x-k8s-aws-id`.
    pub name: String,
    /// Region and account from an ARN; `None` for a plain name (the function's own).
    pub location: Option<ClusterLocation>,
}

/// Where an ARN puts a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterLocation {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl ClusterRef {
    /// A plain name, or an ARN checked field by field; a malformed ARN is
    /// [`Error::InvalidClusterArn`], never a name that DescribeCluster would
    /// answer "not found" for.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if !text.starts_with("arn:") {
            return Ok(ClusterRef {
                name: text.to_owned(),
                location: None,
            });
        }
        let bad = |reason: &str| Error::InvalidClusterArn {
            arn: text.to_owned(),
            reason: reason.to_owned(),
        };
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let [_, partition, service, region, account, resource] = parts[..] else {
            return Err(bad(
                "expected arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME",
            ));
        };
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
            return Err(bad("partition is not aws, aws-cn or aws-us-gov"));
        }
        if service != "eks" {
            return Err(bad("not an EKS ARN (service must be eks)"));
        }
        if !valid_region(region) {
            return Err(bad("region is not an AWS region name"));
        }
        if !valid_account(account) {
            return Err(bad("account is not 12 digits"));
        }
        let name = resource
            .strip_prefix("cluster/")
            .ok_or_else(|| bad("resource is not cluster/NAME"))?;
        if !valid_cluster_name(name) {
            return Err(bad(
                "cluster name must be 1-100 letters, digits, '-' or '_', starting with a letter or digit",
            ));
        }
        Ok(ClusterRef {
            name: name.to_owned(),
            location: Some(ClusterLocation {
                partition: partition.to_owned(),
                region: region.to_owned(),
                account: account.to_owned(),
            }),
        })
    }

    /// The cluster's region, or `default` (the function's) for a plain name.
    pub fn region_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.location
            .as_ref()
            .map_or(default, |l| l.region.as_str())
    }
}

/// Whether `region` has the shape of an AWS region name.
pub fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

fn valid_account(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// EKS's rule for cluster names.
fn valid_cluster_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The roles of [`CLUSTER_ROLES`]: comma-separated entries, each a role ARN
/// (assumed for every cluster ARN in that role's account) or
/// `CLUSTER=ROLE_ARN` (for that one cluster, named as requests name it).
/// A cluster entry wins over an account entry; a plain name without an
/// entry of its own is reached with the function's own role, as before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterRoles {
    by_cluster: Vec<(String, String)>,
    by_account: Vec<(String, String)>,
}

impl ClusterRoles {
    /// Parses the variable's value (blank: no roles).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut roles = ClusterRoles::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let invalid = |reason: String| Error::InvalidConfig {
                variable: CLUSTER_ROLES.to_owned(),
                value: entry.to_owned(),
                reason,
            };
            let (cluster, role) = match entry.split_once('=') {
                Some((cluster, role)) => (Some(cluster.trim()), role.trim()),
                None => (None, entry),
            };
            let account = role_account(role).ok_or_else(|| {
                invalid("expected an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)".into())
            })?;
            match cluster {
                Some(cluster) => {
                    ClusterRef::parse(cluster).map_err(|e| invalid(e.to_string()))?;
                    if cluster.is_empty() {
                        return Err(invalid("empty cluster before '='".into()));
                    }
                    roles.by_cluster.push((cluster.to_owned(), role.to_owned()));
                }
                None => {
                    if roles.by_account.iter().any(|(a, _)| a == account) {
                        return Err(invalid(format!(
                            "a second role for account {account}; name the cluster (CLUSTER=ROLE_ARN) instead"
                        )));
                    }
                    roles.by_account.push((account.to_owned(), role.to_owned()));
                }
            }
        }
        Ok(roles)
    }

    /// Whether no role is configured (every cluster uses the function's own role).
    pub fn is_empty(&self) -> bool {
        self.by_cluster.is_empty() && self.by_account.is_empty()
    }

    /// The role to assume for `requested` (as the request names it), if any.
    pub fn role_for(&self, requested: &str, cluster: &ClusterRef) -> Option<&str> {
        let requested = requested.trim();
        if let Some((_, role)) = self.by_cluster.iter().find(|(c, _)| c == requested) {
            return Some(role);
        }
        let account = &cluster.location.as_ref()?.account;
        self.by_account
            .iter()
            .find(|(a, _)| a == account)
            .map(|(_, role)| role.as_str())
    }
}

/// The account of an IAM role ARN, if `arn` is one.
fn role_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", partition, "iam", "", account, resource] = parts[..] else {
        return None;
    };
    let ok = matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && valid_account(account)
        && resource
            .strip_prefix("role/")
            .is_some_and(|n| !n.is_empty());
    ok.then_some(account)
}

/// `RoleSessionName` for an assumed role: `selfheal-` and the execution, cut
/// to STS's 64 characters of `[\w+=,.@-]`, so CloudTrail in the workload
/// account names both.
pub fn role_session_name(execution: Option<&str>) -> String {
    let mut name = String::from("selfheal");
    if let Some(execution) = execution.map(str::trim).filter(|e| !e.is_empty()) {
        // An execution ARN's last field is the execution's name.
        let short = execution.rsplit(':').next().unwrap_or(execution);
        name.push('-');
        name.extend(short.chars().map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        }));
    }
    name.truncate(64);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    const EAST: &str = "arn:aws:eks:us-east-1:111111111111:cluster/prod-east";

    #[test]
    fn plain_name_keeps_its_meaning_and_arn_gives_region_and_account() {
        let plain = ClusterRef::parse(" prod-eks ").unwrap();
        assert_eq!(plain.name, "prod-eks");
        assert_eq!(plain.location, None);
        assert_eq!(plain.region_or("eu-west-1"), "eu-west-1");

        let arn = ClusterRef::parse(EAST).unwrap();
        assert_eq!(arn.name, "prod-east");
        let location = arn.location.as_ref().unwrap();
        assert_eq!(location.account, "111111111111");
        assert_eq!(location.partition, "aws");
        assert_eq!(arn.region_or("eu-west-1"), "us-east-1");
    }

    #[test]
    fn malformed_arns_are_typed_errors_naming_the_part() {
        for (arn, says) in [
            ("arn:aws:eks:us-east-1:111111111111", "expected arn:"),
            ("arn:aws:ecs:us-east-1:111111111111:cluster/a", "service"),
            ("arn:aws:eks:US_EAST:111111111111:cluster/a", "region"),
            ("arn:aws:eks:us-east-1:1111:cluster/a", "account"),
            (
                "arn:aws:eks:us-east-1:111111111111:nodegroup/a",
                "cluster/NAME",
            ),
            (
                "arn:aws:eks:us-east-1:111111111111:cluster/-a",
                "cluster name",
            ),
            (
                "arn:aws:eks:us-east-1:111111111111:cluster/",
                "cluster name",
            ),
            (
                "arn:other:eks:us-east-1:111111111111:cluster/a",
                "partition",
            ),
        ] {
            match ClusterRef::parse(arn) {
                Err(Error::InvalidClusterArn { arn: got, reason }) => {
                    assert_eq!(got, arn);
                    assert!(reason.contains(says), "{arn}: {reason}");
                }
                other => panic!("{arn}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_request_with_a_malformed_cluster_arn_is_refused_before_any_call() {
        let request = |cluster: &str| {
            crate::RemediationRequest::from_json(&format!(
                r#"{{"action":"rollback","target":{{"cluster":"{cluster}","namespace":"shop","deployment":"web"}}}}"#
            ))
        };
        assert!(request(EAST).is_ok());
        assert!(matches!(
            request("arn:aws:eks:us-east-1:1:cluster/x"),
            Err(Error::InvalidClusterArn { .. })
        ));
    }

    #[test]
    fn roles_per_cluster_win_over_roles_per_account() {
        let roles = ClusterRoles::parse(
            " arn:aws:iam::111111111111:role/selfheal ,\
             prod-west=arn:aws:iam::333333333333:role/west,\
             arn:aws:eks:us-east-1:111111111111:cluster/special=arn:aws:iam::111111111111:role/special",
        )
        .unwrap();
        let role = |requested: &str| {
            let cluster = ClusterRef::parse(requested).unwrap();
            roles.role_for(requested, &cluster).map(str::to_owned)
        };
        assert_eq!(
            role(EAST).as_deref(),
            Some("arn:aws:iam::111111111111:role/selfheal")
        );
        assert_eq!(
            role("arn:aws:eks:us-east-1:111111111111:cluster/special").as_deref(),
            Some("arn:aws:iam::111111111111:role/special")
        );
        assert_eq!(
            role("prod-west").as_deref(),
            Some("arn:aws:iam::333333333333:role/west")
        );
        // A plain name without an entry, or another account: the function's own role.
        assert_eq!(role("prod-eks"), None);
        assert_eq!(role("arn:aws:eks:us-east-1:222222222222:cluster/x"), None);
        assert!(ClusterRoles::parse("  ").unwrap().is_empty());
    }

    #[test]
    fn bad_role_entries_name_the_variable_and_entry() {
        for (text, says) in [
            ("arn:aws:s3:::bucket", "IAM role ARN"),
            ("prod=arn:aws:iam::111111111111:user/bob", "IAM role ARN"),
            (
                "arn:aws:eks:x:1:cluster/a=arn:aws:iam::111111111111:role/r",
                "account",
            ),
            (
                "arn:aws:iam::111111111111:role/a,arn:aws:iam::111111111111:role/b",
                "second role",
            ),
        ] {
            match ClusterRoles::parse(text) {
                Err(Error::InvalidConfig {
                    variable, reason, ..
                }) => {
                    assert_eq!(variable, CLUSTER_ROLES);
                    assert!(reason.contains(says), "{text}: {reason}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn session_name_names_selfheal_and_the_execution_within_sts_rules() {
        assert_eq!(role_session_name(None), "selfheal");
        assert_eq!(
            role_session_name(Some(
                "arn:aws:states:eu-west-1:123456789012:execution:Selfheal:alarm 42/x"
            )),
            "selfheal-alarm-42-x"
        );
        let long = role_session_name(Some(&"e".repeat(200)));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("selfheal-eee"));
    }
}
