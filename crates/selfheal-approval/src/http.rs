//! The Function URL side: `GET /approve?id=…&decision=…&key=…` shows what is
//! being decided (the record's [`crate::ApprovalPlan`]: workload, image
//! changes as a dry run validated them, the pods' evidence, alarm, expiry)
//! with the buttons its key permits, and writes nothing (link scanners fetch
//! links); `POST /approve` with the same fields in its form body (never the
//! query string: a bare `curl -X POST <link>` must not decide) decides. The
//! link's `key` says which decisions it may make. Answers are small HTML
//! pages that fit a phone; unknown, used or expired links answer 410 and
//! change nothing.

use std::collections::BTreeMap;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use jiff::Timestamp;
use selfheal_contract::env;
use serde::Deserialize;
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
        let prefix = env::get(env::process, PARAM_PREFIX_VAR)
            .unwrap_or_else(|| DEFAULT_PARAM_PREFIX.to_owned());
        let store = SsmStore::new(aws_sdk_ssm::Client::new(&config), &prefix)?;
        let callback = SfnCallback::new(aws_sdk_sfn::Client::new(&config));
        Ok(Approver { store, callback })
    }

    /// Answer one Function URL event; a failure is logged with its `errorType`.
    pub async fn handle_event(&self, event: &Value) -> Result<LambdaFunctionUrlResponse, Error> {
        let result = answer(&self.store, &self.callback, Timestamp::now(), event).await;
        if let Err(e) = &result {
            tracing::error!(error_type = e.error_type(), error = %e, "approval request failed");
        }
        result
    }
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

/// Read a Function URL event (payload format 2.0), or why it is not one.
pub fn parse_event(event: &Value) -> Result<HttpRequest, serde_json::Error> {
    LambdaFunctionUrlRequest::deserialize(event).map(|request| HttpRequest::from(&request))
}

impl From<&LambdaFunctionUrlRequest> for HttpRequest {
    /// `None` body/query are empty; a body that is not a form is an empty
    /// form (answered 400 later, never a panic).
    fn from(request: &LambdaFunctionUrlRequest) -> Self {
        let http = &request.request_context.http;
        let method = http.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        let path = request.raw_path.as_deref().unwrap_or("/").to_owned();
        let caller = Caller::new(http.source_ip.as_deref(), http.user_agent.as_deref());
        let params: BTreeMap<String, String> = if method == "POST" {
            let body = request.body.as_deref().unwrap_or("");
            let body = if request.is_base64_encoded {
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
            let query = request.raw_query_string.as_deref().unwrap_or("");
            serde_urlencoded::from_str(query).unwrap_or_default()
        };
        HttpRequest {
            method,
            path,
            params,
            caller,
        }
    }
}

/// Answer one Function URL event. An event that does not decode as one is
/// answered as a link without `id` and `key` is (400), not as an error.
pub async fn answer<S: ApprovalStore, C: TaskCallback>(
    store: &S,
    callback: &C,
    now: Timestamp,
    event: &Value,
) -> Result<LambdaFunctionUrlResponse, Error> {
    match parse_event(event) {
        Ok(request) => handle(store, callback, now, &request).await,
        Err(error) => {
            tracing::warn!(error = %error, "unreadable Function URL request");
            Ok(bad_link())
        }
    }
}

/// Answer one request.
pub async fn handle<S: ApprovalStore, C: TaskCallback>(
    store: &S,
    callback: &C,
    now: Timestamp,
    request: &HttpRequest,
) -> Result<LambdaFunctionUrlResponse, Error> {
    if request.path != "/" && request.path != "/approve" {
        return Ok(page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here.",
        ));
    }
    let method = request.method.as_str();
    if !matches!(method, "GET" | "HEAD" | "POST") {
        return Ok(page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "Use the link, then confirm.",
        ));
    }
    let param = |name: &str| request.params.get(name).map(String::as_str);
    let id = param("id").and_then(ApprovalId::parse);
    let key = param("key").and_then(ApprovalId::parse);
    // `decision` is optional (the key's own decision) but, when given (the
    // page's buttons send it), must be valid and one the key permits.
    let claimed = match param("decision").map(Decision::parse) {
        None => None,
        Some(Some(decision)) => Some(decision),
        Some(None) => return Ok(bad_link()),
    };
    let (Some(id), Some(key)) = (id, key) else {
        return Ok(bad_link());
    };
    // Which decisions this link may make: its key's, checked before anything
    // is consumed, so a wrong key burns nothing. Nothing here writes: an
    // expired record is left to SSM's expiration policy, so opening (or
    // re-posting) any link that cannot decide changes no state.
    let record = match peek(store, now, &id).await? {
        Ok(record) => record,
        Err(reason) => return Ok(gone(reason)),
    };
    let Some(granted) = record.decision_for(&key) else {
        return Ok(gone(GoneReason::UnknownOrUsed));
    };
    let decision = claimed.unwrap_or(granted);
    if !granted.permits(decision) {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Bad link",
            "This link can only deny; use the approve link you were sent to approve.",
        ));
    }
    if method != "POST" {
        return Ok(confirm_page(&id, &key, granted, &record, now));
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
            page(StatusCode::OK, title, &text)
        }
    })
}

fn bad_link() -> LambdaFunctionUrlResponse {
    page(
        StatusCode::BAD_REQUEST,
        "Bad link",
        "The link needs an `id` and a `key` (and, if given, a `decision` of approve or deny).",
    )
}

fn gone(reason: GoneReason) -> LambdaFunctionUrlResponse {
    page(StatusCode::GONE, "Link no longer valid", reason.message())
}

/// The characters HTML element and attribute content must not carry as is.
const HTML_ENTITIES: &[(char, &str)] = &[
    ('&', "&amp;"),
    ('<', "&lt;"),
    ('>', "&gt;"),
    ('"', "&quot;"),
    ('\'', "&#39;"),
];

/// Escape text for HTML element and attribute content.
pub fn escape(text: &str) -> String {
    escape_with(text, HTML_ENTITIES)
}

/// `text` with each character `entities` names replaced by its entity:
/// the one escaping loop behind the HTML page and Slack's mrkdwn, which
/// differ only in the characters they escape.
pub fn escape_with(text: &str, entities: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match entities.iter().find(|(from, _)| *from == c) {
            Some((_, entity)) => out.push_str(entity),
            None => out.push(c),
        }
    }
    out
}

fn headers() -> HeaderMap {
    HeaderMap::from_iter([
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        // The id is a capability: never leak it through Referer or framing.
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // Inline CSS only: no script, image, font or other origin.
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
    ])
}

/// The pages' one stylesheet: a narrow column that fits a phone, buttons a
/// thumb can hit, long image names that wrap instead of widening the page.
const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;line-height:1.45;\
margin:0;padding:1rem;color:#1b1f24;background:#fff}main{max-width:40rem;margin:0 auto}\
h1{font-size:1.4rem;margin:.2rem 0 .6rem}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem .8rem;margin:.4rem 0}dt{color:#57606a}dd{margin:0}\
dd,li,p{overflow-wrap:anywhere}code{font-size:.9em;background:#f3f4f6;padding:0 .2em;border-radius:3px}\
ul{padding-left:1.1rem;margin:.3rem 0}li{margin:.3rem 0}.failing{color:#b42318;font-weight:600}\
.note{font-size:.9rem;color:#57606a}.warn{color:#9a6700}.expiry{font-weight:600}\
.buttons{display:flex;gap:.8rem;margin:1.2rem 0}button{flex:1;font-size:1.1rem;padding:.8rem;border:0;border-radius:8px;color:#fff}\
.approve{background:#1a7f37}.deny{background:#cf222e}small{color:#57606a;overflow-wrap:anywhere}";

/// A whole page: `body` is already escaped HTML.
fn html(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>selfheal: {t}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        t = escape(title),
    )
}

/// A Function URL response (payload format 2.0). Its `cookies` is always
/// serialized, here empty: Function URL emulators read payload 2.0 with a
/// required `cookies` list and answer 500 without it.
fn response(status: StatusCode, body: String) -> LambdaFunctionUrlResponse {
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(status.as_u16());
    response.headers = headers();
    response.body = Some(body);
    response.is_base64_encoded = false;
    response
}

fn page(status: StatusCode, title: &str, text: &str) -> LambdaFunctionUrlResponse {
    let body = format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text));
    response(status, html(title, &body))
}

/// `2026-12-06 05:00 UTC (in 59 minutes)`.
fn expiry(at: Timestamp, now: Timestamp) -> String {
    let minutes = ((at.as_second() - now.as_second()).max(0) + 59) / 60;
    let left = match minutes {
        0 | 1 => "in less than a minute".to_owned(),
        m if m < 120 => format!("in {m} minutes"),
        m => format!("in {} hours {} minutes", m / 60, m % 60),
    };
    format!("{} ({left})", at.strftime("%Y-%m-%d %H:%M UTC"))
}

/// The plan's part of the page: what, where, what changes and why.
fn plan_html(plan: &crate::ApprovalPlan) -> String {
    let mut out = String::from("<dl id=\"target\">");
    let mut row = |name: &str, value: &str| {
        out.push_str(&format!("<dt>{name}</dt><dd>{}</dd>", escape(value)));
    };
    row("Workload", &plan.workload);
    row("Namespace", &plan.namespace);
    row(
        "Cluster",
        plan.cluster
            .as_deref()
            .unwrap_or("(the function's cluster)"),
    );
    row("Action", plan.action.as_str());
    out.push_str("</dl>");
    if !plan.changes.is_empty() || plan.preview.is_some() {
        out.push_str("<h2>What will change</h2><ul id=\"changes\">");
        for c in &plan.changes {
            out.push_str(&format!(
                "<li><b>{}</b><br><code>{}</code><br>→ <code>{}</code></li>",
                escape(&c.container),
                escape(&c.from),
                escape(&c.to)
            ));
        }
        out.push_str("</ul>");
        // A validated plan needs no more words (the dry run's sentence
        // repeats the list above); otherwise the preview says why not.
        let note = match (&plan.validated, plan.preview.as_deref()) {
            (true, _) => {
                "<p id=\"preview\" class=\"note\">The API server accepted this change in a dry run \
                          when the approval was requested; nothing has changed yet.</p>"
                    .to_owned()
            }
            (false, said) => format!(
                "<p id=\"preview\" class=\"note warn\">Not validated by a dry run{}</p>",
                said.map(|s| format!(": {}", escape(s))).unwrap_or_default()
            ),
        };
        out.push_str(&note);
    }
    if !plan.evidence.is_empty() || plan.alarm.is_some() || plan.reason.is_some() {
        out.push_str("<h2>Why</h2>");
    }
    if !plan.evidence.is_empty() {
        out.push_str("<ul id=\"evidence\">");
        for e in &plan.evidence {
            let class = if e.failing { " class=\"failing\"" } else { "" };
            out.push_str(&format!("<li{class}>{}</li>", escape(&e.text)));
        }
        out.push_str("</ul>");
    }
    if plan.alarm.is_some() || plan.reason.is_some() {
        out.push_str("<dl id=\"alarm\">");
        for (name, value) in [("Alarm", &plan.alarm), ("Reason", &plan.reason)] {
            if let Some(value) = value {
                out.push_str(&format!("<dt>{name}</dt><dd>{}</dd>", escape(value)));
            }
        }
        out.push_str("</dl>");
    }
    out
}

/// The page a link opens: everything the decision is about, then the form.
/// An approve link's page offers Approve and Deny; a deny link's, Deny only.
fn confirm_page(
    id: &ApprovalId,
    key: &ApprovalId,
    granted: Decision,
    record: &crate::ApprovalRecord,
    now: Timestamp,
) -> LambdaFunctionUrlResponse {
    let what = match &record.plan {
        Some(plan) => format!("{} of {}", plan.action.as_str(), plan.workload),
        None => record.summary.clone(),
    };
    let title = match granted {
        Decision::Approve => format!("Approve {what}?"),
        Decision::Deny => format!("Deny {what}?"),
    };
    let details = match &record.plan {
        Some(plan) => plan_html(plan),
        None => format!("<p>{}</p>", escape(&record.summary)),
    };
    let mut buttons = String::new();
    for decision in [Decision::Approve, Decision::Deny] {
        if granted.permits(decision) {
            let (value, label) = (decision.as_str(), title_case(decision));
            buttons.push_str(&format!(
                "<button type=\"submit\" name=\"decision\" value=\"{value}\" class=\"{value}\">{label}</button>"
            ));
        }
    }
    let only_deny = if granted == Decision::Deny {
        "<p class=\"note\">This link can only deny.</p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>{h}</h1><p class=\"note\">selfheal asks before it acts; nothing happens until you press a button.</p>\
         {details}<p id=\"expires\" class=\"expiry\">This request expires {x}.</p>\
         <form method=\"post\" action=\"approve\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
         <input type=\"hidden\" name=\"key\" value=\"{k}\"><div class=\"buttons\">{buttons}</div></form>{only_deny}\
         <p><small>Execution {e}</small></p>",
        h = escape(&title),
        x = escape(&expiry(record.expires_at, now)),
        id = escape(id.as_str()),
        k = escape(key.as_str()),
        e = escape(&record.execution),
    );
    response(StatusCode::OK, html(&title, &body))
}

fn title_case(decision: Decision) -> &'static str {
    match decision {
        Decision::Approve => "Approve",
        Decision::Deny => "Deny",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::mint;
    use crate::tests::{FakeCallback, MemoryStore, id_of, param_of, setup, t};

    /// A Function URL request (payload format 2.0) as Lambda delivers it,
    /// with `http` as its `requestContext.http`.
    fn event(path: &str, query: &str, http: Value, body: Option<&str>, base64: bool) -> Value {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": {"content-type": "application/x-www-form-urlencoded"},
            "requestContext": {
                "accountId": "anonymous", "apiId": "abcdefghij",
                "domainName": "abcdefghij.lambda-url.eu-west-1.on.aws", "domainPrefix": "abcdefghij",
                "http": http, "requestId": "r-1", "routeKey": "$default", "stage": "$default",
                "time": "27/Nov/2026:10:00:00 +0000", "timeEpoch": 1_795_773_600_000_i64
            },
            "body": body, "isBase64Encoded": base64
        })
    }

    fn request(event: &Value) -> HttpRequest {
        parse_event(event).unwrap()
    }

    fn get(path: &str, query: &str) -> HttpRequest {
        request(&event(path, query, json!({"method": "GET"}), None, false))
    }

    fn post(body: &str, base64: bool) -> HttpRequest {
        let body = if base64 {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(body)
        } else {
            body.to_owned()
        };
        request(&event(
            "/approve",
            "",
            json!({"method": "POST"}),
            Some(&body),
            base64,
        ))
    }

    /// The response's body (every page has one).
    fn text(response: &LambdaFunctionUrlResponse) -> &str {
        response.body.as_deref().unwrap()
    }

    #[tokio::test]
    async fn get_confirms_without_deciding_then_post_decides_once() {
        let (store, cb, now) = setup(true);
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
        assert!(text(&page).contains("method=\"post\""));
        assert!(
            text(&page).contains("rollback shop/checkout &lt;api&gt;"),
            "{}",
            text(&page)
        );
        assert!(text(&page).contains(id.as_str()));
        assert_eq!(page.headers["referrer-policy"], "no-referrer");
        assert!(cb.calls.lock().unwrap().is_empty(), "GET must not decide");

        let form = query;
        let done = handle(&store, &cb, now, &post(form, true)).await.unwrap();
        assert_eq!(done.status_code, 200, "{}", text(&done));
        assert!(text(&done).contains("Approved"));
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
        let (store, cb, now) = setup(true);
        let scope = crate::DeploymentScope::of(Some("prod"), "shop", "checkout");
        let request = crate::MintRequest {
            base_url: "https://u",
            now,
            ttl_seconds: 300,
            task_token: "TOK",
            execution: "arn:e",
            summary: "rollback shop/checkout",
            plan: None,
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
        assert_eq!(page.status_code, 200, "{}", text(&page));
        assert!(text(&page).contains(id_of(&links.deny_url).as_str()));
        let done = handle(&store, &cb, now, &post(query, false)).await.unwrap();
        assert_eq!(done.status_code, 200, "{}", text(&done));
        assert!(text(&done).contains("Denied"));
        assert!(store.0.lock().unwrap().is_empty(), "denied record deleted");
    }

    #[tokio::test]
    async fn expired_link_is_410_on_get_and_post() {
        let (store, cb, now) = setup(true);
        let links = mint(&store, "https://u", now, 5, "TOK", "arn:e", "s")
            .await
            .unwrap();
        let query = links.deny_url.split('?').nth(1).unwrap();
        let later = t("2026-11-27T10:00:06Z");
        let r = handle(&store, &cb, later, &get("/approve", query))
            .await
            .unwrap();
        assert_eq!(r.status_code, 410);
        assert!(text(&r).contains("expired"));
        let r = handle(&store, &cb, later, &post(query, false))
            .await
            .unwrap();
        assert_eq!(r.status_code, 410);
        assert!(cb.calls.lock().unwrap().is_empty());
        // Nothing written: SSM's expiration policy removes the record.
        assert_eq!(store.0.lock().unwrap().len(), 1, "expired record untouched");
    }

    #[tokio::test]
    async fn bad_requests_get_clear_statuses() {
        let (store, cb, now) = setup(true);
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
        let put = get("/approve", &format!("id={id}&decision=deny"));
        let put = HttpRequest {
            method: "PUT".into(),
            ..put
        };
        assert_eq!(
            handle(&store, &cb, now, &put).await.unwrap().status_code,
            405
        );
    }

    /// What does not decode as a Function URL request (not an object, no
    /// `requestContext`, fields of the wrong type, or without the
    /// `timeEpoch` and `isBase64Encoded` Lambda always sends) is answered as
    /// a link without `id` and `key`: 400, nothing read or decided.
    #[tokio::test]
    async fn an_unreadable_event_is_a_bad_link() {
        let (store, cb, now) = setup(true);
        let links = minted(&store, now).await;
        let query = links.approve_url.split('?').nth(1).unwrap();
        let mut wrong_type = event("/approve", query, json!({"method": "GET"}), None, false);
        wrong_type["isBase64Encoded"] = json!("no");
        let unreadable = [
            json!("x"),
            json!(null),
            json!([1, 2]),
            json!({}),
            json!({"rawPath": "/approve", "rawQueryString": query, "requestContext": 5}),
            json!({"rawPath": "/approve", "rawQueryString": query,
                "requestContext": {"http": {"method": "GET"}}}),
            wrong_type,
        ];
        for payload in unreadable {
            let r = answer(&store, &cb, now, &payload).await.unwrap();
            assert_eq!(r.status_code, 400, "{payload}");
            assert!(text(&r).contains("<h1>Bad link</h1>"), "{}", text(&r));
        }
        assert!(cb.calls.lock().unwrap().is_empty(), "nothing decided");
        assert_eq!(store.0.lock().unwrap().len(), 1, "nothing consumed");
        // The same link in a whole event opens its page.
        let whole = event("/approve", query, json!({"method": "GET"}), None, false);
        let page = answer(&store, &cb, now, &whole).await.unwrap();
        assert_eq!(page.status_code, 200, "{}", text(&page));
    }

    /// The answer is payload format 2.0 with `cookies` always present (an
    /// empty list): Function URL emulators answer 500 without it.
    #[test]
    fn the_response_always_sends_cookies() {
        let json = serde_json::to_value(bad_link()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "body",
                "cookies",
                "headers",
                "isBase64Encoded",
                "statusCode"
            ]
        );
        assert_eq!(json["statusCode"], 400);
        assert_eq!(json["cookies"], json!([]));
        assert_eq!(json["isBase64Encoded"], false);
        assert_eq!(json["headers"]["content-type"], "text/html; charset=utf-8");
        assert_eq!(json["headers"]["referrer-policy"], "no-referrer");
        assert!(
            json["body"]
                .as_str()
                .unwrap()
                .starts_with("<!doctype html>")
        );
    }

    /// A Function URL POST as a browser (or curl) sends it.
    fn post_from(query: &str, body: &str, source_ip: &str, user_agent: &str) -> HttpRequest {
        let http = json!({"method": "POST", "sourceIp": source_ip, "userAgent": user_agent});
        request(&event("/approve", query, http, Some(body), false))
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

    /// A POST decides only with its form: merging the link's query string in
    /// would let `curl -X POST '<link>'` (a link preview, a scanner) decide.
    #[tokio::test]
    async fn a_bare_post_of_the_link_decides_nothing() {
        let (store, cb, now) = setup(true);
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
            assert_eq!(r.status_code, 400, "{}", text(&r));
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
        assert_eq!(r.status_code, 200, "{}", text(&r));
        assert_eq!(cb.calls.lock().unwrap()[0].0, "success");
    }

    /// Each link's id is bound to its decision, so editing a deny link's
    /// `decision=deny` into `decision=approve` is refused.
    #[tokio::test]
    async fn a_deny_link_cannot_approve() {
        let (store, cb, now) = setup(true);
        let links = minted(&store, now).await;
        let deny_query = links.deny_url.split('?').nth(1).unwrap();
        let forged = deny_query.replace("decision=deny", "decision=approve");
        assert_ne!(forged, deny_query);
        let r = handle(&store, &cb, now, &get("/approve", &forged))
            .await
            .unwrap();
        assert_eq!(r.status_code, 400, "{}", text(&r));
        let r = handle(&store, &cb, now, &post(&forged, false))
            .await
            .unwrap();
        assert_eq!(r.status_code, 400, "{}", text(&r));
        // A guessed key is an unknown link, and burns nothing.
        let guessed = format!("id={}&key={}", id_of(&links.deny_url), "g".repeat(43));
        let r = handle(&store, &cb, now, &post(&guessed, false))
            .await
            .unwrap();
        assert_eq!(r.status_code, 410, "{}", text(&r));
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
        assert!(
            text(&page).contains("<h1>Deny rollback shop/checkout?</h1>"),
            "{}",
            text(&page)
        );
        assert!(
            !text(&page).contains("value=\"approve\""),
            "{}",
            text(&page)
        );
        let r = handle(&store, &cb, now, &post(&key_only, false))
            .await
            .unwrap();
        assert_eq!(r.status_code, 200, "{}", text(&r));
        let calls = cb.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, "failure");
    }

    /// The approve link's page offers both decisions, and its Deny denies
    /// (denying changes nothing, so the approve link may do it too).
    #[tokio::test]
    async fn an_approve_link_may_also_deny() {
        let (store, cb, now) = setup(true);
        let links = minted(&store, now).await;
        let query = links.approve_url.split('?').nth(1).unwrap();
        let page = handle(&store, &cb, now, &get("/approve", query))
            .await
            .unwrap();
        for button in ["value=\"approve\"", "value=\"deny\""] {
            assert!(text(&page).contains(button), "{button}: {}", text(&page));
        }
        let deny = query.replace("decision=approve", "decision=deny");
        let r = handle(&store, &cb, now, &post(&deny, false)).await.unwrap();
        assert_eq!(r.status_code, 200, "{}", text(&r));
        assert!(text(&r).contains("Denied"), "{}", text(&r));
        let calls = cb.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, "failure");
        assert!(store.0.lock().unwrap().is_empty(), "decided record deleted");
    }

    /// The decision names who made it, in the log and in what the waiting
    /// execution receives (the audit trail an approver is accountable to).
    #[tokio::test]
    async fn the_decision_names_the_caller() {
        let (store, cb, now) = setup(true);
        // Posts the form of a fresh link, approve or deny, from `ip` and
        // `agent`; the callback's calls so far.
        let decide = async |deny: bool, ip: &str, agent: &str| {
            let links = minted(&store, now).await;
            let url = if deny {
                links.deny_url
            } else {
                links.approve_url
            };
            let form = url.split('?').nth(1).unwrap();
            let r = handle(&store, &cb, now, &post_from("", form, ip, agent))
                .await
                .unwrap();
            assert_eq!(r.status_code, 200, "{}", text(&r));
            cb.calls.lock().unwrap().clone()
        };
        let calls = decide(false, "203.0.113.7", "Mozilla/5.0 (X11)").await;
        let output: Value = serde_json::from_str(&calls[0].2).unwrap();
        assert_eq!(output["decision"], "approve");
        assert_eq!(output["decidedAt"], "2026-11-27T10:00:00Z");
        assert_eq!(
            output["decidedBy"],
            json!({"sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0 (X11)"})
        );

        let calls = decide(true, "2001:db8::1", "curl/8.5.0\n<!channel>").await;
        assert_eq!(calls[1].0, "failure");
        assert_eq!(
            calls[1].2,
            "SelfhealApprovalDenied: Denied through an approval link at 2026-11-27T10:00:00Z from 2001:db8::1 (curl/8.5.0<!channel>)."
        );
    }

    pub(crate) fn sample_plan() -> crate::ApprovalPlan {
        crate::ApprovalPlan {
            action: selfheal_contract::Action::Rollback,
            cluster: Some("prod-eks".into()),
            namespace: "shop".into(),
            workload: "Deployment checkout".into(),
            changes: vec![crate::PlannedChange {
                container: "api".into(),
                from: "registry.example/shop/api:1.2.0".into(),
                to: "registry.example/shop/api:1.1.0".into(),
            }],
            validated: true,
            preview: Some("dry run: would roll back <api>".into()),
            evidence: vec![
                crate::PlanEvidence {
                    container: "api".into(),
                    failing: true,
                    text: "api: CrashLoopBackOff on 2/2 new pods, 7 restarts".into(),
                },
                crate::PlanEvidence {
                    container: "envoy".into(),
                    failing: false,
                    text: "envoy: healthy".into(),
                },
            ],
            alarm: Some("checkout-5xx (cloudwatch, impact 2.40)".into()),
            reason: Some("5xx rate \"above\" 5% & <rising>".into()),
        }
    }

    /// Mints an approval of `plan` in `store` and opens its approve link a
    /// minute later: the links and the page.
    async fn open_page(
        store: &MemoryStore,
        cb: &FakeCallback,
        now: Timestamp,
        plan: crate::ApprovalPlan,
    ) -> (crate::ApprovalLinks, LambdaFunctionUrlResponse) {
        let request = crate::MintRequest {
            base_url: "https://u",
            now,
            ttl_seconds: 3600,
            task_token: "TOK",
            execution: "arn:e",
            summary: "rollback of Deployment shop/checkout",
            plan: Some(plan),
            deployment: None,
        };
        let links = crate::mint_for(store, &request).await.unwrap();
        let query = links.approve_url.split('?').nth(1).unwrap();
        let page = handle(
            store,
            cb,
            t("2026-11-27T10:01:00Z"),
            &get("/approve", query),
        )
        .await
        .unwrap();
        (links, page)
    }

    /// The page names everything the decision is about, escaped, before any
    /// decision, and fits a phone (viewport, no external resource).
    #[tokio::test]
    async fn the_page_shows_the_plan_evidence_alarm_and_expiry() {
        let (store, cb, now) = setup(true);
        let (links, page) = open_page(&store, &cb, now, sample_plan()).await;
        let body = &text(&page);
        for needle in [
            "<h1>Approve rollback of Deployment checkout?</h1>",
            "<dt>Namespace</dt><dd>shop</dd>",
            "<dt>Cluster</dt><dd>prod-eks</dd>",
            "<dt>Action</dt><dd>rollback</dd>",
            "<b>api</b><br><code>registry.example/shop/api:1.2.0</code><br>→ <code>registry.example/shop/api:1.1.0</code>",
            "accepted this change in a dry run when the approval was requested; nothing has changed yet.",
            "<li class=\"failing\">api: CrashLoopBackOff on 2/2 new pods, 7 restarts</li>",
            "<li>envoy: healthy</li>",
            "<dd>checkout-5xx (cloudwatch, impact 2.40)</dd>",
            "<dd>5xx rate &quot;above&quot; 5% &amp; &lt;rising&gt;</dd>",
            "expires 2026-11-27 11:00 UTC (in 59 minutes)",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            "value=\"approve\"",
            "value=\"deny\"",
        ] {
            assert!(body.contains(needle), "{needle}\n{body}");
        }
        for external in ["src=", "href=", "<script", "url("] {
            assert!(!body.contains(external), "{external} in {body}");
        }
        assert!(
            page.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'"),
            "{:?}",
            page.headers
        );
        assert!(cb.calls.lock().unwrap().is_empty(), "GET must not decide");
        // Opening it changed nothing in the store.
        let stored = store
            .get(&id_of(&links.approve_url))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.plan, Some(sample_plan()));
    }

    /// A StatefulSet's or DaemonSet's approval names its kind where a
    /// Deployment's does (notify's plan says `StatefulSet ledger`).
    #[tokio::test]
    async fn the_page_names_a_statefulset_or_daemonset() {
        for workload in ["StatefulSet ledger", "DaemonSet node-agent"] {
            let (store, cb, now) = setup(true);
            let plan = crate::ApprovalPlan {
                namespace: "data".into(),
                workload: workload.into(),
                ..sample_plan()
            };
            let (_, page) = open_page(&store, &cb, now, plan).await;
            for needle in [
                format!("<h1>Approve rollback of {workload}?</h1>"),
                format!("<dt>Workload</dt><dd>{workload}</dd>"),
                "<dt>Namespace</dt><dd>data</dd>".to_owned(),
            ] {
                assert!(text(&page).contains(&needle), "{needle}\n{}", text(&page));
            }
        }
    }

    #[test]
    fn escape_covers_html_specials() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
