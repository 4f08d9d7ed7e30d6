//! Asking the registry what it holds, over the OCI distribution API (oci-client).

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::RegistryError;

/// A client for one registry host (`localhost:5001`), spoken to over plain HTTP: a local
/// registry has no TLS, and only this host gets that exception.
#[derive(Clone)]
pub struct RegistryClient {
    client: Client,
    host: String,
}

impl RegistryClient {
    pub fn new(host: &str) -> RegistryClient {
        crate::tls::ensure_crypto_provider();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![host.to_string()]),
            ..Default::default()
        };
        RegistryClient {
            client: Client::new(config),
            host: host.to_string(),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn reference(&self, repository: &str, tag: &str) -> Result<Reference, RegistryError> {
        let text = format!("{}/{repository}:{tag}", self.host);
        text.parse::<Reference>()
            .map_err(|e| RegistryError::Reference {
                reference: text.clone(),
                message: e.to_string(),
            })
    }

    /// The manifest digest the registry serves for `repository:tag` (its
    /// `Docker-Content-Digest`, asked with the v2/OCI Accept headers), or None if it has no
    /// such tag.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, RegistryError> {
        let reference = self.reference(repository, tag)?;
        match self
            .client
            .fetch_manifest_digest(&reference, &RegistryAuth::Anonymous)
            .await
        {
            Ok(digest) => Ok(Some(digest)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(source) => Err(RegistryError::Oci {
                action: format!("fetch the digest of {reference}"),
                source,
            }),
        }
    }

    /// True when the registry serves the distribution API (any answer to a tag listing, even
    /// "no such repository", means it does).
    pub async fn ping(&self) -> bool {
        self.tags("kindlab-readiness-probe").await.is_ok()
    }

    /// Every tag of `repository`, sorted; empty when the repository does not exist.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let reference = self.reference(repository, "latest")?;
        match self
            .client
            .list_tags(&reference, &RegistryAuth::Anonymous, None, None)
            .await
        {
            Ok(response) => {
                let mut tags = response.tags;
                tags.sort();
                Ok(tags)
            }
            Err(e) if is_not_found(&e) => Ok(Vec::new()),
            Err(source) => Err(RegistryError::Oci {
                action: format!("list the tags of {}/{repository}", self.host),
                source,
            }),
        }
    }
}

/// A missing tag or repository, in any of the shapes registries report it.
fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|err| {
            matches!(
                err.code,
                oci_client::errors::OciErrorCode::ManifestUnknown
                    | oci_client::errors::OciErrorCode::NameUnknown
            )
        }),
        _ => false,
    }
}
