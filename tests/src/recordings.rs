//! Reading tests/fixtures/k8s/: the recorded exchanges (`*.json`) and what
//! kubectl logged at `-v=8` (`*.log`), for the tests that compare the test
//! API server with the real one (fixture_replay.rs, kubectl_parity.rs).

use std::path::PathBuf;

use serde_json::Value;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/k8s")
        .join(name)
}

/// One recorded `*.json` file, parsed.
pub fn load(name: &str) -> Value {
    let path = path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("recorded fixture {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("recorded fixture {}: {e}", path.display()))
}

/// The first request body kubectl logged in `log` (long bodies are logged
/// truncated): the text, and whether it is whole.
pub fn logged_body(log: &str) -> (String, bool) {
    let text = std::fs::read_to_string(path(log)).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"Request Body\" body=\"{"))
        .unwrap_or_else(|| panic!("{log}: no request body"));
    let quoted = line.split_once("body=\"").unwrap().1;
    let quoted = quoted.strip_suffix('"').unwrap_or(quoted);
    let body = quoted.replace("\\\"", "\"");
    match body.split_once(" [truncated ") {
        Some((head, _)) => (head.to_string(), false),
        None => (body, true),
    }
}

/// The last line kubectl printed in `log` (its error, when it failed).
pub fn last_line(log: &str) -> String {
    let text = std::fs::read_to_string(path(log)).unwrap();
    text.lines().last().unwrap_or_default().to_string()
}

/// JSON as Go's encoder writes a map: keys sorted, no spaces.
pub fn go_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), go_json(&m[k.as_str()])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// Asserts that `sent` is the body kubectl logged in `log` (as far as the
/// log shows it).
pub fn assert_logged_body(sent: &Value, log: &str) {
    let (logged, whole) = logged_body(log);
    let sent = go_json(sent);
    if whole {
        assert_eq!(sent, logged, "{log}: request body");
    } else {
        assert!(
            sent.starts_with(&logged),
            "{log}: request body\n  sent   {sent}\n  logged {logged}"
        );
    }
}
