//! Why an image pull failed: the node's messages first, then the registry's own answer where
//! the messages cannot tell (registries answer a missing repository like a private one).

use super::message::{self, Reading, Signal};
use super::reference;
use super::registry::{Presence, RegistryAnswer};
use super::versions;
use super::{
    AuthProblem, Cause, CauseKind, Certainty, Evidence, Finding, NetworkProblem, TlsProblem,
};

/// Everything known about one container's failing pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullFailure {
    /// The image as the pod spec names it.
    pub image: String,
    /// `pod/NAME`.
    pub subject: String,
    pub container: Option<String>,
    pub namespace: Option<String>,
    /// The workload to fix, `deployment/NAME`, when there is one (for the fix's command).
    pub owner: Option<String>,
    /// The container's waiting reason (`ErrImagePull`, `ImagePullBackOff`, ...).
    pub reason: Option<String>,
    /// Event and container-status messages about the pull, oldest first.
    pub messages: Vec<Evidence>,
    /// imagePullSecrets the pod names that exist (whose credentials the node sends).
    pub pull_secrets: Vec<String>,
    /// imagePullSecrets the pod names that do not exist.
    pub missing_pull_secrets: Vec<String>,
    /// The node's `os/arch`.
    pub node_platform: Option<String>,
}

/// The finding for a failing pull. Pure: the registry's answer comes in as data (`None` when
/// it was not asked).
pub fn classify_pull_failure(failure: &PullFailure, registry: Option<&RegistryAnswer>) -> Finding {
    let readings: Vec<(&Evidence, Reading)> = failure
        .messages
        .iter()
        .map(|m| (m, message::read(&m.text)))
        // A pod's events name every container's image; keep this one's (and unnamed ones).
        .filter(|(_, r)| {
            r.image
                .as_deref()
                .is_none_or(|image| same_image(image, &failure.image))
        })
        .collect();
    let informative = |s: &Signal| !matches!(s, Signal::NoCause | Signal::Unrecognised);
    // The latest message that names a cause: the current state of the pull.
    let chosen = readings
        .iter()
        .rev()
        .find(|(_, r)| informative(&r.signal))
        .or_else(|| {
            readings
                .iter()
                .rev()
                .find(|(_, r)| r.signal == Signal::Unrecognised)
        });
    let mut signal = chosen.map_or(Signal::NoCause, |(_, r)| r.signal.clone());
    if signal == Signal::NoCause {
        match failure.reason.as_deref() {
            Some("ErrImageNeverPull") => signal = Signal::NeverPull,
            Some("InvalidImageName") => signal = Signal::InvalidReference,
            _ => {}
        }
    }
    if !reference::check(&failure.image).is_empty() {
        signal = Signal::InvalidReference;
    }

    let mut evidence = Vec::new();
    if let (Some(container), Some(reason)) = (&failure.container, &failure.reason) {
        evidence.push(Evidence::new(
            "container",
            format!("{container} is waiting: {reason}"),
        ));
    }
    // The chosen message, in its most telling wrapper: the event that names the image.
    let mut cores: Vec<String> = Vec::new();
    if let Some((message, _)) = chosen {
        let core = message::core(&message.text);
        let best = readings
            .iter()
            .rev()
            .map(|(m, _)| *m)
            .find(|m| m.text.starts_with("Failed to pull image") && message::core(&m.text) == core)
            .unwrap_or(message);
        evidence.push(best.clone());
        cores.push(core);
    }
    // Other messages that said something else (an earlier cause, another registry).
    for (message, reading) in readings.iter().rev() {
        let core = message::core(&message.text);
        // `Error: ErrImagePull` and its kind only repeat the container's state.
        let status_line = message
            .text
            .strip_prefix("Error: ")
            .is_some_and(|rest| !rest.contains(' '));
        if !cores.contains(&core)
            && !status_line
            && informative(&reading.signal)
            && evidence.len() < 4
        {
            evidence.push((*message).clone());
            cores.push(core);
        }
    }
    if chosen.is_none() && evidence.len() < 3 {
        // Nothing names a cause: show what there is.
        for message in failure.messages.iter().rev().take(2) {
            evidence.push(message.clone());
        }
    }

    let context = Context::new(
        failure,
        chosen.and_then(|(_, r)| r.registry.clone()),
        registry,
    );
    if let Some(answer) = registry {
        for line in answer.describe(&context.parts.path, context.tag()) {
            evidence.push(Evidence::new("registry", line));
        }
    }
    context.finding(signal, evidence)
}

/// What the findings are built from.
struct Context<'a> {
    failure: &'a PullFailure,
    parts: reference::Parts,
    registry_host: String,
    answer: Option<&'a RegistryAnswer>,
}

impl<'a> Context<'a> {
    fn new(
        failure: &'a PullFailure,
        named: Option<String>,
        answer: Option<&'a RegistryAnswer>,
    ) -> Context<'a> {
        let parts = reference::parts(&failure.image);
        let registry_host = answer
            .map(|a| a.registry.clone())
            .filter(|r| !r.is_empty())
            .or(named)
            .or_else(|| parts.registry.clone())
            .unwrap_or_else(|| "the default registry".to_string());
        Context {
            failure,
            parts,
            registry_host,
            answer,
        }
    }

    fn tag(&self) -> Option<&str> {
        self.parts.tag_or_latest()
    }

    fn image(&self) -> String {
        self.failure.image.clone()
    }

    fn reached(&self) -> Option<&RegistryAnswer> {
        self.answer.filter(|a| a.reached)
    }

    /// Why the registry's answer does not settle it, for ambiguous summaries.
    fn unasked(&self) -> String {
        match self.answer {
            None => "the registry was not asked".into(),
            Some(a) if !a.reached => format!(
                "the registry could not be asked from here ({})",
                a.problem.as_deref().unwrap_or("no answer")
            ),
            Some(a) if a.repository == Presence::Denied => {
                "the registry refuses anonymous questions too".into()
            }
            Some(_) => "the registry's answer does not settle it".into(),
        }
    }

    /// `kubectl set image ...` for the owner, else words.
    fn use_image(&self, image: &str) -> String {
        match (&self.failure.owner, &self.failure.container) {
            (Some(owner), Some(container)) => format!(
                "`kubectl set image {owner} {container}={image}{}`",
                self.ns_flag()
            ),
            _ => format!("point the pod's image at {image}"),
        }
    }

    fn ns_flag(&self) -> String {
        self.failure
            .namespace
            .as_ref()
            .map(|ns| format!(" -n {ns}"))
            .unwrap_or_default()
    }

    fn ns(&self) -> String {
        self.failure
            .namespace
            .clone()
            .unwrap_or_else(|| "NAMESPACE".into())
    }

    fn build(
        &self,
        cause: Cause,
        certainty: Certainty,
        candidates: Vec<CauseKind>,
        summary: String,
        evidence: Vec<Evidence>,
        fix: String,
    ) -> Finding {
        Finding {
            subject: self.failure.subject.clone(),
            container: self.failure.container.clone(),
            cause,
            certainty,
            candidates,
            summary,
            evidence,
            fix,
        }
    }

    fn finding(&self, signal: Signal, evidence: Vec<Evidence>) -> Finding {
        match signal {
            Signal::NeverPull => self.never_pull(evidence),
            Signal::InvalidReference => self.invalid_reference(evidence, false),
            Signal::ShortName => self.invalid_reference(evidence, true),
            Signal::Tls(problem) => self.tls(problem, evidence),
            Signal::RateLimited => self.build(
                Cause::RateLimited {
                    image: self.image(),
                    registry: self.registry_host.clone(),
                },
                Certainty::Certain,
                vec![],
                format!("{} rate-limited the node's pulls", self.registry_host),
                evidence,
                "pull with credentials (an imagePullSecret; authenticated pulls get higher limits), use a mirror or pull-through cache, or wait and retry".into(),
            ),
            Signal::Network(problem) => self.unreachable(problem, evidence),
            Signal::Platform { wanted } => self.platform(wanted, evidence),
            Signal::Incomplete => self.build(
                Cause::ImageIncomplete { image: self.image() },
                Certainty::Certain,
                vec![],
                format!(
                    "{} has {}, but not all the content it points to (a broken or partial push)",
                    self.registry_host, self.failure.image
                ),
                evidence,
                format!("push {} again", self.failure.image),
            ),
            Signal::RejectedCredentials => self.auth(AuthProblem::RejectedCredentials, evidence),
            Signal::MissingCredentials => self.auth(AuthProblem::MissingCredentials, evidence),
            Signal::Denied => self.denied(evidence),
            Signal::RepositoryMissing => self.repository_missing(evidence),
            Signal::NotFound => self.not_found(evidence),
            Signal::NoCause | Signal::Unrecognised => self.unexplained(signal, evidence),
        }
    }

    fn never_pull(&self, evidence: Vec<Evidence>) -> Finding {
        let image = &self.failure.image;
        self.build(
            Cause::ImageNeverPull { image: self.image() },
            Certainty::Certain,
            vec![],
            format!("imagePullPolicy is Never and the node has no image {image}"),
            evidence,
            format!(
                "load the image into the node (kind: `kind load docker-image {image}`), or set imagePullPolicy: IfNotPresent and push it to a registry"
            ),
        )
    }

    fn invalid_reference(&self, mut evidence: Vec<Evidence>, short_name: bool) -> Finding {
        let image = &self.failure.image;
        let problems = reference::check(image);
        let suggestion = reference::suggest(image);
        let (summary, fix) = if short_name && problems.is_empty() {
            (
                format!(
                    "the node's runtime cannot resolve the short name {image:?}: it has no unqualified-search registries"
                ),
                "use a fully qualified reference (REGISTRY/REPOSITORY:TAG), or configure the runtime's search registries".to_string(),
            )
        } else if let Some(first) = problems.first() {
            let more = match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            let text = if first.text.is_empty() {
                String::new()
            } else {
                format!(" ({:?})", first.text)
            };
            (
                format!(
                    "the image reference {image:?} is invalid at character {}{text}: {}{more}",
                    first.at + 1,
                    first.what
                ),
                match &suggestion {
                    Some(s) if self.failure.owner.is_some() => {
                        format!("use {s:?}: {}", self.use_image(s))
                    }
                    Some(s) => format!("point the pod's image at {s:?}"),
                    None if first.what.contains("template") => {
                        "render the manifest's variables before applying it".to_string()
                    }
                    None => "fix the image reference in the pod spec".to_string(),
                },
            )
        } else {
            (
                format!("the image reference {image:?} is invalid"),
                "fix the image reference in the pod spec".to_string(),
            )
        };
        if !problems.is_empty() {
            evidence.push(Evidence::new("spec", reference::pointer(image, &problems)));
        }
        self.build(
            Cause::InvalidReference {
                image: self.image(),
                problems,
                suggestion,
            },
            Certainty::Certain,
            vec![],
            summary,
            evidence,
            fix,
        )
    }

    fn tls(&self, problem: TlsProblem, evidence: Vec<Evidence>) -> Finding {
        let registry = &self.registry_host;
        let (summary, fix) = match problem {
            TlsProblem::PlainHttpRegistry => (
                format!("{registry} speaks plain HTTP, but the node's runtime asked over HTTPS"),
                format!(
                    "tell the runtime to use HTTP for {registry} (containerd: /etc/containerd/certs.d/{registry}/hosts.toml with server = \"http://{registry}\"; Docker/CRI-O: an insecure registry entry), or serve the registry over TLS"
                ),
            ),
            TlsProblem::UntrustedCertificate => (
                format!(
                    "the node does not trust {registry}'s certificate (signed by an unknown authority)"
                ),
                format!(
                    "give the nodes the CA that signed it (containerd: `ca = \"...\"` in /etc/containerd/certs.d/{registry}/hosts.toml), or use a certificate from a trusted CA; a TLS-intercepting proxy causes this too"
                ),
            ),
            TlsProblem::WrongName => (
                format!("{registry}'s certificate is for another name"),
                format!("issue a certificate that names {registry}, or pull by the name it has"),
            ),
            TlsProblem::Expired => (
                format!("{registry}'s certificate has expired (or the node's clock is wrong)"),
                "renew the registry's certificate; check the node's clock".into(),
            ),
            TlsProblem::Other => (
                format!("TLS with {registry} failed"),
                format!("check {registry}'s certificate and the node's trust store"),
            ),
        };
        self.build(
            Cause::RegistryTls {
                image: self.image(),
                registry: registry.clone(),
                problem,
            },
            Certainty::Certain,
            vec![],
            summary,
            evidence,
            fix,
        )
    }

    fn unreachable(&self, problem: NetworkProblem, evidence: Vec<Evidence>) -> Finding {
        let registry = &self.registry_host;
        let mut summary = match problem {
            NetworkProblem::Dns => format!("the node cannot resolve {registry}"),
            NetworkProblem::Refused => {
                format!("nothing accepts connections at {registry} (connection refused)")
            }
            NetworkProblem::Timeout => format!("the node's connection to {registry} timed out"),
            NetworkProblem::NoRoute => format!("the node has no route to {registry}"),
            NetworkProblem::ServerError => {
                format!("{registry} (or a proxy in front of it) answered with a server error")
            }
            NetworkProblem::Other => format!("the node's connection to {registry} broke"),
        };
        let answers_here = self.reached().is_some() && problem != NetworkProblem::ServerError;
        if answers_here {
            summary.push_str(
                "; it answers from this machine, so the node's network or registry configuration is at fault",
            );
        }
        // Silent from here too (refused or timed out, not merely unresolvable here): down.
        let down_here = self.answer.is_some_and(|a| {
            !a.reached
                && a.problem.as_deref().is_some_and(|p| {
                    p.starts_with("refused")
                        || p.starts_with("timeout")
                        || p.starts_with("no answer")
                })
        });
        if down_here {
            summary.push_str("; it does not answer from this machine either, so it looks down");
        }
        let loopback = registry.starts_with("localhost") || registry.starts_with("127.");
        // A bare name on a container network is usually a registry container's name.
        let host = registry.split(':').next().unwrap_or(registry);
        let container = if !host.contains('.') && !loopback {
            format!(" (a container? `docker start {host}`)")
        } else {
            String::new()
        };
        let fix = match problem {
            _ if down_here => {
                format!("start the registry{container}, then delete the pod to retry at once")
            }
            NetworkProblem::Dns => format!(
                "check the registry name in the image; make {registry} resolvable from the nodes (kind: the registry container on the `kind` network)"
            ),
            NetworkProblem::Refused if loopback => format!(
                "inside a node, {registry} is the node itself: map it to the registry with a containerd hosts.toml (kind documents this), and check that the registry runs (`docker ps`)"
            ),
            NetworkProblem::Refused => {
                format!("start the registry at {registry}, or check its host and port")
            }
            NetworkProblem::Timeout | NetworkProblem::NoRoute => {
                format!("check firewalls, proxies and routes between the nodes and {registry}")
            }
            NetworkProblem::ServerError => {
                format!("retry later; check {registry}'s status and logs")
            }
            NetworkProblem::Other => {
                format!("retry; check the network between the nodes and {registry}")
            }
        };
        self.build(
            Cause::RegistryUnreachable {
                image: self.image(),
                registry: registry.clone(),
                problem,
            },
            Certainty::Certain,
            vec![],
            summary,
            evidence,
            fix,
        )
    }

    fn platform(&self, wanted: Option<String>, evidence: Vec<Evidence>) -> Finding {
        let node = self.failure.node_platform.clone().or(wanted);
        let available = self
            .reached()
            .map(|a| a.platforms.clone())
            .unwrap_or_default();
        let mut summary = format!(
            "{} has no image for the node's platform{}",
            self.failure.image,
            node.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
        );
        if !available.is_empty() {
            summary.push_str(&format!("; it is built for {}", available.join(", ")));
        }
        let target = node.clone().unwrap_or_else(|| "linux/amd64".into());
        self.build(
            Cause::PlatformMismatch {
                image: self.image(),
                node,
                available,
            },
            Certainty::Certain,
            vec![],
            summary,
            evidence,
            format!(
                "build and push the image for the node's platform too (`docker buildx build --platform {target} ...`), or run the pod on nodes it is built for (nodeSelector kubernetes.io/arch)"
            ),
        )
    }

    fn auth(&self, problem: AuthProblem, evidence: Vec<Evidence>) -> Finding {
        let registry = &self.registry_host;
        let name = &self.parts.name;
        let problem = if self.failure.missing_pull_secrets.is_empty()
            || problem == AuthProblem::RejectedCredentials
        {
            problem
        } else {
            AuthProblem::MissingPullSecret
        };
        let secret_cmd = format!(
            "`kubectl create secret docker-registry regcred --docker-server={registry} --docker-username=USER --docker-password=PASSWORD -n {}`",
            self.ns()
        );
        let (summary, fix) = match problem {
            AuthProblem::MissingCredentials if !self.failure.pull_secrets.is_empty() => (
                format!(
                    "{registry} requires credentials for {name} and the pod's pull secrets ({}) hold none for it",
                    self.failure.pull_secrets.join(", ")
                ),
                format!("add credentials for {registry} to the pull secret ({secret_cmd})"),
            ),
            AuthProblem::MissingCredentials => (
                format!("{registry} requires credentials for {name} and the node sent none"),
                format!(
                    "create a pull secret ({secret_cmd}) and list it in the pod's imagePullSecrets"
                ),
            ),
            AuthProblem::RejectedCredentials if !self.failure.pull_secrets.is_empty() => (
                format!(
                    "{registry} rejected the credentials in the pod's pull secret {} for {name}",
                    self.failure.pull_secrets.join(", ")
                ),
                format!(
                    "put the right username and password in that secret (delete it and recreate it: {secret_cmd}, with its name)"
                ),
            ),
            AuthProblem::RejectedCredentials => (
                format!("{registry} rejected the credentials the node sent for {name}"),
                "update the pull secret's credentials (a wrong password or an expired token?)"
                    .into(),
            ),
            AuthProblem::MissingPullSecret => self.missing_secret(),
            AuthProblem::Denied => (
                format!("{registry} denied access to {name}"),
                format!("give the node credentials with access to {name} ({secret_cmd})"),
            ),
        };
        let evidence = self.with_secret_evidence(evidence);
        self.build(
            Cause::Unauthorized {
                image: self.image(),
                registry: registry.clone(),
                problem,
            },
            Certainty::Certain,
            vec![],
            summary,
            evidence,
            fix,
        )
    }

    fn missing_secret(&self) -> (String, String) {
        let names = self.failure.missing_pull_secrets.join(", ");
        (
            format!(
                "the pod's imagePullSecret {names} does not exist in namespace {}, so the node asked {} without credentials",
                self.ns(),
                self.registry_host
            ),
            format!(
                "create it (`kubectl create secret docker-registry {} --docker-server={} --docker-username=USER --docker-password=PASSWORD -n {}`) or fix the name in imagePullSecrets",
                self.failure
                    .missing_pull_secrets
                    .first()
                    .map_or("regcred", String::as_str),
                self.registry_host,
                self.ns()
            ),
        )
    }

    fn with_secret_evidence(&self, mut evidence: Vec<Evidence>) -> Vec<Evidence> {
        for name in &self.failure.missing_pull_secrets {
            evidence.push(Evidence::new(
                "spec",
                format!(
                    "imagePullSecrets names {name}, which does not exist in namespace {}",
                    self.ns()
                ),
            ));
        }
        evidence
    }

    /// Denied: private, or missing and hidden. The registry decides when it can.
    fn denied(&self, evidence: Vec<Evidence>) -> Finding {
        if !self.failure.missing_pull_secrets.is_empty() {
            return self.auth(AuthProblem::MissingPullSecret, evidence);
        }
        // A registry that wants credentials for everything refused: the node's credentials
        // (from the pod's pull secrets) are wrong, or it had none.
        if let Some(answer) = self.reached()
            && answer.auth_required
        {
            let problem = if self.failure.pull_secrets.is_empty() {
                AuthProblem::MissingCredentials
            } else {
                AuthProblem::RejectedCredentials
            };
            return self.auth(problem, evidence);
        }
        if let Some(answer) = self.reached()
            && answer.repository == Presence::Missing
        {
            return self.repository_missing(evidence);
        }
        let registry = &self.registry_host;
        let name = &self.parts.name;
        self.build(
            Cause::Unauthorized {
                image: self.image(),
                registry: registry.clone(),
                problem: AuthProblem::Denied,
            },
            Certainty::Ambiguous,
            vec![CauseKind::Unauthorized, CauseKind::RepositoryNotFound],
            format!(
                "{registry} denied access to {name}: the repository is private (the node has no valid credentials for it) or does not exist; {}",
                self.unasked()
            ),
            evidence,
            format!(
                "check the image name; if it is right, give the node credentials for {name} (an imagePullSecret in namespace {})",
                self.ns()
            ),
        )
    }

    fn repository_missing(&self, evidence: Vec<Evidence>) -> Finding {
        let registry = &self.registry_host;
        let path = &self.parts.path;
        let tag = self.tag().unwrap_or("TAG");
        self.build(
            Cause::RepositoryNotFound {
                image: self.image(),
                repository: self.parts.name.clone(),
            },
            Certainty::Certain,
            vec![],
            format!("{registry} has no repository {path}"),
            evidence,
            format!(
                "check the image name (registry, path, spelling); if the image is yours, build and push it: `docker push {}:{tag}`",
                self.parts.name
            ),
        )
    }

    fn tag_missing(&self, answer: &RegistryAnswer, evidence: Vec<Evidence>) -> Finding {
        let tag = self.tag().unwrap_or("(digest)").to_string();
        let name = &self.parts.name;
        let nearest = versions::nearest(&tag, &answer.tags);
        let mut summary = format!("{name} has no tag {tag:?}");
        if !nearest.is_empty() {
            summary.push_str(&format!("; nearest: {}", nearest.join(", ")));
        } else if answer.tags.is_empty() {
            summary.push_str("; it has no tags at all");
        }
        let fix = match nearest.first() {
            Some(near) => format!(
                "use an existing tag, e.g. {}, or push {name}:{tag}",
                self.use_image(&format!("{name}:{near}"))
            ),
            None => format!("push {name}:{tag}, or use a tag the repository has"),
        };
        self.build(
            Cause::TagNotFound {
                image: self.image(),
                repository: name.clone(),
                tag,
                nearest,
            },
            Certainty::Certain,
            vec![],
            summary,
            evidence,
            fix,
        )
    }

    fn not_found(&self, evidence: Vec<Evidence>) -> Finding {
        if let Some(answer) = self.reached() {
            match (answer.repository, answer.tag) {
                (Presence::Missing, _) => return self.repository_missing(evidence),
                (Presence::Exists, Presence::Missing) => {
                    return self.tag_missing(answer, evidence);
                }
                _ => {}
            }
        }
        let name = &self.parts.name;
        let tag = self.tag().unwrap_or("(digest)").to_string();
        let mut candidates = vec![CauseKind::TagNotFound, CauseKind::RepositoryNotFound];
        let mut summary = format!(
            "{}: not found: the tag is missing, or the repository does not exist (or is hidden from the node); {}",
            self.failure.image,
            self.unasked()
        );
        if let Some(answer) = self.reached() {
            if answer.repository == Presence::Denied {
                candidates.push(CauseKind::Unauthorized);
            }
            if answer.tag == Presence::Exists {
                summary = format!(
                    "the node found no {}, but the registry has it when asked from here: it was pushed after the pull failed, or the node pulls from somewhere else (a mirror or hosts.toml)",
                    self.failure.image
                );
            }
        }
        self.build(
            Cause::TagNotFound {
                image: self.image(),
                repository: name.clone(),
                tag: tag.clone(),
                nearest: vec![],
            },
            Certainty::Ambiguous,
            candidates,
            summary,
            evidence,
            format!(
                "check that {name}:{tag} exists (the registry's UI, or `docker manifest inspect {name}:{tag}`); push it or correct the reference"
            ),
        )
    }

    /// No message names a cause; the registry may still settle it.
    fn unexplained(&self, signal: Signal, evidence: Vec<Evidence>) -> Finding {
        if let Some(answer) = self.reached() {
            match (answer.repository, answer.tag) {
                (Presence::Missing, _) => return self.repository_missing(evidence),
                (Presence::Exists, Presence::Missing) => {
                    return self.tag_missing(answer, evidence);
                }
                _ => {}
            }
        }
        if !self.failure.missing_pull_secrets.is_empty() {
            return self.auth(AuthProblem::MissingPullSecret, evidence);
        }
        let (summary, fix) = if signal == Signal::NoCause {
            (
                format!(
                    "pulling {} fails, but the kubelet only says it is backing off: the event that said why has expired",
                    self.failure.image
                ),
                "delete the pod to get a fresh pull and its message (the Deployment recreates it), then run diagnose again".to_string(),
            )
        } else {
            (
                format!(
                    "pulling {} fails for a reason kindlab does not recognise; the message is below",
                    self.failure.image
                ),
                "read the message below; `kubectl describe pod` shows the events".to_string(),
            )
        };
        self.build(
            Cause::PullFailed {
                image: self.image(),
            },
            Certainty::Unknown,
            vec![],
            summary,
            evidence,
            fix,
        )
    }
}

/// The same image, however the kubelet spelled it (`busybox` is
/// `docker.io/library/busybox:latest`).
fn same_image(a: &str, b: &str) -> bool {
    normalise(a) == normalise(b)
}

fn normalise(image: &str) -> String {
    let mut text = image.trim().to_string();
    for prefix in [
        "docker.io/library/",
        "docker.io/",
        "index.docker.io/library/",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.to_string();
            break;
        }
    }
    let parts = reference::parts(&text);
    if parts.tag.is_none() && parts.digest.is_none() {
        text.push_str(":latest");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::registry::RegistryAnswer;

    fn failure(image: &str, messages: &[&str]) -> PullFailure {
        PullFailure {
            image: image.into(),
            subject: "pod/web-1".into(),
            container: Some("web".into()),
            namespace: Some("dev".into()),
            owner: Some("deployment/web".into()),
            reason: Some("ImagePullBackOff".into()),
            messages: messages
                .iter()
                .map(|m| Evidence::new("event", *m))
                .collect(),
            ..PullFailure::default()
        }
    }

    #[test]
    fn messages_about_other_images_are_ignored() {
        let f = failure(
            "busybox",
            &[
                "Failed to pull image \"other:1\": rpc error: code = Unknown desc = connection refused",
                "Failed to pull image \"docker.io/library/busybox:latest\": not found",
            ],
        );
        let finding = classify_pull_failure(&f, None);
        assert_eq!(finding.kind(), CauseKind::TagNotFound);
        assert_eq!(finding.certainty, Certainty::Ambiguous);
        assert!(!finding.evidence.iter().any(|e| e.text.contains("other:1")));
    }

    #[test]
    fn the_registry_turns_not_found_into_a_missing_tag_with_neighbours() {
        let f = failure(
            "localhost:5001/orders-api:does-not-exist",
            &[
                "Failed to pull image \"localhost:5001/orders-api:does-not-exist\": rpc error: code = NotFound desc = failed to pull and unpack image \"localhost:5001/orders-api:does-not-exist\": failed to resolve reference \"localhost:5001/orders-api:does-not-exist\": localhost:5001/orders-api:does-not-exist: not found",
            ],
        );
        let answer = RegistryAnswer {
            registry: "localhost:5001".into(),
            repository: Presence::Exists,
            tag: Presence::Missing,
            tags: vec!["4aaa724028c0".into()],
            ..RegistryAnswer::default()
        };
        let finding = classify_pull_failure(&f, Some(&answer));
        assert_eq!(finding.certainty, Certainty::Certain);
        assert_eq!(
            finding.summary,
            "localhost:5001/orders-api has no tag \"does-not-exist\"; nearest: 4aaa724028c0"
        );
        assert_eq!(
            finding.fix,
            "use an existing tag, e.g. `kubectl set image deployment/web web=localhost:5001/orders-api:4aaa724028c0 -n dev`, or push localhost:5001/orders-api:does-not-exist"
        );
        assert!(
            finding
                .evidence
                .iter()
                .any(|e| e.from == "registry" && e.text.contains("no tag does-not-exist"))
        );
    }

    #[test]
    fn a_missing_pull_secret_explains_a_denial() {
        let mut f = failure(
            "registry.example/team/app:1",
            &[
                "Failed to pull image \"registry.example/team/app:1\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed",
            ],
        );
        f.missing_pull_secrets = vec!["regcred".into()];
        let finding = classify_pull_failure(&f, None);
        assert_eq!(
            finding.cause,
            Cause::Unauthorized {
                image: "registry.example/team/app:1".into(),
                registry: "registry.example".into(),
                problem: AuthProblem::MissingPullSecret
            }
        );
        assert_eq!(finding.certainty, Certainty::Certain);
    }

    #[test]
    fn a_bare_back_off_without_the_registry_is_unknown_not_guessed() {
        let f = failure(
            "localhost:5001/web:nope",
            &[
                "Back-off pulling image \"localhost:5001/web:nope\"",
                "Error: ImagePullBackOff",
            ],
        );
        let finding = classify_pull_failure(&f, None);
        assert_eq!(finding.certainty, Certainty::Unknown);
        assert_eq!(finding.kind(), CauseKind::PullFailed);
        // The registry can still settle it.
        let answer = RegistryAnswer {
            repository: Presence::Missing,
            tag: Presence::Missing,
            ..RegistryAnswer::default()
        };
        assert_eq!(
            classify_pull_failure(&f, Some(&answer)).kind(),
            CauseKind::RepositoryNotFound
        );
    }

    #[test]
    fn an_invalid_reference_is_found_without_any_message() {
        let mut f = failure("localhost:5001/Orders-API:dev", &[]);
        f.reason = Some("InvalidImageName".into());
        let finding = classify_pull_failure(&f, None);
        assert_eq!(finding.kind(), CauseKind::InvalidReference);
        assert!(finding.summary.contains("\"O\""), "{}", finding.summary);
        assert!(
            finding.fix.contains("localhost:5001/orders-api:dev"),
            "{}",
            finding.fix
        );
    }

    #[test]
    fn a_refused_loopback_registry_explains_localhost_in_a_node() {
        let f = failure(
            "localhost:5000/app:1",
            &[
                "Failed to pull image \"localhost:5000/app:1\": rpc error: code = Unknown desc = failed to pull and unpack image \"localhost:5000/app:1\": failed to resolve reference \"localhost:5000/app:1\": failed to do request: Head \"https://localhost:5000/v2/app/manifests/1\": dial tcp [::1]:5000: connect: connection refused",
            ],
        );
        let reached = RegistryAnswer {
            registry: "localhost:5000".into(),
            repository: Presence::Exists,
            tag: Presence::Exists,
            ..RegistryAnswer::default()
        };
        let finding = classify_pull_failure(&f, Some(&reached));
        assert!(
            finding.summary.contains("answers from this machine"),
            "{}",
            finding.summary
        );
        assert!(finding.fix.contains("the node itself"), "{}", finding.fix);
    }
}
