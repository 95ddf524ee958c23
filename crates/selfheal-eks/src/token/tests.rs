use super::*;
use std::time::UNIX_EPOCH;

fn creds(session: Option<&str>) -> Credentials {
    Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session.map(str::to_owned),
        None,
        "test",
    )
}

// 2026-01-02T03:04:05Z
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_323_045)
}

fn decode(token: &EksToken) -> String {
    let raw = token.token.expose_secret();
    let b64 = raw.strip_prefix(TOKEN_PREFIX).unwrap();
    assert!(!b64.contains('='), "no padding");
    String::from_utf8(URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
}

#[test]
fn token_is_prefixed_presigned_sts_url() {
    let token = presign_token(&creds(None), "eu-west-1", "demo", t0()).unwrap();
    let url = decode(&token);
    let (head, query) = url.split_once('?').unwrap();
    assert_eq!(head, "https://sts.eu-west-1.amazonaws.com/");
    let names: Vec<&str> = query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap().0)
        .collect();
    assert_eq!(
        names,
        [
            "Action",
            "Version",
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature"
        ]
    );
    assert!(query.starts_with(
        "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20260102%2Feu-west-1%2Fsts%2Faws4_request\
             &X-Amz-Date=20260102T030405Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id\
             &X-Amz-Signature="
    ));
    let signature = query.rsplit_once("X-Amz-Signature=").unwrap().1;
    assert_eq!(signature.len(), 64);
    assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(token.signed_at, t0());
    assert_eq!(token.expires_at, t0() + Duration::from_secs(840));
}

#[test]
fn token_is_deterministic_and_bound_to_cluster() {
    let a = presign_token(&creds(None), "eu-west-1", "demo", t0()).unwrap();
    let b = presign_token(&creds(None), "eu-west-1", "demo", t0()).unwrap();
    let other = presign_token(&creds(None), "eu-west-1", "other", t0()).unwrap();
    assert_eq!(a.token.expose_secret(), b.token.expose_secret());
    assert_ne!(a.token.expose_secret(), other.token.expose_secret());
}

#[test]
fn session_token_is_encoded_before_signature() {
    let token = presign_token(&creds(Some("FwoG+abc/def=")), "us-east-1", "c", t0()).unwrap();
    let url = decode(&token);
    assert!(url.contains(
            "&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Security-Token=FwoG%2Babc%2Fdef%3D&X-Amz-Signature="
        ));
}

#[test]
fn china_regions_use_com_cn() {
    let token = presign_token(&creds(None), "cn-north-1", "c", t0()).unwrap();
    assert!(decode(&token).starts_with("https://sts.cn-north-1.amazonaws.com.cn/?"));
}

#[test]
fn bad_input_is_a_typed_error() {
    for (region, cluster) in [
        ("eu-west-1", ""),
        ("", "demo"),
        ("EU WEST", "demo"),
        ("eu-west-1/../x", "demo"),
        ("eu-west-1", "bad\nname"),
    ] {
        let err = presign_token(&creds(None), region, cluster, t0()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput(_)),
            "{region:?} {cluster:?}: {err}"
        );
        assert_eq!(err.error_type(), "NonRetryableInvalidRequest");
    }
}

#[test]
fn exec_credential_prints_like_awscli() {
    let token = presign_token(&creds(None), "eu-west-1", "demo", t0()).unwrap();
    let cred = ExecCredential::new(&token);
    let json = cred.to_cli_json().unwrap();
    let expected = format!(
        "{{\n    \"kind\": \"ExecCredential\",\n    \"apiVersion\": \"client.authentication.k8s.io/v1beta1\",\n    \"spec\": {{}},\n    \"status\": {{\n        \"expirationTimestamp\": \"2026-01-02T03:18:05Z\",\n        \"token\": \"{}\"\n    }}\n}}\n\n",
        token.token.expose_secret()
    );
    assert_eq!(json, expected);
    let compact = serde_json::to_string(&cred).unwrap();
    assert!(compact.starts_with(
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{},"status":{"expirationTimestamp":"2026-01-02T03:18:05Z","token":"k8s-aws-v1."#
        ));
    assert!(!format!("{cred:?}").contains("k8s-aws-v1."));
    assert!(!format!("{token:?}").contains("k8s-aws-v1."));
}

#[test]
fn expiration_drops_subseconds() {
    let at = t0() + Duration::from_millis(999);
    assert_eq!(format_expiration(at), "2026-01-02T03:04:05Z");
}

#[test]
fn api_version_follows_exec_info() {
    let v = ExecCredential::api_version_from_exec_info;
    assert_eq!(v(None), EXEC_CREDENTIAL_API_VERSION);
    assert_eq!(v(Some("")), EXEC_CREDENTIAL_API_VERSION);
    assert_eq!(v(Some("{not json")), EXEC_CREDENTIAL_API_VERSION);
    assert_eq!(
        v(Some(r#"{"apiVersion":"client.authentication.k8s.io/v1"}"#)),
        "client.authentication.k8s.io/v1"
    );
    assert_eq!(
        v(Some(r#"{"apiVersion":"client.authentication.k8s.io/v9"}"#)),
        EXEC_CREDENTIAL_API_VERSION
    );
}
