//! `kindlab.yaml`: parsed strictly (unknown keys are errors), validated with the line of the
//! offending value, and resolved against the workspace directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::guardrails::{GuardrailSettings, Mode, valid_allowed_registry};

pub const MANIFEST_FILE: &str = "kindlab.yaml";

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("no {MANIFEST_FILE} in {dir} or any parent directory")]
    NotFound { dir: PathBuf },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: PathBuf,
        line: u64,
        column: u64,
        message: String,
        fix: String,
    },
    #[error("{path} already exists")]
    ScaffoldExists { path: PathBuf },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no image named {name:?} in {file}")]
    UnknownImage {
        name: String,
        file: PathBuf,
        known: Vec<String>,
    },
    #[error("neither kustomize nor kubectl was found on PATH")]
    NoRenderer,
    #[error("kubectl's embedded kustomize is {version}, older than v5")]
    OldKustomize { version: String },
    #[error("rendering the overlay {overlay} failed: {stderr}")]
    Render { overlay: PathBuf, stderr: String },
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no container in the overlay {overlay} runs {repository} (image {image:?} of kindlab.yaml); it runs {}", seen.join(", "))]
    ImageUnused {
        image: String,
        repository: String,
        overlay: PathBuf,
        registry_host: String,
        seen: Vec<String>,
    },
    #[error("`{command}` failed: {stderr}")]
    Git { command: String, stderr: String },
    #[error("{path} has changes that are not committed")]
    Uncommitted { path: PathBuf },
    #[error("cannot edit {path}: {message}")]
    Kustomization { path: PathBuf, message: String },
    #[error("{overlay} has no kustomization.yaml")]
    NoKustomization { overlay: PathBuf },
    #[error("the rendered overlay is not valid YAML")]
    RenderedYaml {
        #[source]
        source: serde_saphyr::Error,
    },
}

impl WorkspaceError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            WorkspaceError::NotFound { .. } => {
                "run kindlab in a workspace, pass --workspace DIR, or create one with `kindlab init`".into()
            }
            WorkspaceError::Read { .. } | WorkspaceError::Write { .. } => {
                "check the path and its permissions".into()
            }
            WorkspaceError::Invalid { fix, .. } => fix.clone(),
            WorkspaceError::ScaffoldExists { .. } => {
                "choose an empty or new directory: `kindlab init DIR`".into()
            }
            WorkspaceError::UnknownImage { known, .. } => {
                format!("use one of: {}", known.join(", "))
            }
            WorkspaceError::NoRenderer => {
                "install kustomize (`go install sigs.k8s.io/kustomize/kustomize/v5@latest`) or kubectl".into()
            }
            WorkspaceError::OldKustomize { .. } => {
                "install kustomize v5 (`go install sigs.k8s.io/kustomize/kustomize/v5@latest`) or a kubectl of v1.27 or newer".into()
            }
            WorkspaceError::Render { overlay, .. } => format!(
                "check the overlay with `kustomize build {}`",
                overlay.display()
            ),
            WorkspaceError::Spawn { program, .. } => format!("check that {program} runs"),
            WorkspaceError::RenderedYaml { .. } => return None,
            WorkspaceError::Kustomization { path, .. } => format!(
                "set the image by hand (`kustomize edit set image` in {}), or set deploy.updateImages: false in kindlab.yaml",
                path.parent().map(|p| p.display().to_string()).unwrap_or_default()
            ),
            WorkspaceError::ImageUnused { image, repository, .. } => format!(
                "name it in the overlay's kustomization (`kustomize edit set image {image}={repository}:TAG`), or remove deploy.updateImages: false from kindlab.yaml so kindlab records it"
            ),
            WorkspaceError::Git { .. } => "run the git command yourself to see what it needs".into(),
            WorkspaceError::Uncommitted { path } => format!(
                "kindlab never commits or discards your changes: commit them (`git commit {p}`) or put them aside (`git stash`), then run it again",
                p = path.display()
            ),
            WorkspaceError::NoKustomization { .. } => {
                "set deploy.overlay in kindlab.yaml to a kustomize directory".into()
            }
        })
    }
}

/// `kindlab.yaml` as written. Field names follow Kubernetes style (camelCase).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawManifest {
    cluster: Option<RawCluster>,
    registry: Option<RawRegistry>,
    #[serde(default)]
    images: Vec<RawImage>,
    deploy: Option<RawDeploy>,
    guardrails: Option<RawGuardrails>,
    gitops: Option<RawGitOps>,
}

/// `guardrails:`: admission policies `up` installs and `kindlab check` evaluates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawGuardrails {
    registry: Option<Spanned<String>>,
    no_latest: Option<Spanned<String>>,
    digest_in_production: Option<Spanned<String>>,
    #[serde(default)]
    allowed_registries: Vec<Spanned<String>>,
}

/// `gitops: {enabled: true}`: the overlay reaches the cluster through a Git server and Flux
/// (src/gitops), not through kindlab's own apply.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawGitOps {
    enabled: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCluster {
    name: Option<Spanned<String>>,
    node_image: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRegistry {
    name: Option<Spanned<String>>,
    port: Option<Spanned<RawPort>>,
    image: Option<Spanned<String>>,
}

/// `port: 5001`, or `port: auto` for a free port chosen by `up` and remembered.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPort {
    Number(i64),
    Word(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawImage {
    name: Spanned<String>,
    context: Spanned<String>,
    dockerfile: Option<Spanned<String>>,
    target: Option<Spanned<String>>,
    #[serde(default)]
    args: std::collections::BTreeMap<String, String>,
    platform: Option<Spanned<String>>,
    #[serde(default)]
    secrets: Vec<RawSecret>,
}

/// `secrets: [{id: npmrc, file: ~/.npmrc}]` or `{id: token, env: API_TOKEN}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSecret {
    id: Spanned<String>,
    file: Option<Spanned<String>>,
    env: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDeploy {
    overlay: Spanned<String>,
    update_images: Option<bool>,
}

/// A loaded, validated workspace. Paths are absolute.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub manifest_path: PathBuf,
    pub cluster: ClusterSpec,
    pub registry: RegistrySettings,
    pub images: Vec<ImageSpec>,
    pub deploy: Option<DeploySpec>,
    /// Off unless kindlab.yaml turns rules on.
    pub guardrails: GuardrailSettings,
    /// GitOps mode (`gitops.enabled`); off by default.
    pub gitops: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    /// None: kind's own default node image.
    pub node_image: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    pub name: String,
    /// With `port: auto`, the port remembered in `.kindlab/state.json`, else a free candidate
    /// that `up` confirms and remembers.
    pub port: u16,
    /// `port: auto` in kindlab.yaml.
    pub port_auto: bool,
    pub image: String,
}

/// Every workspace error is bad input: the files say something kindlab cannot use.
impl crate::error::Failure for WorkspaceError {
    fn fix(&self) -> Option<String> {
        WorkspaceError::fix(self)
    }
    fn exit_code(&self) -> u8 {
        crate::exit::BAD_INPUT
    }
}

impl Default for RegistrySettings {
    fn default() -> Self {
        // The names kind's local-registry guide uses, so a registry made by its script is
        // found and adopted.
        RegistrySettings {
            name: "kind-registry".into(),
            port: 5001,
            port_auto: false,
            image: "registry:3".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub name: String,
    pub context: PathBuf,
    /// Relative to `context`.
    pub dockerfile: String,
    /// The Dockerfile stage to build (`--target`); None: the last one.
    pub target: Option<String>,
    /// `--build-arg`s.
    pub args: std::collections::BTreeMap<String, String>,
    /// `os/arch[/variant]`; None: the engine's own, which is the kind nodes' (they are
    /// containers of that engine).
    pub platform: Option<String>,
    /// Secrets mounted by `RUN --mount=type=secret,id=...`; their values are read at build
    /// time only and never hashed, logged or stored.
    pub secrets: Vec<BuildSecret>,
}

/// One build secret: its id in the Dockerfile and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSecret {
    pub id: String,
    pub source: SecretSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file (absolute, or relative to the workspace when written in kindlab.yaml).
    File(PathBuf),
    /// An environment variable of the kindlab process.
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploySpec {
    pub overlay: PathBuf,
    /// Record each pushed image in the overlay's kustomization (`images:` newName/newTag), so
    /// the files say what is deployed. When false, kindlab never writes the user's files and
    /// pushes the image under the tag the overlay already names as well.
    pub update_images: bool,
}

impl Workspace {
    /// Finds `kindlab.yaml` in `start` or the nearest parent, as git and just find theirs.
    pub fn discover(start: &Path) -> Result<Workspace, WorkspaceError> {
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        let mut dir = Some(start.as_path());
        while let Some(d) = dir {
            let candidate = d.join(MANIFEST_FILE);
            if candidate.is_file() {
                return Workspace::load(&candidate);
            }
            dir = d.parent();
        }
        Err(WorkspaceError::NotFound { dir: start })
    }

    pub fn load(manifest_path: &Path) -> Result<Workspace, WorkspaceError> {
        let text =
            std::fs::read_to_string(manifest_path).map_err(|source| WorkspaceError::Read {
                path: manifest_path.to_path_buf(),
                source,
            })?;
        let root = manifest_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Workspace::parse(&text, manifest_path, &root)
    }

    /// Parses and validates; `file` is only used in messages, `root` resolves paths.
    pub fn parse(text: &str, file: &Path, root: &Path) -> Result<Workspace, WorkspaceError> {
        let raw: RawManifest = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column, message) = yaml_error_position(&e);
            WorkspaceError::Invalid {
                file: file.to_path_buf(),
                line,
                column,
                fix: syntax_fix(&message),
                message,
            }
        })?;
        let mut ws = Validator { file, root }.validate(raw)?;
        if ws.registry.port_auto {
            ws.registry.port = super::state::auto_port(root);
        }
        Ok(ws)
    }

    pub fn image(&self, name: &str) -> Result<&ImageSpec, WorkspaceError> {
        self.images
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| WorkspaceError::UnknownImage {
                name: name.to_string(),
                file: self.manifest_path.clone(),
                known: self.images.iter().map(|i| i.name.clone()).collect(),
            })
    }
}

/// Where a YAML document went wrong, and the one-line message, for `file:line:col: msg`.
pub fn yaml_error_position(e: &serde_saphyr::Error) -> (u64, u64, String) {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let text = e.without_snippet().to_string();
    let message = text.lines().next().unwrap_or(&text).trim().to_string();
    (line, column, message)
}

fn syntax_fix(message: &str) -> String {
    if message.contains("unknown field") {
        format!(
            "remove or rename the key; {MANIFEST_FILE} accepts cluster.{{name,nodeImage}}, registry.{{name,port,image}}, images[].{{name,context,dockerfile,target,args,platform,secrets}}, deploy.{{overlay,updateImages}}, guardrails.{{registry,noLatest,digestInProduction,allowedRegistries}}, gitops.enabled"
        )
    } else {
        format!("fix the YAML at that position; `kindlab init` shows a valid {MANIFEST_FILE}")
    }
}

struct Validator<'a> {
    file: &'a Path,
    root: &'a Path,
}

impl Validator<'_> {
    fn invalid<T>(&self, at: &Spanned<T>, message: String, fix: String) -> WorkspaceError {
        WorkspaceError::Invalid {
            file: self.file.to_path_buf(),
            line: at.referenced.line(),
            column: at.referenced.column(),
            message,
            fix,
        }
    }

    fn validate(&self, raw: RawManifest) -> Result<Workspace, WorkspaceError> {
        let cluster = raw.cluster.unwrap_or(RawCluster {
            name: None,
            node_image: None,
        });
        let name = match cluster.name {
            Some(n) => {
                self.dns_label(&n, "cluster.name")?;
                n.value
            }
            None => "kindlab".into(),
        };
        let node_image = match cluster.node_image {
            Some(i) if i.value.trim().is_empty() => {
                return Err(self.invalid(
                    &i,
                    "cluster.nodeImage is empty".into(),
                    "remove the key to use kind's default node image, or name an image".into(),
                ));
            }
            Some(i) => Some(i.value),
            None => None,
        };

        let defaults = RegistrySettings::default();
        let registry = match raw.registry {
            None => defaults,
            Some(r) => RegistrySettings {
                name: match r.name {
                    Some(n) => {
                        self.dns_label(&n, "registry.name")?;
                        n.value
                    }
                    None => defaults.name,
                },
                port_auto: matches!(&r.port, Some(p) if matches!(p.value, RawPort::Word(_))),
                port: match r.port {
                    Some(p) => match &p.value {
                        RawPort::Number(n) => {
                            u16::try_from(*n).ok().filter(|n| *n > 0).ok_or_else(|| {
                                self.invalid(
                                    &p,
                                    format!("registry.port {n} is not a TCP port"),
                                    "use a port from 1 to 65535, e.g. 5001, or `auto`".into(),
                                )
                            })?
                        }
                        RawPort::Word(w) if w == "auto" => 0,
                        RawPort::Word(w) => {
                            return Err(self.invalid(
                                &p,
                                format!("registry.port {w:?} is neither a port nor `auto`"),
                                "use a port from 1 to 65535, e.g. 5001, or `auto`".into(),
                            ));
                        }
                    },
                    None => defaults.port,
                },
                image: match r.image {
                    Some(i) if i.value.trim().is_empty() => {
                        return Err(self.invalid(
                            &i,
                            "registry.image is empty".into(),
                            "remove the key to use registry:3".into(),
                        ));
                    }
                    Some(i) => i.value,
                    None => defaults.image,
                },
            },
        };

        let mut images: Vec<ImageSpec> = Vec::new();
        for image in raw.images {
            self.dns_label(&image.name, "images[].name")?;
            if images.iter().any(|i| i.name == image.name.value) {
                return Err(self.invalid(
                    &image.name,
                    format!("image {:?} is listed twice", image.name.value),
                    "give each image a unique name".into(),
                ));
            }
            let context = self.root.join(&image.context.value);
            if !context.is_dir() {
                return Err(self.invalid(
                    &image.context,
                    format!("build context {:?} is not a directory", image.context.value),
                    format!(
                        "set images[].context to a directory relative to {}",
                        self.root.display()
                    ),
                ));
            }
            let dockerfile = match image.dockerfile {
                Some(d) => {
                    if !context.join(&d.value).is_file() {
                        return Err(self.invalid(
                            &d,
                            format!("no Dockerfile {:?} in {}", d.value, image.context.value),
                            "set images[].dockerfile to a file inside the build context".into(),
                        ));
                    }
                    d.value
                }
                None => {
                    if !context.join("Dockerfile").is_file() {
                        return Err(self.invalid(
                            &image.context,
                            format!("no Dockerfile in {}", image.context.value),
                            "add a Dockerfile there or set images[].dockerfile".into(),
                        ));
                    }
                    "Dockerfile".into()
                }
            };
            let platform = match image.platform {
                Some(p) => {
                    let parts: Vec<&str> = p.value.split('/').collect();
                    if !(2..=3).contains(&parts.len()) || parts.iter().any(|x| x.is_empty()) {
                        return Err(self.invalid(
                            &p,
                            format!("platform {:?} is not os/arch[/variant]", p.value),
                            "write it as Docker does, e.g. linux/amd64 or linux/arm64/v8, or leave it out to build for the cluster's nodes".into(),
                        ));
                    }
                    Some(p.value)
                }
                None => None,
            };
            let mut secrets: Vec<BuildSecret> = Vec::new();
            for secret in image.secrets {
                if secret.id.value.is_empty() || secrets.iter().any(|s| s.id == secret.id.value) {
                    return Err(self.invalid(
                        &secret.id,
                        format!("secret id {:?} is empty or listed twice", secret.id.value),
                        "give each secret the id its RUN --mount=type=secret,id=... uses, once"
                            .into(),
                    ));
                }
                let source = match (secret.file, secret.env) {
                    (Some(file), None) => {
                        let path = match file.value.strip_prefix("~/") {
                            Some(rest) => std::env::var_os("HOME")
                                .map(PathBuf::from)
                                .unwrap_or_default()
                                .join(rest),
                            None => self.root.join(&file.value),
                        };
                        SecretSource::File(path)
                    }
                    (None, Some(env)) if !env.value.is_empty() => SecretSource::Env(env.value),
                    _ => {
                        return Err(self.invalid(
                            &secret.id,
                            format!(
                                "secret {:?} needs exactly one of file or env",
                                secret.id.value
                            ),
                            "set `file: PATH` (relative to the workspace) or `env: VARIABLE`"
                                .into(),
                        ));
                    }
                };
                secrets.push(BuildSecret {
                    id: secret.id.value,
                    source,
                });
            }
            images.push(ImageSpec {
                name: image.name.value,
                context,
                dockerfile,
                target: image.target.map(|t| t.value),
                args: image.args,
                platform,
                secrets,
            });
        }

        let deploy = match raw.deploy {
            None => None,
            Some(d) => {
                let overlay = self.root.join(&d.overlay.value);
                if super::kustomization_file(&overlay).is_none() {
                    return Err(self.invalid(
                        &d.overlay,
                        format!("{:?} has no kustomization.yaml", d.overlay.value),
                        "set deploy.overlay to a kustomize directory, e.g. deploy/overlays/dev"
                            .into(),
                    ));
                }
                Some(DeploySpec {
                    overlay,
                    update_images: d.update_images.unwrap_or(true),
                })
            }
        };

        let guardrails = match raw.guardrails {
            None => GuardrailSettings::default(),
            Some(g) => self.guardrails(g)?,
        };

        let gitops = match raw.gitops.and_then(|g| g.enabled) {
            Some(enabled) if enabled.value && deploy.is_none() => {
                return Err(self.invalid(
                    &enabled,
                    "gitops.enabled needs deploy.overlay: the controller deploys that overlay"
                        .into(),
                    "set deploy.overlay, or remove gitops from kindlab.yaml".into(),
                ));
            }
            Some(enabled) => enabled.value,
            None => false,
        };
        Ok(Workspace {
            root: self.root.to_path_buf(),
            manifest_path: self.file.to_path_buf(),
            cluster: ClusterSpec { name, node_image },
            registry,
            images,
            deploy,
            guardrails,
            gitops,
        })
    }

    fn guardrails(&self, raw: RawGuardrails) -> Result<GuardrailSettings, WorkspaceError> {
        let mode = |value: Option<Spanned<String>>, key: &str| match value {
            None => Ok(Mode::Off),
            Some(v) => Mode::parse(&v.value).ok_or_else(|| {
                self.invalid(
                    &v,
                    format!("guardrails.{key} {:?} is not a mode", v.value),
                    "use off, warn (admit with a warning) or deny (refuse)".into(),
                )
            }),
        };
        let mut allowed = Vec::new();
        for entry in raw.allowed_registries {
            if !valid_allowed_registry(&entry.value) {
                return Err(self.invalid(
                    &entry,
                    format!(
                        "guardrails.allowedRegistries entry {:?} is not a registry",
                        entry.value
                    ),
                    "name a registry host or path prefix as images spell it, e.g. registry.k8s.io"
                        .into(),
                ));
            }
            allowed.push(entry.value);
        }
        Ok(GuardrailSettings {
            registry: mode(raw.registry, "registry")?,
            no_latest: mode(raw.no_latest, "noLatest")?,
            digest_in_production: mode(raw.digest_in_production, "digestInProduction")?,
            allowed_registries: allowed,
        })
    }

    /// Names that become container, cluster or repository names: lower-case DNS labels.
    fn dns_label(&self, value: &Spanned<String>, key: &str) -> Result<(), WorkspaceError> {
        let v = &value.value;
        let ok = !v.is_empty()
            && v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !v.starts_with('-')
            && !v.ends_with('-');
        if ok {
            Ok(())
        } else {
            Err(self.invalid(
                value,
                format!("{key} {v:?} is not a valid name"),
                "use lower-case letters, digits and '-', at most 63 characters".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("apps/api")).unwrap();
        std::fs::write(
            dir.path().join("apps/api/Dockerfile"),
            "FROM busybox:1.36\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("deploy/dev")).unwrap();
        std::fs::write(
            dir.path().join("deploy/dev/kustomization.yaml"),
            "resources: []\n",
        )
        .unwrap();
        dir
    }

    fn parse(dir: &Path, text: &str) -> Result<Workspace, WorkspaceError> {
        Workspace::parse(text, Path::new("kindlab.yaml"), dir)
    }

    fn invalid_at(err: WorkspaceError) -> (u64, String, String) {
        match err {
            WorkspaceError::Invalid {
                line, message, fix, ..
            } => (line, message, fix),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn full_manifest_resolves_paths_and_defaults() {
        let dir = workspace_dir();
        let ws = parse(
            dir.path(),
            "cluster:\n  name: lab\nimages:\n  - name: api\n    context: apps/api\ndeploy:\n  overlay: deploy/dev\n",
        )
        .unwrap();
        assert_eq!(ws.cluster.name, "lab");
        assert_eq!(ws.cluster.node_image, None);
        assert_eq!(ws.registry, RegistrySettings::default());
        assert_eq!(ws.images[0].context, dir.path().join("apps/api"));
        assert_eq!(ws.images[0].dockerfile, "Dockerfile");
        assert_eq!(ws.deploy.unwrap().overlay, dir.path().join("deploy/dev"));
    }

    #[test]
    fn unknown_key_names_its_line_and_the_accepted_keys() {
        let dir = workspace_dir();
        let err = parse(dir.path(), "cluster:\n  name: lab\n  nodes: 3\n").unwrap_err();
        let text = err.to_string();
        let (line, message, fix) = invalid_at(err);
        assert_eq!(line, 3, "{text}");
        assert!(message.contains("nodes"), "{message}");
        assert!(fix.contains("cluster.{name,nodeImage}"), "{fix}");
        assert!(text.starts_with("kindlab.yaml:3:"), "{text}");
    }

    #[test]
    fn bad_port_is_reported_on_its_line() {
        let dir = workspace_dir();
        let err = parse(dir.path(), "registry:\n  port: 70000\n").unwrap_err();
        let (line, message, _) = invalid_at(err);
        assert_eq!(line, 2);
        assert!(message.contains("70000"), "{message}");
    }

    #[test]
    fn port_auto_is_accepted_and_other_words_are_not() {
        let dir = workspace_dir();
        let ws = parse(dir.path(), "registry:\n  port: auto\n").unwrap();
        assert!(ws.registry.port_auto);
        assert!(ws.registry.port >= 5001, "{}", ws.registry.port);
        let fixed = parse(dir.path(), "registry:\n  port: 5002\n").unwrap();
        assert!(!fixed.registry.port_auto);
        assert_eq!(fixed.registry.port, 5002);
        let err = parse(dir.path(), "registry:\n  port: any\n").unwrap_err();
        let (line, message, fix) = invalid_at(err);
        assert_eq!(line, 2);
        assert!(message.contains("\"any\""), "{message}");
        assert!(fix.contains("`auto`"), "{fix}");
    }

    #[test]
    fn build_settings_are_read_and_checked() {
        let dir = workspace_dir();
        let ws = parse(
            dir.path(),
            "images:\n  - name: api\n    context: apps/api\n    target: runtime\n    args:\n      GO: \"1.23\"\n      N: 3\n    platform: linux/arm64/v8\n    secrets:\n      - id: npmrc\n        file: secrets/npmrc\n      - id: token\n        env: API_TOKEN\n",
        )
        .unwrap();
        let image = &ws.images[0];
        assert_eq!(image.target.as_deref(), Some("runtime"));
        assert_eq!(image.args["GO"], "1.23");
        assert_eq!(image.args["N"], "3");
        assert_eq!(image.platform.as_deref(), Some("linux/arm64/v8"));
        assert_eq!(
            image.secrets,
            [
                BuildSecret {
                    id: "npmrc".into(),
                    source: SecretSource::File(dir.path().join("secrets/npmrc")),
                },
                BuildSecret {
                    id: "token".into(),
                    source: SecretSource::Env("API_TOKEN".into()),
                },
            ]
        );

        let both = "images:\n  - name: api\n    context: apps/api\n    secrets:\n      - id: t\n        file: a\n        env: B\n";
        let (line, message, _) = invalid_at(parse(dir.path(), both).unwrap_err());
        assert_eq!(
            (line, message.as_str()),
            (5, "secret \"t\" needs exactly one of file or env")
        );
        let platform = "images:\n  - name: api\n    context: apps/api\n    platform: arm64\n";
        let (line, message, _) = invalid_at(parse(dir.path(), platform).unwrap_err());
        assert_eq!(
            (line, message.as_str()),
            (4, "platform \"arm64\" is not os/arch[/variant]")
        );
    }

    #[test]
    fn missing_context_and_dockerfile_are_rejected() {
        let dir = workspace_dir();
        let err = parse(
            dir.path(),
            "images:\n  - name: api\n    context: apps/nope\n",
        )
        .unwrap_err();
        let (line, message, _) = invalid_at(err);
        assert_eq!(line, 3);
        assert!(message.contains("apps/nope"));

        let err = parse(
            dir.path(),
            "images:\n  - name: api\n    context: apps/api\n    dockerfile: Other.Dockerfile\n",
        )
        .unwrap_err();
        assert_eq!(invalid_at(err).0, 4);
    }

    #[test]
    fn names_must_be_dns_labels_and_unique() {
        let dir = workspace_dir();
        let err = parse(dir.path(), "cluster:\n  name: My_Lab\n").unwrap_err();
        assert_eq!(invalid_at(err).0, 2);
        let err = parse(
            dir.path(),
            "images:\n  - name: api\n    context: apps/api\n  - name: api\n    context: apps/api\n",
        )
        .unwrap_err();
        let (line, message, _) = invalid_at(err);
        assert_eq!(line, 4);
        assert!(message.contains("twice"));
    }

    #[test]
    fn overlay_without_kustomization_is_rejected() {
        let dir = workspace_dir();
        let err = parse(dir.path(), "deploy:\n  overlay: apps\n").unwrap_err();
        assert!(invalid_at(err).1.contains("no kustomization.yaml"));
    }

    #[test]
    fn guardrails_are_off_unless_named_and_a_bad_mode_names_its_line() {
        let dir = workspace_dir();
        let ws = parse(dir.path(), "cluster:\n  name: lab\n").unwrap();
        assert!(!ws.guardrails.any_on());
        let ws = parse(
            dir.path(),
            "guardrails:\n  noLatest: deny\n  registry: warn\n  allowedRegistries: [registry.k8s.io]\n",
        )
        .unwrap();
        assert_eq!(ws.guardrails.no_latest, Mode::Deny);
        assert_eq!(ws.guardrails.registry, Mode::Warn);
        assert_eq!(ws.guardrails.digest_in_production, Mode::Off);
        assert_eq!(ws.guardrails.allowed_registries, ["registry.k8s.io"]);
        let err = parse(dir.path(), "guardrails:\n  noLatest: block\n").unwrap_err();
        let (line, message, fix) = invalid_at(err);
        assert_eq!(line, 2);
        assert!(message.contains("\"block\""), "{message}");
        assert!(fix.contains("deny"), "{fix}");
        let err = parse(
            dir.path(),
            "guardrails:\n  allowedRegistries:\n    - \"quay.io'\"\n",
        )
        .unwrap_err();
        assert_eq!(invalid_at(err).0, 3);
    }

    #[test]
    fn syntax_error_has_a_position() {
        let dir = workspace_dir();
        let err = parse(dir.path(), "cluster: [unclosed\n").unwrap_err();
        assert!(matches!(err, WorkspaceError::Invalid { .. }), "{err:?}");
    }

    #[test]
    fn discover_walks_up_to_the_manifest() {
        let dir = workspace_dir();
        std::fs::write(dir.path().join(MANIFEST_FILE), "cluster:\n  name: up\n").unwrap();
        let ws = Workspace::discover(&dir.path().join("apps/api")).unwrap();
        assert_eq!(ws.cluster.name, "up");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            Workspace::discover(empty.path()),
            Err(WorkspaceError::NotFound { .. })
        ));
    }
}
