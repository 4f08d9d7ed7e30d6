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

    /// `host/repository:tag`, or `host/repository@sha256:...` when given a digest.
    fn reference(&self, repository: &str, tag: &str) -> Result<Reference, RegistryError> {
        let separator = if tag.contains(':') { '@' } else { ':' };
        let text = format!("{}/{repository}{separator}{tag}", self.host);
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

    /// Gives the manifest that `repository:from` names a second tag, registry-side (no image
    /// needs to be in the engine), and returns its digest.
    pub async fn retag(
        &self,
        repository: &str,
        from: &str,
        to: &str,
    ) -> Result<String, RegistryError> {
        let source = self.reference(repository, from)?;
        let target = self.reference(repository, to)?;
        let accept = [
            oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
            oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
            oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
            oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
        ];
        let (body, digest) = self
            .client
            .pull_manifest_raw(&source, &RegistryAuth::Anonymous, &accept)
            .await
            .map_err(|source_err| RegistryError::Oci {
                action: format!("read the manifest of {source}"),
                source: source_err,
            })?;
        let media_type = manifest_media_type(&body);
        let content_type =
            http::HeaderValue::from_str(&media_type).map_err(|e| RegistryError::Reference {
                reference: source.to_string(),
                message: format!("manifest media type {media_type:?}: {e}"),
            })?;
        self.client
            .push_manifest_raw(&target, body, content_type)
            .await
            .map_err(|source_err| RegistryError::Oci {
                action: format!("tag {source} as {to}"),
                source: source_err,
            })?;
        Ok(digest)
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

/// The media type a manifest's bytes declare (every manifest kind carries one; the registry
/// wants it back as Content-Type when the manifest is pushed under another tag), or the
/// Docker v2 manifest type when the bytes say none.
pub fn manifest_media_type(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|m| m["mediaType"].as_str().map(str::to_string))
        .unwrap_or_else(|| oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE.to_string())
}

/// A missing tag or repository, in any of the shapes registries report it.
pub fn is_not_found(e: &OciDistributionError) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_names_its_media_type() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#;
        assert_eq!(
            manifest_media_type(index),
            oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE
        );
        for unnamed in [&b"{}"[..], b"not json", b"[]", br#"{"mediaType":7}"#] {
            assert_eq!(
                manifest_media_type(unnamed),
                oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE
            );
        }
    }

    #[test]
    fn missing_tags_and_repositories_are_not_found() {
        let envelope = |code: &str| OciDistributionError::RegistryError {
            envelope: serde_json::from_str(&format!(r#"{{"errors":[{{"code":"{code}"}}]}}"#))
                .unwrap(),
            url: String::new(),
        };
        assert!(is_not_found(&envelope("MANIFEST_UNKNOWN")));
        assert!(is_not_found(&envelope("NAME_UNKNOWN")));
        assert!(!is_not_found(&envelope("DENIED")));
        let server = |code| OciDistributionError::ServerError {
            code,
            url: String::new(),
            message: String::new(),
        };
        assert!(is_not_found(&server(404)));
        assert!(!is_not_found(&server(500)));
    }
}
