//! Bearer-token authentication, and authorisation: `system:masters` may do
//! everything, other users what the loaded RBAC objects allow ([`crate::rbac`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::rbac::{Attributes, Decision, Rbac};

/// Who a registered bearer token (or a token the verifier accepts) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Member of `system:masters`: every request is allowed.
    Admin,
    /// Authenticated user (the name) without any rights: resource requests
    /// get 403 whatever RBAC objects are loaded.
    Forbidden(String),
    /// An authenticated user, authorised by Kubernetes RBAC against the
    /// objects loaded with [`crate::TestServer::load_rbac`] (none: every
    /// resource request gets 403). `system:authenticated` is implied; a
    /// member of `system:masters` is allowed everything.
    User { name: String, groups: Vec<String> },
}

impl Identity {
    /// A [`Identity::User`] in `groups`.
    pub fn user(name: impl Into<String>, groups: &[&str]) -> Identity {
        Identity::User {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_string()).collect(),
        }
    }

    /// A ServiceAccount's identity, as its tokens authenticate:
    /// `system:serviceaccount:<ns>:<name>` in groups `system:serviceaccounts`
    /// and `system:serviceaccounts:<ns>`.
    pub fn service_account(namespace: &str, name: &str) -> Identity {
        Identity::User {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
            ],
        }
    }
}

pub(crate) type Verifier = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

pub(crate) struct Auth {
    pub(crate) tokens: HashMap<String, Identity>,
    pub(crate) verifier: Option<Verifier>,
    /// Who a token accepted by `verifier` is (default: admin).
    pub(crate) verified: Identity,
    pub(crate) rbac: Rbac,
}

/// Result of authenticating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Who {
    Known(Identity),
    Anonymous,
    Unauthorized,
}

/// A denied request: the user name and the reason the real server appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied {
    pub(crate) user: String,
    pub(crate) reason: Option<String>,
}

impl Auth {
    pub(crate) fn new(admin_token: &str, rbac: Rbac) -> Auth {
        let mut tokens = HashMap::new();
        tokens.insert(admin_token.to_string(), Identity::Admin);
        Auth {
            tokens,
            verifier: None,
            verified: Identity::Admin,
            rbac,
        }
    }

    pub(crate) fn authenticate(&self, header: Option<&str>) -> Who {
        let Some(h) = header else {
            return Who::Anonymous;
        };
        let Some(token) = h.strip_prefix("Bearer ").map(str::trim) else {
            return Who::Unauthorized;
        };
        match self.tokens.get(token) {
            Some(identity) => Who::Known(identity.clone()),
            None => match &self.verifier {
                Some(v) if v(token).is_ok() => Who::Known(self.verified.clone()),
                _ => Who::Unauthorized,
            },
        }
    }

    /// Whether an authenticated request may go on.
    pub(crate) fn authorize(&self, who: &Who, attrs: &Attributes) -> Result<(), Denied> {
        let deny = |user: &str, reason: Option<String>| {
            Err(Denied {
                user: user.to_string(),
                reason,
            })
        };
        match who {
            Who::Known(Identity::Admin) => Ok(()),
            Who::Known(Identity::Forbidden(name)) => deny(name, None),
            Who::Known(Identity::User { name, groups }) => {
                if groups.iter().any(|g| g == "system:masters") {
                    return Ok(());
                }
                match self.rbac.authorize(name, groups, attrs) {
                    Decision::Allow => Ok(()),
                    Decision::Deny { reason } => deny(name, reason),
                }
            }
            Who::Anonymous | Who::Unauthorized => deny("system:anonymous", None),
        }
    }
}
