//! The reason this crate exists: the fuzz build (fuzz/, release + sanitizer
//! coverage, cold in CI) must not compile kube, hyper, rustls/aws-lc or the
//! AWS SDK. Checked on the lockfiles, so a dependency that drags them in
//! fails here, in the ordinary test run, and not only as a slow fuzz build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

/// Crates that mean "the network stack came along".
fn is_heavy(name: &str) -> bool {
    [
        "kube",
        "kube-client",
        "hyper",
        "rustls",
        "aws-lc-sys",
        "aws-lc-rs",
        "tokio",
    ]
    .contains(&name)
        || name.starts_with("aws-sdk-")
        || name.starts_with("aws-smithy-")
        || name == "aws-config"
}

/// `name -> dependency names` from a Cargo.lock (one entry per name is enough:
/// the check is about names, whatever their versions).
fn lock_graph(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for block in text.split("[[package]]").skip(1) {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .expect("package name")
            .trim_matches('"')
            .to_owned();
        let deps = graph.entry(name).or_default();
        let mut in_deps = false;
        for line in block.lines() {
            if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line.starts_with(']') {
                in_deps = false;
            } else if in_deps {
                let dep = line.trim().trim_end_matches(',').trim_matches('"');
                // "name version" when several versions are locked.
                let dep = dep.split(' ').next().unwrap_or(dep);
                deps.insert(dep.to_owned());
            }
        }
    }
    graph
}

fn closure(graph: &BTreeMap<String, BTreeSet<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(name) = stack.pop() {
        if seen.insert(name.clone())
            && let Some(deps) = graph.get(&name)
        {
            stack.extend(deps.iter().cloned());
        }
    }
    seen
}

fn read(relative: &str) -> String {
    let path = format!("{}/../../{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn this_crate_pulls_no_network_stack() {
    let graph = lock_graph(&read("Cargo.lock"));
    let reachable = closure(&graph, "selfheal-snapshot");
    // The lockfile lists dev-dependencies too; k8s-openapi is the largest one
    // that must be there, so a parse that finds nothing cannot pass.
    assert!(reachable.contains("k8s-openapi"), "{reachable:?}");
    let heavy: Vec<_> = reachable.iter().filter(|n| is_heavy(n)).collect();
    assert!(heavy.is_empty(), "selfheal-snapshot reaches {heavy:?}");
}

#[test]
fn fuzz_lockfile_has_no_network_stack() {
    let graph = lock_graph(&read("fuzz/Cargo.lock"));
    assert!(graph.contains_key("selfheal-snapshot"), "fuzz/Cargo.lock");
    assert!(
        !graph.contains_key("selfheal-cli"),
        "fuzz/ depends on selfheal-cli again"
    );
    let heavy: Vec<_> = graph.keys().filter(|n| is_heavy(n)).collect();
    assert!(
        heavy.is_empty(),
        "fuzz/Cargo.lock has {heavy:?}: a fuzz target depends on a crate with the network stack"
    );
}
