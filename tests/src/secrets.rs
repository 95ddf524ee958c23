//! Log scanning for leaked credentials: no secret or token may appear in any
//! log line.
//!
//! End-to-end tests capture everything the real function processes print and
//! hand it here with the secrets that process held. Besides the exact secrets,
//! the scan looks for the shapes a leak takes even when the test does not know
//! the value: an EKS bearer token, a presigned STS signature, an
//! `Authorization` header value.

/// Shapes that must never appear in a log, whatever their value.
const LEAK_SHAPES: &[(&str, &str)] = &[
    ("k8s-aws-v1.", "an EKS bearer token"),
    (
        "X-Amz-Signature",
        "a SigV4 signature (presigned URL or header)",
    ),
    (
        "X-Amz-Security-Token",
        "an AWS session token in a presigned URL",
    ),
    ("aws_secret_access_key", "an AWS secret key assignment"),
];

/// Secret values shorter than this are not searched for verbatim: a short
/// value ("testing") also occurs as an ordinary word.
const MIN_SECRET_LEN: usize = 12;

/// Every log line that contains one of `secrets` (exact values, and for long
/// enough ones also any 28-character piece of them (windows of 24 every 4), which catches a truncated
/// or wrapped secret) or one of the leak shapes, as `"reason: line"`.
pub fn leaks(log: &str, secrets: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for line in log.lines() {
        for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
            if line.contains(secret) || pieces(secret).any(|p| line.contains(p)) {
                found.push(format!("secret {}…: {line}", prefix(secret)));
            }
        }
        for (shape, what) in LEAK_SHAPES {
            if line.contains(shape) {
                found.push(format!("{what}: {line}"));
            }
        }
        if bearer_value(line) {
            found.push(format!("an Authorization header value: {line}"));
        }
    }
    found
}

/// Panics with every leaking line when the log leaks anything; also refuses an
/// empty log, which would make the scan vacuous.
pub fn assert_no_leaks(what: &str, log: &str, secrets: &[&str]) {
    assert!(
        log.lines().count() >= 3,
        "{what}: the captured log is (nearly) empty, nothing to scan:\n{log}"
    );
    let found = leaks(log, secrets);
    assert!(
        found.is_empty(),
        "{what}: {} log line(s) leak a secret:\n{}",
        found.len(),
        found.join("\n")
    );
}

/// `Bearer ` followed by a credential-looking character (a placeholder such
/// as "Bearer <secret>" in an error message is not a leak).
fn bearer_value(line: &str) -> bool {
    line.match_indices("Bearer ").any(|(i, m)| {
        line[i + m.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// Windows of 24 bytes (on char boundaries) over a secret longer than that.
fn pieces(secret: &str) -> impl Iterator<Item = &str> {
    const PIECE: usize = 24;
    secret
        .char_indices()
        .map(|(start, _)| (start, start + PIECE))
        .filter(|&(_, end)| end <= secret.len() && secret.is_char_boundary(end))
        .step_by(4)
        .map(move |(s, e)| &secret[s..e])
}

fn prefix(secret: &str) -> &str {
    let mut end = secret.len().min(4);
    while !secret.is_char_boundary(end) {
        end -= 1;
    }
    &secret[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn finds_an_exact_secret_and_a_fragment_of_one() {
        let log = format!("a\n{{\"msg\":\"key {KEY}\"}}\nb\nc {}\n", &KEY[9..37]);
        let found = leaks(&log, &[KEY]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("secret wJal…"), "{found:?}");
    }

    #[test]
    fn finds_token_shapes_without_knowing_the_value() {
        let log = "GET /apis authorization: Bearer k8s-aws-v1.aHR0cHM6Ly9zdHM\nok\n";
        let found = leaks(log, &[]);
        assert_eq!(found.len(), 2, "{found:?}");
        let url = "https://sts.amazonaws.com/?X-Amz-Signature=abc";
        assert_eq!(leaks(url, &[]).len(), 1);
    }

    #[test]
    fn short_secrets_and_clean_logs_pass() {
        let log = "testing the rollback\nmissing `Authorization: Bearer <secret>`\nall done\n";
        assert!(leaks(log, &["testing", KEY]).is_empty());
        assert_no_leaks("clean", log, &[KEY]);
    }

    #[test]
    #[should_panic(expected = "nothing to scan")]
    fn an_empty_log_is_not_a_pass() {
        assert_no_leaks("empty", "", &[KEY]);
    }

    #[test]
    #[should_panic(expected = "leak a secret")]
    fn a_leak_fails_the_assertion() {
        assert_no_leaks("leaky", &format!("x\ny\nz {KEY}\n"), &[KEY]);
    }
}
