//! Kubernetes RBAC authorisation (`rbac.authorization.k8s.io/v1`), as the
//! API server's RBAC authorizer decides it
//! (`plugin/pkg/auth/authorizer/rbac/rbac.go` and
//! `pkg/apis/rbac/v1/evaluation_helpers.go` in kubernetes/kubernetes):
//!
//! - a request is allowed when one rule of one role bound to the user allows
//!   it; there are no deny rules;
//! - ClusterRoleBindings grant their role's rules everywhere (every namespace
//!   and the cluster scope); a RoleBinding grants the rules of its Role or
//!   ClusterRole only to requests in the binding's namespace;
//! - subjects are `User` (the user name), `Group` (one of the user's groups;
//!   every authenticated user is in `system:authenticated`) and
//!   `ServiceAccount` (user name `system:serviceaccount:<ns>:<name>`, the
//!   namespace defaulting to the RoleBinding's);
//! - a rule matches when the verb, the API group, the resource (with
//!   `resource/subresource` for a subresource: `deployments` does not cover
//!   `deployments/scale`) and, when the rule lists `resourceNames`, the name
//!   all match; `*` matches any verb, group or resource, `*/sub` any
//!   resource's subresource `sub`. A request without a name (create, list,
//!   watch, deletecollection) never matches a rule with `resourceNames`;
//! - a binding whose role does not exist grants nothing, and the denial's
//!   reason names it (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`).
//!
//! Not modelled: `aggregationRule` (a ClusterRole's own `rules` are used as
//! given), `nonResourceURLs` (discovery paths are open to every authenticated
//! user, as the default `system:discovery` binding makes them), and the
//! bootstrap roles of a real cluster.

use k8s_openapi::Metadata;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

/// Why RBAC objects could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// The YAML does not parse (the error says where).
    #[error("RBAC objects: invalid YAML: {source}")]
    Yaml {
        #[source]
        source: serde_saphyr::Error,
    },
    /// A document is not one of the four RBAC kinds.
    #[error(
        "RBAC document {index}: kind {kind:?} is not ClusterRole, Role, ClusterRoleBinding or RoleBinding"
    )]
    UnsupportedKind { index: usize, kind: String },
    /// A document does not decode as its kind (wrong apiVersion, bad field).
    #[error("RBAC document {index} ({kind}): {source}")]
    Invalid {
        index: usize,
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    /// An object has no `metadata.name`, or a namespaced one no `metadata.namespace`.
    #[error("RBAC document {index}: {kind} has no metadata.{field}")]
    MissingMetadata {
        index: usize,
        kind: String,
        field: &'static str,
    },
}

/// The authorizer attributes of one resource request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// `""` for the core group, `apps`, …
    pub api_group: String,
    /// The plural resource name (`deployments`).
    pub resource: String,
    /// `scale`, `status`, …
    pub subresource: Option<String>,
    /// The object's name; `None` for create, list and watch (unless a
    /// `metadata.name=` field selector names one object).
    pub name: Option<String>,
    /// `None` at the cluster scope. A request on a Namespace object has its
    /// own name as namespace, like on a real server.
    pub namespace: Option<String>,
}

impl Attributes {
    /// `resource` or `resource/subresource`, as RBAC rules and messages spell it.
    pub fn combined_resource(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.clone(),
        }
    }
}

/// The RBAC authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No rule allows it; `reason` is the real server's text after the
    /// message (bindings to missing roles), if any.
    Deny {
        reason: Option<String>,
    },
}

/// A set of RBAC objects, as `kubectl apply` would leave them in a cluster:
/// one object per name (per namespace for Roles and RoleBindings), a later
/// one replacing an earlier one.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    pub cluster_roles: Vec<ClusterRole>,
    pub roles: Vec<Role>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub role_bindings: Vec<RoleBinding>,
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

/// Replaces the object with the same namespace and name, or appends.
fn upsert<T: Metadata<Ty = ObjectMeta>>(list: &mut Vec<T>, item: T) {
    fn key<T: Metadata<Ty = ObjectMeta>>(x: &T) -> (&str, &str) {
        (namespace_of(x.metadata()), name_of(x.metadata()))
    }
    match list.iter().position(|x| key(x) == key(&item)) {
        Some(i) => list[i] = item,
        None => list.push(item),
    }
}

/// One object of document `index`: it has a name (and a namespace when
/// `namespaced`) and decodes as its kind.
fn decode<T: serde::de::DeserializeOwned>(
    index: usize,
    value: Value,
    namespaced: bool,
) -> Result<T, RbacError> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let has = |field: &str| {
        value
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    for (field, needed) in [("name", true), ("namespace", namespaced)] {
        if needed && !has(field) {
            return Err(RbacError::MissingMetadata { index, kind, field });
        }
    }
    serde_json::from_value(value).map_err(|source| RbacError::Invalid {
        index,
        kind,
        source,
    })
}

impl Rbac {
    /// Parses multi-document YAML (`---`-separated, e.g. `deploy/rbac.yaml`);
    /// a `kind: List` document contributes its items, empty documents are
    /// skipped.
    pub fn from_yaml(yaml: &str) -> Result<Rbac, RbacError> {
        let mut rbac = Rbac::default();
        rbac.apply_yaml(yaml)?;
        Ok(rbac)
    }

    /// Adds (or replaces, by name) the objects of a multi-document YAML.
    /// On an error nothing is changed.
    pub fn apply_yaml(&mut self, yaml: &str) -> Result<(), RbacError> {
        let mut next = self.clone();
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(yaml).map_err(|source| RbacError::Yaml { source })?;
        for (index, value) in docs.into_iter().enumerate() {
            next.apply_value(index, value)?;
        }
        *self = next;
        Ok(())
    }

    /// Adds (or replaces) one object, or a `kind: List`'s items, given as JSON.
    pub fn apply_json(&mut self, value: Value) -> Result<(), RbacError> {
        let mut next = self.clone();
        next.apply_value(0, value)?;
        *self = next;
        Ok(())
    }

    fn apply_value(&mut self, index: usize, value: Value) -> Result<(), RbacError> {
        if value.is_null() {
            return Ok(());
        }
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match kind.as_str() {
            "List" => {
                let items = value
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for item in items {
                    self.apply_value(index, item)?;
                }
            }
            "ClusterRole" => upsert(&mut self.cluster_roles, decode(index, value, false)?),
            "ClusterRoleBinding" => upsert(
                &mut self.cluster_role_bindings,
                decode(index, value, false)?,
            ),
            "Role" => upsert(&mut self.roles, decode(index, value, true)?),
            "RoleBinding" => upsert(&mut self.role_bindings, decode(index, value, true)?),
            _ => return Err(RbacError::UnsupportedKind { index, kind }),
        }
        Ok(())
    }

    /// Adds the objects of `other` (replacing same-named ones).
    pub fn extend(&mut self, other: Rbac) {
        fn merge<T: Metadata<Ty = ObjectMeta>>(into: &mut Vec<T>, from: Vec<T>) {
            from.into_iter().for_each(|o| upsert(into, o));
        }
        merge(&mut self.cluster_roles, other.cluster_roles);
        merge(&mut self.cluster_role_bindings, other.cluster_role_bindings);
        merge(&mut self.roles, other.roles);
        merge(&mut self.role_bindings, other.role_bindings);
    }

    /// The rules a binding's roleRef points at, or the real server's error
    /// text when the role does not exist. `namespace` is the RoleBinding's.
    fn rules_of(
        &self,
        role_ref: &RoleRef,
        namespace: Option<&str>,
    ) -> Result<&[PolicyRule], String> {
        let found = match (role_ref.kind.as_str(), namespace) {
            ("ClusterRole", _) => self
                .cluster_roles
                .iter()
                .find(|r| name_of(&r.metadata) == role_ref.name)
                .map(|r| r.rules.as_deref().unwrap_or_default()),
            ("Role", Some(ns)) => self
                .roles
                .iter()
                .find(|r| name_of(&r.metadata) == role_ref.name && namespace_of(&r.metadata) == ns)
                .map(|r| r.rules.as_deref().unwrap_or_default()),
            // A ClusterRoleBinding may only reference a ClusterRole (the API refuses others).
            _ => None,
        };
        found.ok_or_else(|| {
            format!(
                "{}.{RBAC_GROUP} {:?} not found",
                role_ref.kind.to_ascii_lowercase(),
                role_ref.name
            )
        })
    }

    /// Whether `user` (in `groups`) may do what `attrs` describe.
    pub fn authorize(&self, user: &str, groups: &[String], attrs: &Attributes) -> Decision {
        let mut errors: Vec<String> = Vec::new();
        let mut visit = |role_ref: &RoleRef, namespace: Option<&str>| -> bool {
            match self.rules_of(role_ref, namespace) {
                Ok(rules) => rules.iter().any(|rule| rule_allows(rule, attrs)),
                Err(e) => {
                    errors.push(e);
                    false
                }
            }
        };
        for b in &self.cluster_role_bindings {
            if applies_to(b.subjects.as_deref(), user, groups, None) && visit(&b.role_ref, None) {
                return Decision::Allow;
            }
        }
        if let Some(ns) = attrs.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            for b in self
                .role_bindings
                .iter()
                .filter(|b| namespace_of(&b.metadata) == ns)
            {
                if applies_to(b.subjects.as_deref(), user, groups, Some(ns))
                    && visit(&b.role_ref, Some(ns))
                {
                    return Decision::Allow;
                }
            }
        }
        let reason = match errors.as_slice() {
            [] => None,
            [one] => Some(format!("RBAC: {one}")),
            many => Some(format!("RBAC: [{}]", many.join(", "))),
        };
        Decision::Deny { reason }
    }
}

/// Whether one of `subjects` is this user (`namespace`: the RoleBinding's,
/// the default for a ServiceAccount subject without one).
fn applies_to(
    subjects: Option<&[Subject]>,
    user: &str,
    groups: &[String],
    namespace: Option<&str>,
) -> bool {
    subjects
        .unwrap_or_default()
        .iter()
        .any(|s| match s.kind.as_str() {
            "User" => s.name == user,
            "Group" => s.name == "system:authenticated" || groups.contains(&s.name),
            "ServiceAccount" => {
                let ns = s
                    .namespace
                    .as_deref()
                    .filter(|ns| !ns.is_empty())
                    .or(namespace)
                    .unwrap_or_default();
                !ns.is_empty() && user == format!("system:serviceaccount:{ns}:{}", s.name)
            }
            _ => false,
        })
}

fn has_or_star(list: &[String], wanted: &str) -> bool {
    list.iter().any(|x| x == "*" || x == wanted)
}

/// `RuleAllows` for a resource request.
pub fn rule_allows(rule: &PolicyRule, attrs: &Attributes) -> bool {
    has_or_star(&rule.verbs, &attrs.verb)
        && has_or_star(
            rule.api_groups.as_deref().unwrap_or_default(),
            &attrs.api_group,
        )
        && resource_matches(rule, attrs)
        && resource_name_matches(rule, attrs.name.as_deref())
}

fn resource_matches(rule: &PolicyRule, attrs: &Attributes) -> bool {
    let combined = attrs.combined_resource();
    rule.resources
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|r| {
            r == "*"
                || *r == combined
                || attrs
                    .subresource
                    .as_deref()
                    .is_some_and(|sub| r.strip_prefix("*/") == Some(sub))
        })
}

fn resource_name_matches(rule: &PolicyRule, name: Option<&str>) -> bool {
    match rule.resource_names.as_deref().unwrap_or_default() {
        [] => true,
        names => name.is_some_and(|n| names.iter().any(|x| x == n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE_YAML: &str = r#"
# a comment-only document comes first
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: remediator
rules:
  - apiGroups: ["apps"]
    resources: ["deployments"]
    verbs: ["get", "list", "patch"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: scaler
rules:
  - apiGroups: ["apps"]
    resources: ["*/scale"]
    verbs: ["update"]
  - apiGroups: ["*"]
    resources: ["configmaps"]
    resourceNames: ["settings"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: pod-reader
  namespace: shop
rules:
  - apiGroups: [""]
    resources: ["pods", "pods/log"]
    verbs: ["get", "watch"]
"#;

    /// [`attrs`] in the namespace most tests grant in.
    fn in_shop(verb: &str, group: &str, resource: &str) -> Attributes {
        attrs(verb, group, resource, Some("shop"))
    }

    fn attrs(verb: &str, group: &str, resource: &str, ns: Option<&str>) -> Attributes {
        let (resource, subresource) = match resource.split_once('/') {
            Some((r, s)) => (r.to_string(), Some(s.to_string())),
            None => (resource.to_string(), None),
        };
        Attributes {
            verb: verb.into(),
            api_group: group.into(),
            resource,
            subresource,
            name: Some("checkout".into()),
            namespace: ns.map(str::to_string),
        }
    }

    fn with(extra: &str) -> Rbac {
        let mut rbac = Rbac::from_yaml(ROLE_YAML).unwrap();
        rbac.apply_yaml(extra).unwrap();
        rbac
    }

    fn allowed(rbac: &Rbac, user: &str, groups: &[&str], a: &Attributes) -> bool {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        rbac.authorize(user, &groups, a) == Decision::Allow
    }

    const GROUP_CRB: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: remediator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: remediator}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: selfheal-remediators}
"#;

    #[test]
    fn parses_multi_document_yaml_and_lists() {
        let rbac = Rbac::from_yaml(ROLE_YAML).unwrap();
        assert_eq!(rbac.cluster_roles.len(), 2);
        assert_eq!(rbac.roles.len(), 1);
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "b", "namespace": "shop"},
             "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "pod-reader"},
             "subjects": [{"kind": "User", "name": "u"}]}]});
        let mut rbac2 = rbac.clone();
        rbac2.apply_json(list).unwrap();
        assert_eq!(rbac2.role_bindings.len(), 1);
        // Same name again replaces (apply semantics).
        rbac2
            .apply_yaml("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: scaler}\nrules: []\n")
            .unwrap();
        assert_eq!(rbac2.cluster_roles.len(), 2);
        assert!(rbac2.cluster_roles[1].rules.as_deref().unwrap().is_empty());
    }

    #[test]
    fn rejects_what_it_cannot_load_and_changes_nothing() {
        let mut rbac = Rbac::from_yaml(ROLE_YAML).unwrap();
        let err = rbac
            .apply_yaml("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n")
            .unwrap_err();
        assert!(
            matches!(err, RbacError::UnsupportedKind { ref kind, .. } if kind == "ServiceAccount"),
            "{err}"
        );
        let err = rbac
            .apply_yaml("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: x}\nrules: []\n")
            .unwrap_err();
        assert!(
            matches!(
                err,
                RbacError::MissingMetadata {
                    field: "namespace",
                    ..
                }
            ),
            "{err}"
        );
        let err = rbac
            .apply_yaml("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: ClusterRole\nmetadata: {name: x}\n")
            .unwrap_err();
        assert!(matches!(err, RbacError::Invalid { index: 1, .. }), "{err}");
        let err = rbac.apply_yaml("kind: [unclosed").unwrap_err();
        assert!(matches!(err, RbacError::Yaml { .. }), "{err}");
        // The valid first document of the failed batch was not kept.
        assert_eq!(rbac.cluster_roles.len(), 2);
    }

    #[test]
    fn verbs_groups_and_resources_match_exactly() {
        let rbac = with(GROUP_CRB);
        let u = |a: &Attributes| allowed(&rbac, "arn:role/x", &["selfheal-remediators"], a);
        for verb in ["get", "list", "patch"] {
            assert!(u(&in_shop(verb, "apps", "deployments")), "{verb}");
        }
        for verb in ["watch", "create", "update", "delete", "deletecollection"] {
            assert!(!u(&in_shop(verb, "apps", "deployments")), "{verb}");
        }
        // Wrong group, wrong resource, subresource not covered by the resource.
        assert!(!u(&in_shop("get", "", "deployments")));
        assert!(!u(&in_shop("get", "extensions", "deployments")));
        assert!(!u(&in_shop("get", "apps", "replicasets")));
        assert!(!u(&in_shop("patch", "apps", "deployments/scale")));
        assert!(!u(&in_shop("patch", "apps", "deployments/status")));
        // A ClusterRoleBinding grants in every namespace and at the cluster scope.
        assert!(u(&attrs("get", "apps", "deployments", Some("payments"))));
        assert!(u(&attrs("list", "apps", "deployments", None)));
        assert!(u(&attrs("create", "", "events", Some("payments"))));
        // Not in the group: nothing.
        assert!(!allowed(
            &rbac,
            "arn:role/x",
            &["other"],
            &in_shop("get", "apps", "deployments")
        ));
    }

    #[test]
    fn wildcards_subresource_wildcard_and_resource_names() {
        let rbac = with(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: s}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: scaler}\nsubjects: [{kind: User, name: alice}]\n",
        );
        let a = |x: &Attributes| allowed(&rbac, "alice", &[], x);
        assert!(a(&in_shop("update", "apps", "deployments/scale")));
        assert!(a(&in_shop("update", "apps", "replicasets/scale")));
        assert!(!a(&in_shop("update", "apps", "deployments")));
        assert!(!a(&in_shop("update", "apps", "deployments/status")));
        // `*/scale` is not `*`: the group must still match.
        assert!(!a(&in_shop("update", "", "deployments/scale")));
        // resourceNames: only that name, and never a request without a name.
        let mut cm = in_shop("delete", "anything.example", "configmaps");
        cm.name = Some("settings".into());
        assert!(a(&cm));
        cm.name = Some("other".into());
        assert!(!a(&cm));
        cm.name = None;
        cm.verb = "list".into();
        assert!(!a(&cm));
        // Another user.
        assert!(!allowed(
            &rbac,
            "bob",
            &[],
            &in_shop("update", "apps", "deployments/scale")
        ));
    }

    #[test]
    fn role_bindings_grant_only_in_their_namespace() {
        let rbac = with(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: remediator, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: remediator}
subjects: [{kind: Group, name: selfheal-remediators}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: viewer}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: payments}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: viewer, namespace: shop}]
"#,
        );
        let g = &["selfheal-remediators"];
        assert!(allowed(
            &rbac,
            "x",
            g,
            &in_shop("patch", "apps", "deployments")
        ));
        assert!(!allowed(
            &rbac,
            "x",
            g,
            &attrs("patch", "apps", "deployments", Some("payments"))
        ));
        assert!(!allowed(
            &rbac,
            "x",
            g,
            &attrs("list", "apps", "deployments", None)
        ));
        // ServiceAccount subject: namespace defaults to the binding's.
        let sa = "system:serviceaccount:shop:viewer";
        assert!(allowed(&rbac, sa, &[], &in_shop("get", "", "pods")));
        assert!(allowed(&rbac, sa, &[], &in_shop("watch", "", "pods/log")));
        assert!(!allowed(&rbac, sa, &[], &in_shop("list", "", "pods")));
        assert!(!allowed(
            &rbac,
            "system:serviceaccount:payments:viewer",
            &[],
            &in_shop("get", "", "pods")
        ));
        // The payments binding names a Role that only exists in shop: the
        // reason says so, like the real server.
        assert_eq!(
            rbac.authorize(sa, &[], &attrs("get", "", "pods", Some("payments"))),
            Decision::Deny {
                reason: Some(
                    r#"RBAC: role.rbac.authorization.k8s.io "pod-reader" not found"#.into()
                )
            }
        );
    }

    #[test]
    fn system_authenticated_and_missing_roles() {
        let rbac = with(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: all}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: remediator}\nsubjects: [{kind: Group, name: system:authenticated}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: gone}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gone}\nsubjects: [{kind: User, name: carol}]\n",
        );
        assert!(allowed(
            &rbac,
            "anyone",
            &[],
            &in_shop("get", "apps", "deployments")
        ));
        assert_eq!(
            rbac.authorize("carol", &[], &in_shop("delete", "apps", "deployments")),
            Decision::Deny {
                reason: Some(
                    r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#.into()
                )
            }
        );
        assert_eq!(
            rbac.authorize("dave", &[], &in_shop("delete", "apps", "deployments")),
            Decision::Deny { reason: None }
        );
    }
}
