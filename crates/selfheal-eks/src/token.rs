//! EKS bearer tokens: a presigned STS `GetCallerIdentity` URL, the same bytes
//! `aws eks get-token` produces (awscli `customizations/eks/get_token.py`).

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use selfheal_contract::env;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Every EKS token starts with this.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// Header carrying the cluster name; signed so a token is bound to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// `X-Amz-Expires`: ignored by STS (URLs live 15 min from `X-Amz-Date`) but
/// 60 is what every client sends and old servers check.
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);
/// Clients treat a token as expired after 14 minutes, one before the server does.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);
/// The API server accepts a token for 15 minutes after `X-Amz-Date`.
pub const SERVER_ACCEPTS_FOR: Duration = Duration::from_secs(15 * 60);
/// `ExecCredential.apiVersion` awscli prints when kubectl does not ask for another.
pub const EXEC_CREDENTIAL_API_VERSION: &str = "client.authentication.k8s.io/v1beta1";

/// The `RoleSessionName` `aws eks get-token --role-arn` uses (awscli
/// `customizations/eks/get_token.py`), kept so CloudTrail reads the same.
pub const AWSCLI_ROLE_SESSION: &str = "EKSGetTokenAuth";

const STS_QUERY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// Characters SigV4 (and botocore) leave unescaped in query values.
pub const AWS_QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A bearer token for one cluster and the moment clients should stop using it.
#[derive(Clone)]
pub struct EksToken {
    /// `k8s-aws-v1.<base64url presigned URL>`; secret because it is a credential for 15 minutes.
    pub token: SecretString,
    /// Signing time: `X-Amz-Date`.
    pub signed_at: SystemTime,
    /// Signing time + 14 minutes.
    pub expires_at: SystemTime,
}

impl fmt::Debug for EksToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EksToken")
            .field("token", &"[redacted]")
            .field("signed_at", &self.signed_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// STS host for a region, as botocore's regional endpoints resolve it.
pub fn sts_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("sts.{region}.amazonaws.com.cn")
    } else {
        format!("sts.{region}.amazonaws.com")
    }
}

pub use selfheal_contract::cluster::valid_region;

/// Presigns the STS URL for `cluster` and wraps it as an EKS token.
///
/// Pure: the same credentials, region, cluster and second give the same token,
/// which is what lets tests compare it byte for byte with awscli's.
pub fn presign_token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    signing_time: SystemTime,
) -> Result<EksToken> {
    if cluster.is_empty() {
        return Err(Error::InvalidInput("cluster name is empty".into()));
    }
    if http::HeaderValue::from_str(cluster).is_err() {
        return Err(Error::InvalidInput(format!(
            "cluster name {cluster:?} is not a valid header value"
        )));
    }
    if !valid_region(region) {
        return Err(Error::InvalidInput(format!(
            "region {region:?} is not an AWS region name"
        )));
    }
    let url = presign_url(
        credentials,
        &sts_host(region),
        region,
        STS_QUERY,
        cluster,
        signing_time,
        PRESIGN_EXPIRES,
    )?;
    Ok(EksToken {
        token: SecretString::from(format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(url.as_bytes())
        )),
        signed_at: signing_time,
        expires_at: signing_time + TOKEN_LIFETIME,
    })
}

/// Signs `GET https://{host}/?{query}` with the cluster header and returns
/// the presigned URL. Public for the test token verifier, which re-signs a
/// token's URL to compare signatures.
pub fn presign_url(
    credentials: &Credentials,
    host: &str,
    region: &str,
    query: &str,
    cluster: &str,
    signing_time: SystemTime,
    expires_in: Duration,
) -> Result<String> {
    let base = format!("https://{host}/?{query}");
    let identity: Identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires_in);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(signing_time)
        .settings(settings)
        .build()
        .map_err(|source| Error::SigningParams { source })?
        .into();
    let request = SignableRequest::new(
        "GET",
        &base,
        std::iter::once((CLUSTER_ID_HEADER, cluster)),
        // Hash of the empty body, as botocore signs; not UNSIGNED-PAYLOAD.
        SignableBody::Bytes(&[]),
    )
    .map_err(|source| Error::Signing { source })?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|source| Error::Signing { source })?
        .into_parts();
    let (_headers, query_params) = instructions.into_parts();

    // botocore's order: the signing parameters as added, the security token
    // after SignedHeaders, and the signature last.
    let mut ordered: Vec<(&str, &str)> = Vec::with_capacity(query_params.len());
    let mut token = None;
    let mut signature = None;
    for (name, value) in &query_params {
        match *name {
            "X-Amz-Security-Token" => token = Some(value.as_ref()),
            "X-Amz-Signature" => signature = Some(value.as_ref()),
            _ => ordered.push((name, value.as_ref())),
        }
    }
    ordered.extend(token.map(|t| ("X-Amz-Security-Token", t)));
    ordered.extend(signature.map(|s| ("X-Amz-Signature", s)));

    let mut url = base;
    for (name, value) in ordered {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.extend(utf8_percent_encode(value, AWS_QUERY_ENCODE));
    }
    Ok(url)
}

/// The object `aws eks get-token` prints, for kubeconfig `exec` plugins.
///
/// Field order is awscli's: kind, apiVersion, spec, status.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecCredential {
    pub kind: String,
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub spec: ExecCredentialSpec,
    pub status: ExecCredentialStatus,
}

/// Always empty in awscli's output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecCredentialSpec {}

/// The token and when kubectl should ask for a new one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecCredentialStatus {
    /// `%Y-%m-%dT%H:%M:%SZ` (whole seconds, UTC), as awscli formats it.
    #[serde(rename = "expirationTimestamp")]
    pub expiration_timestamp: String,
    pub token: String,
}

impl fmt::Debug for ExecCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecCredential")
            .field("kind", &self.kind)
            .field("api_version", &self.api_version)
            .field("expiration_timestamp", &self.status.expiration_timestamp)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl fmt::Debug for ExecCredentialStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecCredentialStatus")
            .field("expiration_timestamp", &self.expiration_timestamp)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl ExecCredential {
    /// Wraps a token with the default (v1beta1) apiVersion.
    pub fn new(token: &EksToken) -> Self {
        Self::with_api_version(token, EXEC_CREDENTIAL_API_VERSION)
    }

    /// Wraps a token with the apiVersion kubectl asked for.
    pub fn with_api_version(token: &EksToken, api_version: &str) -> Self {
        Self {
            kind: "ExecCredential".to_owned(),
            api_version: api_version.to_owned(),
            spec: ExecCredentialSpec {},
            status: ExecCredentialStatus {
                expiration_timestamp: format_expiration(token.expires_at),
                token: token.token.expose_secret().to_owned(),
            },
        }
    }

    /// The apiVersion to answer with, from `KUBERNETES_EXEC_INFO` as awscli
    /// reads it: v1 and v1beta1 (and deprecated v1alpha1) are echoed, anything
    /// else (absent, malformed, unknown) falls back to v1beta1.
    pub fn api_version_from_exec_info(exec_info: Option<&str>) -> &'static str {
        const KNOWN: [&str; 3] = [
            "client.authentication.k8s.io/v1",
            "client.authentication.k8s.io/v1beta1",
            "client.authentication.k8s.io/v1alpha1",
        ];
        let Some(raw) = exec_info.filter(|s| !s.is_empty()) else {
            return EXEC_CREDENTIAL_API_VERSION;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(raw) else {
            return EXEC_CREDENTIAL_API_VERSION;
        };
        let asked = value.get("apiVersion").and_then(|v| v.as_str());
        KNOWN
            .into_iter()
            .find(|known| Some(*known) == asked)
            .unwrap_or(EXEC_CREDENTIAL_API_VERSION)
    }

    /// Exactly what awscli prints: 4-space-indented JSON, then its formatter's
    /// newline and the extra blank line `get-token` adds (`uni_print('\n')`).
    pub fn to_cli_json(&self) -> Result<String> {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        self.serialize(&mut ser)
            .map_err(|source| Error::Json { source })?;
        let mut text = String::from_utf8_lossy(&out).into_owned();
        text.push_str("\n\n");
        Ok(text)
    }
}

/// `%Y-%m-%dT%H:%M:%SZ` in UTC, dropping sub-seconds like Python's strftime.
pub fn format_expiration(at: SystemTime) -> String {
    match jiff::Timestamp::try_from(at) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        // Only for times outside jiff's range (years beyond ±9999): unreachable from a clock.
        Err(_) => "9999-12-31T23:59:59Z".to_owned(),
    }
}

/// Library side of `selfheal eks-token`: an ExecCredential for `cluster`
/// signed with the default credential chain, like `aws eks get-token`.
///
/// The region comes from `region`, else from the environment or profile.
pub async fn exec_credential(
    cluster: &str,
    region: Option<&str>,
    role_arn: Option<&str>,
) -> Result<ExecCredential> {
    let mut loader = selfheal_aws::loader();
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    let sdk_config = loader.load().await;
    let region = sdk_config.region().ok_or(Error::MissingRegion)?.to_string();
    let credentials = match role_arn {
        // awscli's `--role-arn`: one AssumeRole with its session name, and
        // the token signed with the role's temporary credentials.
        Some(role) => {
            crate::cluster::assume_role(
                &sdk_config,
                role,
                AWSCLI_ROLE_SESSION,
                crate::cluster::ASSUMED_ROLE_DURATION,
            )
            .await?
        }
        None => {
            let provider = sdk_config
                .credentials_provider()
                .ok_or(Error::MissingCredentialsProvider)?;
            provider
                .provide_credentials()
                .await
                .map_err(|source| Error::Credentials { source })?
        }
    };
    let token = presign_token(&credentials, &region, cluster, SystemTime::now())?;
    let exec_info = env::get(env::process, "KUBERNETES_EXEC_INFO");
    Ok(ExecCredential::with_api_version(
        &token,
        ExecCredential::api_version_from_exec_info(exec_info.as_deref()),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
