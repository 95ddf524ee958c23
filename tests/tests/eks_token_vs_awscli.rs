//! Our EKS token against the reference, `aws eks get-token` (awscli v1 in
//! `.venv-awscli`, installed by scripts/deps/20-python.sh).
//!
//! Both are signed with the same dummy credentials; ours is signed at the
//! CLI's `X-Amz-Date`, so the presigned URLs must be byte-identical, and the
//! printed ExecCredential must match the CLI's text exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use selfheal_eks::{ExecCredential, presign_token};
use selfheal_token_verifier::{TokenRejection, TokenVerifier};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
// Shaped like a real STS session token: base64 with '+', '/' and '='.
const SESSION_TOKEN: &str =
    "IQoJb3JpZ2luX2VjEJr//////////wEaCWV1LXdlc3QtMSJHMEUCIQD+example/token+value==";

/// `.venv-awscli/bin/aws`, or `None` (skip) when absent and tools are not required.
fn aws_cli() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let aws = root.join(".venv-awscli/bin/aws");
    if aws.exists() {
        return Some(aws);
    }
    if std::env::var_os("SELFHEAL_REQUIRE_TOOLS").is_some() {
        panic!(
            "{} missing and SELFHEAL_REQUIRE_TOOLS is set: run scripts/install-test-deps",
            aws.display()
        );
    }
    eprintln!(
        "SKIP: {} not installed (run scripts/install-test-deps)",
        aws.display()
    );
    None
}

struct CliOutput {
    stdout: String,
    json: serde_json::Value,
    token: String,
    url: String,
}

fn run_cli(aws: &PathBuf, cluster: &str, region: &str, session: Option<&str>) -> CliOutput {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(aws);
    cmd.args([
        "eks",
        "get-token",
        "--cluster-name",
        cluster,
        "--region",
        region,
    ])
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .env("HOME", home.path())
    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    .env("AWS_CONFIG_FILE", "/dev/null")
    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    .env("AWS_EC2_METADATA_DISABLED", "true");
    if let Some(token) = session {
        cmd.env("AWS_SESSION_TOKEN", token);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "aws eks get-token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let token = json["status"]["token"].as_str().unwrap().to_owned();
    let url = decode(&token);
    CliOutput {
        stdout,
        json,
        token,
        url,
    }
}

fn decode(token: &str) -> String {
    let b64 = token.strip_prefix("k8s-aws-v1.").expect("token prefix");
    String::from_utf8(URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
}

fn query_param<'a>(url: &'a str, name: &str) -> &'a str {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} missing in {url}"))
}

/// `X-Amz-Date` (YYYYMMDDTHHMMSSZ) → SystemTime.
fn amz_date(url: &str) -> SystemTime {
    let dt =
        jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", query_param(url, "X-Amz-Date")).unwrap();
    SystemTime::from(dt.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp())
}

fn credentials(session: Option<&str>) -> Credentials {
    Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        session.map(str::to_owned),
        None,
        "test",
    )
}

fn param_names(url: &str) -> Vec<String> {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .map(|kv| kv.split_once('=').unwrap().0.to_owned())
        .collect()
}

/// Signs ours at the CLI's second and checks everything the CLI printed.
fn compare_with_cli(cluster: &str, region: &str, session: Option<&str>) {
    let Some(aws) = aws_cli() else { return };
    let cli = run_cli(&aws, cluster, region, session);
    let signed_at = amz_date(&cli.url);
    let ours = presign_token(&credentials(session), region, cluster, signed_at).unwrap();
    let our_token = ours.token.expose_secret();
    let our_url = decode(our_token);

    // Same second, same credentials: byte-identical URL and token.
    assert_eq!(our_url, cli.url);
    assert_eq!(our_token, cli.token);
    // Spelled out, so a failure says which part drifted.
    assert!(cli.url.starts_with(&format!(
        "https://{}/?Action=GetCallerIdentity&Version=2011-06-15&",
        selfheal_eks::token::sts_host(region)
    )));
    assert_eq!(query_param(&cli.url, "X-Amz-Expires"), "60");
    assert_eq!(
        query_param(&cli.url, "X-Amz-SignedHeaders"),
        "host%3Bx-k8s-aws-id"
    );
    let mut expected_names = vec![
        "Action",
        "Version",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
    ];
    if session.is_some() {
        expected_names.push("X-Amz-Security-Token");
    }
    expected_names.push("X-Amz-Signature");
    assert_eq!(param_names(&cli.url), expected_names);
    assert_eq!(param_names(&our_url), expected_names);
    if let Some(token) = session {
        // Percent-encoded exactly like botocore ('+' '/' '=' escaped).
        let encoded = query_param(&our_url, "X-Amz-Security-Token");
        assert_eq!(encoded, query_param(&cli.url, "X-Amz-Security-Token"));
        assert!(encoded.contains("%2B") && encoded.contains("%2F") && encoded.ends_with("%3D%3D"));
        assert_eq!(
            url::form_urlencoded::parse(format!("t={encoded}").as_bytes())
                .next()
                .unwrap()
                .1,
            token
        );
    }

    // ExecCredential: same keys and order, same apiVersion, same text.
    let cli_expiration = cli.json["status"]["expirationTimestamp"].as_str().unwrap();
    let mut cred = ExecCredential::new(&ours);
    assert_eq!(cred.kind, cli.json["kind"]);
    assert_eq!(cred.api_version, cli.json["apiVersion"]);
    assert_eq!(cli.json["spec"], serde_json::json!({}));
    // Both expire 14 minutes after signing; the CLI reads its clock again
    // after signing, so allow it to be a second or two later.
    let ours_at = jiff::Timestamp::try_from(ours.expires_at).unwrap();
    let cli_at: jiff::Timestamp = cli_expiration.parse().unwrap();
    let drift = cli_at.as_second() - ours_at.as_second();
    assert!((0..=2).contains(&drift), "expiration drift {drift}s");
    assert_eq!(
        ours.expires_at,
        signed_at + Duration::from_secs(14 * 60),
        "14 minutes after X-Amz-Date"
    );
    cred.status.expiration_timestamp = cli_expiration.to_owned();
    assert_eq!(cred.to_cli_json().unwrap(), cli.stdout);

    // Our verifier accepts both (signature recomputed with the known secret)...
    let verifier = TokenVerifier::new(cluster).with_credentials(credentials(None));
    let now = signed_at + Duration::from_secs(1);
    for token in [cli.token.as_str(), our_token] {
        let ok = verifier.verify(token, now).unwrap();
        assert!(ok.signature_checked);
        assert_eq!(ok.region, region);
        assert_eq!(ok.signed_at, signed_at);
    }
    // ...and rejects the CLI's token for another cluster or after 15 minutes.
    let other = TokenVerifier::new("another-cluster").with_credentials(credentials(None));
    match other.verify(&cli.token, now) {
        Err(TokenRejection::SignatureMismatch) => {}
        other => panic!("expected SignatureMismatch, got {other:?}"),
    }
    match verifier.verify(&cli.token, signed_at + Duration::from_secs(15 * 60 + 1)) {
        Err(TokenRejection::Expired { .. }) => {}
        other => panic!("expected Expired, got {other:?}"),
    }
}

#[test]
fn token_matches_awscli_without_session_token() {
    compare_with_cli("demo", "eu-west-1", None);
}

#[test]
fn token_matches_awscli_with_session_token() {
    compare_with_cli("demo", "eu-west-1", Some(SESSION_TOKEN));
}

#[test]
fn token_matches_awscli_in_us_east_1_and_china() {
    compare_with_cli("prod-eks", "us-east-1", None);
    compare_with_cli("demo", "cn-north-1", Some(SESSION_TOKEN));
}
