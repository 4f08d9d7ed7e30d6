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
    /// One client per host for the whole process: making one loads the system's root
    /// certificates (tens of ms), and a command asks the same registry from several places.
    pub fn new(host: &str) -> RegistryClient {
        static CLIENTS: std::sync::Mutex<Vec<RegistryClient>> = std::sync::Mutex::new(Vec::new());
        let mut clients = CLIENTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.iter().find(|c| c.host == host) {
            return client.clone();
        }
        crate::tls::ensure_crypto_provider();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![host.to_string()]),
            ..Default::default()
        };
        let client = RegistryClient {
            client: Client::new(config),
            host: host.to_string(),
        };
        clients.push(client.clone());
        client
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

    /// True when `host` serves the distribution API (see [`RegistryClient::probe`]).
    pub async fn ping(&self) -> bool {
        self.probe().await == Probe::Registry
    }

    /// Asks `GET /v2/`, the distribution API's version check: a registry answers 200 (or 401
    /// when it wants credentials) with `Docker-Distribution-Api-Version: registry/2.0`. Any
    /// other HTTP answer (a 404 from a web server on the port) is not a registry.
    pub async fn probe(&self) -> Probe {
        // Plain HTTP, one client for the process (see `new`).
        static PROBE: std::sync::OnceLock<Result<reqwest::Client, String>> =
            std::sync::OnceLock::new();
        let client = PROBE.get_or_init(|| {
            crate::tls::ensure_crypto_provider();
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(3))
                .build()
                .map_err(|e| e.to_string())
        });
        let client = match client {
            Ok(c) => c,
            Err(e) => return Probe::NoAnswer(e.clone()),
        };
        match client.get(format!("http://{}/v2/", self.host)).send().await {
            Ok(response) => judge_probe(
                response.status().as_u16(),
                response
                    .headers()
                    .get("docker-distribution-api-version")
                    .and_then(|v| v.to_str().ok()),
            ),
            Err(e) => Probe::NoAnswer(e.to_string()),
        }
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

/// What answers on a registry's host:port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The distribution API, version 2.
    Registry,
    /// An HTTP server that is not a registry: its status and version header.
    NotARegistry {
        status: u16,
        version: Option<String>,
    },
    /// Nothing answered (connection refused, timeout): the error.
    NoAnswer(String),
}

fn judge_probe(status: u16, version: Option<&str>) -> Probe {
    let speaks_v2 = version.is_some_and(|v| v.trim().starts_with("registry/2."));
    if speaks_v2 && matches!(status, 200 | 401) {
        Probe::Registry
    } else {
        Probe::NotARegistry {
            status,
            version: version.map(str::to_string),
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
    fn only_the_v2_api_with_its_header_is_a_registry() {
        assert_eq!(judge_probe(200, Some("registry/2.0")), Probe::Registry);
        assert_eq!(judge_probe(401, Some("registry/2.0")), Probe::Registry);
        // A web server's 404, or a 200 without the header, is not a registry.
        assert!(matches!(
            judge_probe(404, None),
            Probe::NotARegistry { status: 404, .. }
        ));
        assert!(matches!(judge_probe(200, None), Probe::NotARegistry { .. }));
        assert!(matches!(
            judge_probe(404, Some("registry/2.0")),
            Probe::NotARegistry { .. }
        ));
    }

    #[tokio::test]
    async fn a_web_server_answering_404_is_not_a_registry() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
            }
        });
        let client = RegistryClient::new(&format!("127.0.0.1:{port}"));
        assert!(matches!(
            client.probe().await,
            Probe::NotARegistry { status: 404, .. }
        ));
        assert!(!client.ping().await);
    }

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
