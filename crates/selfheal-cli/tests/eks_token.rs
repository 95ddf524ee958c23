//! `selfheal eks-token` against the reference, `aws eks get-token` (awscli v1
//! from the project venv `.venv-awscli`), with the same dummy credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed assumption should panic
use std::path::PathBuf;
use std::process::{Command, Output};

use base64::Engine;

fn creds_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_SESSION_TOKEN", "session/token+with=odd&chars")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

fn selfheal(args: &[&str]) -> Output {
    creds_env(&mut Command::new(env!("CARGO_BIN_EXE_selfheal")))
        .args(args)
        .output()
        .unwrap()
}

/// Query parameter names and values of the presigned URL inside a token,
/// with the values that depend on the signing second blanked.
fn token_url(token: &str) -> (String, Vec<(String, String)>) {
    let b64 = token.strip_prefix("k8s-aws-v1.").expect("token prefix");
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    let (base, query) = url.split_once('?').unwrap();
    let params = query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            let v = match k {
                "X-Amz-Date" | "X-Amz-Signature" => "<varies>".to_owned(),
                _ => v.to_owned(),
            };
            (k.to_owned(), v)
        })
        .collect();
    (base.to_owned(), params)
}

#[test]
fn eks_token_prints_an_exec_credential_like_aws_eks_get_token() {
    let ours = selfheal(&[
        "eks-token",
        "--cluster-name",
        "demo",
        "--region",
        "eu-west-1",
    ]);
    assert!(
        ours.status.success(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let text = String::from_utf8(ours.stdout).unwrap();
    assert!(
        text.ends_with("}\n\n"),
        "awscli prints a trailing blank line: {text:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["kind"], "ExecCredential");
    assert_eq!(json["apiVersion"], "client.authentication.k8s.io/v1beta1");
    let token = json["status"]["token"].as_str().unwrap();
    let (base, params) = token_url(token);
    assert_eq!(base, "https://sts.eu-west-1.amazonaws.com/");
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert!(names.contains(&"X-Amz-Security-Token"), "{names:?}");
    assert!(params.contains(&("X-Amz-Expires".into(), "60".into())));
    assert!(params.contains(&("X-Amz-SignedHeaders".into(), "host%3Bx-k8s-aws-id".into())));

    let aws = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-awscli/bin/aws");
    if !aws.exists() {
        assert!(
            std::env::var_os("SELFHEAL_REQUIRE_TOOLS").is_none(),
            "awscli missing at {} (scripts/install-test-deps installs it)",
            aws.display()
        );
        eprintln!("SKIPPED reference comparison: awscli not installed");
        return;
    }
    let reference = creds_env(&mut Command::new(&aws))
        .args([
            "eks",
            "get-token",
            "--cluster-name",
            "demo",
            "--region",
            "eu-west-1",
        ])
        .output()
        .unwrap();
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let ref_text = String::from_utf8(reference.stdout).unwrap();
    let ref_json: serde_json::Value = serde_json::from_str(&ref_text).unwrap();
    // Same keys, order and layout once the time-dependent values are equal.
    let blank = |s: &str, v: &serde_json::Value| {
        s.replace(v["status"]["token"].as_str().unwrap(), "TOKEN")
            .replace(
                v["status"]["expirationTimestamp"].as_str().unwrap(),
                "EXPIRY",
            )
    };
    assert_eq!(blank(&text, &json), blank(&ref_text, &ref_json));
    let (ref_base, ref_params) = token_url(ref_json["status"]["token"].as_str().unwrap());
    // Same parameters in the same order: the token follows botocore's order
    // (signing parameters, then X-Amz-Security-Token, then X-Amz-Signature).
    // Only the signing second may differ here; tests/tests/eks_token_vs_awscli.rs
    // pins it and asserts byte-identical URLs.
    assert_eq!(base, ref_base);
    assert_eq!(params, ref_params);
}

#[test]
fn eks_token_without_region_is_one_error_line() {
    let out = selfheal(&["eks-token", "--cluster-name", "demo"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot make an EKS token"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// `--role-arn` like awscli's, against the same moto STS: both assume the
/// role and sign with its temporary credentials (another key, a session
/// token of the role's), and print the same structure.
#[tokio::test]
async fn eks_token_role_arn_signs_with_the_assumed_role_like_awscli() {
    use selfheal_tests::tools::{Moto, tool_or_skip};
    let aws = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-awscli/bin/aws");
    let test = "eks_token_role_arn_signs_with_the_assumed_role_like_awscli";
    let Some(moto_bin) = tool_or_skip(test, Moto::binary()) else {
        return;
    };
    let Some(aws) = tool_or_skip(
        test,
        aws.exists()
            .then_some(aws)
            .ok_or_else(|| "awscli missing (scripts/install-test-deps)".to_owned()),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(&moto_bin, &dir.path().join("moto.log")).await;
    let args = [
        "--cluster-name",
        "demo",
        "--region",
        "eu-west-1",
        "--role-arn",
        "arn:aws:iam::111111111111:role/eks-admin",
    ];
    let run = |program: &std::path::Path, command: &[&str]| {
        let out = creds_env(&mut Command::new(program))
            .env("AWS_ENDPOINT_URL_STS", &moto.url)
            .args(command)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let ours = run(
        std::path::Path::new(env!("CARGO_BIN_EXE_selfheal")),
        &["eks-token"],
    );
    let reference = run(&aws, &["eks", "get-token"]);

    let token = |text: &str| {
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let token = json["status"]["token"].as_str().unwrap().to_owned();
        let expiry = json["status"]["expirationTimestamp"]
            .as_str()
            .unwrap()
            .to_owned();
        let blanked = text.replace(&token, "TOKEN").replace(&expiry, "EXPIRY");
        (blanked, token_url(&token))
    };
    let (our_text, (our_base, our_params)) = token(&ours);
    let (ref_text, (ref_base, ref_params)) = token(&reference);
    assert_eq!(our_text, ref_text);
    // awscli presigns for its STS client's endpoint, here the override
    // pointing at moto; an API server accepts only STS hosts, so ours keeps
    // the regional STS host whatever endpoint AssumeRole went to.
    assert_eq!(our_base, "https://sts.eu-west-1.amazonaws.com/");
    assert_eq!(ref_base, format!("{}/", moto.url));
    let names = |params: &[(String, String)]| -> Vec<String> {
        params.iter().map(|(k, _)| k.clone()).collect()
    };
    assert_eq!(names(&our_params), names(&ref_params));
    for params in [&our_params, &ref_params] {
        let value = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        // The role's key and session token, not the caller's.
        let key = value("X-Amz-Credential");
        assert!(!key.starts_with("AKIDEXAMPLE"), "{key}");
        assert!(key.ends_with("%2Feu-west-1%2Fsts%2Faws4_request"), "{key}");
        let session = value("X-Amz-Security-Token");
        assert!(!session.is_empty());
        assert_ne!(session, "session%2Ftoken%2Bwith%3Dodd%26chars");
    }
}
