//! The approval page in a real browser: headless Chromium, driven through
//! chromedriver (Debian's `chromium`, `chromium-driver`,
//! scripts/deps/45-chromium.sh) by the `fantoccini` WebDriver client, at a
//! phone's viewport.
//!
//! What runs: the real `notify` and `approve` functions behind cargo-lambda's
//! emulator (Function URL emulation for approve), the approval records in
//! SSM and the waiting task in Step Functions, both moto. moto runs the
//! Step Functions side for real (`execute_state_machine`): an execution
//! waits in a `.waitForTaskToken` Task whose token travels through an SQS
//! queue, and only a `SendTaskSuccess`/`SendTaskFailure` with that token
//! ends it, so the execution's status and history show exactly what the
//! page did. The plan the page shows is the dry run of the real planner
//! (`selfheal run --dry-run` on examples/checkout-snapshot.yaml), as the
//! state machine's preview passes it to notify.
//!
//! A person opens the approve link: the page shows the workload, the image
//! change, the pods' evidence, the alarm and the expiry, and opening it
//! changed nothing; Approve answers the task once; the same form posted
//! again (a second tab) says the link is used and changes nothing. The deny
//! link offers Deny only, and denies. An expired or unknown link shows a
//! clear page and changes nothing. Screenshots: target/screenshots/.
//! Skipped with a message when a tool is missing, unless
//! `SELFHEAL_REQUIRE_TOOLS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use selfheal_approval::{ApprovalId, ApprovalLinks, ApprovalRecord, links_for};
use selfheal_tests::emulator::Emulator;
use selfheal_tests::tools::{
    Moto, build_workspace_bins, cargo_lambda_binary, file_tool, free_port, http_request,
    kill_group, spawn_listening, tool_or_skip, workspace_bin, workspace_root, xml_text,
};
use serde_json::{Value, json};

const TEST: &str = "approval_browser";
const ACCOUNT: &str = "123456789012";
const PREFIX: &str = "/selfheal/browser/approvals";
/// A phone's user agent, so the page is served as to a phone.
const USER_AGENT: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/148.0 Mobile Safari/537.36 selfheal-approval-browser";

struct Tools {
    cargo_lambda: PathBuf,
    moto: PathBuf,
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn find_tools() -> Result<Tools, String> {
    let install = "scripts/deps/45-chromium.sh";
    Ok(Tools {
        cargo_lambda: cargo_lambda_binary()?,
        moto: Moto::binary()?,
        chromium: file_tool(PathBuf::from("/usr/bin/chromium"), install)?,
        chromedriver: file_tool(PathBuf::from("/usr/bin/chromedriver"), install)?,
    })
}

/// chromedriver on a free port, killed (with the browsers it started) on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(bin: &Path, log: &Path) -> Driver {
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--port={port}"));
        Driver {
            child: spawn_listening(cmd, log, port, "chromedriver").await,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A headless Chromium session with a phone's viewport (390×844 CSS px).
    async fn phone(&self, chromium: &Path) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                "mobileEmulation": {
                    "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0},
                    "userAgent": USER_AGENT
                }
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// moto's Step Functions, executing: one state machine whose only state
/// waits for its task token, which it sends to an SQS queue.
struct Waiting<'a> {
    moto: &'a Moto,
    machine: String,
    queue: String,
}

impl<'a> Waiting<'a> {
    async fn create(moto: &'a Moto) -> Waiting<'a> {
        let (status, _, body) = http_request(
            "POST",
            &format!("{}/moto-api/config", moto.url),
            &[("content-type", "application/json")],
            br#"{"stepfunctions": {"execute_state_machine": true}}"#.to_vec(),
            Duration::from_secs(10),
        )
        .await;
        assert!(
            (200..300).contains(&status),
            "{status} {}",
            String::from_utf8_lossy(&body)
        );
        let queue = moto.create_queue("tokens").await;
        let definition = json!({"StartAt": "RequestApproval", "States": {"RequestApproval": {
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": queue, "MessageBody": {
                "token.$": "$$.Task.Token", "execution.$": "$$.Execution.Id"}},
            "End": true}}});
        let machine = moto
            .json_call(
                "AWSStepFunctions",
                "CreateStateMachine",
                &json!({"name": "approval-wait", "definition": definition.to_string(),
                    "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/states")}),
            )
            .await["stateMachineArn"]
            .as_str()
            .unwrap()
            .to_owned();
        Waiting {
            moto,
            machine,
            queue,
        }
    }

    /// Starts an execution; returns its ARN and the token it waits with.
    async fn start(&self, name: &str) -> (String, String) {
        let arn = self
            .moto
            .json_call(
                "AWSStepFunctions",
                "StartExecution",
                &json!({"stateMachineArn": self.machine, "name": name, "input": "{}"}),
            )
            .await["executionArn"]
            .as_str()
            .unwrap()
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for body in self.moto.sqs_take(&self.queue).await {
                let body: Value = serde_json::from_str(&body).unwrap();
                if body["execution"] == arn.as_str() {
                    return (arn, body["token"].as_str().unwrap().to_owned());
                }
            }
            assert!(Instant::now() < deadline, "{name}: no task token");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn describe(&self, arn: &str) -> Value {
        self.moto
            .json_call(
                "AWSStepFunctions",
                "DescribeExecution",
                &json!({"executionArn": arn}),
            )
            .await
    }

    /// The execution once it left RUNNING (the callback is asynchronous).
    async fn ended(&self, arn: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = self.describe(arn).await;
            if d["status"] != "RUNNING" {
                return d;
            }
            assert!(Instant::now() < deadline, "{arn} still running");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many history events of `kind` (e.g. `TaskSucceeded`) it has.
    async fn events(&self, arn: &str, kind: &str) -> usize {
        let history = self
            .moto
            .json_call(
                "AWSStepFunctions",
                "GetExecutionHistory",
                &json!({"executionArn": arn}),
            )
            .await;
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .count()
    }
}

/// Every approval record in SSM: id → stored value.
async fn records(moto: &Moto) -> Vec<(ApprovalId, ApprovalRecord)> {
    let listed = moto
        .json_call(
            "AmazonSSM",
            "GetParametersByPath",
            &json!({"Path": PREFIX, "Recursive": true, "WithDecryption": true}),
        )
        .await;
    listed["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["Name"].as_str().unwrap();
            let id = name.strip_prefix(&format!("{PREFIX}/")).unwrap();
            let id = ApprovalId::parse(&id.replace('/', ".")).unwrap();
            (
                id,
                serde_json::from_str(p["Value"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// The record notify stored for `token`, if it is still there.
async fn record_for(moto: &Moto, token: &str) -> Option<(ApprovalId, ApprovalRecord)> {
    records(moto)
        .await
        .into_iter()
        .find(|(_, r)| r.task_token == token)
}

/// The rollback request an alarm starts, and its dry run by the real planner
/// on the example snapshot (the CLI's offline mode), as the state machine's
/// preview hands it to notify.
fn request_and_preview() -> (Value, Value) {
    let request = json!({
        "action": "rollback",
        "target": {"cluster": "prod-eks", "namespace": "shop", "deployment": "checkout"},
        "reason": "5xx rate above 5% for 3 minutes",
        "alarm": {"source": "cloudwatch", "name": "checkout-5xx", "impactScore": 2.4}
    });
    let mut child = Command::new(workspace_bin("selfheal"))
        .current_dir(workspace_root())
        .args(["run", "--request", "-", "--dry-run", "--snapshot"])
        .arg("examples/checkout-snapshot.yaml")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        request.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "selfheal run --dry-run failed");
    let preview: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(preview["status"], "dryRun", "{preview:#}");
    (request, preview)
}

/// Asks for an approval the way the state machine does (notify's
/// `approvalRequested`, with the preview) and returns the links it minted.
async fn ask(w: &World<'_>, name: &str, timeout_seconds: u64) -> (String, String, ApprovalLinks) {
    let (arn, token) = w.sfn.start(name).await;
    let mut request = w.request.clone();
    request["execution"] = json!(arn);
    let event = json!({"event": "approvalRequested",
        "execution": {"id": arn, "name": name},
        "request": request, "preview": w.preview, "outcome": null,
        "taskToken": token, "timeoutSeconds": timeout_seconds});
    let out = w.emulator.ok("notify", &event).await;
    assert!(out["approvalExpiresAt"].is_string(), "{out}");
    let (id, record) = record_for(w.moto, &token).await.expect("a stored record");
    let links = links_for(&w.emulator.function_url("approve"), &id, &record);
    (arn, token, links)
}

struct World<'a> {
    moto: &'a Moto,
    sfn: Waiting<'a>,
    emulator: &'a Emulator,
    request: Value,
    preview: Value,
}

async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Nothing on the page matches `css`.
async fn absent(client: &Client, css: &str) -> bool {
    client.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

async fn screenshot(client: &Client, name: &str) {
    let dir = workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// Presses a decision button and waits for the page the form's POST answers.
async fn click(client: &Client, decision: &str) {
    let asked = text(client, "h1").await;
    client
        .find(Locator::Css(&format!("button[value={decision}]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(h1) = client.find(Locator::Css("h1")).await
            && h1.text().await.is_ok_and(|t| t != asked)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{decision}: no answer page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens `url`; the page's heading.
async fn heading_at(client: &Client, url: &str) -> String {
    client.goto(url).await.unwrap();
    text(client, "h1").await
}

/// Approve: the page before any decision, one decision, a second POST.
async fn approve_once(w: &World<'_>, client: &Client) {
    let (arn, token, links) = ask(w, "approve-once", 3600).await;
    assert_eq!(
        heading_at(client, &links.approve_url).await,
        "Approve rollback of Deployment checkout?"
    );
    let target = text(client, "#target").await;
    for want in ["Deployment checkout", "shop", "prod-eks", "rollback"] {
        assert!(target.contains(want), "{want} not in {target}");
    }
    assert_eq!(
        text(client, "#changes").await,
        "api\nregistry.example/shop/api:1.2.0\n→ registry.example/shop/api:1.1.0"
    );
    assert!(
        text(client, "#preview")
            .await
            .starts_with("The API server accepted this change in a dry run"),
    );
    let failing = text(client, "#evidence .failing").await;
    assert!(
        failing.starts_with("api: CrashLoopBackOff on 1/1 new pods"),
        "{failing}"
    );
    assert!(text(client, "#evidence").await.contains("envoy: healthy"));
    let alarm = text(client, "#alarm").await;
    for want in [
        "checkout-5xx (cloudwatch), impact 2.40",
        "5xx rate above 5% for 3 minutes",
    ] {
        assert!(alarm.contains(want), "{want} not in {alarm}");
    }
    let expires = text(client, "#expires").await;
    let at = links.expires_at.strftime("%Y-%m-%d %H:%M UTC").to_string();
    assert!(expires.contains(&at), "{at} not in {expires}");
    assert!(expires.contains("(in 60 minutes)"), "{expires}");
    for decision in ["approve", "deny"] {
        let button = client
            .find(Locator::Css(&format!("button[value={decision}]")))
            .await
            .unwrap();
        assert!(button.is_displayed().await.unwrap(), "{decision} hidden");
    }
    // Readable on a phone: nothing wider than the viewport.
    let widths = client
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await
        .unwrap();
    assert!(widths[0].as_u64() <= widths[1].as_u64(), "{widths}");
    screenshot(client, "approval.png").await;

    // Opening the link changed nothing.
    let stored = record_for(w.moto, &token).await;
    assert!(stored.is_some(), "opening the page consumed the record");
    assert_eq!(w.sfn.describe(&arn).await["status"], "RUNNING");

    // The same page in a second tab (a second approver, a double submit).
    let first = client.window().await.unwrap();
    let second = client.new_window(true).await.unwrap().handle;
    client.switch_to_window(second.clone()).await.unwrap();
    client.goto(&links.approve_url).await.unwrap();
    client.switch_to_window(first).await.unwrap();

    click(client, "approve").await;
    assert_eq!(text(client, "h1").await, "Approved");
    assert!(
        text(client, "p")
            .await
            .contains("rollback of Deployment shop/checkout"),
    );
    screenshot(client, "approved.png").await;
    let ended = w.sfn.ended(&arn).await;
    assert_eq!(ended["status"], "SUCCEEDED", "{ended:#}");
    let output: Value = serde_json::from_str(ended["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["decision"], "approve", "{output:#}");
    // The browser's address (cargo-lambda's Function URL emulation fills
    // `userAgent` with its own name, so only the address is the browser's).
    assert_eq!(output["decidedBy"]["sourceIp"], "127.0.0.1", "{output:#}");
    assert_eq!(w.sfn.events(&arn, "TaskSucceeded").await, 1);
    assert!(record_for(w.moto, &token).await.is_none(), "record kept");

    // The second tab's form, posted after the decision: a clear page, no change.
    client.switch_to_window(second).await.unwrap();
    click(client, "approve").await;
    assert_eq!(text(client, "h1").await, "Link no longer valid");
    assert!(text(client, "p").await.contains("already used"));
    screenshot(client, "used.png").await;
    client.close_window().await.unwrap();
    let first = client.windows().await.unwrap().remove(0);
    client.switch_to_window(first).await.unwrap();
    assert_eq!(w.sfn.events(&arn, "TaskSucceeded").await, 1);
    assert_eq!(w.sfn.events(&arn, "TaskFailed").await, 0);
    assert_eq!(w.sfn.describe(&arn).await["output"], ended["output"]);
}

/// The deny link offers Deny only, and its Deny fails the task once.
async fn deny(w: &World<'_>, client: &Client) {
    let (arn, token, links) = ask(w, "deny", 3600).await;
    assert_eq!(
        heading_at(client, &links.deny_url).await,
        "Deny rollback of Deployment checkout?"
    );
    assert!(
        absent(client, "button[value=approve]").await,
        "the deny link offers Approve"
    );
    assert!(text(client, "#changes").await.contains("api"));
    click(client, "deny").await;
    assert_eq!(text(client, "h1").await, "Denied");
    let ended = w.sfn.ended(&arn).await;
    assert_eq!(ended["status"], "FAILED", "{ended:#}");
    assert_eq!(ended["error"], "SelfhealApprovalDenied", "{ended:#}");
    assert_eq!(w.sfn.events(&arn, "TaskFailed").await, 1);
    assert!(record_for(w.moto, &token).await.is_none(), "record kept");
}

/// An expired link and an unknown one: a clear page each, nothing changed.
async fn expired_and_unknown(w: &World<'_>, client: &Client) {
    let (arn, token, links) = ask(w, "expired", 1).await;
    let (_, before) = record_for(w.moto, &token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        heading_at(client, &links.approve_url).await,
        "Link no longer valid"
    );
    assert!(text(client, "p").await.contains("expired"));
    assert!(
        absent(client, "button").await,
        "a gone link offers a button"
    );
    let (_, after) = record_for(w.moto, &token)
        .await
        .expect("the expired record is left to SSM's expiration policy");
    assert_eq!(after, before);
    assert_eq!(w.sfn.describe(&arn).await["status"], "RUNNING");
    assert_eq!(w.sfn.events(&arn, "TaskSucceeded").await, 0);

    let stored = records(w.moto).await.len();
    let unknown = links.approve_url.replace(
        links.approve_url.split(['=', '&']).nth(1).unwrap(),
        ApprovalId::random().as_str(),
    );
    assert_eq!(heading_at(client, &unknown).await, "Link no longer valid");
    assert!(text(client, "p").await.contains("does not exist"));
    assert_eq!(records(w.moto).await.len(), stored);
    w.moto
        .json_call(
            "AWSStepFunctions",
            "StopExecution",
            &json!({"executionArn": arn}),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_reads_the_plan_on_a_phone_and_decides_once() {
    let Some(tools) = tool_or_skip(TEST, find_tools()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bins = tokio::task::spawn_blocking(build_workspace_bins)
        .await
        .unwrap();
    for f in ["notify", "approve", "selfheal"] {
        assert!(bins.contains_key(f), "no binary {f}");
    }
    let moto = Moto::start(&tools.moto, &dir.path().join("moto.log")).await;
    let sfn = Waiting::create(&moto).await;
    let topic = moto
        .query_call(
            "sns",
            &[("Action", "CreateTopic"), ("Name", "selfheal-browser")],
        )
        .await;
    let topic = xml_text(&topic, "TopicArn").unwrap().to_owned();

    let port = free_port();
    let env: Vec<(&str, String)> = vec![
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_ENDPOINT_URL", moto.url.clone()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("SELFHEAL_TOPIC_ARN", topic),
        (
            "SELFHEAL_APPROVAL_URL",
            format!("http://127.0.0.1:{port}/lambda-url/approve"),
        ),
        ("SELFHEAL_APPROVAL_PARAM_PREFIX", PREFIX.into()),
    ];
    let emulator = Emulator::start(
        &tools.cargo_lambda,
        port,
        &env,
        dir.path().join("watch.log"),
    )
    .await;
    let driver = Driver::start(&tools.chromedriver, &dir.path().join("chromedriver.log")).await;
    let client = driver.phone(&tools.chromium).await;
    eprintln!("{TEST}: tools ready");

    let (request, preview) = request_and_preview();
    let world = World {
        moto: &moto,
        sfn,
        emulator: &emulator,
        request,
        preview,
    };
    let started = Instant::now();
    approve_once(&world, &client).await;
    eprintln!(
        "{TEST}: approve, then a second POST: {:?}",
        started.elapsed()
    );
    deny(&world, &client).await;
    eprintln!("{TEST}: deny: {:?}", started.elapsed());
    expired_and_unknown(&world, &client).await;
    eprintln!("{TEST}: expired and unknown links: {:?}", started.elapsed());
    client.close().await.unwrap();
}
