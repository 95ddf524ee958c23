use serde_json::json;

use super::*;

const EXEC: &str =
    "arn:aws:states:eu-west-1:123456789012:execution:remediate-deployment:checkout-5xx-1";

/// `event`'s message has `line` as one of its lines and its Slack post (as
/// JSON) contains `in_slack`; the post.
fn assert_rendered(event: &NotifyEvent, line: &str, in_slack: &str) -> String {
    let m = render(event, None);
    assert!(m.text.lines().any(|l| l == line), "{}", m.text);
    let slack = serde_json::to_string(&m.slack.unwrap()).unwrap();
    assert!(slack.contains(in_slack), "{slack}");
    slack
}

/// `text` begins with `prefix` (the message's first sentence).
fn assert_begins(text: &str, prefix: &str) {
    assert!(text.starts_with(prefix), "{text}");
}

fn event(value: Value) -> NotifyEvent {
    crate::parse_event(value).unwrap()
}

fn request() -> Value {
    json!({"action": "rollback", "target": {"cluster": "prod-eks", "namespace": "shop", "deployment": "checkout", "container": "api"},
           "reason": "5xx rate above 5% for 3 minutes", "dryRun": false, "force": false, "approval": false,
           "alarm": {"source": "cloudwatch", "name": "checkout-5xx", "impactScore": 2.4}, "execution": EXEC})
}

fn applied_rollback() -> Value {
    json!({"status": "applied", "action": "rollback", "message": "rolled container api back to shop/api:1.4.1",
           "target": {"cluster": "prod-eks", "namespace": "shop", "deployment": "checkout", "container": "api"},
           "changes": [{"container": "api", "from": "shop/api:1.5.0", "to": "shop/api:1.4.1"}]})
}

#[test]
fn console_link_uses_the_region_of_the_execution_arn() {
    assert_eq!(
        console_link(EXEC).unwrap(),
        format!(
            "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{EXEC}"
        )
    );
    assert_eq!(console_link("not-an-arn"), None);
    assert_eq!(console_link("arn:aws:lambda:eu-west-1:1:function:x"), None);
}

#[test]
fn completed_rollback_message_names_deployment_alarm_changes_and_link() {
    let e = event(
        json!({"event": "completed", "execution": {"id": EXEC, "startedAt": "2026-11-27T10:00:00Z"},
        "request": request(), "outcome": applied_rollback(),
        "verify": {"state": "done", "message": "deployment \"checkout\" successfully rolled out", "target": {"namespace": "shop"}},
        "approval": null, "escalation": null, "error": null, "timings": {}, "reportedAt": "2026-11-27T10:00:30Z"}),
    );
    let m = render(&e, None);
    assert_eq!(m.subject, "selfheal: rollback applied for shop/checkout");
    assert_eq!(m.status, "applied");
    let lines: Vec<&str> = m.text.lines().collect();
    assert_eq!(lines[0], "rollback applied.");
    assert!(
        lines.contains(&"Target: Deployment shop/checkout (container api) on cluster prod-eks"),
        "{}",
        m.text
    );
    assert!(lines.contains(&"Alarm: checkout-5xx (cloudwatch), impact 2.40"));
    assert!(lines.contains(&"Reason: 5xx rate above 5% for 3 minutes"));
    assert!(lines.contains(&"Changed: container api shop/api:1.5.0 -> shop/api:1.4.1"));
    assert!(lines.contains(&"Rollout: done — deployment \"checkout\" successfully rolled out"));
    assert_eq!(
        *lines.last().unwrap(),
        format!(
            "Execution: https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{EXEC}"
        )
    );
}

#[test]
fn refused_failure_names_the_guard_and_the_error() {
    let e = event(
        json!({"event": "failed", "execution": {"id": EXEC}, "request": request(),
        "outcome": {"status": "refused", "action": "rollback", "message": "no older image for api that is not known-bad",
                    "target": {"namespace": "shop", "deployment": "checkout"}, "guard": "noPreviousImage"},
        "error": {"Error": "SelfhealRefused", "Cause": "no older image for api that is not known-bad"}}),
    );
    let m = render(&e, None);
    assert_eq!(m.subject, "selfheal: rollback FAILED for shop/checkout");
    assert_eq!(m.status, "failed");
    assert_begins(
        &m.text,
        "selfheal refused to rollback (guard noPreviousImage): nothing was changed.",
    );
    assert!(
        m.text
            .contains("Error: SelfhealRefused — no older image for api that is not known-bad")
    );
}

/// An approval request for `request` and the links notify minted for it.
fn approval(request: Value) -> (NotifyEvent, selfheal_approval::ApprovalLinks) {
    let e = event(
        json!({"event": "approvalRequested", "execution": {"id": EXEC}, "request": request,
        "taskToken": "tok", "timeoutSeconds": 600}),
    );
    let links = selfheal_approval::ApprovalLinks {
        approve_url: "https://u/approve?id=X&decision=approve".into(),
        deny_url: "https://u/approve?id=X&decision=deny".into(),
        expires_at: "2026-11-27T10:10:00Z".parse().unwrap(),
    };
    (e, links)
}

#[test]
fn approval_message_carries_the_links_and_expiry() {
    let (e, links) = approval(request());
    let m = render(&e, Some(&links));
    assert_eq!(m.subject, "selfheal: approve rollback of shop/checkout?");
    assert!(
        m.text
            .contains("Approve: https://u/approve?id=X&decision=approve")
    );
    assert!(
        m.text
            .contains("Deny:    https://u/approve?id=X&decision=deny")
    );
    assert!(m.text.contains("expire at 2026-11-27T10:10:00Z"));
    assert!(
        !m.text.contains("tok"),
        "the task token never appears in a message"
    );
    assert_eq!(
        approval_summary(&e),
        "rollback of Deployment shop/checkout (container api) on cluster prod-eks"
    );
}

#[test]
fn frozen_message_and_its_decision_is_a_rollback() {
    let mut req = request();
    req["action"] = json!("pause");
    let e = event(
        json!({"event": "rolloutFrozen", "execution": {"id": EXEC}, "request": req,
        "outcome": {"status": "applied", "action": "pause", "message": "paused", "target": {"namespace": "shop", "deployment": "checkout"}},
        "taskToken": "tok"}),
    );
    let m = render(&e, None);
    assert_eq!(m.subject, "selfheal: rollout of shop/checkout frozen");
    assert!(m.text.starts_with("Rollout frozen:"));
    assert!(approval_summary(&e).starts_with("rollback of Deployment shop/checkout"));
}

/// The state machine keeps no window counter: verify's answer carries the
/// watch's span (`watch`), which wins over `StartVerify`'s record when it
/// belongs to the same watch, and stays out of the reported status.
#[test]
fn the_verify_step_comes_from_the_answers_own_span() {
    let watch = |started: &str, attempts: u32, finished: &str| json!({"startedAt": started, "attempts": attempts, "finishedAt": finished});
    let e = event(json!({"event": "completed",
        "execution": {"id": EXEC, "startedAt": "2026-11-27T10:00:00Z"},
        "request": request(), "outcome": applied_rollback(),
        "verify": {"state": "done", "message": "successfully rolled out",
                   "watch": watch("2026-11-27T10:00:01Z", 2, "2026-11-27T10:11:41Z")},
        "escalation": {"reason": "restartFailed",
            "from": {"status": "applied", "action": "restart", "message": "restarted", "target": {"namespace": "shop", "deployment": "checkout"}},
            "verify": {"state": "failed", "message": "m",
                       "watch": watch("2026-11-27T09:59:00Z", 1, "2026-11-27T09:59:30Z")},
            "timings": {"verify": {"startedAt": "2026-11-27T09:59:00Z", "attempts": 0}}},
        "timings": {"verify": {"startedAt": "2026-11-27T10:00:01Z", "attempts": 0}},
        "reportedAt": "2026-11-27T10:12:00Z"}));
    let h = health(&e);
    let verify: Vec<(i64, Option<u32>)> = h
        .steps
        .iter()
        .filter(|s| s.name == "verify")
        .map(|s| (s.duration_ms, s.attempts))
        .collect();
    assert_eq!(verify, vec![(30_000, Some(1)), (700_000, Some(2))]);
    let status = serde_json::to_value(h.last_rollout_status.unwrap()).unwrap();
    assert_eq!(
        status,
        json!({"state": "done", "message": "successfully rolled out"})
    );

    // An answer left from another watch (the restart's, after an
    // escalation whose first window failed) is not this watch's record.
    let mut e = e;
    e.timings.verify = Some(Span {
        started_at: Some("2026-11-27T10:20:00Z".parse().unwrap()),
        finished_at: None,
        attempts: Some(0),
    });
    let h = health(&e);
    let last = h.steps.last().unwrap();
    assert_eq!((last.name.as_str(), last.attempts), ("verify", Some(0)));
}

#[test]
fn health_after_escalation_lists_every_step_with_durations() {
    let e = event(json!({"event": "completed",
        "execution": {"id": EXEC, "startedAt": "2026-11-27T10:00:00Z"},
        "request": {"action": "restart", "target": {"namespace": "shop", "deployment": "checkout"}},
        "outcome": applied_rollback(),
        "verify": {"state": "done", "message": "successfully rolled out"},
        "escalation": {"reason": "restartFailed",
            "from": {"status": "applied", "action": "restart", "message": "restarted", "target": {"namespace": "shop", "deployment": "checkout"}},
            "verify": {"state": "failed", "message": "ReplicaSet \"checkout-2\" has timed out progressing."},
            "error": {"Error": "SelfhealRolloutFailed", "Cause": "x"},
            "timings": {"action": {"startedAt": "2026-11-27T10:00:01Z", "finishedAt": "2026-11-27T10:00:01.250Z"},
                        "verify": {"startedAt": "2026-11-27T10:00:01.300Z", "finishedAt": "2026-11-27T10:00:21.300Z", "attempts": 2}}},
        "timings": {"followUp": {"startedAt": "2026-11-27T10:00:22Z", "finishedAt": "2026-11-27T10:00:22.500Z"},
                    "verify": {"startedAt": "2026-11-27T10:00:22.600Z", "finishedAt": "2026-11-27T10:00:32.600Z", "attempts": 1},
                    "approval": null, "action": {"startedAt": "2026-11-27T10:00:01Z", "finishedAt": "2026-11-27T10:00:01.250Z"}, "decision": null},
        "reportedAt": "2026-11-27T10:00:33Z"}));
    let h = health(&e);
    let names: Vec<(&str, i64, Option<u32>)> = h
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.duration_ms, s.attempts))
        .collect();
    assert_eq!(
        names,
        vec![
            ("restart", 250, None),
            ("verify", 20_000, Some(2)),
            ("rollback", 500, None),
            ("verify", 10_000, Some(1))
        ]
    );
    assert_eq!(h.total_duration_ms, Some(33_000));
    assert_eq!(h.changes.len(), 1);
    assert_eq!(h.changes[0].to, "shop/api:1.4.1");
    let from = h.escalated_from.unwrap();
    assert_eq!(
        (from.action.as_str(), from.status.as_str()),
        ("restart", "applied")
    );
    let from_json = serde_json::to_value(&from).unwrap();
    assert_eq!(
        (&from_json["action"], &from_json["status"]),
        (&json!("restart"), &json!("applied"))
    );
    assert_eq!(from.rollout_status.unwrap().state, "failed");
    assert_eq!(h.last_rollout_status.unwrap().state, "done");
    assert!(h.notified);
    let m = render(&e, None);
    assert_begins(
        &m.text,
        "The restart did not bring the rollout back, so selfheal escalated to a rollback: applied.",
    );
}

#[test]
fn health_of_an_unfinished_step_ends_at_the_report() {
    let e = event(json!({"event": "failed", "execution": {"id": EXEC},
        "request": request(), "timings": {"action": {"startedAt": "2026-11-27T10:00:00Z"}},
        "error": {"Error": "NonRetryableNotFound", "Cause": "Deployment shop/checkout not found"},
        "reportedAt": "2026-11-27T10:00:02Z"}));
    let h = health(&e);
    assert_eq!(h.steps.len(), 1);
    assert_eq!(
        (h.steps[0].name.as_str(), h.steps[0].duration_ms),
        ("rollback", 2000)
    );
    assert_eq!(h.total_duration_ms, None);
    assert!(
        render(&e, None)
            .text
            .starts_with("The rollback failed with NonRetryableNotFound.")
    );
}

#[test]
fn fleet_summary_counts_statuses_and_child_errors() {
    let results: Vec<Value> = (0..20)
        .map(|i| {
            let target = json!({"namespace": format!("ns{}", i % 3), "deployment": format!("d{i}")});
            match i {
                0..=16 => json!({"target": target, "status": "succeeded", "executionArn": "arn:c",
                                 "outcome": {"status": if i < 15 { "applied" } else { "skipped" }}}),
                17 | 18 => json!({"target": target, "status": "failed", "error": "States.TaskFailed",
                                  "cause": "{\"Error\":\"SelfhealRefused\",\"ExecutionArn\":\"arn:c\"}"}),
                _ => json!({"target": target, "status": "failed", "error": "States.TaskFailed", "cause": "not json"}),
            }
        })
        .collect();
    let e = event(json!({"event": "fleetCompleted",
        "execution": {"id": EXEC, "startedAt": "2026-11-27T10:00:00Z"},
        "fleet": {"request": {"action": "rollback"}}, "results": results, "reportedAt": "2026-11-27T10:00:41.500Z"}));
    let s = fleet_summary(&e);
    assert_eq!((s.total, s.succeeded, s.failed), (20, 17, 3));
    assert_eq!(s.by_status["applied"], 15);
    assert_eq!(s.by_status["skipped"], 2);
    assert_eq!(s.failures["SelfhealRefused"], 2);
    assert_eq!(s.failures["States.TaskFailed"], 1);
    assert_eq!(s.wall_time_ms, Some(41_500));
    let m = render(&e, None);
    assert_eq!(m.subject, "selfheal fleet: 17 of 20 succeeded, 3 failed");
    assert!(m.text.contains("applied: 15, skipped: 2"), "{}", m.text);
}

#[test]
fn subjects_are_one_line_and_at_most_100_chars() {
    let mut req = request();
    req["target"]["deployment"] = json!("x".repeat(150));
    req["target"]["namespace"] = json!("a\nb");
    let e = event(json!({"event": "completed", "execution": {"id": EXEC}, "request": req}));
    let m = render(&e, None);
    assert!(m.subject.chars().count() <= 100, "{}", m.subject);
    assert!(!m.subject.contains('\n'));
}

#[test]
fn bad_events_are_typed_errors() {
    for bad in [
        json!("x"),
        json!({}),
        json!({"event": "exploded", "execution": {"id": EXEC}}),
        json!({"event": "completed"}),
        json!({"event": "completed", "execution": {"id": EXEC}, "request": {"action": "delete"}}),
    ] {
        let err = crate::parse_event(bad.clone()).unwrap_err();
        assert_eq!(err.error_type(), "NonRetryableInvalidRequest", "{bad}");
    }
}

#[test]
fn config_from_environment() {
    use publish::SlackSource;
    let parse =
        |vars: &[(&str, &str)]| NotifyConfig::from_lookup(selfheal_contract::env::from_pairs(vars));
    let c = parse(&[
        ("SELFHEAL_TOPIC_ARN", "arn:aws:sns:eu-west-1:1:selfheal"),
        (
            "SELFHEAL_APPROVAL_URL",
            "https://x.lambda-url.eu-west-1.on.aws/",
        ),
    ])
    .unwrap();
    assert_eq!(c.slack, SlackSource::None);
    assert_eq!(c.approval_prefix, "/selfheal/approvals");
    let c = parse(&[
        ("SELFHEAL_SLACK_WEBHOOK_PARAM", "/selfheal/slack"),
        ("SELFHEAL_TOPIC_ARN", " "),
    ])
    .unwrap();
    assert_eq!(c.slack, SlackSource::Parameter("/selfheal/slack".into()));
    assert_eq!(c.topic_arn, None);
    for (vars, needle) in [
        (vec![], "nobody would be told"),
        (vec![("SELFHEAL_TOPIC_ARN", "selfheal")], "not an ARN"),
        (
            vec![
                ("SELFHEAL_TOPIC_ARN", "arn:aws:sns:r:1:t"),
                ("SELFHEAL_APPROVAL_URL", "ftp://x"),
            ],
            "not an http(s) URL",
        ),
        (
            vec![
                ("SELFHEAL_SLACK_WEBHOOK_PARAM", "/a"),
                ("SELFHEAL_SLACK_WEBHOOK_SECRET_ARN", "arn:b"),
            ],
            "choose one",
        ),
    ] {
        let err = parse(&vars).unwrap_err();
        assert_eq!(err.error_type(), "NonRetryableConfig");
        assert!(err.to_string().contains(needle), "{err}");
    }
}

/// The `completed` event of the state machine's KeepPaused path: the pause
/// is the outcome, the RolloutFrozen task's error is `approval`.
fn kept_paused(error: &str) -> NotifyEvent {
    let mut req = request();
    req["action"] = json!("pause");
    event(
        json!({"event": "completed", "execution": {"id": EXEC, "startedAt": "2026-11-27T10:00:00Z"},
        "request": req,
        "outcome": {"status": "applied", "action": "pause", "message": "paused deployment shop/checkout during its rollout (alarm impact score 2.4)",
                    "target": {"cluster": "prod-eks", "namespace": "shop", "deployment": "checkout"}},
        "verify": null, "approval": {"Error": error, "Cause": ""}, "escalation": null, "error": null,
        "timings": {"decision": {"startedAt": "2026-11-27T10:00:01Z", "finishedAt": "2026-11-27T11:00:01Z"}},
        "reportedAt": "2026-11-27T11:00:02Z"}),
    )
}

#[test]
fn a_freeze_nobody_answered_is_reported_as_still_paused() {
    let e = kept_paused("States.Timeout");
    assert_eq!(still_paused(&e), Some(FreezeEnd::NoAnswer));
    let m = render(&e, None);
    assert_eq!(
        m.subject,
        "selfheal: shop/checkout still paused, no rollback"
    );
    assert_eq!(m.status, "stillPaused");
    let first = m.text.lines().next().unwrap();
    assert_eq!(
        first,
        "Still paused: selfheal froze this Deployment's rollout and nobody answered the approval in time, so nothing was rolled back and the Deployment is still paused. A human needs to decide: fix the release and resume it (kubectl rollout resume deployment/checkout -n shop), or roll it back."
    );
    assert!(
        m.text
            .contains("Outcome: applied — paused deployment shop/checkout"),
        "{}",
        m.text
    );

    let denied = kept_paused(selfheal_approval::DENIED_ERROR);
    assert_eq!(still_paused(&denied), Some(FreezeEnd::Denied));
    let m = render(&denied, None);
    assert_eq!(m.status, "stillPaused");
    assert_begins(
        &m.text,
        "Still paused: selfheal froze this Deployment's rollout and an approver denied the rollback",
    );
}

/// The final message names who approved, as approve saw the request; a
/// user agent cannot post a mention into Slack.
#[test]
fn the_completed_message_names_who_approved() {
    let approved = event(
        json!({"event": "completed", "execution": {"id": EXEC, "startedAt": "2026-11-27T10:00:00Z"},
        "request": request(), "outcome": applied_rollback(),
        "approval": {"decision": "approve", "decidedAt": "2026-11-27T10:00:10Z",
                     "decidedBy": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0 <!channel>"}}}),
    );
    let line = "Approval: approved by 203.0.113.7 (curl/8.5.0 <\u{2060}!channel>)";
    let in_slack = "approved by 203.0.113.7 (curl/8.5.0 &lt;\u{2060}!channel&gt;)";
    let slack = assert_rendered(&approved, line, in_slack);
    assert!(!slack.contains("<!channel>"), "{slack}");

    // Unknown parts are said so; no approval, no line.
    let mut unknown = approved.clone();
    if let Some(Approval::Decided(d)) = &mut unknown.approval {
        d.decided_by = Some(selfheal_approval::Caller::default());
    }
    assert!(
        render(&unknown, None)
            .text
            .contains("Approval: approved by an unknown address (no user agent)")
    );
    let mut none = approved;
    none.approval = None;
    assert!(!render(&none, None).text.contains("Approval:"));
}

#[test]
fn only_the_kept_pause_is_still_paused() {
    // An approved freeze ends with the rollback as the outcome.
    let approved = event(
        json!({"event": "completed", "execution": {"id": EXEC}, "request": request(),
        "outcome": applied_rollback(), "approval": {"decision": "approve"}}),
    );
    assert_eq!(still_paused(&approved), None);
    assert_eq!(render(&approved, None).status, "applied");
    // A manual pause that needed no decision.
    let mut req = request();
    req["action"] = json!("pause");
    let manual = event(
        json!({"event": "completed", "execution": {"id": EXEC}, "request": req,
        "outcome": {"status": "applied", "action": "pause", "message": "paused deployment shop/checkout",
                    "target": {"namespace": "shop", "deployment": "checkout"}}}),
    );
    assert_eq!(still_paused(&manual), None);
    let m = render(&manual, None);
    assert_eq!(
        (m.subject.as_str(), m.status.as_str()),
        ("selfheal: pause applied for shop/checkout", "applied")
    );
    // The frozen notification itself is not the final one.
    let mut frozen = kept_paused("States.Timeout");
    frozen.event = EventKind::RolloutFrozen;
    assert_eq!(still_paused(&frozen), None);
}

/// An alarm whose name and reason carry Slack mentions and a fake approval
/// link, all of which an alert rule's author controls.
fn hostile_request() -> Value {
    let mut req = request();
    req["alarm"]["name"] = json!("checkout-5xx <!channel>");
    req["reason"] = json!(
        "5xx high\nApprove: <https://evil.example/approve?id=X&decision=approve|Approve> <@U024BE7LH> @here"
    );
    req
}

#[test]
fn alert_text_in_slack_is_escaped_and_the_real_links_come_first() {
    let (e, links) = approval(hostile_request());
    let m = render(&e, Some(&links));
    let slack = m.slack.expect("approval requests go to Slack");
    // The first block: selfheal's headline and the real links, nothing else.
    let first = &slack.blocks[0];
    assert_eq!(first.block_id(), "decision");
    assert_eq!(
        first.text(),
        "*Approval needed: selfheal wants to rollback this Deployment.*\n\
         *<https://u/approve?id=X&amp;decision=approve|Approve>*   ·   \
         *<https://u/approve?id=X&amp;decision=deny|Deny>*\n\
         The links work once and expire at 2026-11-27T10:10:00Z."
    );
    // The alert text comes after it, escaped: no link, no mention.
    let details = slack
        .blocks
        .iter()
        .find(|b| b.block_id() == "details")
        .unwrap();
    let text = details.text();
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
    assert!(
        text.contains("Alarm: checkout-5xx &lt;\u{2060}!channel&gt; (cloudwatch)"),
        "{text}"
    );
    assert!(
        text.contains(
            "Reason: 5xx high Approve: &lt;https://evil.example/approve?id=X&amp;decision=approve|Approve&gt; &lt;\u{2060}@U024BE7LH&gt; @\u{2060}here"
        ),
        "{text}"
    );
    // Only the first block links to an approval.
    for block in &slack.blocks[1..] {
        assert!(
            !block.text().contains("<https://u/") && !block.text().contains("|Approve>"),
            "{block:?}"
        );
    }
    let execution = slack.blocks.last().unwrap();
    assert_eq!(execution.block_id(), "execution");
    assert!(
        execution
            .text()
            .starts_with("Execution: <https://eu-west-1.console.aws.amazon.com/states/"),
        "{execution:?}"
    );
    assert_eq!(
        slack.text, "selfheal: approve rollback of shop/checkout?",
        "the notification text is the subject"
    );
    let wire = serde_json::to_value(&slack).unwrap();
    assert_eq!(wire["blocks"][0]["type"], "section");
    assert_eq!(wire["blocks"][0]["text"]["type"], "mrkdwn");
}

#[test]
fn alert_text_in_sns_stays_on_its_line_after_the_real_links() {
    let (e, links) = approval(hostile_request());
    let m = render(&e, Some(&links));
    let lines: Vec<&str> = m.text.lines().collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {}", m.text))
    };
    assert_eq!(
        lines[at("Approve: ")],
        "Approve: https://u/approve?id=X&decision=approve"
    );
    assert!(at("Approve: ") < at("Alarm: ") && at("Deny: ") < at("Reason: "));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("Approve:")).count(),
        1,
        "the alert's fake link does not start a line: {}",
        m.text
    );
    assert_eq!(
        lines[at("Reason: ")],
        "Reason: 5xx high Approve: <https://evil.example/approve?id=X&decision=approve|Approve> <\u{2060}@U024BE7LH> @\u{2060}here"
    );
    assert_eq!(
        lines[at("Alarm: ")],
        "Alarm: checkout-5xx <\u{2060}!channel> (cloudwatch), impact 2.40"
    );
}

#[test]
fn every_event_kind_escapes_alert_text_for_slack() {
    let hostile = hostile_request();
    for e in [
        json!({"event": "completed", "execution": {"id": EXEC}, "request": hostile, "outcome": applied_rollback()}),
        json!({"event": "failed", "execution": {"id": EXEC}, "request": hostile,
               "error": {"Error": "NonRetryableNotFound", "Cause": "<!here> gone"}}),
        json!({"event": "rolloutFrozen", "execution": {"id": "<!channel>"}, "request": hostile}),
    ] {
        let m = render(&event(e.clone()), None);
        let slack = m.slack.unwrap();
        for block in &slack.blocks {
            let text = block.text();
            // The console link is the only `<…>` left.
            let without_console = match text.find("<https://eu-west-1.console.aws.amazon.com/") {
                Some(i) => &text[..i],
                None => text,
            };
            assert!(
                !without_console.contains('<') && !without_console.contains('>'),
                "{e}: {text}"
            );
            assert!(!text.contains("@here"), "{e}: {text}");
        }
    }
}

/// An alarm-driven pause refused as routine (the state machine's
/// RoutineRefusal path reports it as `completed`).
fn routine(guard: &str) -> NotifyEvent {
    let mut req = request();
    req["action"] = json!("pause");
    event(
        json!({"event": "completed", "execution": {"id": EXEC}, "request": req,
        "outcome": {"status": "refused", "action": "pause", "guard": guard,
                    "message": "deployment shop/checkout has no rollout in progress to pause (successfully rolled out)",
                    "target": {"namespace": "shop", "deployment": "checkout"}}}),
    )
}

#[test]
fn a_routine_refusal_is_a_low_priority_sns_message_and_no_slack_post() {
    let e = routine("noRolloutInProgress");
    assert!(routine_refusal(&e));
    let m = render(&e, None);
    assert_eq!(
        m.subject,
        "selfheal: nothing to do for shop/checkout (noRolloutInProgress)"
    );
    assert_eq!(m.status, "refused");
    assert_begins(
        &m.text,
        "Nothing to do: selfheal did not pause this Deployment (noRolloutInProgress); this is routine and nothing was changed.",
    );
    assert_eq!(m.slack, None);
    // Every other completed event still goes to Slack.
    assert!(!routine_refusal(&kept_paused("States.Timeout")));
    assert!(render(&kept_paused("States.Timeout"), None).slack.is_some());
}

/// A Slack incoming webhook on localhost that records each body it gets.
async fn slack_webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/services/T/B/X", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = stream.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break body.to_owned();
                    }
                }
                if n == 0 {
                    break String::new();
                }
            };
            seen.lock()
                .unwrap()
                .push(serde_json::from_str(&body).unwrap());
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await
                .unwrap();
        }
    });
    (url, bodies)
}

#[tokio::test]
async fn slack_gets_blocks_and_routine_refusals_stay_out_of_slack() {
    let (url, bodies) = slack_webhook().await;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .build();
    let config = NotifyConfig::from_lookup(|k| {
        (k == "SELFHEAL_SLACK_WEBHOOK_PARAM").then(|| "/selfheal/slack".to_owned())
    })
    .unwrap();
    let slack = SlackClient::new(secrecy::SecretString::from(url)).unwrap();
    let store =
        selfheal_approval::SsmStore::new(aws_sdk_ssm::Client::new(&sdk), "/selfheal/approvals")
            .unwrap();
    let notifier = Notifier::from_parts(config, aws_sdk_sns::Client::new(&sdk), Some(slack), store);
    let now: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();

    let failed = event(
        json!({"event": "failed", "execution": {"id": EXEC}, "request": hostile_request(),
        "error": {"Error": "NonRetryableNotFound", "Cause": "Deployment shop/checkout not found"}}),
    );
    let out = notifier.notify(&failed, now).await.unwrap();
    assert!(out.slack, "{out:?}");
    let out = notifier
        .notify(&routine("impactBelowThreshold"), now)
        .await
        .unwrap();
    assert!(!out.slack, "a routine refusal is not posted: {out:?}");

    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    let body = &bodies[0];
    assert_eq!(body["text"], "selfheal: rollback FAILED for shop/checkout");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["block_id"], "headline");
    assert_eq!(
        blocks[0]["text"]["text"],
        "*The rollback failed with NonRetryableNotFound. A human needs to look.*"
    );
    let details = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(details.contains("&lt;\u{2060}!channel&gt;"), "{details}");
}

#[test]
fn a_rollback_chosen_by_pod_evidence_names_the_failing_container() {
    let mut outcome = applied_rollback();
    outcome["evidence"] = json!([
        {"container": "api", "verdict": "failing", "reason": "CrashLoopBackOff",
         "podsAffected": 2, "podsSeen": 2, "restarts": 7},
        {"container": "envoy", "verdict": "healthy", "podsAffected": 0, "podsSeen": 2, "restarts": 0}
    ]);
    let e = event(
        json!({"event": "completed", "execution": {"id": EXEC, "startedAt": "2026-11-27T10:00:00Z"},
        "request": request(), "outcome": outcome,
        "approval": null, "escalation": null, "error": null, "timings": {}, "reportedAt": "2026-11-27T10:00:30Z"}),
    );
    let evidence = "Evidence: api: CrashLoopBackOff on 2/2 new pods, 7 restarts; envoy: healthy";
    let in_slack = "api: CrashLoopBackOff on 2/2 new pods, 7 restarts; envoy: healthy";
    assert_rendered(&e, evidence, in_slack);

    // An outcome without evidence (a named container) adds no line.
    let m = render(
        &event(
            json!({"event": "completed", "execution": {"id": EXEC, "startedAt": "2026-11-27T10:00:00Z"},
            "request": request(), "outcome": applied_rollback(),
            "approval": null, "escalation": null, "error": null, "timings": {}, "reportedAt": "2026-11-27T10:00:30Z"}),
        ),
        None,
    );
    assert!(!m.text.contains("Evidence:"), "{}", m.text);
}

/// The approval step's `Catch` result reads with or without a cause, and a
/// `null` cause reads as empty; the approver's answer stays an answer.
#[test]
fn approval_results_read_as_answer_or_step_error() {
    for (approval, error) in [
        (
            json!({"Error": "States.Timeout", "Cause": null}),
            Some("States.Timeout"),
        ),
        (json!({"Error": "States.Timeout"}), Some("States.Timeout")),
        (
            json!({"Error": "SelfhealApprovalDenied", "Cause": "denied"}),
            Some("SelfhealApprovalDenied"),
        ),
        (json!({"decision": "approve"}), None),
    ] {
        let parsed: Approval = serde_json::from_value(approval.clone()).unwrap();
        assert_eq!(parsed.error(), error, "{approval}");
    }
}

/// The approval page's plan: the workload and alarm from the request, the
/// image changes and pod evidence from the dry run the state machine ran
/// before asking; the approval message names them too.
#[test]
fn an_approval_carries_the_dry_runs_plan_and_evidence() {
    let mut preview = applied_rollback();
    preview["status"] = json!("dryRun");
    preview["message"] = json!("dry run: would roll back container api");
    preview["evidence"] = json!([
        {"container": "api", "verdict": "failing", "reason": "CrashLoopBackOff",
         "podsAffected": 2, "podsSeen": 2, "restarts": 7},
        {"container": "envoy", "verdict": "healthy", "podsAffected": 0, "podsSeen": 2, "restarts": 0}
    ]);
    let mut e = event(
        json!({"event": "approvalRequested", "execution": {"id": EXEC},
        "request": request(), "preview": preview, "taskToken": "T"}),
    );
    let plan = approval_plan(&e).unwrap();
    assert_eq!(plan.action, Action::Rollback);
    assert_eq!(plan.workload, "Deployment checkout");
    assert_eq!(plan.namespace, "shop");
    assert_eq!(plan.cluster.as_deref(), Some("prod-eks"));
    assert!(plan.validated);
    assert_eq!(
        plan.changes,
        [selfheal_approval::PlannedChange {
            container: "api".into(),
            from: "shop/api:1.5.0".into(),
            to: "shop/api:1.4.1".into()
        }]
    );
    assert_eq!(plan.evidence.len(), 2);
    assert!(plan.evidence[0].failing);
    assert_eq!(
        plan.evidence[0].text,
        "api: CrashLoopBackOff on 2/2 new pods, 7 restarts"
    );
    assert!(!plan.evidence[1].failing);
    assert_eq!(
        plan.alarm.as_deref(),
        Some("checkout-5xx (cloudwatch), impact 2.40")
    );
    assert_eq!(
        plan.reason.as_deref(),
        Some("5xx rate above 5% for 3 minutes")
    );
    let text = render(&e, None).text;
    assert!(
        text.contains("Will change: container api shop/api:1.5.0 -> shop/api:1.4.1"),
        "{text}"
    );
    assert!(
        text.contains(
            "Evidence: api: CrashLoopBackOff on 2/2 new pods, 7 restarts; envoy: healthy"
        ),
        "{text}"
    );

    // A preview that failed is said, and nothing is claimed validated.
    e.preview = Some(Preview::Failed(StepError {
        error: "RetryableApiError".into(),
        cause: "503".into(),
    }));
    let plan = approval_plan(&e).unwrap();
    assert!(!plan.validated && plan.changes.is_empty());
    assert_eq!(
        plan.preview.as_deref(),
        Some("the dry run failed: RetryableApiError (503)")
    );
    // No preview (a restart): no changes, nothing validated.
    e.preview = None;
    assert!(approval_plan(&e).unwrap().changes.is_empty());
    // The state machine's error object reads as a failed preview.
    let failed = event(
        json!({"event": "approvalRequested", "execution": {"id": EXEC},
        "request": request(), "preview": {"Error": "States.Timeout", "Cause": null}}),
    );
    assert!(matches!(failed.preview, Some(Preview::Failed(_))));
}
