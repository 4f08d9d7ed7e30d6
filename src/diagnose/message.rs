//! Reading what kubelets and container runtimes print about an image pull, in every era:
//! dockershim and cri-dockerd (`Error response from daemon: ...`), containerd 1.x and 2.x
//! (`failed to pull and unpack image ...: failed to resolve reference ...`), CRI-O and
//! containers/image (`initializing source ...: reading manifest ...`), with or without gRPC's
//! `rpc error: code = ... desc =`, with or without a `spec.containers{name}: ` prefix, and the
//! back-off messages of Kubernetes ≥ 1.32 that carry the pull error after the image.
//!
//! Messages nest: the innermost error is the cause ("failed to authorize: failed to fetch
//! anonymous token: ...: i/o timeout" is a network problem, not an authorisation one), so the
//! checks run from the most specific to the most general.

use crate::diagnose::{NetworkProblem, TlsProblem};

/// What one message says about why a pull failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// `imagePullPolicy: Never` and no image on the node.
    NeverPull,
    /// The reference cannot be parsed.
    InvalidReference,
    /// CRI-O cannot turn an unqualified name into a registry (no search registries).
    ShortName,
    Tls(TlsProblem),
    RateLimited,
    Network(NetworkProblem),
    /// No image for the node's platform; `wanted` as the message spells it (`linux/arm64/v8`).
    Platform {
        wanted: Option<String>,
    },
    /// The tag resolves, but content it points to is missing.
    Incomplete,
    /// Credentials were sent and refused.
    RejectedCredentials,
    /// The registry requires credentials for everything and none were sent.
    MissingCredentials,
    /// Access denied to this repository: private, or (registries hide this) missing.
    Denied,
    /// The registry says the repository does not exist.
    RepositoryMissing,
    /// "not found" / "manifest unknown": the tag, or the whole repository.
    NotFound,
    /// The message says a pull failed or backs off, but not why.
    NoCause,
    /// A failure kindlab does not recognise.
    Unrecognised,
}

/// One message, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub signal: Signal,
    /// The image the message names, if it names one.
    pub image: Option<String>,
    /// The registry host the message names (from a URL or `pinging ... registry HOST`).
    pub registry: Option<String>,
}

/// Reads one message.
pub fn read(message: &str) -> Reading {
    let text = strip_prefixes(message.trim());
    let image = named_image(text);
    let registry = named_registry(text);
    let cause = cause_text(text);
    Reading {
        signal: detect(&cause.to_lowercase()),
        image,
        registry,
    }
}

/// The error itself, without the kubelet's and gRPC's wrappers (`Failed to pull image "X": `,
/// `Back-off pulling image "X": ErrImagePull: `, `rpc error: code = ... desc = `): two
/// messages with the same core say the same thing.
pub fn core(message: &str) -> String {
    let mut text = cause_text(strip_prefixes(message.trim()));
    for wrapper in [
        "Failed to pull image \"",
        "ErrImagePull: ",
        "RegistryUnavailable: ",
    ] {
        if let Some(rest) = text.strip_prefix(wrapper) {
            text = match wrapper.ends_with('"') {
                true => rest
                    .split_once("\": ")
                    .map_or(rest.to_string(), |(_, r)| r.to_string()),
                false => rest.to_string(),
            };
        }
    }
    if let Some(at) = text.find(" desc = ") {
        text = text[at + " desc = ".len()..].to_string();
    }
    text.trim().to_string()
}

/// `spec.containers{api}: `, and the `Reason: ` that tools print before a message.
fn strip_prefixes(mut text: &str) -> &str {
    loop {
        let before = text;
        for field in [
            "spec.containers{",
            "spec.initContainers{",
            "spec.ephemeralContainers{",
        ] {
            if let Some(rest) = text.strip_prefix(field)
                && let Some((_, after)) = rest.split_once('}')
            {
                text = after.trim_start_matches(':').trim_start();
            }
        }
        for reason in [
            "ImagePullBackOff: ",
            "ErrImagePull: ",
            "InspectFailed: ",
            "InvalidImageName: ",
            "ImageInspectError: ",
            "ErrImageNeverPull: ",
            "Failed: ",
            "BackOff: ",
        ] {
            if let Some(rest) = text.strip_prefix(reason) {
                // `ErrImagePull: ErrImagePull` (a status line) keeps its word.
                if !rest.trim().is_empty() {
                    text = rest;
                }
            }
        }
        if text == before {
            return text;
        }
    }
}

/// The part that says why: after `Back-off pulling image "X": ` (Kubernetes ≥ 1.32 appends
/// the previous pull's error there), else the whole message.
fn cause_text(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("Back-off pulling image \"")
        && let Some((_, after)) = rest.split_once('"')
    {
        let after = after.trim_start_matches(':').trim();
        if after.is_empty() {
            return "back-off pulling image".to_string();
        }
        // "ErrImagePull: <error>", "RegistryUnavailable: <error>".
        return after.to_string();
    }
    text.to_string()
}

const IMAGE_MARKERS: &[&str] = &[
    "Failed to pull image \"",
    "Back-off pulling image \"",
    "Container image \"",
    "Failed to apply default image tag \"",
    "Failed to inspect image \"",
    "Pulling image \"",
    "failed to pull and unpack image \"",
    "image pull failed for ",
    "Unable to find image '",
    "parsing reference \"",
];

fn named_image(text: &str) -> Option<String> {
    for marker in IMAGE_MARKERS {
        if let Some(at) = text.find(marker) {
            let rest = &text[at + marker.len()..];
            let end = match marker.chars().last() {
                Some('"') => rest.find('"'),
                Some('\'') => rest.find('\''),
                // `image pull failed for HOST/REPO:TAG, this may be ...`
                _ => rest.find([',', ' ']),
            };
            if let Some(end) = end {
                return Some(unescape(&rest[..end]));
            }
        }
    }
    None
}

/// Go's `%q` spelling of a string, read back: `\u200b` is the zero-width space it stands for.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The host of the first registry URL in the message, or `pinging ... registry HOST:`.
fn named_registry(text: &str) -> Option<String> {
    for scheme in ["https://", "http://"] {
        if let Some(at) = text.find(scheme) {
            let rest = &text[at + scheme.len()..];
            let end = rest.find(['/', '"', ' ', '\\', ':']).unwrap_or(rest.len());
            // Keep a port: it is part of the registry's name.
            let host_end = match rest[end..].strip_prefix(':') {
                Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => {
                    end + 1
                        + after
                            .find(|c: char| !c.is_ascii_digit())
                            .unwrap_or(after.len())
                }
                _ => end,
            };
            let host = &rest[..host_end];
            if !host.is_empty() {
                return Some(host.to_string());
            }
        }
    }
    for marker in [
        "pinging container registry ",
        "pinging docker registry ",
        "error pinging ",
    ] {
        if let Some(at) = text.find(marker) {
            let rest = &text[at + marker.len()..];
            let host = rest.split([':', ' ']).next().unwrap_or_default();
            if !host.is_empty() && host != "returned" {
                // `HOST:PORT:` — take the port too when there is one.
                let with_port = rest.split(": ").next().unwrap_or(host);
                return Some(with_port.to_string());
            }
        }
    }
    None
}

fn has(text: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| text.contains(n))
}

/// An HTTP status in the 5xx range, as registries and proxies phrase it.
fn server_error(text: &str) -> bool {
    if has(
        text,
        &[
            "internal server error",
            "bad gateway",
            "service unavailable",
            "gateway timeout",
            "gateway time-out",
            "registry is unavailable",
        ],
    ) {
        return true;
    }
    for marker in [
        "http code: 5",
        "status code 5",
        "status 5",
        "unexpected status: 5",
    ] {
        if let Some(at) = text.find(marker) {
            let digits: String = text[at + marker.len() - 1..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if digits.len() == 3 {
                return true;
            }
        }
    }
    false
}

/// The platform the message says was wanted, as `os/arch[/variant]`.
fn wanted_platform(text: &str) -> Option<String> {
    if let Some(at) = text.find("no matching manifest for ") {
        let rest = &text[at + "no matching manifest for ".len()..];
        let platform = rest.split_whitespace().next()?;
        return Some(platform.to_string());
    }
    // containers/image: `for architecture arm64, variant "v8", OS linux`
    if let Some(at) = text.find("for architecture ") {
        let rest = &text[at + "for architecture ".len()..];
        let arch = rest.split([',', ' ']).next()?;
        let variant = rest
            .split("variant \"")
            .nth(1)
            .and_then(|v| v.split('"').next())
            .filter(|v| !v.is_empty());
        let os = rest
            .split("OS ")
            .nth(1)
            .and_then(|o| o.split([',', ' ', '"']).next())
            .filter(|o| !o.is_empty())
            .unwrap_or("linux");
        return Some(match variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        });
    }
    None
}

/// `text` is lower case.
fn detect(text: &str) -> Signal {
    if has(
        text,
        &[
            "is not present with pull policy of never",
            "errimageneverpull",
        ],
    ) {
        return Signal::NeverPull;
    }
    if has(
        text,
        &[
            "short-name",
            "short name mode",
            "did not resolve to an alias",
            "while trying to pull an unqualified image",
            "unqualified-search registries",
        ],
    ) {
        return Signal::ShortName;
    }
    if has(
        text,
        &[
            "invalid reference format",
            "couldn't parse image",
            "repository name must be lowercase",
            "repository name component must match",
            "invalid repository name",
            "parsing reference",
            "is not a valid repository/tag",
            "invalidimagename",
        ],
    ) {
        return Signal::InvalidReference;
    }
    if has(
        text,
        &[
            "server gave http response to https client",
            "first record does not look like a tls handshake",
        ],
    ) {
        return Signal::Tls(TlsProblem::PlainHttpRegistry);
    }
    if has(
        text,
        &[
            "x509:",
            "tls: failed to verify certificate",
            "certificate signed by unknown",
        ],
    ) {
        let problem = if has(text, &["unknown authority", "not standards compliant"]) {
            TlsProblem::UntrustedCertificate
        } else if has(
            text,
            &[
                "certificate is valid for",
                "not valid for",
                "doesn't contain any ip sans",
            ],
        ) {
            TlsProblem::WrongName
        } else if text.contains("expired") {
            TlsProblem::Expired
        } else {
            TlsProblem::Other
        };
        return Signal::Tls(problem);
    }
    if has(
        text,
        &[
            "toomanyrequests",
            "too many requests",
            "status 429",
            "429 too many",
            "pull rate limit",
            "rate limited",
        ],
    ) {
        return Signal::RateLimited;
    }
    if has(
        text,
        &[
            "dial tcp: lookup",
            "no such host",
            "server misbehaving",
            "temporary failure in name resolution",
            "name or service not known",
            "nodename nor servname",
        ],
    ) {
        return Signal::Network(NetworkProblem::Dns);
    }
    if has(
        text,
        &[
            "connection refused",
            "actively refused",
            "no connection could be made",
        ],
    ) {
        return Signal::Network(NetworkProblem::Refused);
    }
    if has(
        text,
        &[
            "no route to host",
            "network is unreachable",
            "host is unreachable",
        ],
    ) {
        return Signal::Network(NetworkProblem::NoRoute);
    }
    if has(
        text,
        &[
            "i/o timeout",
            "connection timed out",
            "tls handshake timeout",
            "context deadline exceeded",
            "code = deadlineexceeded",
            "timeout awaiting response headers",
            "client.timeout exceeded",
        ],
    ) {
        return Signal::Network(NetworkProblem::Timeout);
    }
    if has(text, &["connection reset by peer", "broken pipe"]) {
        return Signal::Network(NetworkProblem::Other);
    }
    if server_error(text) {
        return Signal::Network(NetworkProblem::ServerError);
    }
    if has(
        text,
        &[
            "no match for platform",
            "no matching manifest for",
            "no supported platform found",
            "no image found in manifest list",
            "does not match the specified platform",
        ],
    ) {
        return Signal::Platform {
            wanted: wanted_platform(text),
        };
    }
    if (text.contains("content at ") && text.contains("not found"))
        || has(
            text,
            &[
                "blob unknown",
                "unknown blob",
                "unexpected commit digest",
                "digest did not match",
                "failed size validation",
            ],
        )
    {
        return Signal::Incomplete;
    }
    if has(
        text,
        &[
            "failed to fetch oauth token",
            "incorrect username or password",
            "invalid username/password",
            "unauthenticated",
            "cannot be authenticated",
            "authentication failed",
            "invalid credentials",
            "bad credentials",
        ],
    ) {
        return Signal::RejectedCredentials;
    }
    if has(
        text,
        &["no basic auth credentials", "no user/password was provided"],
    ) {
        return Signal::MissingCredentials;
    }
    // Registries answer a repository that does not exist the way they answer a private one
    // (Docker Hub: 401 insufficient_scope, GHCR: 403, Quay: 401), so a denial names no cause.
    if has(
        text,
        &[
            "pull access denied",
            "insufficient_scope",
            "requested access to the resource is denied",
            "denied:",
            "denied on resource",
            "forbidden",
            "status 403",
            "403 (forbidden)",
            "http 403",
            "not authorized",
            "permission denied",
            "failed to fetch anonymous token",
            "requesting bearer token",
        ],
    ) {
        return Signal::Denied;
    }
    if has(text, &["authentication required"]) {
        return Signal::MissingCredentials;
    }
    if has(text, &["unauthorized", "401"]) {
        return Signal::Denied;
    }
    if has(
        text,
        &[
            "name unknown",
            "name_unknown",
            "repository name not known",
            "repository not found",
            "repo not found",
            "no such repository",
        ],
    ) {
        return Signal::RepositoryMissing;
    }
    if has(
        text,
        &[
            "manifest unknown",
            "manifest_unknown",
            "not found",
            "code = notfound",
            "does not exist",
            "no such manifest",
            "status 404",
            "404 not found",
        ],
    ) {
        return Signal::NotFound;
    }
    if has(
        text,
        &[
            "errimagepull",
            "imagepullbackoff",
            "back-off pulling image",
            "pulling image",
            "trying and failing to pull image",
        ],
    ) {
        return Signal::NoCause;
    }
    Signal::Unrecognised
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_path_and_reason_prefixes_are_ignored() {
        let r = read(
            "spec.containers{api}: Failed to pull image \"web:1\": rpc error: code = NotFound desc = web:1: not found",
        );
        assert_eq!(r.signal, Signal::NotFound);
        assert_eq!(r.image.as_deref(), Some("web:1"));
        let r = read(
            "ErrImageNeverPull: Container image \"x:1\" is not present with pull policy of Never",
        );
        assert_eq!(r.signal, Signal::NeverPull);
        assert_eq!(r.image.as_deref(), Some("x:1"));
    }

    #[test]
    fn back_off_with_and_without_a_cause() {
        // Kubernetes before 1.32.
        let r = read("Back-off pulling image \"localhost:5001/web:nope\"");
        assert_eq!(r.signal, Signal::NoCause);
        assert_eq!(r.image.as_deref(), Some("localhost:5001/web:nope"));
        // Kubernetes 1.32 and later: the previous error follows the image.
        let r = read(
            "Back-off pulling image \"localhost:5001/web:nope\": ErrImagePull: failed to pull and unpack image \"localhost:5001/web:nope\": failed to resolve reference \"localhost:5001/web:nope\": localhost:5001/web:nope: not found",
        );
        assert_eq!(r.signal, Signal::NotFound);
    }

    #[test]
    fn the_innermost_error_wins() {
        let r = read(
            "failed to resolve reference \"docker.io/library/redis:latest\": failed to authorize: failed to fetch anonymous token: Get \"https://auth.example/token\": dial tcp 10.0.0.1:443: i/o timeout",
        );
        assert_eq!(r.signal, Signal::Network(NetworkProblem::Timeout));
        let r = read(
            "pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials",
        );
        assert_eq!(r.signal, Signal::MissingCredentials);
    }

    #[test]
    fn registries_named_in_urls_and_pings() {
        assert_eq!(
            read("Head \"https://localhost:7439/v2/x/manifests/1\": http: server gave HTTP response to HTTPS client").registry.as_deref(),
            Some("localhost:7439")
        );
        assert_eq!(
            read("pinging container registry local-repo:4000: Get \"https://local-repo:4000/v2/\": http: server gave HTTP response to HTTPS client").registry.as_deref(),
            Some("local-repo:4000")
        );
    }

    #[test]
    fn platforms_as_the_message_spells_them() {
        assert_eq!(
            read("no matching manifest for linux/arm64/v8 in the manifest list entries").signal,
            Signal::Platform {
                wanted: Some("linux/arm64/v8".into())
            }
        );
        assert_eq!(
            read(
                "no image found in manifest list for architecture arm64, variant \"v8\", OS linux"
            )
            .signal,
            Signal::Platform {
                wanted: Some("linux/arm64/v8".into())
            }
        );
    }

    #[test]
    fn the_same_error_in_different_wrappers_has_one_core() {
        let event = "Failed to pull image \"web:1\": rpc error: code = NotFound desc = failed to pull and unpack image \"web:1\": not found";
        let status = "rpc error: code = NotFound desc = failed to pull and unpack image \"web:1\": not found";
        let back_off = "Back-off pulling image \"web:1\": ErrImagePull: failed to pull and unpack image \"web:1\": not found";
        assert_eq!(core(event), core(status));
        assert_eq!(core(event), core(back_off));
        assert_eq!(
            core(event),
            "failed to pull and unpack image \"web:1\": not found"
        );
    }

    #[test]
    fn server_errors_need_a_5xx_status() {
        assert!(server_error(
            "unexpected http code: 500 (internal server error)"
        ));
        assert!(!server_error("unexpected http code: 5"));
        assert!(!server_error("status 404"));
    }
}
