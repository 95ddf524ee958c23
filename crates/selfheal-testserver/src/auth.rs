//! Bearer-token authentication and a two-level authorisation (admin or nothing).

use std::collections::HashMap;
use std::sync::Arc;

/// What a registered bearer token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Member of `system:masters`: every request is allowed.
    Admin,
    /// Authenticated user (the name) without RBAC rights: resource requests get 403.
    Forbidden(String),
}

pub(crate) type Verifier = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

pub(crate) struct Auth {
    pub(crate) tokens: HashMap<String, Identity>,
    pub(crate) verifier: Option<Verifier>,
}

/// Result of authenticating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Who {
    Admin,
    User(String),
    Anonymous,
    Unauthorized,
}

impl Auth {
    pub(crate) fn new(admin_token: &str) -> Auth {
        let mut tokens = HashMap::new();
        tokens.insert(admin_token.to_string(), Identity::Admin);
        Auth {
            tokens,
            verifier: None,
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
            Some(Identity::Admin) => Who::Admin,
            Some(Identity::Forbidden(name)) => Who::User(name.clone()),
            None => match &self.verifier {
                Some(v) if v(token).is_ok() => Who::Admin,
                _ => Who::Unauthorized,
            },
        }
    }
}
