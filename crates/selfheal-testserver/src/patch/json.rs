//! RFC 6902 JSON Patch (via the `json-patch` crate, which implements `test`).

use serde_json::Value;

use super::PatchError;

/// Applies a JSON Patch document. Any failing operation (a `test` mismatch, a
/// missing path) is [`PatchError::Failed`]; the server answers those with the
/// generic 422 seen in tests/fixtures/k8s/json-patch-test-fails.json.
pub fn apply(target: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let doc = super::parse(body)?;
    let patch: json_patch::Patch =
        serde_json::from_value(doc).map_err(|e| PatchError::Malformed(e.to_string()))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &patch).map_err(|e| PatchError::Failed(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"spec": {"containers": [{"name": "api", "image": "a:1"}, {"name": "envoy", "image": "e:1"}]}})
    }

    #[test]
    fn test_then_replace_changes_only_that_image() {
        let p = br#"[{"op":"test","path":"/spec/containers/0/name","value":"api"},
                     {"op":"replace","path":"/spec/containers/0/image","value":"a:0"}]"#;
        let out = apply(&doc(), p).unwrap();
        assert_eq!(out["spec"]["containers"][0]["image"], "a:0");
        assert_eq!(
            out["spec"]["containers"][1],
            json!({"name": "envoy", "image": "e:1"})
        );
    }

    #[test]
    fn failing_test_and_missing_index_are_failed() {
        let p = br#"[{"op":"test","path":"/spec/containers/0/name","value":"envoy"}]"#;
        assert!(matches!(apply(&doc(), p), Err(PatchError::Failed(_))));
        let p = br#"[{"op":"replace","path":"/spec/containers/5/image","value":"x"}]"#;
        assert!(matches!(apply(&doc(), p), Err(PatchError::Failed(_))));
    }

    #[test]
    fn truncated_document_is_malformed_with_go_message() {
        let p = br#"[{"op": "replace", "path": "#;
        assert_eq!(
            apply(&doc(), p),
            Err(PatchError::Malformed("unexpected end of JSON input".into()))
        );
    }
}
