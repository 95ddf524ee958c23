//! Dummy AWS settings shared by the tests that talk to moto, a local EKS
//! endpoint or the token verifier: fixed credentials (never the machine's)
//! in one region, so a signature made by one side checks on the other.
#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

pub const REGION: &str = "eu-west-1";
pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// The dummy key pair as static credentials.
pub fn credentials() -> Credentials {
    Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test")
}

/// SDK config with the dummy credentials, optionally pointed at a local
/// endpoint.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(credentials()));
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// TLS test API server holding Deployment shop/web, whose EKS token hook
/// runs `check` on every bearer token (an `Err` is a 401) and keeps what it
/// returns for the test to inspect.
pub async fn token_server<T: Send + 'static>(
    check: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
) -> (
    selfheal_testserver::TestServer,
    std::sync::Arc<std::sync::Mutex<Vec<T>>>,
) {
    use selfheal_testserver::{TestServer, fixtures};
    let server = TestServer::builder()
        .tls(true)
        .start()
        .await
        .unwrap_or_else(|e| panic!("test API server: {e}"));
    let seen = std::sync::Arc::<std::sync::Mutex<Vec<T>>>::default();
    let record = seen.clone();
    server.set_token_verifier(std::sync::Arc::new(move |token: &str| {
        let kept = check(token)?;
        record.lock().map_err(|e| e.to_string())?.push(kept);
        Ok(())
    }));
    server
        .try_apply_objects(
            fixtures::checkout("shop/api:1.0", "shop/envoy:1.27")
                .named("shop", "web")
                .replicas(1)
                .json(),
        )
        .unwrap_or_else(|e| panic!("fixture shop/web: {e}"));
    (server, seen)
}

/// Creates EKS cluster `name` at moto with `eks` (its region and account).
pub async fn create_cluster(eks: &aws_sdk_eks::Client, name: &str) -> aws_sdk_eks::types::Cluster {
    let created = eks
        .create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-11111111")
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateCluster {name}: {e}"));
    created
        .cluster
        .unwrap_or_else(|| panic!("CreateCluster {name} returned no cluster"))
}
