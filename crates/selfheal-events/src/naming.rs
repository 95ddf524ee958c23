//! Deterministic Step Functions execution names (docs/alarms.md §6): the same
//! alert delivered twice gets the same name, so `StartExecution` answers
//! `ExecutionAlreadyExists` instead of remediating twice.

use sha2::{Digest, Sha256};

/// Step Functions allows 80 characters; `[A-Za-z0-9-_]` keeps the name usable
/// in CloudWatch Logs and URLs.
pub const MAX_NAME_LEN: usize = 80;
/// Hex digits of SHA-256 kept in a name: 64 bits, ample for one state machine.
pub const HASH_LEN: usize = 16;

/// `<readable prefix>-<hash of identity>`, at most [`MAX_NAME_LEN`] characters.
///
/// Only `identity` decides uniqueness; the prefix (action and workload) is for
/// humans reading the console and is sanitized and truncated to fit.
pub fn execution_name(prefix_parts: &[&str], identity: &str) -> String {
    let digest = Sha256::digest(identity.as_bytes());
    let mut hash = String::with_capacity(HASH_LEN);
    for byte in digest.iter().take(HASH_LEN / 2) {
        hash.push_str(&format!("{byte:02x}"));
    }
    let mut prefix = sanitize(&prefix_parts.join("-"));
    let room = MAX_NAME_LEN - HASH_LEN - 1;
    if prefix.len() > room {
        // ASCII only after sanitizing, so byte truncation is char-safe.
        prefix.truncate(room);
        while prefix.ends_with(['-', '_']) {
            prefix.pop();
        }
    }
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// Replace every character outside `[A-Za-z0-9_-]` by `-`, collapse runs, trim.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }

    #[test]
    fn same_identity_same_name_different_identity_different_name() {
        let a = execution_name(&["rollback", "checkout"], "arn:x\n1");
        let b = execution_name(&["rollback", "checkout"], "arn:x\n1");
        let c = execution_name(&["rollback", "checkout"], "arn:x\n2");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("rollback-checkout-"), "{a}");
        assert_eq!(a.len(), "rollback-checkout-".len() + HASH_LEN);
        assert!(valid(&a));
    }

    #[test]
    fn unicode_and_long_names_are_sanitized_and_truncated() {
        let n = execution_name(&["pause", "zahlungsdienst-über-alles 🚀/v2"], "id");
        assert!(valid(&n), "{n}");
        assert!(n.starts_with("pause-zahlungsdienst-ber-alles-v2-"), "{n}");
        let long = "x".repeat(300);
        let n = execution_name(&["restart", &long], "id");
        assert!(valid(&n) && n.len() == MAX_NAME_LEN, "{n}");
        let n = execution_name(&["日本語"], "id");
        assert!(valid(&n) && n.len() == HASH_LEN, "{n}");
        assert_eq!(sanitize("--a  b--"), "a-b");
    }
}
