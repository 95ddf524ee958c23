use k8s_openapi::api::apps::v1::Deployment;

use super::*;
use crate::testutil::Scenario;

fn change(from: &str) -> Change {
    Change {
        container: "api".into(),
        from: from.into(),
        to: "x".into(),
    }
}

#[test]
fn bad_images_keep_the_ten_most_recent_without_duplicates() {
    let mut bad = BadImages::new();
    for i in 0..12 {
        bad = record_bad_images(bad, &[change(&format!("api:{i}"))]);
    }
    let expected: Vec<String> = (2..12).map(|i| format!("api:{i}")).collect();
    assert_eq!(bad["api"], expected);
    let bad = record_bad_images(bad, &[change("api:5")]);
    assert_eq!(bad["api"].len(), 10);
    assert_eq!(
        bad["api"].last().unwrap(),
        "api:5",
        "a repeat moves to the end"
    );
    assert_eq!(bad["api"].iter().filter(|i| *i == "api:5").count(), 1);
}

#[test]
fn gitops_markers_of_argo_cd_and_flux() {
    let base = Scenario::new(&[&[("api", "a:1")]]);
    assert_eq!(gitops_manager(&base.deployment()), None);
    let cases = [
        (
            base.clone().annotate(
                "argocd.argoproj.io/tracking-id",
                "app:apps/Deployment:shop/checkout",
            ),
            GitopsManager::ArgoCd,
        ),
        (
            base.clone().annotate("argocd.argoproj.io/instance", "app"),
            GitopsManager::ArgoCd,
        ),
        (
            base.clone().label("argocd.argoproj.io/instance", "app"),
            GitopsManager::ArgoCd,
        ),
        (
            base.clone()
                .label("kustomize.toolkit.fluxcd.io/name", "apps"),
            GitopsManager::Flux,
        ),
        (
            base.clone()
                .label("helm.toolkit.fluxcd.io/name", "checkout"),
            GitopsManager::Flux,
        ),
    ];
    for (scenario, manager) in cases {
        assert_eq!(gitops_manager(&scenario.deployment()), Some(manager));
    }
    let helm_only = base.label("app.kubernetes.io/instance", "checkout");
    assert_eq!(
        gitops_manager(&helm_only.deployment()),
        None,
        "Helm sets this label too"
    );
}

#[test]
fn last_remediation_round_trips_and_tolerates_garbage() {
    let record = LastRemediation {
        action: Action::Rollback,
        at: "2026-11-26T20:00:00Z".into(),
        execution: None,
        changes: vec![change("api:1")],
    };
    let text = serde_json::to_string(&record).unwrap();
    assert_eq!(
        text,
        r#"{"action":"rollback","at":"2026-11-26T20:00:00Z","execution":null,"changes":[{"container":"api","from":"api:1","to":"x"}]}"#
    );
    let s = Scenario::new(&[&[("api", "a:1")]]);
    assert_eq!(
        last_remediation(
            &s.clone()
                .annotate(keys::LAST_REMEDIATION, &text)
                .deployment()
        ),
        Some(record)
    );
    assert_eq!(
        last_remediation(
            &s.clone()
                .annotate(keys::LAST_REMEDIATION, "[]")
                .deployment()
        ),
        None
    );
    assert!(bad_images(&s.annotate(keys::BAD_IMAGES, "{\"api\": 3}").deployment()).is_empty());
}

fn acted(name: &str, at: &str) -> Deployment {
    let record = format!(r#"{{"action":"rollback","at":"{at}","execution":null,"changes":[]}}"#);
    let mut d = Scenario::new(&[&[("api", "a:1")]])
        .annotate(keys::LAST_REMEDIATION, &record)
        .deployment();
    d.metadata.name = Some(name.into());
    d
}

#[test]
fn rate_limit_counts_other_deployments_acted_on_within_the_window() {
    let now: jiff::Timestamp = "2026-11-26T20:00:00Z".parse().unwrap();
    let policy = Policy {
        max_actions_per_window: Some(2),
        action_window: Duration::from_secs(600),
        ..Policy::default()
    };
    let mut target = Scenario::new(&[&[("api", "a:1")]]).deployment();
    target.metadata.name = Some("target".into());
    let old = acted("old", "2026-11-26T19:40:00Z");
    let garbage = Scenario::new(&[&[("api", "a:1")]])
        .annotate(keys::LAST_REMEDIATION, "nope")
        .deployment();
    let a = acted("a", "2026-11-26T19:59:00Z");
    let b = acted("b", "2026-11-26T19:51:00Z");
    // One recent other: fine. Old, malformed and unrecorded ones never count.
    let fleet = [old.clone(), garbage.clone(), a.clone(), target.clone()];
    assert!(rate_limit(&policy, &target, &fleet, now).is_ok());
    // Two recent others: the limit is reached.
    let fleet = [old, garbage, a.clone(), b.clone(), target.clone()];
    let refusal = rate_limit(&policy, &target, &fleet, now).unwrap_err();
    assert_eq!(refusal.guard, Guard::RateLimit);
    assert!(refusal.message.contains("at most 2"), "{}", refusal.message);
    // The target's own record does not count against it.
    let again = acted("a", "2026-11-26T19:59:30Z");
    assert!(rate_limit(&policy, &again, &[a.clone(), b.clone()], now).is_ok());
    // No limit configured: never refused.
    assert!(rate_limit(&Policy::default(), &target, &[a, b], now).is_ok());
}

#[test]
fn same_changes_refuses_when_the_image_moved() {
    let d = Scenario::new(&[&[("api", "a:1")]]).deployment();
    let api = |from: &str| Change {
        container: "api".into(),
        from: from.into(),
        to: "a:0".into(),
    };
    assert!(same_changes(&d, &[api("a:1")], &[api("a:1")]).is_ok());
    let refusal = same_changes(&d, &[api("a:1")], &[api("a:2")]).unwrap_err();
    assert_eq!(refusal.guard, Guard::Conflict);
    assert!(
        refusal
            .message
            .contains("container api now runs a:2 (we read a:1)"),
        "{}",
        refusal.message
    );
    let envoy = Change {
        container: "envoy".into(),
        from: "e:1".into(),
        to: "e:0".into(),
    };
    assert!(same_changes(&d, &[api("a:1"), envoy.clone()], &[api("a:1")]).is_err());
}

#[test]
fn cooldown_future_record_counts_as_recent_unless_absurd() {
    let policy = Policy::default();
    let now: jiff::Timestamp = "2026-11-26T20:00:00Z".parse().unwrap();
    let record =
        |at: &str| format!(r#"{{"action":"pause","at":"{at}","execution":null,"changes":[]}}"#);
    let s = Scenario::new(&[&[("api", "a:1")]]);
    let skewed = s
        .clone()
        .annotate(keys::LAST_REMEDIATION, &record("2026-11-26T20:01:00Z"));
    assert_eq!(
        cooldown(&policy, &skewed.deployment(), Action::Pause, now, false)
            .unwrap_err()
            .guard,
        Guard::Cooldown
    );
    let absurd = s.annotate(keys::LAST_REMEDIATION, &record("2030-01-01T00:00:00Z"));
    assert!(cooldown(&policy, &absurd.deployment(), Action::Pause, now, false).is_ok());
}
