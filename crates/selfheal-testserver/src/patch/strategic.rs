//! Strategic merge patch, reduced to what workload objects need: lists with a
//! Kubernetes merge key (containers, env, volumes, … by `name`; ports by
//! `containerPort`; volumeMounts by `mountPath`; …) merge element-wise, other
//! lists are replaced, `null` deletes a key, and the directives `$patch`
//! (`replace`/`delete`/`merge`), `$setElementOrder/<list>`, `$retainKeys` and
//! `$deleteFromPrimitiveList/<list>` are honoured (kubectl sends them).

use serde_json::{Map, Value};

use super::PatchError;

/// The merge key of a list field, by field name (the same name has the same
/// key everywhere in the workload types we serve).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        "readinessGates" => "conditionType",
        _ => return None,
    })
}

/// Lists of scalars whose patch strategy is `merge` (set union).
fn primitive_merge(field: &str) -> bool {
    matches!(field, "finalizers")
}

pub fn apply(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::Malformed(
            "json: cannot unmarshal array into Go value of type map[string]interface {}".into(),
        ));
    }
    Ok(merge_value(target, patch))
}

fn merge_value(target: &Value, patch: &Value) -> Value {
    let Some(pmap) = patch.as_object() else {
        return patch.clone();
    };
    if pmap.get("$patch").and_then(Value::as_str) == Some("replace") {
        return strip_directives(patch);
    }
    let mut out: Map<String, Value> = target.as_object().cloned().unwrap_or_default();
    if let Some(keep) = pmap.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    let mut orders: Vec<(&str, &Vec<Value>)> = Vec::new();
    for (k, v) in pmap {
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            if let Some(list) = v.as_array() {
                orders.push((field, list));
            }
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(remove)) = (
                out.get_mut(field).and_then(Value::as_array_mut),
                v.as_array(),
            ) {
                list.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        match v {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(_) => {
                let base = out.get(k).cloned().unwrap_or(Value::Object(Map::new()));
                out.insert(k.clone(), merge_value(&base, v));
            }
            Value::Array(items) => {
                let base = out
                    .get(k)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Array(merge_list(k, &base, items)));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    for (field, order) in orders {
        if let Some(list) = out.get(field).and_then(Value::as_array) {
            let reordered = reorder(field, list, order);
            out.insert(field.to_string(), Value::Array(reordered));
        }
    }
    Value::Object(out)
}

fn merge_list(field: &str, base: &[Value], patch: &[Value]) -> Vec<Value> {
    if primitive_merge(field) && patch.iter().all(|v| !v.is_object()) {
        let mut out = base.to_vec();
        for v in patch {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        return out;
    }
    let Some(key) = merge_key(field) else {
        return patch.iter().map(strip_directives).collect();
    };
    if patch
        .iter()
        .any(|v| v.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return patch
            .iter()
            .filter(|v| v.get("$patch").is_none())
            .map(strip_directives)
            .collect();
    }
    let mut out = base.to_vec();
    for item in patch {
        let Some(k) = item.get(key) else {
            // An element without its merge key cannot be matched; keep it.
            out.push(strip_directives(item));
            continue;
        };
        let pos = out.iter().position(|x| x.get(key) == Some(k));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            out.retain(|x| x.get(key) != Some(k));
            continue;
        }
        match pos {
            Some(i) => out[i] = merge_value(&out[i], item),
            None => out.push(strip_directives(item)),
        }
    }
    out
}

fn reorder(field: &str, list: &[Value], order: &[Value]) -> Vec<Value> {
    let key = merge_key(field);
    let ident = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let mut remaining: Vec<Value> = list.to_vec();
    let mut out = Vec::with_capacity(list.len());
    for o in order {
        let id = ident(o);
        if let Some(i) = remaining.iter().position(|x| ident(x) == id) {
            out.push(remaining.remove(i));
        }
    }
    out.extend(remaining);
    out
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"spec": {"paused": true, "template": {"spec": {"containers": [
            {"name": "api", "image": "api:1", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "envoy", "image": "envoy:1", "ports": [{"containerPort": 9901, "protocol": "TCP"}]}
        ]}}}})
    }

    #[test]
    fn containers_merge_by_name() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "envoy", "image": "envoy:2"}]}}}});
        let out = apply(&deployment(), &patch).unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 2);
        assert_eq!(cs[0]["image"], "api:1");
        assert_eq!(cs[1]["image"], "envoy:2");
        assert_eq!(
            cs[1]["ports"],
            json!([{"containerPort": 9901, "protocol": "TCP"}])
        );
    }

    #[test]
    fn set_element_order_and_new_element() {
        // What `kubectl set image` sends, plus a new sidecar placed first by the order list.
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "log"}, {"name": "api"}, {"name": "envoy"}],
            "containers": [{"name": "api", "image": "api:2"}, {"name": "log", "image": "log:1"}]}}}});
        let out = apply(&deployment(), &patch).unwrap();
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["log", "api", "envoy"]);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1]["image"],
            "api:2"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1]["env"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn null_deletes_and_patch_delete_directive() {
        let patch = json!({"spec": {"paused": null, "template": {"spec": {"containers": [
            {"name": "api", "env": [{"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}]},
            {"name": "envoy", "$patch": "delete"}]}}}});
        let out = apply(&deployment(), &patch).unwrap();
        assert!(out["spec"].get("paused").is_none());
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(
            cs[0]["env"],
            json!([{"name": "B", "value": "2"}, {"name": "C", "value": "3"}])
        );
    }

    #[test]
    fn ports_merge_by_container_port_and_unkeyed_lists_replace() {
        let target =
            json!({"c": {"ports": [{"containerPort": 1, "name": "a"}], "args": ["x", "y"]}});
        let patch = json!({"c": {"ports": [{"containerPort": 2}], "args": ["z"]}});
        let out = apply(&target, &patch).unwrap();
        assert_eq!(
            out["c"]["ports"],
            json!([{"containerPort": 1, "name": "a"}, {"containerPort": 2}])
        );
        assert_eq!(out["c"]["args"], json!(["z"]));
    }

    #[test]
    fn replace_directive_and_non_object_patch() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o:1"}]}}}});
        let out = apply(&deployment(), &patch).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "o:1"}])
        );
        assert!(matches!(
            apply(&deployment(), &json!([1])),
            Err(PatchError::Malformed(_))
        ));
    }
}
