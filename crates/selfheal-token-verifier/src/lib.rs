//! Test support: the EKS token checks aws-iam-authenticator's `Verify` makes
//! before it forwards the URL to STS (pkg/token/token.go).
//!
//! We cannot call STS, so instead, when the signing credentials are known
//! (tests, the test API server), the URL is re-signed for the expected cluster
//! and the signatures are compared. That is what binds a token to a cluster:
//! the cluster name is only in a signed header, never in the URL itself.
//!
//! It lives apart from `selfheal-eks` so that no Lambda binary links it: only
//! tests and the test API server's token hook use it.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::utf8_percent_encode;
use subtle::ConstantTimeEq;

use selfheal_eks::token::{
    AWS_QUERY_ENCODE, CLUSTER_ID_HEADER, SERVER_ACCEPTS_FOR, TOKEN_PREFIX, presign_url,
    valid_region,
};

/// aws-iam-authenticator's `maxTokenLenBytes`.
pub const MAX_TOKEN_LEN: usize = 4 * 1024;
/// Largest `X-Amz-Expires` the authenticator accepts (seconds).
const MAX_EXPIRES: u64 = 900;
/// Query parameters the authenticator allows (lower case).
const ALLOWED_PARAMS: [&str; 9] = [
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
];

/// Why a token was refused. Each variant is one of the server's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenRejection {
    TooLarge {
        len: usize,
    },
    MissingPrefix,
    BadEncoding,
    MalformedUrl,
    WrongScheme {
        scheme: String,
    },
    UnexpectedHost {
        host: String,
    },
    UnexpectedPath {
        path: String,
    },
    UnexpectedParameter {
        name: String,
    },
    DuplicateParameter {
        name: String,
    },
    WrongAction {
        action: Option<String>,
    },
    ClusterIdNotSigned,
    InvalidExpires {
        value: Option<String>,
    },
    MissingDate,
    InvalidDate {
        value: String,
    },
    /// Signed more than 15 minutes before `now`.
    Expired {
        signed_at: String,
    },
    /// Signed more than 15 minutes after `now` (STS: "signature not yet current").
    NotYetValid {
        signed_at: String,
    },
    MalformedCredential,
    /// Credential scope disagrees with the date or the STS host's region.
    CredentialScopeMismatch {
        reason: String,
    },
    MissingSignature,
    /// Access key not among the verifier's known credentials.
    UnknownAccessKey {
        access_key_id: String,
    },
    /// Re-signing for the expected cluster gives another signature: signed for
    /// another cluster, with another secret, or altered.
    SignatureMismatch,
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TokenRejection::*;
        match self {
            TooLarge { len } => write!(f, "token is too large ({len} > {MAX_TOKEN_LEN} bytes)"),
            MissingPrefix => write!(f, "token is missing expected {TOKEN_PREFIX:?} prefix"),
            BadEncoding => write!(f, "token is not unpadded base64url of a UTF-8 URL"),
            MalformedUrl => write!(f, "pre-signed URL does not parse"),
            WrongScheme { scheme } => write!(f, "unexpected scheme {scheme:?} in pre-signed URL"),
            UnexpectedHost { host } => write!(f, "unexpected hostname {host:?} in pre-signed URL"),
            UnexpectedPath { path } => write!(f, "unexpected path {path:?} in pre-signed URL"),
            UnexpectedParameter { name } => write!(f, "non-whitelisted query parameter {name:?}"),
            DuplicateParameter { name } => write!(f, "query parameter {name:?} appears twice"),
            WrongAction { action } => {
                write!(
                    f,
                    "unexpected action parameter {action:?} in pre-signed URL"
                )
            }
            ClusterIdNotSigned => write!(
                f,
                "client did not sign the {CLUSTER_ID_HEADER} header in the pre-signed URL"
            ),
            InvalidExpires { value } => {
                write!(
                    f,
                    "invalid X-Amz-Expires parameter in pre-signed URL: {value:?}"
                )
            }
            MissingDate => write!(f, "X-Amz-Date parameter must be present in pre-signed URL"),
            InvalidDate { value } => write!(f, "X-Amz-Date {value:?} is not YYYYMMDDTHHMMSSZ"),
            Expired { signed_at } => {
                write!(
                    f,
                    "X-Amz-Date parameter is expired (15 minute expiration) {signed_at}"
                )
            }
            NotYetValid { signed_at } => write!(f, "X-Amz-Date {signed_at} is in the future"),
            MalformedCredential => write!(f, "X-Amz-Credential is missing or malformed"),
            CredentialScopeMismatch { reason } => write!(f, "credential scope mismatch: {reason}"),
            MissingSignature => write!(f, "X-Amz-Signature is missing"),
            UnknownAccessKey { access_key_id } => {
                write!(f, "access key {access_key_id} is not known to the verifier")
            }
            SignatureMismatch => write!(
                f,
                "signature does not match (signed for another cluster, with other credentials, or altered)"
            ),
        }
    }
}

impl std::error::Error for TokenRejection {}

/// What a verified token told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub access_key_id: String,
    /// `X-Amz-Security-Token`: present when temporary (assumed-role) credentials signed.
    pub session_token: Option<String>,
    pub region: String,
    /// `X-Amz-Date`.
    pub signed_at: SystemTime,
    /// `X-Amz-Date` + 15 minutes: when the server stops accepting it.
    pub valid_until: SystemTime,
    /// True when the signature was recomputed and matched (known credentials).
    pub signature_checked: bool,
}

/// Checks tokens for one cluster, like the API server's authenticator.
#[derive(Clone)]
pub struct TokenVerifier {
    cluster: String,
    /// Secrets by access key id; empty = structural checks only.
    known: HashMap<String, Credentials>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("cluster", &self.cluster)
            .field("known_access_keys", &self.known.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier for tokens meant for `cluster`. Without known credentials it
    /// only checks structure and time: the cluster binding needs a signature check.
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            known: HashMap::new(),
        }
    }

    /// Adds credentials whose tokens get their signature recomputed and compared.
    /// Once any are known, tokens from other access keys are rejected.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.known
            .insert(credentials.access_key_id().to_owned(), credentials);
        self
    }

    /// The cluster this verifier expects.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Verifies against the system clock.
    pub fn verify_now(&self, token: &str) -> Result<VerifiedToken, TokenRejection> {
        self.verify(token, SystemTime::now())
    }

    /// Verifies `token` as the server would at `now`.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<VerifiedToken, TokenRejection> {
        use TokenRejection::*;
        if token.len() > MAX_TOKEN_LEN {
            return Err(TooLarge { len: token.len() });
        }
        let encoded = token.strip_prefix(TOKEN_PREFIX).ok_or(MissingPrefix)?;
        let decoded = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| BadEncoding)?;
        let raw_url = String::from_utf8(decoded).map_err(|_| BadEncoding)?;
        let url = url::Url::parse(&raw_url).map_err(|_| MalformedUrl)?;

        if url.scheme() != "https" {
            return Err(WrongScheme {
                scheme: url.scheme().to_owned(),
            });
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        let host_region = sts_host_region(&host)
            .filter(|_| {
                url.port().is_none() && url.username().is_empty() && url.password().is_none()
            })
            .ok_or_else(|| UnexpectedHost { host: host.clone() })?;
        if url.path() != "/" {
            return Err(UnexpectedPath {
                path: url.path().to_owned(),
            });
        }

        // Parameters in URL order; names checked case-insensitively like the authenticator.
        let mut params: Vec<(String, String)> = Vec::new();
        let mut lower: HashMap<String, String> = HashMap::new();
        for (name, value) in url.query_pairs() {
            let key = name.to_ascii_lowercase();
            if !ALLOWED_PARAMS.contains(&key.as_str()) {
                return Err(UnexpectedParameter {
                    name: name.into_owned(),
                });
            }
            if lower.insert(key, value.clone().into_owned()).is_some() {
                return Err(DuplicateParameter {
                    name: name.into_owned(),
                });
            }
            params.push((name.into_owned(), value.into_owned()));
        }
        let get = |key: &str| lower.get(key).map(String::as_str);

        if get("action") != Some("GetCallerIdentity") {
            return Err(WrongAction {
                action: get("action").map(str::to_owned),
            });
        }
        let signed_headers = get("x-amz-signedheaders").unwrap_or_default();
        if !signed_headers
            .split(';')
            .any(|h| h.eq_ignore_ascii_case(CLUSTER_ID_HEADER))
        {
            return Err(ClusterIdNotSigned);
        }
        let expires = get("x-amz-expires")
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| *v <= MAX_EXPIRES)
            .ok_or_else(|| InvalidExpires {
                value: get("x-amz-expires").map(str::to_owned),
            })?;

        let date = get("x-amz-date").ok_or(MissingDate)?;
        let signed_at = parse_amz_date(date).ok_or_else(|| InvalidDate {
            value: date.to_owned(),
        })?;
        let valid_until = signed_at + SERVER_ACCEPTS_FOR;
        if now > valid_until {
            return Err(Expired {
                signed_at: date.to_owned(),
            });
        }
        if signed_at > now + SERVER_ACCEPTS_FOR {
            return Err(NotYetValid {
                signed_at: date.to_owned(),
            });
        }

        // AKID/yyyymmdd/region/sts/aws4_request
        let credential = get("x-amz-credential").ok_or(MalformedCredential)?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, day, region, service, terminator] = scope[..] else {
            return Err(MalformedCredential);
        };
        if access_key_id.is_empty() || service != "sts" || terminator != "aws4_request" {
            return Err(MalformedCredential);
        }
        if !date.starts_with(day) || day.len() != 8 {
            return Err(CredentialScopeMismatch {
                reason: format!("scope date {day} is not the day of X-Amz-Date {date}"),
            });
        }
        if region != host_region {
            return Err(CredentialScopeMismatch {
                reason: format!("scope region {region} does not serve host {host}"),
            });
        }
        let signature = get("x-amz-signature").ok_or(MissingSignature)?;

        let signature_checked = if self.known.is_empty() {
            false
        } else {
            let known = self
                .known
                .get(access_key_id)
                .ok_or_else(|| UnknownAccessKey {
                    access_key_id: access_key_id.to_owned(),
                })?;
            let expected = self
                .resign(known, &host, region, &params, signed_at, expires)
                .ok_or(SignatureMismatch)?;
            if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
                return Err(SignatureMismatch);
            }
            true
        };

        Ok(VerifiedToken {
            access_key_id: access_key_id.to_owned(),
            session_token: get("x-amz-security-token").map(str::to_owned),
            region: region.to_owned(),
            signed_at,
            valid_until,
            signature_checked,
        })
    }

    /// Recomputes the signature the token would carry if it was signed for
    /// our cluster with `known`'s secret (and the token's own session token).
    fn resign(
        &self,
        known: &Credentials,
        host: &str,
        region: &str,
        params: &[(String, String)],
        signed_at: SystemTime,
        expires: u64,
    ) -> Option<String> {
        let session_token = params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"))
            .map(|(_, v)| v.clone());
        let credentials = Credentials::new(
            known.access_key_id(),
            known.secret_access_key(),
            session_token,
            None,
            "selfheal-token-verifier",
        );
        // Only the request's own parameters; the signer adds the X-Amz-* ones.
        let query = params
            .iter()
            .filter(|(n, _)| !n.to_ascii_lowercase().starts_with("x-amz-"))
            .map(|(n, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(n, AWS_QUERY_ENCODE),
                    utf8_percent_encode(v, AWS_QUERY_ENCODE)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let url = presign_url(
            &credentials,
            host,
            region,
            &query,
            &self.cluster,
            signed_at,
            Duration::from_secs(expires),
        )
        .ok()?;
        let parsed = url::Url::parse(&url).ok()?;
        parsed
            .query_pairs()
            .find(|(n, _)| n == "X-Amz-Signature")
            .map(|(_, v)| v.into_owned())
    }
}

/// Region an STS host serves: `sts.amazonaws.com` is us-east-1's global
/// endpoint, otherwise `sts.<region>.amazonaws.com(.cn)`.
fn sts_host_region(host: &str) -> Option<&str> {
    if host == "sts.amazonaws.com" {
        return Some("us-east-1");
    }
    let rest = host.strip_prefix("sts.")?;
    let region = rest
        .strip_suffix(".amazonaws.com.cn")
        .filter(|r| r.starts_with("cn-"))
        .or_else(|| rest.strip_suffix(".amazonaws.com"))?;
    valid_region(region).then_some(region)
}

/// `YYYYMMDDTHHMMSSZ` → time.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    if value.len() != 16 {
        return None;
    }
    let dt = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", value).ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(SystemTime::from(ts))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use selfheal_eks::token::presign_token;
    use std::time::UNIX_EPOCH;

    fn creds() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )
    }

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_767_323_045)
    }

    fn token_for(cluster: &str) -> String {
        presign_token(&creds(), "eu-west-1", cluster, t0())
            .unwrap()
            .token
            .expose_secret()
            .to_owned()
    }

    fn wrap(url: &str) -> String {
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(url))
    }

    fn unwrap_url(token: &str) -> String {
        String::from_utf8(
            URL_SAFE_NO_PAD
                .decode(token.strip_prefix(TOKEN_PREFIX).unwrap())
                .unwrap(),
        )
        .unwrap()
    }

    fn rejection(result: Result<VerifiedToken, TokenRejection>) -> TokenRejection {
        match result {
            Err(r) => r,
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    fn verifier() -> TokenVerifier {
        TokenVerifier::new("demo").with_credentials(creds())
    }

    #[test]
    fn accepts_own_token_with_signature_check() {
        let ok = verifier()
            .verify(&token_for("demo"), t0() + Duration::from_secs(60))
            .unwrap();
        assert!(ok.signature_checked);
        assert_eq!(ok.access_key_id, "AKIDEXAMPLE");
        assert_eq!(ok.region, "eu-west-1");
        assert_eq!(ok.signed_at, t0());
        assert_eq!(ok.valid_until, t0() + Duration::from_secs(900));
    }

    #[test]
    fn accepts_session_token_and_structural_mode() {
        let with_session = Credentials::new(
            "ASIAEXAMPLE",
            "secret/with+chars",
            Some("IQoJb3JpZ2luX2Vj+/=".to_owned()),
            None,
            "t",
        );
        let token = presign_token(&with_session, "us-east-1", "demo", t0()).unwrap();
        let v = TokenVerifier::new("demo").with_credentials(with_session);
        assert!(
            v.verify(token.token.expose_secret(), t0())
                .unwrap()
                .signature_checked
        );
        let structural = TokenVerifier::new("demo")
            .verify(token.token.expose_secret(), t0())
            .unwrap();
        assert!(!structural.signature_checked);
    }

    #[test]
    fn rejects_expired_at_fifteen_minutes() {
        let token = token_for("demo");
        assert!(verifier().verify(&token, t0() + SERVER_ACCEPTS_FOR).is_ok());
        let err = rejection(
            verifier().verify(&token, t0() + SERVER_ACCEPTS_FOR + Duration::from_secs(1)),
        );
        assert_eq!(
            err,
            TokenRejection::Expired {
                signed_at: "20260102T030405Z".into()
            }
        );
        let future = rejection(verifier().verify(&token, t0() - Duration::from_secs(901)));
        assert!(matches!(future, TokenRejection::NotYetValid { .. }));
    }

    #[test]
    fn rejects_foreign_cluster_and_other_secret() {
        assert_eq!(
            rejection(verifier().verify(&token_for("other"), t0())),
            TokenRejection::SignatureMismatch
        );
        let wrong_secret = Credentials::new("AKIDEXAMPLE", "not-the-secret", None, None, "t");
        let v = TokenVerifier::new("demo").with_credentials(wrong_secret);
        assert_eq!(
            rejection(v.verify(&token_for("demo"), t0())),
            TokenRejection::SignatureMismatch
        );
        let stranger = Credentials::new("AKIDOTHER", "x", None, None, "t");
        let v = TokenVerifier::new("demo").with_credentials(stranger);
        assert_eq!(
            rejection(v.verify(&token_for("demo"), t0())),
            TokenRejection::UnknownAccessKey {
                access_key_id: "AKIDEXAMPLE".into()
            }
        );
    }

    #[test]
    fn rejects_bad_prefix_encoding_and_oversize() {
        let token = token_for("demo");
        let bare = token.strip_prefix(TOKEN_PREFIX).unwrap();
        assert_eq!(
            rejection(verifier().verify(bare, t0())),
            TokenRejection::MissingPrefix
        );
        assert_eq!(
            rejection(verifier().verify(&format!("k8s-aws-v2.{bare}"), t0())),
            TokenRejection::MissingPrefix
        );
        assert_eq!(
            rejection(verifier().verify(&format!("{token}=="), t0())),
            TokenRejection::BadEncoding
        );
        let huge = format!("{token}{}", "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(
            rejection(verifier().verify(&huge, t0())),
            TokenRejection::TooLarge { len: huge.len() }
        );
    }

    #[test]
    fn rejects_tampered_urls() {
        let url = unwrap_url(&token_for("demo"));
        type Check = fn(&TokenRejection) -> bool;
        let cases: Vec<(String, Check)> = vec![
            (
                url.replace("Action=GetCallerIdentity", "Action=AssumeRole"),
                |r| matches!(r, TokenRejection::WrongAction { .. }),
            ),
            (url.replace("host%3Bx-k8s-aws-id", "host"), |r| {
                *r == TokenRejection::ClusterIdNotSigned
            }),
            (url.replace("https://", "http://"), |r| {
                matches!(r, TokenRejection::WrongScheme { .. })
            }),
            (
                url.replace("sts.eu-west-1.amazonaws.com", "sts.evil.example"),
                |r| matches!(r, TokenRejection::UnexpectedHost { .. }),
            ),
            (
                url.replace(
                    "sts.eu-west-1.amazonaws.com",
                    "sts.eu-west-1.amazonaws.com:8443",
                ),
                |r| matches!(r, TokenRejection::UnexpectedHost { .. }),
            ),
            (url.replace(".com/?", ".com/x?"), |r| {
                matches!(r, TokenRejection::UnexpectedPath { .. })
            }),
            (format!("{url}&Extra=1"), |r| {
                matches!(r, TokenRejection::UnexpectedParameter { .. })
            }),
            (format!("{url}&action=GetCallerIdentity"), |r| {
                matches!(r, TokenRejection::DuplicateParameter { .. })
            }),
            (url.replace("X-Amz-Expires=60", "X-Amz-Expires=901"), |r| {
                matches!(r, TokenRejection::InvalidExpires { .. })
            }),
            (
                url.replace("X-Amz-Date=20260102T030405Z", "X-Amz-Date=2026-01-02"),
                |r| matches!(r, TokenRejection::InvalidDate { .. }),
            ),
            (url.replace("%2Feu-west-1%2F", "%2Fus-east-1%2F"), |r| {
                matches!(r, TokenRejection::CredentialScopeMismatch { .. })
            }),
            (url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"), |r| {
                *r == TokenRejection::SignatureMismatch
            }),
        ];
        for (tampered, check) in cases {
            let r = rejection(verifier().verify(&wrap(&tampered), t0()));
            assert!(check(&r), "{tampered}: got {r:?}");
        }
    }

    #[test]
    fn host_regions() {
        assert_eq!(sts_host_region("sts.amazonaws.com"), Some("us-east-1"));
        assert_eq!(
            sts_host_region("sts.eu-west-1.amazonaws.com"),
            Some("eu-west-1")
        );
        assert_eq!(
            sts_host_region("sts.cn-north-1.amazonaws.com.cn"),
            Some("cn-north-1")
        );
        assert_eq!(sts_host_region("sts.eu-west-1.amazonaws.com.cn"), None);
        assert_eq!(sts_host_region("sts.a.b.amazonaws.com"), None);
        assert_eq!(sts_host_region("evil.com"), None);
    }
}
