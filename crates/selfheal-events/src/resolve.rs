//! Target resolution (docs/alarms.md §4): directive, then what the alarm itself
//! carries (dimensions / labels), then configured defaults. An action is
//! never guessed.

use selfheal_contract::{Action, RemediationRequest, Scope, Target, WorkloadKind};

use crate::directive::Directive;
use crate::{Defaults, Rejection};

/// Target fields read from CloudWatch dimensions or Alertmanager labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub deployment: Option<String>,
    /// kube-state-metrics' `statefulset` label.
    pub stateful_set: Option<String>,
    /// kube-state-metrics' `daemonset` label.
    pub daemon_set: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
}

/// Set `slot` from a source field, rejecting two different values for one field
/// (e.g. metric-math metrics naming two different deployments).
pub fn set_once(
    slot: &mut Option<String>,
    field: &'static str,
    value: &str,
) -> Result<(), Rejection> {
    match slot {
        Some(existing) if existing != value => Err(Rejection::Conflict {
            field,
            first: existing.clone(),
            second: value.to_owned(),
        }),
        Some(_) => Ok(()),
        None => {
            *slot = Some(value.to_owned());
            Ok(())
        }
    }
}

/// Everything of a request except its provenance (`alarm`, `reason`).
pub struct Resolved {
    pub action: Action,
    pub target: Target,
    pub dry_run: bool,
    pub approval: bool,
}

/// Alert text (an alarm's name, ARN or reason, an alert's labels and
/// annotations) as it may leave ingest: control characters (C0, DEL, C1) and
/// Unicode bidirectional controls are dropped, line breaks and tabs become
/// spaces. Whoever writes an alert rule writes this text, and it reaches
/// notifications, approval requests and the audit trail, where a forged
/// line ("Approve: …") or a reordered one must not be possible.
pub(crate) fn strip_controls(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' | '\u{0085}' | '\u{2028}' | '\u{2029}' => Some(' '),
            '\u{061C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}' => None,
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

impl Resolved {
    /// The request; `reason` and the alarm's `name` and `id` are alert text,
    /// so they pass through [`strip_controls`] here, the one place both
    /// CloudWatch and Alertmanager requests are made.
    pub fn into_request(
        self,
        reason: Option<String>,
        alarm: selfheal_contract::AlarmRef,
    ) -> RemediationRequest {
        let alarm = selfheal_contract::AlarmRef {
            name: alarm.name.as_deref().map(strip_controls),
            id: alarm.id.as_deref().map(strip_controls),
            ..alarm
        };
        RemediationRequest {
            action: self.action,
            target: self.target,
            reason: reason.as_deref().map(strip_controls),
            dry_run: self.dry_run,
            force: false,
            scope: Scope::Container,
            to_revision: None,
            approval: self.approval,
            alarm: Some(alarm),
            // The state machine passes its own execution id; never set here.
            execution: None,
            // Only the state machine's approval step names an approver.
            approved_by: None,
        }
    }
}

/// Merge directive > found > defaults into a validated target and action.
///
/// `where_found` names the lower source in messages ("dimensions", "labels").
pub fn resolve(
    directive: Option<&Directive>,
    found: &Found,
    defaults: &Defaults,
    where_found: &str,
) -> Result<Resolved, Rejection> {
    let empty = Directive::default();
    let d = directive.unwrap_or(&empty);

    let action = d
        .action
        .or(defaults.action)
        .ok_or_else(|| Rejection::MissingField {
            field: "action",
            hint: format!(
                "no `action=` in a selfheal directive and {} is unset; an action is never guessed",
                Defaults::ACTION_VAR
            ),
        })?;

    let namespace = d
        .target
        .namespace
        .clone()
        .or_else(|| found.namespace.clone())
        .ok_or_else(|| Rejection::MissingField {
            field: "target.namespace",
            hint: format!("not in a selfheal directive nor in the alarm's {where_found}"),
        })?;

    let named = match named_in_directive(d)? {
        Some(named) => named,
        None => named_in_alert(found, where_found)?,
    };
    let mut target = Target {
        cluster: d
            .target
            .cluster
            .clone()
            .or_else(|| found.cluster.clone())
            .or_else(|| defaults.cluster.clone()),
        namespace,
        container: d
            .target
            .container
            .clone()
            .or_else(|| found.container.clone()),
        ..Target::default()
    };
    match named {
        Named::Workload(kind, name) => target.set_workload(kind, &name),
        Named::Pod(pod) => target.pod = Some(pod),
    }
    check_target(&target)?;
    if !defaults.allow_cross_namespace {
        same_as_alert(
            "target.namespace",
            d.target.namespace.as_deref(),
            found.namespace.as_deref(),
        )?;
        same_as_alert(
            "target.cluster",
            d.target.cluster.as_deref(),
            found.cluster.as_deref(),
        )?;
    }
    Ok(Resolved {
        action,
        target,
        dry_run: d.dry_run.unwrap_or(false),
        approval: d.approval.unwrap_or(false),
    })
}

/// The one object a request acts on, as a source names it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    Workload(WorkloadKind, String),
    /// Resolved to the workload that owns it by the adapter.
    Pod(String),
}

impl Found {
    /// The workloads among `deployment`, `statefulset`, `daemonset` that
    /// this source names, in that order.
    fn workloads(&self) -> Vec<(WorkloadKind, &str)> {
        let names = [&self.deployment, &self.stateful_set, &self.daemon_set];
        WorkloadKind::ALL
            .into_iter()
            .zip(names)
            .filter_map(|(kind, name)| Some((kind, name.as_deref()?)))
            .collect()
    }
}

/// The workload is one identity: a directive that names it names exactly
/// one object, and lower sources must not mix in another.
fn named_in_directive(d: &Directive) -> Result<Option<Named>, Rejection> {
    let workloads = d.target.workloads();
    match (workloads.as_slice(), &d.target.pod) {
        ([], None) => Ok(None),
        ([(kind, name)], None) => Ok(Some(Named::Workload(*kind, (*name).to_owned()))),
        ([], Some(pod)) => Ok(Some(Named::Pod(pod.clone()))),
        _ => {
            let mut keys: Vec<String> = workloads
                .iter()
                .map(|(kind, _)| format!("`{}`", kind.noun()))
                .collect();
            if d.target.pod.is_some() {
                keys.push("`pod`".into());
            }
            let last = keys.pop().unwrap_or_default();
            let both = if keys.len() == 1 { "both " } else { "" };
            Err(Rejection::Directive {
                problem: format!("names {both}{} and {last}; give one", keys.join(", ")),
            })
        }
    }
}

/// What the alert itself names. A label set may carry the workload and one
/// of its pods (kube-state-metrics series do); the workload is what selfheal
/// acts on. Two workloads are a question only the alert's author can answer.
fn named_in_alert(found: &Found, where_found: &str) -> Result<Named, Rejection> {
    let workloads = found.workloads();
    match (workloads.as_slice(), &found.pod) {
        ([(kind, name)], _) => Ok(Named::Workload(*kind, (*name).to_owned())),
        ([], Some(pod)) => Ok(Named::Pod(pod.clone())),
        ([], None) => Err(Rejection::MissingField {
            field: "target.deployment",
            hint: format!(
                "no deployment, statefulset, daemonset or pod in a selfheal directive nor in the alarm's {where_found}"
            ),
        }),
        (several, _) => Err(Rejection::InvalidTarget {
            message: format!(
                "the alarm's {where_found} name {}; a selfheal directive must say which one to act on",
                several
                    .iter()
                    .map(|(kind, name)| format!("{}={name}", kind.noun()))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        }),
    }
}

/// A directive may repeat the alert's own namespace or cluster, or name one
/// the alert does not carry, but not point elsewhere: an alert rule's author
/// controls its annotations, and the labels are what the monitoring stack
/// vouches for (prometheus-operator's `enforcedNamespaceLabel`).
fn same_as_alert(
    field: &'static str,
    directive: Option<&str>,
    alert: Option<&str>,
) -> Result<(), Rejection> {
    match (directive, alert) {
        (Some(directive), Some(alert)) if directive != alert => Err(Rejection::CrossNamespace {
            field,
            directive: directive.to_owned(),
            alert: alert.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The contract's own checks (non-empty names, one of deployment/pod).
fn check_target(target: &Target) -> Result<(), Rejection> {
    let probe = RemediationRequest {
        action: Action::Pause,
        target: target.clone(),
        reason: None,
        dry_run: false,
        force: false,
        scope: Scope::Container,
        to_revision: None,
        approval: false,
        alarm: None,
        execution: None,
        approved_by: None,
    };
    probe.validate().map_err(|e| Rejection::InvalidTarget {
        message: e.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn found() -> Found {
        Found {
            cluster: Some("dim-cluster".into()),
            namespace: Some("dim-ns".into()),
            deployment: Some("dim-dep".into()),
            container: Some("dim-c".into()),
            ..Found::default()
        }
    }

    /// A directive that names `target` and nothing else.
    fn directive_naming(target: Found) -> Directive {
        Directive {
            target,
            ..Directive::default()
        }
    }

    fn pausing() -> Defaults {
        Defaults {
            action: Some(Action::Pause),
            ..Defaults::default()
        }
    }

    #[test]
    fn statefulset_and_daemonset_labels_and_directives_name_that_kind() {
        let labelled = |key: &str| {
            let mut f = Found {
                deployment: None,
                pod: Some("db-0".into()),
                ..found()
            };
            match key {
                "statefulset" => f.stateful_set = Some("db".into()),
                _ => f.daemon_set = Some("db".into()),
            }
            f
        };
        let r = resolve(None, &labelled("statefulset"), &pausing(), "labels").unwrap();
        assert_eq!(r.target.stateful_set.as_deref(), Some("db"));
        assert_eq!((r.target.deployment, r.target.pod), (None, None));
        let r = resolve(None, &labelled("daemonset"), &pausing(), "labels").unwrap();
        assert_eq!(r.target.daemon_set.as_deref(), Some("db"));

        // A directive's workload wins over the labels', whatever its kind.
        let directive = directive_naming(Found {
            daemon_set: Some("agent".into()),
            ..Found::default()
        });
        let r = resolve(Some(&directive), &found(), &pausing(), "labels").unwrap();
        assert_eq!(r.target.daemon_set.as_deref(), Some("agent"));
        assert_eq!(r.target.deployment, None);
    }

    #[test]
    fn two_workloads_in_one_source_are_refused_with_their_names() {
        let directive = directive_naming(Found {
            deployment: Some("web".into()),
            stateful_set: Some("db".into()),
            pod: Some("db-0".into()),
            ..Found::default()
        });
        let err = resolve(Some(&directive), &found(), &pausing(), "labels")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "selfheal directive: names `deployment`, `statefulset` and `pod`; give one"
        );
        let both = Found {
            daemon_set: Some("agent".into()),
            ..found()
        };
        let err = resolve(None, &both, &pausing(), "labels").err().unwrap();
        assert!(matches!(err, Rejection::InvalidTarget { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("deployment=dim-dep and daemonset=agent"),
            "{err}"
        );
    }

    #[test]
    fn directive_overrides_found_and_defaults() {
        let d = Directive {
            action: Some(Action::Restart),
            ..directive_naming(Found {
                cluster: Some("d-cluster".into()),
                namespace: Some("d-ns".into()),
                pod: Some("d-pod".into()),
                ..Found::default()
            })
        };
        let defaults = Defaults {
            cluster: Some("def".into()),
            action: Some(Action::Rollback),
            allow_cross_namespace: true,
        };
        let r = resolve(Some(&d), &found(), &defaults, "dimensions").unwrap();
        assert_eq!(r.action, Action::Restart);
        assert_eq!(
            r.target,
            Target {
                cluster: Some("d-cluster".into()),
                namespace: "d-ns".into(),
                deployment: None,
                pod: Some("d-pod".into()),
                container: Some("dim-c".into()),
                ..Target::default()
            }
        );
    }

    #[test]
    fn directive_may_not_leave_the_alerts_namespace_or_cluster_by_default() {
        let defaults = Defaults {
            action: Some(Action::Rollback),
            ..Defaults::default()
        };
        let steer = |namespace: Option<&str>, cluster: Option<&str>| {
            directive_naming(Found {
                namespace: namespace.map(str::to_owned),
                cluster: cluster.map(str::to_owned),
                deployment: Some("api".into()),
                ..Found::default()
            })
        };
        let err = resolve(
            Some(&steer(Some("payments"), None)),
            &found(),
            &defaults,
            "labels",
        )
        .err()
        .unwrap();
        assert_eq!(
            err,
            Rejection::CrossNamespace {
                field: "target.namespace",
                directive: "payments".into(),
                alert: "dim-ns".into(),
            }
        );
        assert!(
            err.to_string()
                .contains("SELFHEAL_ALLOW_CROSS_NAMESPACE_DIRECTIVES"),
            "{err}"
        );
        let err = resolve(
            Some(&steer(None, Some("other"))),
            &found(),
            &defaults,
            "labels",
        )
        .err()
        .unwrap();
        assert!(
            matches!(
                err,
                Rejection::CrossNamespace {
                    field: "target.cluster",
                    ..
                }
            ),
            "{err}"
        );
        // Repeating the alert's own namespace and cluster is fine ...
        let r = resolve(
            Some(&steer(Some("dim-ns"), Some("dim-cluster"))),
            &found(),
            &defaults,
            "labels",
        )
        .unwrap();
        assert_eq!(r.target.namespace, "dim-ns");
        assert_eq!(r.target.deployment.as_deref(), Some("api"));
        // ... and so is naming one the alert does not carry.
        let unlabelled = Found {
            namespace: None,
            cluster: None,
            ..found()
        };
        let r = resolve(
            Some(&steer(Some("payments"), Some("other"))),
            &unlabelled,
            &defaults,
            "labels",
        )
        .unwrap();
        assert_eq!(r.target.namespace, "payments");
        assert_eq!(r.target.cluster.as_deref(), Some("other"));
    }

    #[test]
    fn defaults_fill_cluster_and_action_only() {
        let mut f = found();
        f.cluster = None;
        let defaults = Defaults {
            cluster: Some("def".into()),
            action: Some(Action::Pause),
            ..Defaults::default()
        };
        let r = resolve(None, &f, &defaults, "labels").unwrap();
        assert_eq!(r.action, Action::Pause);
        assert_eq!(r.target.cluster.as_deref(), Some("def"));
        assert_eq!(r.target.deployment.as_deref(), Some("dim-dep"));
    }

    #[test]
    fn missing_fields_are_named() {
        // The field a `MissingField` rejection names, and the rejection.
        let missing = |f: &Found, defaults: &Defaults| {
            let err = resolve(None, f, defaults, "labels").err().unwrap();
            let field = match &err {
                Rejection::MissingField { field, .. } => Some(*field),
                _ => None,
            };
            (field, err)
        };
        assert_eq!(missing(&found(), &Defaults::default()).0, Some("action"));
        let defaults = Defaults {
            cluster: None,
            action: Some(Action::Pause),
            ..Defaults::default()
        };
        let mut f = found();
        f.namespace = None;
        assert_eq!(missing(&f, &defaults).0, Some("target.namespace"));
        let mut f = found();
        f.deployment = None;
        let (field, err) = missing(&f, &defaults);
        assert_eq!(field, Some("target.deployment"));
        assert!(err.to_string().contains("labels"), "{err}");
    }

    #[test]
    fn conflicting_sources_and_empty_names_rejected() {
        let mut slot = Some("a".to_owned());
        assert!(set_once(&mut slot, "target.deployment", "a").is_ok());
        let err = set_once(&mut slot, "target.deployment", "b").unwrap_err();
        assert!(err.to_string().contains("`a`") && err.to_string().contains("`b`"));
        let d = Directive {
            action: Some(Action::Pause),
            ..directive_naming(Found {
                namespace: Some(" ".into()),
                ..Found::default()
            })
        };
        let err = resolve(Some(&d), &found(), &Defaults::default(), "labels")
            .err()
            .unwrap();
        assert!(matches!(err, Rejection::InvalidTarget { .. }), "{err}");
    }
}
