//! RFC 7386 JSON Merge Patch: objects merge, `null` deletes, lists are replaced
//! wholesale (recorded: a merge patch naming one container drops the other).

use serde_json::Value;

use super::PatchError;

pub fn apply(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_replaces_lists_and_null_deletes() {
        let target = json!({"metadata": {"annotations": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "api", "image": "a:1"}, {"name": "envoy", "image": "e:1", "ports": [{"containerPort": 9901}]}]}});
        let patch = json!({"metadata": {"annotations": {"a": null}},
            "spec": {"containers": [{"name": "envoy", "image": "e:2"}]}});
        let out = apply(&target, &patch).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "envoy", "image": "e:2"}])
        );
        assert_eq!(out["metadata"]["annotations"], json!({"b": "2"}));
    }
}
