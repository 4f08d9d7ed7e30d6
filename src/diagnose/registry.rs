//! Asking an image's registry what the node's message cannot say: does the repository exist,
//! does the tag, which tags are near, which platforms the index holds. Anonymously (the OCI
//! client does the bearer-token dance), within a short timeout, over plain HTTP only for
//! loopback hosts and hosts the caller names (kindlab's registry at `localhost:5001` is the
//! same one the kind nodes reach through their `hosts.toml`).
//!
//! The answer is plain data ([`RegistryAnswer`]) so the classification stays pure; the
//! [`RegistryProbe`] trait lets callers and tests decide whether and how registries are asked.

use std::future::Future;
use std::time::Duration;

use oci_client::RegistryOperation;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::{Deserialize, Serialize};

/// Whether the registry has something, as an anonymous caller can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    Exists,
    Missing,
    /// The registry refuses anonymous callers: private, or hiding a missing repository.
    Denied,
    #[default]
    Unknown,
}

/// What an image's registry said, asked from this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryAnswer {
    /// The registry host as asked (`localhost:5001`).
    pub registry: String,
    /// False when the registry could not be asked at all; `problem` says why.
    pub reached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub repository: Presence,
    pub tag: Presence,
    /// The registry wants credentials for every request (an HTTP Basic challenge rather
    /// than anonymous tokens): nothing can be pulled from it without them.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    /// The repository's tags, sorted (empty when not listed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// For an existing tag: the platforms it is built for (`linux/amd64`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

impl Default for RegistryAnswer {
    fn default() -> Self {
        RegistryAnswer {
            registry: String::new(),
            reached: true,
            problem: None,
            repository: Presence::Unknown,
            tag: Presence::Unknown,
            auth_required: false,
            tags: Vec::new(),
            platforms: Vec::new(),
        }
    }
}

impl RegistryAnswer {
    /// The answer in sentences, for evidence. `path` is the repository, `tag` the tag asked.
    pub fn describe(&self, path: &str, tag: Option<&str>) -> Vec<String> {
        let registry = if self.registry.is_empty() {
            "the registry"
        } else {
            &self.registry
        };
        if !self.reached {
            return vec![format!(
                "could not ask {registry} from this machine: {}",
                self.problem.as_deref().unwrap_or("no answer")
            )];
        }
        let mut lines = Vec::new();
        let tag_text = tag.map(|t| format!(":{t}")).unwrap_or_default();
        if self.auth_required {
            lines.push(format!(
                "{registry} requires credentials for every request (HTTP Basic)"
            ));
        }
        match (self.repository, self.tag) {
            (Presence::Missing, _) => {
                lines.push(format!("{registry} has no repository {path}"));
            }
            (Presence::Denied, _) | (_, Presence::Denied) if !self.auth_required => {
                lines.push(format!(
                    "{registry} refuses anonymous access to {path} (private, or hiding a missing repository)"
                ))
            }
            (Presence::Denied, _) | (_, Presence::Denied) => {}
            (_, Presence::Exists) => lines.push(format!("{registry} has {path}{tag_text}")),
            (_, Presence::Missing) => lines.push(format!(
                "{registry} has {path} but no tag {}",
                tag.unwrap_or("(that digest)")
            )),
            _ => {}
        }
        if !self.tags.is_empty() {
            const SHOWN: usize = 8;
            let shown: Vec<&str> = self.tags.iter().take(SHOWN).map(String::as_str).collect();
            let more = self.tags.len().saturating_sub(SHOWN);
            lines.push(if more > 0 {
                format!("its tags: {} and {more} more", shown.join(", "))
            } else {
                format!("its tags: {}", shown.join(", "))
            });
        }
        if !self.platforms.is_empty() {
            lines.push(format!(
                "{path}{tag_text} is built for {}",
                self.platforms.join(", ")
            ));
        }
        if let Some(problem) = self.problem.as_ref().filter(|_| lines.is_empty()) {
            lines.push(format!("{registry} answered: {problem}"));
        }
        lines
    }
}

/// Whoever can ask registries. `None`: not asked (turned off, or a reference no client can
/// parse), which the classification reports as "the registry could not be asked".
pub trait RegistryProbe: Sync {
    fn probe(&self, image: &str) -> impl Future<Output = Option<RegistryAnswer>> + Send;
}

/// Asks no registry: the messages alone decide.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRegistry;

impl RegistryProbe for NoRegistry {
    async fn probe(&self, _image: &str) -> Option<RegistryAnswer> {
        None
    }
}

/// Asks registries over the network with the OCI client.
#[derive(Debug, Clone)]
pub struct RegistryAccess {
    /// Hosts spoken to over plain HTTP besides loopback ones (`localhost:5001`).
    plain_http: Vec<String>,
    /// For the whole conversation with one registry.
    timeout: Duration,
}

impl Default for RegistryAccess {
    fn default() -> Self {
        RegistryAccess {
            plain_http: Vec::new(),
            timeout: Duration::from_secs(6),
        }
    }
}

impl RegistryAccess {
    pub fn new() -> RegistryAccess {
        RegistryAccess::default()
    }

    /// Speaks plain HTTP to `host` (a `host:port` as images name it).
    pub fn with_plain_http(mut self, host: impl Into<String>) -> RegistryAccess {
        self.plain_http.push(host.into());
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> RegistryAccess {
        self.timeout = timeout;
        self
    }

    fn is_plain_http(&self, registry: &str) -> bool {
        let host = registry
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(registry, |(host, _)| host);
        self.plain_http.iter().any(|h| h == registry)
            || matches!(host, "localhost" | "[::1]")
            || host.starts_with("127.")
    }

    async fn ask(&self, reference: &Reference) -> RegistryAnswer {
        crate::tls::ensure_crypto_provider();
        let registry = reference.registry().to_string();
        let protocol = if self.is_plain_http(&registry) {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(3)),
            read_timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        });
        let auth = RegistryAuth::Anonymous;
        let mut answer = RegistryAnswer {
            registry,
            ..RegistryAnswer::default()
        };

        // The token dance first: no bearer challenge, yet a refusal below, means the registry
        // wants (Basic) credentials for everything.
        let bearer = match client.auth(reference, &auth, RegistryOperation::Pull).await {
            Ok(token) => token.is_some(),
            Err(OciDistributionError::RequestError(e)) => {
                answer.reached = false;
                answer.problem = Some(network_problem(&e));
                return answer;
            }
            Err(e) => {
                tracing::debug!(error = %e, "anonymous token refused");
                true
            }
        };

        match client.fetch_manifest_digest(reference, &auth).await {
            Ok(_) => {
                answer.repository = Presence::Exists;
                answer.tag = Presence::Exists;
            }
            Err(e) => match classify_error(&e) {
                ErrorMeaning::NoManifest => answer.tag = Presence::Missing,
                ErrorMeaning::NoRepository => {
                    answer.repository = Presence::Missing;
                    answer.tag = Presence::Missing;
                }
                ErrorMeaning::Denied => {
                    answer.repository = Presence::Denied;
                    answer.tag = Presence::Denied;
                    answer.auth_required = !bearer;
                }
                ErrorMeaning::Unreachable(problem) => {
                    answer.reached = false;
                    answer.problem = Some(problem);
                    return answer;
                }
                ErrorMeaning::Other(problem) => answer.problem = Some(problem),
            },
        }

        if matches!(answer.repository, Presence::Exists | Presence::Unknown) {
            let listing = Reference::with_tag(
                reference.registry().to_string(),
                reference.repository().to_string(),
                "latest".to_string(),
            );
            match client.list_tags(&listing, &auth, None, None).await {
                Ok(response) => {
                    answer.repository = Presence::Exists;
                    answer.tags = response.tags;
                    answer.tags.sort();
                }
                Err(e) => match classify_error(&e) {
                    ErrorMeaning::NoRepository | ErrorMeaning::NoManifest
                        if answer.repository == Presence::Unknown =>
                    {
                        answer.repository = Presence::Missing;
                        answer.tag = Presence::Missing;
                    }
                    _ => tracing::debug!(error = %e, "registry would not list tags"),
                },
            }
        }

        if answer.tag == Presence::Exists {
            answer.platforms = platforms(&client, reference, &auth).await;
        }
        answer
    }
}

impl RegistryProbe for RegistryAccess {
    async fn probe(&self, image: &str) -> Option<RegistryAnswer> {
        // The OCI client fills in the clients' default registry for short names.
        let reference: Reference = image.parse().ok()?;
        let registry = reference.registry().to_string();
        match tokio::time::timeout(self.timeout, self.ask(&reference)).await {
            Ok(answer) => Some(answer),
            Err(_) => Some(RegistryAnswer {
                registry,
                reached: false,
                problem: Some(format!(
                    "no answer within {}s",
                    self.timeout.as_secs_f32().round()
                )),
                ..RegistryAnswer::default()
            }),
        }
    }
}

/// What a registry's refusal means for the image asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorMeaning {
    /// The repository may exist; this tag or digest does not.
    NoManifest,
    NoRepository,
    Denied,
    /// No answer at all (network, TLS); in words.
    Unreachable(String),
    /// Any other refusal, in words.
    Other(String),
}

/// Reads an error of the OCI client: the status and the body (an OCI error envelope, or any
/// text) it made of the registry's answer.
pub fn classify_error(e: &OciDistributionError) -> ErrorMeaning {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => ErrorMeaning::NoManifest,
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| matches!(c, OciErrorCode::NameUnknown)) {
                ErrorMeaning::NoRepository
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                ErrorMeaning::NoManifest
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                ErrorMeaning::Denied
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
            {
                ErrorMeaning::Other("rate limited (429)".into())
            } else {
                ErrorMeaning::Other(e.to_string())
            }
        }
        OciDistributionError::ServerError { code, message, .. } => match code {
            404 => ErrorMeaning::NoManifest,
            401 | 403 => ErrorMeaning::Denied,
            429 => ErrorMeaning::Other("rate limited (429)".into()),
            _ => ErrorMeaning::Other(format!("HTTP {code} {}", message.trim())),
        },
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => ErrorMeaning::Denied,
        OciDistributionError::RequestError(e) => ErrorMeaning::Unreachable(network_problem(e)),
        other => ErrorMeaning::Other(other.to_string()),
    }
}

/// Why a request did not get an answer, in the words findings use.
fn network_problem(e: &(dyn std::error::Error + 'static)) -> String {
    let chain: String = std::iter::successors(Some(e), |e| e.source())
        .map(|e| e.to_string().to_lowercase())
        .collect::<Vec<_>>()
        .join(": ");
    if chain.contains("dns error") || chain.contains("lookup") || chain.contains("name or service")
    {
        "dns: the name does not resolve here".into()
    } else if chain.contains("connection refused") {
        "refused: nothing listens there".into()
    } else if chain.contains("certificate") || chain.contains("unknownissuer") {
        "tls: the certificate is not trusted here".into()
    } else if chain.contains("invalidcontenttype")
        || chain.contains("corrupt message")
        || chain.contains("wrong version number")
    {
        "tls: it speaks plain HTTP".into()
    } else if chain.contains("timed out") || chain.contains("timeout") {
        "timeout".into()
    } else {
        chain
    }
}

/// The platforms an index lists, or the one platform of a single manifest's config.
async fn platforms(client: &Client, reference: &Reference, auth: &RegistryAuth) -> Vec<String> {
    use oci_client::manifest::{
        IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
        OCI_IMAGE_MEDIA_TYPE,
    };
    let accepted = [
        OCI_IMAGE_INDEX_MEDIA_TYPE,
        IMAGE_MANIFEST_LIST_MEDIA_TYPE,
        OCI_IMAGE_MEDIA_TYPE,
        IMAGE_MANIFEST_MEDIA_TYPE,
    ];
    let Ok((raw, _)) = client.pull_manifest_raw(reference, auth, &accepted).await else {
        return Vec::new();
    };
    let config = match manifest_platforms(&raw) {
        ManifestPlatforms::Listed(found) => return found,
        ManifestPlatforms::InConfig(config) => config,
        ManifestPlatforms::Unknown => return Vec::new(),
    };
    let mut bytes: Vec<u8> = Vec::new();
    if client
        .pull_blob(reference, config.as_str(), &mut bytes)
        .await
        .is_err()
    {
        return Vec::new();
    }
    config_platform(&bytes).into_iter().collect()
}

/// Where a manifest's platforms are, read from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestPlatforms {
    /// An index: the platforms its entries list (adjacent repeats dropped).
    Listed(Vec<String>),
    /// A single image: its platform is in the config blob with this digest.
    InConfig(String),
    /// Not JSON, or neither shape.
    Unknown,
}

/// Reads a manifest or an index as the registry served it.
pub fn manifest_platforms(raw: &[u8]) -> ManifestPlatforms {
    let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return ManifestPlatforms::Unknown;
    };
    if let Some(entries) = manifest.get("manifests").and_then(|m| m.as_array()) {
        let mut found: Vec<String> = entries
            .iter()
            .filter_map(|entry| platform_of(entry.get("platform")?))
            .collect();
        found.dedup();
        return ManifestPlatforms::Listed(found);
    }
    match manifest
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(|d| d.as_str())
    {
        Some(config) => ManifestPlatforms::InConfig(config.to_string()),
        None => ManifestPlatforms::Unknown,
    }
}

/// The platform an image config blob names (`linux/amd64`), from its bytes.
pub fn config_platform(raw: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(raw)
        .ok()
        .and_then(|c| platform_of(&c))
}

/// `os/architecture[/variant]` from an index entry's `platform` or an image config.
pub(crate) fn platform_of(value: &serde_json::Value) -> Option<String> {
    let os = value.get("os")?.as_str()?;
    let arch = value.get("architecture")?.as_str()?;
    Some(match value.get("variant").and_then(|v| v.as_str()) {
        Some(variant) if !variant.is_empty() => format!("{os}/{arch}/{variant}"),
        _ => format!("{os}/{arch}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_named_hosts_are_plain_http() {
        let access = RegistryAccess::new().with_plain_http("kind-registry:5000");
        assert!(access.is_plain_http("localhost:5001"));
        assert!(access.is_plain_http("127.0.0.1:5000"));
        assert!(access.is_plain_http("kind-registry:5000"));
        assert!(!access.is_plain_http("registry.example"));
        assert!(!access.is_plain_http("localhostess.example:443"));
    }

    #[test]
    fn answers_in_sentences() {
        let answer = RegistryAnswer {
            registry: "localhost:5001".into(),
            repository: Presence::Exists,
            tag: Presence::Missing,
            tags: vec!["4aaa724028c0".into()],
            ..RegistryAnswer::default()
        };
        assert_eq!(
            answer.describe("orders-api", Some("nope")),
            [
                "localhost:5001 has orders-api but no tag nope",
                "its tags: 4aaa724028c0"
            ]
        );
        let unreachable = RegistryAnswer {
            registry: "registry.example".into(),
            reached: false,
            problem: Some("timeout".into()),
            ..RegistryAnswer::default()
        };
        assert_eq!(
            unreachable.describe("app", Some("1")),
            ["could not ask registry.example from this machine: timeout"]
        );
    }

    #[test]
    fn platforms_from_index_entries_and_configs() {
        let entry = serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
        assert_eq!(platform_of(&entry).as_deref(), Some("linux/arm64/v8"));
        let config = serde_json::json!({"os": "linux", "architecture": "amd64", "rootfs": {}});
        assert_eq!(platform_of(&config).as_deref(), Some("linux/amd64"));
    }

    #[test]
    fn manifests_say_where_their_platforms_are() {
        let index = br#"{"schemaVersion":2,"manifests":[
            {"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}},
            {"digest":"sha256:b","platform":{"os":"linux","architecture":"amd64"}},
            {"digest":"sha256:c","platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"digest":"sha256:d"}]}"#;
        assert_eq!(
            manifest_platforms(index),
            ManifestPlatforms::Listed(vec!["linux/amd64".into(), "linux/arm64/v8".into()])
        );
        let image = br#"{"schemaVersion":2,"config":{"digest":"sha256:cfg","size":1}}"#;
        assert_eq!(
            manifest_platforms(image),
            ManifestPlatforms::InConfig("sha256:cfg".into())
        );
        assert_eq!(manifest_platforms(b"not json"), ManifestPlatforms::Unknown);
        assert_eq!(manifest_platforms(b"[1,2]"), ManifestPlatforms::Unknown);
        assert_eq!(
            config_platform(br#"{"os":"linux","architecture":"amd64","rootfs":{}}"#).as_deref(),
            Some("linux/amd64")
        );
        assert_eq!(config_platform(b"\xff"), None);
    }

    #[test]
    fn registry_errors_by_what_they_mean() {
        let envelope = |code: &str| OciDistributionError::RegistryError {
            envelope: serde_json::from_str(&format!(r#"{{"errors":[{{"code":"{code}"}}]}}"#))
                .unwrap(),
            url: "http://localhost:5001/v2/app/manifests/1".into(),
        };
        assert_eq!(
            classify_error(&envelope("NAME_UNKNOWN")),
            ErrorMeaning::NoRepository
        );
        assert_eq!(
            classify_error(&envelope("MANIFEST_UNKNOWN")),
            ErrorMeaning::NoManifest
        );
        assert_eq!(classify_error(&envelope("DENIED")), ErrorMeaning::Denied);
        let server = |code: u16, message: &str| OciDistributionError::ServerError {
            code,
            url: String::new(),
            message: message.into(),
        };
        assert_eq!(classify_error(&server(404, "")), ErrorMeaning::NoManifest);
        assert_eq!(
            classify_error(&server(502, " bad gateway\n")),
            ErrorMeaning::Other("HTTP 502 bad gateway".into())
        );
    }

    #[tokio::test]
    async fn an_unparseable_reference_is_not_asked() {
        assert_eq!(RegistryAccess::new().probe("UPPER/Case:1").await, None);
        assert_eq!(NoRegistry.probe("busybox:1.36").await, None);
    }
}
