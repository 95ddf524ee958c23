//! Every public Function URL (`AuthType: NONE`: ingest's webhook, approve's
//! links) has a concurrency cap in `template.yaml`, so an unauthenticated
//! flood is throttled at that function instead of using up the account's
//! concurrency (and throttling the remediation handlers mid-incident). The
//! cap is a template parameter with a small default; 0 (no reservation, for
//! accounts that cannot spare one) must not reach Lambda, which would read it
//! as "throttle everything".
//!
//! The CDK app's synthesized template is held to the same values by
//! `cdk/scripts/check-synth.mjs` (parity of `ReservedConcurrentExecutions`,
//! parameters and conditions), run by `scripts/check-templates`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use selfheal_tests::tools::workspace_root;
use selfheal_tests::yaml::Value;

/// A short-form intrinsic (`!Ref X`, `!If [...]`) as (function, argument).
fn tagged(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        )),
        _ => None,
    }
}

/// `!Ref X` → X.
fn reference(value: &Value) -> Option<&str> {
    match tagged(value)? {
        (f, arg) if f == "Ref" => arg.as_str(),
        _ => None,
    }
}

#[test]
fn public_function_urls_have_a_parameterised_concurrency_cap() {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Value = selfheal_tests::yaml::from_str(&text).unwrap();
    let mut capped = Vec::new();
    for (name, resource) in doc["Resources"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let properties = &resource["Properties"];
        if properties["FunctionUrlConfig"]["AuthType"].as_str() != Some("NONE") {
            continue;
        }
        // !If [Condition, !Ref Parameter, !Ref AWS::NoValue]
        let reserved = &properties["ReservedConcurrentExecutions"];
        let Some((function, args)) = tagged(reserved) else {
            panic!(
                "{name}: public Function URL without ReservedConcurrentExecutions ({reserved:?})"
            );
        };
        assert_eq!(function, "If", "{name}: {reserved:?}");
        let args = args.as_sequence().unwrap();
        assert_eq!(args.len(), 3, "{name}: {reserved:?}");
        let condition = args[0].as_str().unwrap();
        let parameter = reference(&args[1]).unwrap_or_else(|| panic!("{name}: {reserved:?}"));
        assert_eq!(reference(&args[2]), Some("AWS::NoValue"), "{name}");

        let p = &doc["Parameters"][parameter];
        assert_eq!(p["Type"].as_str(), Some("Number"), "{parameter}");
        let default = p["Default"].as_u64().unwrap();
        assert!(
            (1..=20).contains(&default),
            "{parameter}: default {default} is no cap worth the name"
        );
        assert_eq!(p["MinValue"].as_u64(), Some(0), "{parameter}");
        // The condition is "parameter is not 0": !Not [!Equals [!Ref P, "0"]].
        let (not, inner) = tagged(&doc["Conditions"][condition]).unwrap();
        assert_eq!(not, "Not", "{condition}");
        let (equals, operands) = tagged(&inner.as_sequence().unwrap()[0]).unwrap();
        assert_eq!(equals, "Equals", "{condition}");
        let operands = operands.as_sequence().unwrap();
        assert_eq!(reference(&operands[0]), Some(parameter), "{condition}");
        assert_eq!(operands[1].as_str(), Some("0"), "{condition}");
        capped.push((name.to_owned(), default));
    }
    capped.sort();
    assert_eq!(
        capped,
        [
            ("ApproveFunction".to_owned(), 5),
            ("IngestFunction".to_owned(), 10)
        ],
        "the public Function URLs and their default caps"
    );
}
