//! The deployed stack's defaults, read the way the functions read them. Both
//! stacks are checked: `template.yaml` (SAM) and the CDK app's synthesized
//! template (`cdk synth`, offline).
//!
//! For every Kubernetes handler the environment a deployment with default
//! parameters gives it (each `Ref` of a parameter replaced by the parameter's
//! default) goes through `selfheal_core::Policy::from_lookup` and the
//! namespace guard: kube-system, kube-public and kube-node-lease must be
//! refused, and a blank `DeniedNamespaces` must not read as "deny none". The
//! same environment must also carry the parameters `MaxActions` /
//! `ActionWindowSeconds`, and ingest's must carry `DefaultAction`, whose
//! allowed values must all parse.
//!
//! The CDK template: `cdk/cdk.out/Selfheal.template.json` when
//! `scripts/check-templates` wrote it after the last change to the CDK app
//! (it runs before the tests in `scripts/test`), otherwise a fresh offline
//! synth into a temporary folder (about 20 s). Without the CDK tools
//! (`scripts/deps/55-cdk.sh`) that half is skipped with a message, unless
//! `SELFHEAL_REQUIRE_TOOLS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod template_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use selfheal_core::{Guard, Policy, guards};
use selfheal_events::Defaults;
use selfheal_tests::tools::{run_ok, tool_or_skip, workspace_root};
use serde_json::Value as Json;

const KUBE_HANDLERS: [&str; 5] = ["rollback", "pause", "resume", "restart", "verify"];
const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// A function's environment variable as the template gives it.
#[derive(Debug, Clone, PartialEq)]
enum EnvValue {
    Literal(String),
    /// `Ref` of a parameter or a resource.
    Ref(String),
    /// Anything computed at deploy time (`Fn::Sub`, `GetAtt`, …).
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Parameter {
    default: Option<String>,
    description: String,
    allowed: Vec<String>,
}

/// What both templates are reduced to: parameters and, per function binary,
/// its environment.
#[derive(Debug)]
struct Stack {
    what: String,
    parameters: BTreeMap<String, Parameter>,
    functions: BTreeMap<String, BTreeMap<String, EnvValue>>,
}

impl Stack {
    /// The environment of `function` when every parameter keeps its default.
    fn default_env(&self, function: &str) -> BTreeMap<String, String> {
        let env = self
            .functions
            .get(function)
            .unwrap_or_else(|| panic!("{}: no function {function}", self.what));
        env.iter()
            .filter_map(|(name, value)| match value {
                EnvValue::Literal(v) => Some((name.clone(), v.clone())),
                // A `Ref` of a resource (the state machine's ARN) is known
                // at deploy time only; a parameter without a default
                // (ClusterName) is one every deployment sets. Neither says
                // anything about defaults.
                EnvValue::Ref(p) => self
                    .parameters
                    .get(p)
                    .and_then(|parameter| parameter.default.clone())
                    .map(|d| (name.clone(), d)),
                EnvValue::Other(_) => None,
            })
            .collect()
    }

    fn parameter(&self, name: &str) -> &Parameter {
        self.parameters
            .get(name)
            .unwrap_or_else(|| panic!("{}: no parameter {name}", self.what))
    }

    /// `function`'s `variable` is the parameter `parameter`.
    fn assert_wired(&self, function: &str, variable: &str, parameter: &str) {
        self.parameter(parameter);
        let env = &self.functions[function];
        assert_eq!(
            env.get(variable),
            Some(&EnvValue::Ref(parameter.to_owned())),
            "{}: {function}'s {variable} must be the parameter {parameter}",
            self.what
        );
    }
}

fn yaml_scalar(value: &selfheal_tests::yaml::Value) -> Option<String> {
    match value {
        selfheal_tests::yaml::Value::String(s) => Some(s.clone()),
        selfheal_tests::yaml::Value::Number(n) => Some(n.to_string()),
        selfheal_tests::yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn json_scalar(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// template.yaml: the short-form tags (`!Ref X`) are YAML tags.
fn sam_stack() -> Stack {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).expect("read template.yaml");
    let doc: selfheal_tests::yaml::Value =
        selfheal_tests::yaml::from_str(&text).expect("template.yaml is YAML");
    let mut parameters = BTreeMap::new();
    for (name, p) in doc["Parameters"].as_mapping().expect("Parameters") {
        let allowed = p
            .get("AllowedValues")
            .and_then(selfheal_tests::yaml::Value::as_sequence)
            .map(|v| v.iter().filter_map(yaml_scalar).collect())
            .unwrap_or_default();
        parameters.insert(
            name.as_str().expect("parameter name").to_owned(),
            Parameter {
                default: p.get("Default").and_then(yaml_scalar),
                description: p
                    .get("Description")
                    .and_then(yaml_scalar)
                    .unwrap_or_default(),
                allowed,
            },
        );
    }
    let mut functions = BTreeMap::new();
    for (binary, r) in template_common::functions(&doc) {
        let mut env = BTreeMap::new();
        if let Some(vars) = r["Properties"]["Environment"]["Variables"].as_mapping() {
            for (k, v) in vars {
                let value = match v {
                    selfheal_tests::yaml::Value::Tagged(t)
                        if t.tag.to_string().trim_start_matches('!') == "Ref" =>
                    {
                        EnvValue::Ref(yaml_scalar(&t.value).expect("!Ref names a scalar"))
                    }
                    other => match yaml_scalar(other) {
                        Some(s) => EnvValue::Literal(s),
                        None => EnvValue::Other(format!("{other:?}")),
                    },
                };
                env.insert(k.as_str().expect("variable name").to_owned(), value);
            }
        }
        functions.insert(binary, env);
    }
    Stack {
        what: "template.yaml".into(),
        parameters,
        functions,
    }
}

/// A synthesized (plain JSON) template; functions named by their construct
/// (`RollbackFunction/Resource` → `rollback`).
fn cdk_stack(path: &Path) -> Stack {
    let text = std::fs::read_to_string(path).expect("read the synthesized template");
    let doc: Json = serde_json::from_str(&text).expect("synthesized template is JSON");
    let mut parameters = BTreeMap::new();
    for (name, p) in doc["Parameters"].as_object().expect("Parameters") {
        parameters.insert(
            name.clone(),
            Parameter {
                default: p.get("Default").and_then(json_scalar),
                description: p
                    .get("Description")
                    .and_then(json_scalar)
                    .unwrap_or_default(),
                allowed: p
                    .get("AllowedValues")
                    .and_then(Json::as_array)
                    .map(|v| v.iter().filter_map(json_scalar).collect())
                    .unwrap_or_default(),
            },
        );
    }
    let mut functions = BTreeMap::new();
    for r in doc["Resources"].as_object().expect("Resources").values() {
        if r["Type"] != "AWS::Lambda::Function" {
            continue;
        }
        let construct = r["Metadata"]["aws:cdk:path"]
            .as_str()
            .and_then(|p| p.split('/').nth(1))
            .and_then(|c| c.strip_suffix("Function"))
            .expect("function construct named <Name>Function");
        let mut env = BTreeMap::new();
        if let Some(vars) = r["Properties"]["Environment"]["Variables"].as_object() {
            for (k, v) in vars {
                let value = match v.get("Ref").and_then(Json::as_str) {
                    Some(p) => EnvValue::Ref(p.to_owned()),
                    None => match json_scalar(v) {
                        Some(s) => EnvValue::Literal(s),
                        None => EnvValue::Other(v.to_string()),
                    },
                };
                env.insert(k.clone(), value);
            }
        }
        functions.insert(construct.to_ascii_lowercase(), env);
    }
    Stack {
        what: format!("CDK synth ({})", path.display()),
        parameters,
        functions,
    }
}

fn newest_mtime(paths: &[PathBuf]) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read_dir") {
                stack.push(entry.expect("dir entry").path());
            }
        } else {
            newest = newest.max(meta.modified().expect("mtime"));
        }
    }
    newest
}

/// The synthesized template's path (and the folder holding a fresh synth),
/// or why there is none.
fn cdk_template() -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    let root = workspace_root();
    let app = root.join("cdk");
    let written = app.join("cdk.out/Selfheal.template.json");
    let sources = newest_mtime(&[
        app.join("lib"),
        app.join("bin"),
        app.join("cdk.json"),
        app.join("package-lock.json"),
    ]);
    if let Ok(meta) = std::fs::metadata(&written)
        && meta.modified().expect("mtime") > sources
        && std::fs::read_to_string(&written)
            .ok()
            .and_then(|t| serde_json::from_str::<Json>(&t).ok())
            .is_some()
    {
        return Ok((written, None));
    }
    let cdk = app.join("node_modules/.bin/cdk");
    if !cdk.is_file() {
        return Err(format!(
            "{} not found and no up-to-date cdk/cdk.out (run scripts/deps/55-cdk.sh)",
            cdk.display()
        ));
    }
    // Placeholder assets, as cdk/scripts/check.sh uses without a cargo-lambda
    // build: the template does not depend on the code.
    let dir = tempfile::tempdir().expect("tempdir");
    let assets = dir.path().join("assets");
    for entry in std::fs::read_dir(root.join("functions")).expect("functions/") {
        let path = entry.expect("entry").path();
        if path.join("Cargo.toml").is_file() {
            let name = path.file_name().expect("name");
            std::fs::create_dir_all(assets.join(name)).expect("mkdir");
            std::fs::write(assets.join(name).join("bootstrap"), b"").expect("bootstrap");
        }
    }
    let out = dir.path().join("out");
    let result = Command::new(&cdk)
        .current_dir(&app)
        .args(["synth", "--no-notices", "--quiet", "-c"])
        .arg(format!("assetDir={}", assets.display()))
        .arg("--output")
        .arg(&out)
        .env("CDK_DISABLE_VERSION_CHECK", "1")
        .env("CDK_DISABLE_CLI_TELEMETRY", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output();
    run_ok(result, "cdk synth");
    Ok((out.join("Selfheal.template.json"), Some(dir)))
}

fn deployment(namespace: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("app".into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        ..Deployment::default()
    }
}

/// With default parameters, every Kubernetes handler refuses the system
/// namespaces (and still acts elsewhere); `NONE` is documented as the way to
/// deny none, and it does.
fn assert_system_namespaces_denied(stack: &Stack) {
    let what = &stack.what;
    assert!(
        stack.parameter("DeniedNamespaces").default.is_some(),
        "{what}: DeniedNamespaces needs a default"
    );
    for function in KUBE_HANDLERS {
        stack.assert_wired(
            function,
            selfheal_core::policy::DENIED_NAMESPACES,
            "DeniedNamespaces",
        );
        let env = stack.default_env(function);
        let policy = Policy::from_lookup(|k| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("{what}: {function}'s default environment: {e}"));
        for ns in SYSTEM_NAMESPACES {
            let refusal = guards::namespace(&policy, &deployment(ns)).err();
            assert_eq!(
                refusal.map(|r| r.guard),
                Some(Guard::Namespace),
                "{what}: {function} with default parameters does not refuse {ns} \
                 (SELFHEAL_DENIED_NAMESPACES={:?})",
                env.get(selfheal_core::policy::DENIED_NAMESPACES)
            );
        }
        assert!(
            guards::namespace(&policy, &deployment("shop")).is_ok(),
            "{what}: {function} refuses an ordinary namespace by default"
        );
    }
    let denied = stack.parameter("DeniedNamespaces");
    assert!(
        denied.description.contains("NONE"),
        "{what}: DeniedNamespaces' description must name NONE: {:?}",
        denied.description
    );
    let none = Policy::from_lookup(|k| {
        (k == selfheal_core::policy::DENIED_NAMESPACES).then(|| "NONE".to_owned())
    })
    .expect("NONE parses");
    assert!(guards::namespace(&none, &deployment("kube-system")).is_ok());
}

/// `MaxActions` / `ActionWindowSeconds` reach the handlers, `DefaultAction`
/// reaches ingest; their defaults leave the code's defaults in place, and
/// every allowed action parses.
fn assert_rate_and_default_action_wired(stack: &Stack) {
    let what = &stack.what;
    for function in KUBE_HANDLERS {
        stack.assert_wired(function, selfheal_core::policy::MAX_ACTIONS, "MaxActions");
        stack.assert_wired(
            function,
            selfheal_core::policy::ACTION_WINDOW_SECONDS,
            "ActionWindowSeconds",
        );
        let env = stack.default_env(function);
        let policy = Policy::from_lookup(|k| env.get(k).cloned()).expect("default policy");
        assert_eq!(
            (policy.max_actions_per_window, policy.action_window),
            (None, Policy::default().action_window),
            "{what}: {function}'s default rate limit differs from the code's"
        );
    }
    stack.assert_wired("ingest", Defaults::ACTION_VAR, "DefaultAction");
    let env = stack.default_env("ingest");
    let defaults = Defaults::from_lookup(|k| env.get(k).cloned()).expect("ingest defaults");
    assert_eq!(
        defaults.action, None,
        "{what}: ingest must have no default action unless the operator sets one"
    );
    let allowed = &stack.parameter("DefaultAction").allowed;
    assert!(
        allowed.iter().any(String::is_empty),
        "{what}: '' must stay allowed"
    );
    for value in allowed.iter().filter(|v| !v.is_empty()) {
        let parsed = Defaults::from_lookup(|k| (k == Defaults::ACTION_VAR).then(|| value.clone()))
            .unwrap_or_else(|e| {
                panic!("{what}: DefaultAction {value:?} is refused by ingest: {e}")
            });
        assert!(parsed.action.is_some(), "{what}: {value:?}");
    }
}

#[test]
fn sam_template_defaults_deny_system_namespaces() {
    assert_system_namespaces_denied(&sam_stack());
}

#[test]
fn sam_template_passes_rate_limit_and_default_action() {
    assert_rate_and_default_action_wired(&sam_stack());
}

#[test]
fn cdk_synth_defaults_deny_system_namespaces_and_pass_the_same_knobs() {
    let test = "cdk_synth_defaults_deny_system_namespaces_and_pass_the_same_knobs";
    let Some((path, _dir)) = tool_or_skip(test, cdk_template()) else {
        return;
    };
    let stack = cdk_stack(&path);
    assert_system_namespaces_denied(&stack);
    assert_rate_and_default_action_wired(&stack);
}
