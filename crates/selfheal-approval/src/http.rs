//! The Function URL side: `GET /approve?id=…&decision=…&key=…` shows what is
//! being decided with a confirm button (no side effect: link scanners fetch
//! links); `POST /approve` with the same fields in its form body (never the
//! query string: a bare `curl -X POST <link>` must not decide) decides. The
//! link's `key` alone says which decision it may make. Answers are small
//! HTML pages; unknown, used or expired links answer 410.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    ApprovalId, ApprovalStore, Caller, DEFAULT_PARAM_PREFIX, Decision, Error, GoneReason,
    PARAM_PREFIX_VAR, Redeemed, SfnCallback, SsmStore, TaskCallback, peek, redeem_as,
};

/// The `approve` function's per-process state: the SSM store and the Step
/// Functions callback, built once and borrowed by every warm invocation.
#[derive(Debug, Clone)]
pub struct Approver {
    store: SsmStore,
    callback: SfnCallback,
}

impl Approver {
    /// The SDK configuration, then the store under `SELFHEAL_APPROVAL_PARAM_PREFIX`.
    pub async fn from_env() -> Result<Self, Error> {
        let config = selfheal_aws::load().await;
        let prefix =
            std::env::var(PARAM_PREFIX_VAR).unwrap_or_else(|_| DEFAULT_PARAM_PREFIX.to_owned());
        let store = SsmStore::new(aws_sdk_ssm::Client::new(&config), &prefix)?;
        let callback = SfnCallback::new(aws_sdk_sfn::Client::new(&config));
        Ok(Approver { store, callback })
    }

    /// Answer one Function URL event; a failure is logged with its `errorType`.
    pub async fn handle_event(&self, event: &Value) -> Result<HttpResponse, Error> {
        let request = parse_event(event);
        let result = handle(&self.store, &self.callback, Timestamp::now(), &request).await;
        if let Err(e) = &result {
            tracing::error!(error_type = e.error_type(), error = %e, "approval request failed");
        }
        result
    }
}

/// A Function URL response (payload format 2.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpResponse {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub is_base64_encoded: bool,
    /// Always sent (empty): Function URL emulators read payload 2.0 with a
    /// required `cookies` list and answer 500 without it.
    #[serde(default)]
    pub cookies: Vec<String>,
}

/// The parts of a Function URL request this function reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// The query string for GET and HEAD; only the form body for POST.
    pub params: BTreeMap<String, String>,
    /// Who sent it (Function URL `requestContext.http`).
    pub caller: Caller,
}

/// Read a Function URL event. `None` body/query are empty; a body that is
/// not a form is an empty form (answered 400 later, never a panic).
pub fn parse_event(event: &Value) -> HttpRequest {
    let method = event
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let path = event
        .get("rawPath")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_owned();
    let query = event
        .get("rawQueryString")
        .and_then(Value::as_str)
        .unwrap_or("");
    let http = |field: &str| {
        event
            .pointer(&format!("/requestContext/http/{field}"))
            .and_then(Value::as_str)
    };
    let caller = Caller::new(http("sourceIp"), http("userAgent"));
    let params: BTreeMap<String, String> = if method == "POST" {
        let body = event.get("body").and_then(Value::as_str).unwrap_or("");
        let base64 = event
            .get("isBase64Encoded")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let body = if base64 {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default()
        } else {
            body.to_owned()
        };
        serde_urlencoded::from_str(&body).unwrap_or_default()
    } else {
        serde_urlencoded::from_str(query).unwrap_or_default()
    };
    HttpRequest {
        method,
        path,
        params,
        caller,
    }
}

/// Answer one request.
pub async fn handle<S: ApprovalStore, C: TaskCallback>(
    store: &S,
    callback: &C,
    now: Timestamp,
    request: &HttpRequest,
) -> Result<HttpResponse, Error> {
    if request.path != "/" && request.path != "/approve" {
        return Ok(page(404, "Not found", "There is nothing here."));
    }
    let method = request.method.as_str();
    if !matches!(method, "GET" | "HEAD" | "POST") {
        return Ok(page(
            405,
            "Method not allowed",
            "Use the link, then confirm.",
        ));
    }
    let param = |name: &str| request.params.get(name).map(String::as_str);
    let id = param("id").and_then(ApprovalId::parse);
    let key = param("key").and_then(ApprovalId::parse);
    // `decision` is optional (the key decides) but, when given, must be
    // valid and agree with the key.
    let claimed = match param("decision").map(Decision::parse) {
        None => None,
        Some(Some(decision)) => Some(decision),
        Some(None) => return Ok(bad_link()),
    };
    let (Some(id), Some(key)) = (id, key) else {
        return Ok(bad_link());
    };
    // Which decision this link may make: the one its key was minted for,
    // checked before anything is consumed, so a wrong key burns nothing.
    let record = match peek(store, now, &id).await? {
        Ok(record) => record,
        Err(GoneReason::Expired) => {
            // Unusable from now on: delete it rather than leave it to pile up.
            store.take(&id).await?;
            return Ok(gone(GoneReason::Expired));
        }
        Err(reason) => return Ok(gone(reason)),
    };
    let decision = match record.decision_for(&key) {
        None => return Ok(gone(GoneReason::UnknownOrUsed)),
        Some(decision) if claimed.is_some_and(|c| c != decision) => {
            return Ok(page(
                400,
                "Bad link",
                "This link was made for the other decision; use the link you were sent for this one.",
            ));
        }
        Some(decision) => decision,
    };
    if method != "POST" {
        return Ok(confirm_page(
            &id,
            &key,
            decision,
            &record.summary,
            &record.execution,
        ));
    }
    let result = redeem_as(store, callback, now, &id, decision, &request.caller).await?;
    Ok(match result {
        Redeemed::Gone(reason) => gone(reason),
        Redeemed::Decided { decision, record } => {
            tracing::info!(
                decision = decision.as_str(),
                execution = %record.execution,
                summary = %record.summary,
                source_ip = request.caller.source_ip.as_deref().unwrap_or(""),
                user_agent = request.caller.user_agent.as_deref().unwrap_or(""),
                "approval decided"
            );
            let (title, text) = match decision {
                Decision::Approve => (
                    "Approved",
                    format!("Approved: {}. The remediation continues.", record.summary),
                ),
                Decision::Deny => (
                    "Denied",
                    format!("Denied: {}. Nothing will be changed.", record.summary),
                ),
            };
            page(200, title, &text)
        }
    })
}

fn bad_link() -> HttpResponse {
    page(
        400,
        "Bad link",
        "The link needs an `id` and a `key` (and, if given, a `decision` of approve or deny).",
    )
}

fn gone(reason: GoneReason) -> HttpResponse {
    page(410, "Link no longer valid", reason.message())
}

/// Escape text for HTML element and attribute content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn headers() -> BTreeMap<String, String> {
    [
        ("content-type", "text/html; charset=utf-8"),
        ("cache-control", "no-store"),
        // The id is a capability: never leak it through Referer or framing.
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn page(status: u16, title: &str, text: &str) -> HttpResponse {
    HttpResponse {
        status_code: status,
        headers: headers(),
        body: format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>selfheal: {t}</title></head>\
             <body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\"><h1>{t}</h1><p>{x}</p></body></html>",
            t = escape(title),
            x = escape(text)
        ),
        is_base64_encoded: false,
        cookies: Vec::new(),
    }
}

fn confirm_page(
    id: &ApprovalId,
    key: &ApprovalId,
    decision: Decision,
    summary: &str,
    execution: &str,
) -> HttpResponse {
    let verb = match decision {
        Decision::Approve => "Approve",
        Decision::Deny => "Deny",
    };
    HttpResponse {
        status_code: 200,
        headers: headers(),
        body: format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>selfheal: {verb}?</title></head>\
             <body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\"><h1>{verb}?</h1>\
             <p>{s}</p><p><small>Execution {e}</small></p>\
             <form method=\"post\" action=\"/approve\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
             <input type=\"hidden\" name=\"key\" value=\"{k}\">\
             <input type=\"hidden\" name=\"decision\" value=\"{d}\"><button type=\"submit\">{verb}</button></form>\
             </body></html>",
            s = escape(summary),
            e = escape(execution),
            id = escape(id.as_str()),
            k = escape(key.as_str()),
            d = decision.as_str()
        ),
        is_base64_encoded: false,
        cookies: Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mint;
    use crate::tests::{FakeCallback, MemoryStore, id_of, param_of, t};

    fn get(path: &str, query: &str) -> HttpRequest {
        parse_event(&json!({"rawPath": path, "rawQueryString": query,
            "requestContext": {"http": {"method": "GET"}}}))
    }

    fn post(body: &str, base64: bool) -> HttpRequest {
        let body = if base64 {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(body)
        } else {
            body.to_owned()
        };
        parse_event(&json!({"rawPath": "/approve", "rawQueryString": "",
            "requestContext": {"http": {"method": "POST"}}, "body": body, "isBase64Encoded": base64}))
    }

    #[tokio::test]
    async fn get_confirms_without_deciding_then_post_decides_once() {
        let store = MemoryStore::default();
        let cb = FakeCallback::new(true);
        let now = t("2026-11-27T10:00:00Z");
        let links = mint(
            &store,
            "https://u",
            now,
            300,
            "TOK",
            "arn:aws:states:eu-west-1:1:execution:sm:x",
            "rollback shop/checkout <api>",
        )
        .await
        .unwrap();
        let id = id_of(&links.approve_url);
        let query = links.approve_url.split('?').nth(1).unwrap();

        let page = handle(&store, &cb, now, &get("/approve", query))
            .await
            .unwrap();
        assert_eq!(page.status_code, 200);
        assert!(page.body.contains("method=\"post\""));
        assert!(
            page.body.contains("rollback shop/checkout &lt;api&gt;"),
            "{}",
            page.body
        );
        assert!(page.body.contains(id.as_str()));
        assert_eq!(page.headers["referrer-policy"], "no-referrer");
        assert!(cb.calls.lock().unwrap().is_empty(), "GET must not decide");

        let form = query;
        let done = handle(&store, &cb, now, &post(form, true)).await.unwrap();
        assert_eq!(done.status_code, 200, "{}", done.body);
        assert!(done.body.contains("Approved"));
        assert_eq!(cb.calls.lock().unwrap().len(), 1);

        let again = handle(&store, &cb, now, &post(form, false)).await.unwrap();
        assert_eq!(again.status_code, 410);
        let look = handle(&store, &cb, now, &get("/approve", query))
            .await
            .unwrap();
        assert_eq!(look.status_code, 410);
        assert_eq!(cb.calls.lock().unwrap().len(), 1);
    }

    /// A link minted into a Deployment's folder (`id=<scope>.<random>`) is
    /// confirmed and decided like any other, and its record goes.
    #[tokio::test]
    async fn a_scoped_link_confirms_and_decides() {
        let store = MemoryStore::default();
        let cb = FakeCallback::new(true);
        let now = t("2026-11-27T10:00:00Z");
        let scope = crate::DeploymentScope::of(Some("prod"), "shop", "checkout");
        let request = crate::MintRequest {
            base_url: "https://u",
            now,
            ttl_seconds: 300,
            task_token: "TOK",
            execution: "arn:e",
            summary: "rollback shop/checkout",
            deployment: Some(crate::PendingCap {
                name: "prod/shop/checkout".into(),
                scope: scope.clone(),
                max: 3,
            }),
        };
        let links = crate::mint_for(&store, &request).await.unwrap();
        let query = links.deny_url.split('?').nth(1).unwrap();
        assert!(query.starts_with(&format!("id={scope}.")), "{query}");
        let page = handle(&store, &cb, now, &get("/approve", query))
            .await
            .unwrap();
        assert_eq!(page.status_code, 200, "{}", page.body);
        assert!(page.body.contains(id_of(&links.deny_url).as_str()));
        let done = handle(&store, &cb, now, &post(query, false)).await.unwrap();
        assert_eq!(done.status_code, 200, "{}", done.body);
        assert!(done.body.contains("Denied"));
        assert!(store.0.lock().unwrap().is_empty(), "denied record deleted");
    }

    #[tokio::test]
    async fn expired_link_is_410_on_get_and_post() {
        let store = MemoryStore::default();
        let cb = FakeCallback::new(true);
        let now = t("2026-11-27T10:00:00Z");
        let links = mint(&store, "https://u", now, 5, "TOK", "arn:e", "s")
            .await
            .unwrap();
        let query = links.deny_url.split('?').nth(1).unwrap();
        let later = t("2026-11-27T10:00:06Z");
        let r = handle(&store, &cb, later, &get("/approve", query))
            .await
            .unwrap();
        assert_eq!(r.status_code, 410);
        assert!(r.body.contains("expired"));
        let r = handle(&store, &cb, later, &post(query, false))
            .await
            .unwrap();
        assert_eq!(r.status_code, 410);
        assert!(cb.calls.lock().unwrap().is_empty());
        assert!(store.0.lock().unwrap().is_empty(), "expired record deleted");
    }

    #[tokio::test]
    async fn bad_requests_get_clear_statuses() {
        let store = MemoryStore::default();
        let cb = FakeCallback::new(true);
        let now = t("2026-11-27T10:00:00Z");
        let id = "c".repeat(43);
        let cases = [
            (
                get("/other", &format!("id={id}&decision=approve&key={id}")),
                404,
            ),
            (
                get("/approve", &format!("id=short&decision=approve&key={id}")),
                400,
            ),
            (
                get("/approve", &format!("id={id}&decision=maybe&key={id}")),
                400,
            ),
            (get("/approve", &format!("id={id}&decision=approve")), 400),
            (
                get("/approve", &format!("id={id}&decision=approve&key=short")),
                400,
            ),
            (get("/approve", ""), 400),
            (
                get("/approve", &format!("id={id}&decision=approve&key={id}")),
                410,
            ),
            (post("%%%not a form", false), 400),
            (post("!!!", true), 400),
        ];
        for (req, status) in cases {
            let r = handle(&store, &cb, now, &req).await.unwrap();
            assert_eq!(r.status_code, status, "{req:?}");
        }
        let put = parse_event(
            &json!({"rawPath": "/approve", "rawQueryString": format!("id={id}&decision=deny"),
            "requestContext": {"http": {"method": "PUT"}}}),
        );
        assert_eq!(
            handle(&store, &cb, now, &put).await.unwrap().status_code,
            405
        );
        // Not even an object: defaults, then 400.
        let r = handle(&store, &cb, now, &parse_event(&json!("x")))
            .await
            .unwrap();
        assert_eq!(r.status_code, 400);
    }

    /// A Function URL POST as a browser (or curl) sends it.
    fn post_from(query: &str, body: &str, source_ip: &str, user_agent: &str) -> HttpRequest {
        parse_event(&json!({"rawPath": "/approve", "rawQueryString": query,
            "requestContext": {"http": {"method": "POST", "sourceIp": source_ip, "userAgent": user_agent}},
            "body": body, "isBase64Encoded": false}))
    }

    async fn minted(store: &MemoryStore, now: Timestamp) -> crate::ApprovalLinks {
        mint(
            store,
            "https://u",
            now,
            300,
            "TOK",
            "arn:e",
            "rollback shop/checkout",
        )
        .await
        .unwrap()
    }

    /// Issue #19, finding 8: `curl -X POST '<link>'` used to decide, because
    /// POST merged the query string into the form.
    #[tokio::test]
    async fn a_bare_post_of_the_link_decides_nothing() {
        let store = MemoryStore::default();
        let cb = FakeCallback::new(true);
        let now = t("2026-11-27T10:00:00Z");
        let links = minted(&store, now).await;
        for link in [&links.approve_url, &links.deny_url] {
            let query = link.split('?').nth(1).unwrap();
            let r = handle(
                &store,
                &cb,
                now,
                &post_from(query, "", "198.51.100.1", "curl/8"),
            )
            .await
            .unwrap();
            assert_eq!(r.status_code, 400, "{}", r.body);
        }
        assert!(cb.calls.lock().unwrap().is_empty(), "nothing decided");
        assert_eq!(
            store.0.lock().unwrap().len(),
            1,
            "the record is still there"
        );
        // The page's form (the body) still works afterwards.
        let query = links.approve_url.split('?').nth(1).unwrap();
        let r = handle(
            &store,
            &cb,
            now,
            &post_from("", query, "198.51.100.1", "Firefox"),
        )
        .await
        .unwrap();
        assert_eq!(r.status_code, 200, "{}", r.body);
        assert_eq!(cb.calls.lock().unwrap()[0].0, "success");
    }

    /// Issue #19, finding 8: approve and deny links shared one id, so a deny
    /// link with `decision=approve` approved.
    #[tokio::test]
    async fn a_deny_link_cannot_approve() {
        let store = MemoryStore::default();
        let cb = FakeCallback::new(true);
        let now = t("2026-11-27T10:00:00Z");
        let links = minted(&store, now).await;
        let deny_query = links.deny_url.split('?').nth(1).unwrap();
        let forged = deny_query.replace("decision=deny", "decision=approve");
        assert_ne!(forged, deny_query);
        let r = handle(&store, &cb, now, &get("/approve", &forged))
            .await
            .unwrap();
        assert_eq!(r.status_code, 400, "{}", r.body);
        let r = handle(&store, &cb, now, &post(&forged, false))
            .await
            .unwrap();
        assert_eq!(r.status_code, 400, "{}", r.body);
        // The approve link's key with decision=deny is refused the same way.
        let approve_query = links.approve_url.split('?').nth(1).unwrap();
        let r = handle(
            &store,
            &cb,
            now,
            &post(
                &approve_query.replace("decision=approve", "decision=deny"),
                false,
            ),
        )
        .await
        .unwrap();
        assert_eq!(r.status_code, 400, "{}", r.body);
        // A guessed key is an unknown link, and burns nothing.
        let guessed = format!("id={}&key={}", id_of(&links.deny_url), "g".repeat(43));
        let r = handle(&store, &cb, now, &post(&guessed, false))
            .await
            .unwrap();
        assert_eq!(r.status_code, 410, "{}", r.body);
        assert!(cb.calls.lock().unwrap().is_empty(), "nothing decided");
        assert_eq!(store.0.lock().unwrap().len(), 1, "nothing consumed");

        // Without `decision`, the deny link's key denies: the key decides.
        let key_only = format!(
            "id={}&key={}",
            id_of(&links.deny_url),
            param_of(&links.deny_url, "key")
        );
        let page = handle(&store, &cb, now, &get("/approve", &key_only))
            .await
            .unwrap();
        assert!(page.body.contains("<h1>Deny?</h1>"), "{}", page.body);
        let r = handle(&store, &cb, now, &post(&key_only, false))
            .await
            .unwrap();
        assert_eq!(r.status_code, 200, "{}", r.body);
        let calls = cb.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, "failure");
    }

    /// Issue #19, finding 9: the decision names who made it, in the log and
    /// in what the waiting execution receives.
    #[tokio::test]
    async fn the_decision_names_the_caller() {
        let store = MemoryStore::default();
        let cb = FakeCallback::new(true);
        let now = t("2026-11-27T10:00:00Z");
        let links = minted(&store, now).await;
        let form = links.approve_url.split('?').nth(1).unwrap();
        let r = handle(
            &store,
            &cb,
            now,
            &post_from("", form, "203.0.113.7", "Mozilla/5.0 (X11)"),
        )
        .await
        .unwrap();
        assert_eq!(r.status_code, 200, "{}", r.body);
        let calls = cb.calls.lock().unwrap().clone();
        let output: Value = serde_json::from_str(&calls[0].2).unwrap();
        assert_eq!(output["decision"], "approve");
        assert_eq!(output["decidedAt"], "2026-11-27T10:00:00Z");
        assert_eq!(
            output["decidedBy"],
            json!({"sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0 (X11)"})
        );

        let links = minted(&store, now).await;
        let form = links.deny_url.split('?').nth(1).unwrap();
        let r = handle(
            &store,
            &cb,
            now,
            &post_from("", form, "2001:db8::1", "curl/8.5.0\n<!channel>"),
        )
        .await
        .unwrap();
        assert_eq!(r.status_code, 200, "{}", r.body);
        let calls = cb.calls.lock().unwrap().clone();
        assert_eq!(calls[1].0, "failure");
        assert_eq!(
            calls[1].2,
            "SelfhealApprovalDenied: Denied through an approval link at 2026-11-27T10:00:00Z from 2001:db8::1 (curl/8.5.0<!channel>)."
        );
    }

    #[test]
    fn escape_covers_html_specials() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
