//! Building a `kube::Client`: from a kubeconfig (CLI, local runs, tests) or
//! from an endpoint, CA and bearer token (EKS, docs/eks-token.md).
//!
//! Both turn off kube's built-in retry layer (up to 15 retries with backoff
//! growing toward minutes): the state machine retries `RetryableApiError`
//! with its own budget, and stacked retries would outlive the handler timeout.

use std::path::Path;
use std::time::Duration;

use kube::Config;
use kube::config::{KubeConfigOptions, Kubeconfig};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use secrecy::SecretString;

use crate::error::{Error, Result};

/// Establishing a connection to the API server, TLS handshake included (kube's
/// own default is 30 s, longer than the 25 s handler timeout). An EKS endpoint
/// in the function's region connects in well under a second.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A single API response must arrive within this; our calls are small GETs,
/// LISTs and PATCHes, never watches. Below the handlers' 25 s Lambda timeout
/// (template.yaml), so a silent API server ends as `RetryableApiError`.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Sending one request (kube's default is 295 s); our bodies are a few KiB.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

fn config_error(
    reason: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Config {
        reason: reason.into(),
        source: Some(Box::new(source)),
    }
}

/// Our settings on top of whatever the source of the config chose: no
/// built-in retries, and [`CONNECT_TIMEOUT`], [`READ_TIMEOUT`] and
/// [`WRITE_TIMEOUT`] in place of kube's defaults (30 s, none, 295 s), so no
/// call can outlive the handler (docs/limits.md).
fn tune(mut config: Config) -> Config {
    config.default_retry = false;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    config.write_timeout = Some(WRITE_TIMEOUT);
    // The read timeout counts from the request, not from when a pooled
    // connection went idle.
    config.reset_reader_on_write = true;
    config
}

fn build(config: Config) -> Result<kube::Client> {
    kube::Client::try_from(tune(config)).map_err(|e| config_error("cannot build client", e))
}

/// Client from a kubeconfig file (`path`, else `$KUBECONFIG` / `~/.kube/config`)
/// and an optional context (else the current context).
pub async fn client_from_kubeconfig(
    path: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match path {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                config_error(format!("cannot read kubeconfig {}", path.display()), e)
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None => Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| config_error("cannot load kubeconfig", e))?;
    build(config)
}

/// Why a CA bundle cannot be trusted: each caller words it in its own error.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A `CERTIFICATE` section whose base64 or framing is broken.
    #[error(transparent)]
    Pem(#[from] rustls_pki_types::pem::Error),
    /// Text without any `CERTIFICATE` section.
    #[error("no CERTIFICATE block found")]
    NoCertificate,
}

/// Decode a PEM bundle into DER certificates (what `kube::Config::root_cert`
/// takes); at least one must be present, so an empty or unrelated file fails
/// here rather than as a TLS error at the first call.
pub fn pem_to_der(ca_pem: &str) -> std::result::Result<Vec<Vec<u8>>, CaError> {
    let certs = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(CaError::NoCertificate);
    }
    Ok(certs)
}

/// Why an endpoint URL cannot address an API server: each caller words it in
/// its own error.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Not URI syntax at all.
    #[error(transparent)]
    Syntax(#[from] http::uri::InvalidUri),
    /// A URI without a scheme or host (a path), so nothing to connect to.
    #[error("needs a scheme and host")]
    Relative,
}

/// The API server URL in `endpoint_url`, absolute (scheme and host present).
pub fn parse_endpoint(endpoint_url: &str) -> std::result::Result<http::Uri, EndpointError> {
    let url: http::Uri = endpoint_url.parse()?;
    if url.scheme().is_none() || url.host().is_none() {
        return Err(EndpointError::Relative);
    }
    Ok(url)
}

/// Client for an API endpoint with a static bearer token (an EKS token is
/// valid 15 minutes: rebuild the client before 14, docs/eks-token.md §2).
/// `ca_pem` is PEM text (EKS `certificateAuthority.data` base64-decoded);
/// `None` trusts the platform roots.
pub fn client_from_parts(
    endpoint_url: &str,
    ca_pem: Option<&str>,
    token: SecretString,
) -> Result<kube::Client> {
    let url = parse_endpoint(endpoint_url).map_err(|e| match e {
        EndpointError::Syntax(e) => {
            config_error(format!("invalid endpoint URL {endpoint_url:?}"), e)
        }
        EndpointError::Relative => Error::Config {
            reason: format!("endpoint URL {endpoint_url:?} needs a scheme and host"),
            source: None,
        },
    })?;
    let mut config = Config::new(url);
    if let Some(pem) = ca_pem {
        config.root_cert = Some(pem_to_der(pem).map_err(|e| match e {
            CaError::Pem(e) => config_error("cannot parse CA PEM", e),
            CaError::NoCertificate => Error::Config {
                reason: "CA PEM holds no CERTIFICATE section".into(),
                source: None,
            },
        })?);
    }
    config.auth_info.token = Some(token);
    build(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // A self-signed P-256 test CA (openssl req -x509), shared with
    // selfheal-lambda's config tests; only parsed, never trusted for real.
    const PEM: &str = include_str!("../../../tests/fixtures/test-ca.pem");

    #[test]
    fn tune_sets_every_timeout_and_turns_off_retries() {
        let config = tune(Config::new("https://127.0.0.1:1".parse().unwrap()));
        assert!(!config.default_retry);
        assert_eq!(config.connect_timeout, Some(CONNECT_TIMEOUT));
        assert_eq!(config.read_timeout, Some(READ_TIMEOUT));
        assert_eq!(config.write_timeout, Some(WRITE_TIMEOUT));
        assert!(config.reset_reader_on_write);
        // One call, however it ends, ends before the 25 s handler timeout.
        assert!(CONNECT_TIMEOUT.max(READ_TIMEOUT).max(WRITE_TIMEOUT) < Duration::from_secs(25));
    }

    #[test]
    fn pem_bundle_decodes_to_der() {
        let der = pem_to_der(&format!("{PEM}{PEM}")).unwrap();
        assert_eq!(der.len(), 2);
        // DER of an X.509 certificate starts with a SEQUENCE tag.
        assert_eq!(der[0][0], 0x30);
    }

    #[test]
    fn empty_or_garbage_pem_is_a_config_error() {
        let garbage = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            pem_to_der("not a certificate"),
            Err(CaError::NoCertificate)
        ));
        assert!(matches!(pem_to_der(garbage), Err(CaError::Pem(_))));
        for pem in ["not a certificate", garbage] {
            let e = client_from_parts("https://127.0.0.1:1", Some(pem), SecretString::from("t"))
                .err()
                .unwrap();
            assert_eq!(e.error_type(), "NonRetryableConfig");
            assert!(matches!(e, Error::Config { .. }), "{e}");
        }
    }

    #[test]
    fn bad_endpoint_is_a_config_error() {
        assert!(matches!(
            parse_endpoint("not a url"),
            Err(EndpointError::Syntax(_))
        ));
        assert!(matches!(
            parse_endpoint("/just/a/path"),
            Err(EndpointError::Relative)
        ));
        for url in ["not a url", "/just/a/path"] {
            let e = client_from_parts(url, None, SecretString::from("t"))
                .err()
                .unwrap();
            assert!(matches!(e, Error::Config { .. }), "{e}");
        }
    }

    #[tokio::test]
    async fn parts_build_a_client() {
        let client = client_from_parts(
            "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
            Some(PEM),
            SecretString::from("k8s-aws-v1.token"),
        );
        assert!(client.is_ok(), "{:?}", client.err());
    }

    #[tokio::test]
    async fn kubeconfig_with_context() {
        let dir = std::env::temp_dir().join(format!("selfheal-kube-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(
            &path,
            "apiVersion: v1
kind: Config
current-context: a
clusters:
- name: a
  cluster: {server: 'http://127.0.0.1:1'}
- name: b
  cluster: {server: 'http://127.0.0.1:2'}
contexts:
- name: a
  context: {cluster: a, user: u, namespace: shop}
- name: b
  context: {cluster: b, user: u}
users:
- name: u
  user: {token: abc}
",
        )
        .unwrap();
        let client = client_from_kubeconfig(Some(&path), Some("b"))
            .await
            .unwrap();
        assert_eq!(client.default_namespace(), "default");
        let client = client_from_kubeconfig(Some(&path), None).await.unwrap();
        assert_eq!(client.default_namespace(), "shop");
        let e = client_from_kubeconfig(Some(&path), Some("missing"))
            .await
            .err()
            .unwrap();
        assert_eq!(e.error_type(), "NonRetryableConfig");
        let e = client_from_kubeconfig(Some(&dir.join("nope")), None)
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("nope"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
