//! What a bundle holds (`manifest.json`), and the pure decisions around it: which images a
//! workspace needs, which base images its Dockerfiles start from, whether a file's members
//! match its manifest, and which images an engine still lacks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The format this kindlab writes and reads. A newer format is refused with a clear error.
pub const FORMAT: &str = "kindlab-bundle/v1";
/// The last member of every bundle.
pub const MANIFEST_MEMBER: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub kindlab_version: String,
    /// `kind version` on the machine that made the bundle: the node image suits that kind.
    pub kind_version: Option<String>,
    pub workspace: WorkspaceInfo,
    /// True when kindlab.yaml named no node image: the bundle's node image is then the one
    /// `up` uses on a machine that loaded it (kind's own default cannot be pulled there).
    pub default_node_image: bool,
    pub images: Vec<ImageEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    pub cluster: String,
    pub registry: RegistryInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryInfo {
    pub name: String,
    pub port: u16,
    pub image: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageRole {
    /// The kind node image.
    Node,
    /// The local registry's image.
    Registry,
    /// An image a workspace Dockerfile starts FROM.
    Base,
    /// An image the workspace builds (kindlab.yaml `images`).
    App,
}

impl ImageRole {
    pub fn describe(self) -> &'static str {
        match self {
            ImageRole::Node => "kind node image",
            ImageRole::Registry => "registry image",
            ImageRole::Base => "base image",
            ImageRole::App => "app image",
        }
    }
}

/// How a member's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The `docker save` stream as the engine wrote it.
    #[default]
    None,
    /// The `docker save` stream compressed with zstd.
    Zstd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEntry {
    pub role: ImageRole,
    /// The name the image has in the engine after loading (`busybox:1.36`).
    pub reference: String,
    /// The image ID (`sha256:` of its config): what `load` checks the engine ends up with.
    pub id: String,
    /// The image's size in the engine, unpacked.
    pub size: u64,
    /// For app images: the image's name in kindlab.yaml and its content tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppImage>,
    /// For base images: the app images whose Dockerfiles start from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
    /// The tar member holding the image's `docker save` stream.
    pub member: String,
    pub encoding: Encoding,
    /// Bytes of the member as stored, and their SHA-256 (hex).
    pub member_size: u64,
    pub member_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppImage {
    pub name: String,
    pub tag: String,
}

impl Manifest {
    /// Bytes the images take in an engine once loaded.
    pub fn unpacked_size(&self) -> u64 {
        self.images.iter().map(|i| i.size).sum()
    }

    pub fn node_image(&self) -> Option<&ImageEntry> {
        self.images.iter().find(|i| i.role == ImageRole::Node)
    }
}

/// One image the bundle must hold, before it is looked up in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub role: ImageRole,
    pub reference: String,
    pub app: Option<AppImage>,
    pub used_by: Vec<String>,
}

/// The images a workspace needs, in load order (the registry first, the node image last),
/// each once: a base image two Dockerfiles share is one entry used by both.
pub fn wanted_images(
    node_image: &str,
    registry_image: &str,
    bases: &[(String, Vec<String>)],
    apps: &[(AppImage, String)],
) -> Vec<Wanted> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut add = |role: ImageRole, reference: &str, app: Option<AppImage>, user: Option<&str>| {
        if let Some(existing) = wanted.iter_mut().find(|w| w.reference == reference) {
            if let Some(user) = user
                && !existing.used_by.iter().any(|u| u == user)
            {
                existing.used_by.push(user.to_string());
            }
            return;
        }
        wanted.push(Wanted {
            role,
            reference: reference.to_string(),
            app,
            used_by: user.map(|u| vec![u.to_string()]).unwrap_or_default(),
        });
    };
    add(ImageRole::Registry, registry_image, None, None);
    for (app, images) in bases {
        for image in images {
            add(ImageRole::Base, image, None, Some(app));
        }
    }
    for (app, reference) in apps {
        add(ImageRole::App, reference, Some(app.clone()), None);
    }
    add(ImageRole::Node, node_image, None, None);
    wanted
}

/// The images a Dockerfile's `FROM` lines pull: every stage's base, except `scratch` and
/// earlier stages named with `AS`. A base named through a build `ARG` cannot be known
/// without building, so it is an error naming the line.
pub fn base_images_of_dockerfile(text: &str) -> Result<Vec<String>, String> {
    let mut stages: Vec<String> = Vec::new();
    let mut bases: Vec<String> = Vec::new();
    for (number, line) in logical_lines(text) {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let mut words = words.skip_while(|w| w.starts_with("--"));
        let Some(image) = words.next() else {
            return Err(format!("line {number}: FROM names no image"));
        };
        // A name given with AS earlier in the file is a stage, not an image to pull.
        let is_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(image));
        if let (Some(as_word), Some(name)) = (words.next(), words.next())
            && as_word.eq_ignore_ascii_case("AS")
        {
            stages.push(name.to_ascii_lowercase());
        }
        if image.eq_ignore_ascii_case("scratch") || is_stage {
            continue;
        }
        if image.contains('$') {
            return Err(format!(
                "line {number}: FROM {image} is set by a build ARG, so the image to bundle is unknown"
            ));
        }
        if !bases.iter().any(|b| b == image) {
            bases.push(image.to_string());
        }
    }
    Ok(bases)
}

/// Dockerfile lines with `\` continuations joined and comments dropped, with the number of
/// each logical line's first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if current.is_empty() {
            if trimmed.starts_with('#') || trimmed.is_empty() {
                continue;
            }
            start = index + 1;
        } else if trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                lines.push((start, std::mem::take(&mut current)));
            }
        }
    }
    if !current.is_empty() {
        lines.push((start, current));
    }
    lines
}

/// `images/02-busybox-1.36.tar.zst`: ordered, readable, and safe as a file name.
pub fn member_name(index: usize, reference: &str, encoding: Encoding) -> String {
    let mut slug: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    slug.truncate(60);
    let extension = match encoding {
        Encoding::None => "tar",
        Encoding::Zstd => "tar.zst",
    };
    format!("images/{index:02}-{slug}.{extension}")
}

/// A member as found in the file: where its bytes start, how many, and their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundMember {
    pub name: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: String,
}

/// Checks that every image's member is in the file once, whole and unchanged, and that the
/// file holds nothing else. Returns where each image's bytes are, in manifest order.
pub fn check_members(
    manifest: &Manifest,
    found: &[FoundMember],
) -> Result<Vec<FoundMember>, String> {
    if manifest.format != FORMAT {
        return Err(format!(
            "it is in format {:?}; this kindlab reads {FORMAT}",
            manifest.format
        ));
    }
    let mut by_name: BTreeMap<&str, &FoundMember> = BTreeMap::new();
    for member in found {
        if by_name.insert(member.name.as_str(), member).is_some() {
            return Err(format!("member {} appears twice", member.name));
        }
    }
    let mut located = Vec::new();
    for image in &manifest.images {
        let Some(member) = by_name.remove(image.member.as_str()) else {
            return Err(format!(
                "member {} ({}) is missing",
                image.member, image.reference
            ));
        };
        if member.size != image.member_size {
            return Err(format!(
                "member {} ({}) has {} bytes, the manifest says {}",
                image.member, image.reference, member.size, image.member_size
            ));
        }
        if member.sha256 != image.member_sha256 {
            return Err(format!(
                "member {} ({}) has sha256 {}, the manifest says {}",
                image.member, image.reference, member.sha256, image.member_sha256
            ));
        }
        located.push(member.clone());
    }
    if let Some(extra) = by_name.keys().next() {
        return Err(format!("member {extra} is not in the manifest"));
    }
    Ok(located)
}

/// What `load` does with one image, decided from what the engine holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadStep {
    /// The engine already has this image under this name.
    Present,
    /// Not there (`previous` is None) or the name points at another image, which the load
    /// moves and a rollback gives back.
    Load { previous: Option<String> },
}

/// Decides per image whether to load it. `engine` maps each reference the engine knows to
/// its image ID. Pure, so the rules are unit tests.
pub fn plan_load(manifest: &Manifest, engine: &BTreeMap<String, String>) -> Vec<LoadStep> {
    manifest
        .images
        .iter()
        .map(|image| match engine.get(&image.reference) {
            Some(id) if *id == image.id => LoadStep::Present,
            other => LoadStep::Load {
                previous: other.cloned(),
            },
        })
        .collect()
}

/// `kindest/node:v1.34.0@sha256:…` -> `kindest/node:v1.34.0`: the name a loaded image can
/// carry (a loaded image has no registry digest). None when the reference has no tag.
pub fn tag_form(reference: &str) -> Option<&str> {
    let name = reference.split('@').next().unwrap_or(reference);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':').then_some(name)
}

/// The tag `load` gives a bundle's default node image, so that `up` on a workspace that
/// names no node image uses it; keyed by the kind version the bundle was made with.
pub fn node_alias(kind_version: &str) -> String {
    format!("kindlab-bundle/node:kind-{kind_version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(role: ImageRole, reference: &str, id: &str) -> ImageEntry {
        ImageEntry {
            role,
            reference: reference.into(),
            id: id.into(),
            size: 100,
            app: None,
            used_by: Vec::new(),
            member: format!("images/{reference}.tar"),
            encoding: Encoding::None,
            member_size: 10,
            member_sha256: format!("sha-{reference}"),
        }
    }

    fn manifest(images: Vec<ImageEntry>) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            created_at: "2026-12-01T00:00:00Z".into(),
            kindlab_version: "0.1.0".into(),
            kind_version: Some("v0.33.0".into()),
            workspace: WorkspaceInfo {
                cluster: "kindlab".into(),
                registry: RegistryInfo {
                    name: "kind-registry".into(),
                    port: 5001,
                    image: "registry:3".into(),
                },
            },
            default_node_image: false,
            images,
        }
    }

    fn found(image: &ImageEntry) -> FoundMember {
        FoundMember {
            name: image.member.clone(),
            offset: 512,
            size: image.member_size,
            sha256: image.member_sha256.clone(),
        }
    }

    #[test]
    fn from_lines_give_the_external_bases_only() {
        let dockerfile = "\
# syntax=docker/dockerfile:1
ARG VERSION=1
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
RUN go build ./...
from build as test
FROM busybox:1.36
COPY --from=build /app /app
FROM scratch
FROM \\
  busybox:1.36
";
        assert_eq!(
            base_images_of_dockerfile(dockerfile).unwrap(),
            vec!["golang:1.26", "busybox:1.36"]
        );
    }

    #[test]
    fn a_base_from_a_build_arg_is_an_error_naming_the_line() {
        let err = base_images_of_dockerfile("ARG BASE=busybox\nFROM ${BASE}:1.36\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(err.contains("ARG"), "{err}");
    }

    #[test]
    fn wanted_images_are_unique_and_in_load_order() {
        let app = |n: &str| AppImage {
            name: n.into(),
            tag: "abc".into(),
        };
        let wanted = wanted_images(
            "kindest/node:v1.34.12-offline",
            "registry:3",
            &[
                ("web".into(), vec!["busybox:1.36".into()]),
                ("api".into(), vec!["busybox:1.36".into(), "alpine:3".into()]),
            ],
            &[
                (app("web"), "localhost:5001/web:abc".into()),
                (app("api"), "localhost:5001/api:abc".into()),
            ],
        );
        let refs: Vec<(&str, ImageRole)> = wanted
            .iter()
            .map(|w| (w.reference.as_str(), w.role))
            .collect();
        assert_eq!(
            refs,
            vec![
                ("registry:3", ImageRole::Registry),
                ("busybox:1.36", ImageRole::Base),
                ("alpine:3", ImageRole::Base),
                ("localhost:5001/web:abc", ImageRole::App),
                ("localhost:5001/api:abc", ImageRole::App),
                ("kindest/node:v1.34.12-offline", ImageRole::Node),
            ]
        );
        assert_eq!(wanted[1].used_by, vec!["web", "api"]);
    }

    #[test]
    fn member_names_are_ordered_and_file_safe() {
        assert_eq!(
            member_name(3, "localhost:5001/orders-api:4aaa", Encoding::Zstd),
            "images/03-localhost-5001-orders-api-4aaa.tar.zst"
        );
        assert_eq!(
            member_name(0, "registry:3", Encoding::None),
            "images/00-registry-3.tar"
        );
    }

    #[test]
    fn whole_members_pass_and_are_located_in_manifest_order() {
        let m = manifest(vec![
            entry(ImageRole::Registry, "registry:3", "sha256:r"),
            entry(ImageRole::Node, "kindest/node:x", "sha256:n"),
        ]);
        let files = vec![found(&m.images[1]), found(&m.images[0])];
        let located = check_members(&m, &files).unwrap();
        assert_eq!(located[0].name, m.images[0].member);
        assert_eq!(located[1].name, m.images[1].member);
    }

    #[test]
    fn a_changed_short_missing_or_unknown_member_is_refused() {
        let m = manifest(vec![entry(ImageRole::Registry, "registry:3", "sha256:r")]);
        let good = found(&m.images[0]);

        let mut changed = good.clone();
        changed.sha256 = "other".into();
        let err = check_members(&m, &[changed]).unwrap_err();
        assert!(err.contains("has sha256 other"), "{err}");
        assert!(err.contains("registry:3"), "{err}");

        let mut short = good.clone();
        short.size = 3;
        assert!(check_members(&m, &[short]).unwrap_err().contains("3 bytes"));

        assert!(check_members(&m, &[]).unwrap_err().contains("missing"));

        let mut extra = good.clone();
        extra.name = "images/99-stray.tar".into();
        let err = check_members(&m, &[good.clone(), extra]).unwrap_err();
        assert!(err.contains("not in the manifest"), "{err}");

        let err = check_members(&m, &[good.clone(), good]).unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn a_newer_format_is_refused() {
        let mut m = manifest(Vec::new());
        m.format = "kindlab-bundle/v2".into();
        assert!(check_members(&m, &[]).unwrap_err().contains("v2"));
    }

    #[test]
    fn load_plan_skips_what_the_engine_has_and_remembers_what_it_moves() {
        let m = manifest(vec![
            entry(ImageRole::Registry, "registry:3", "sha256:r"),
            entry(ImageRole::Base, "busybox:1.36", "sha256:b"),
            entry(ImageRole::Node, "kindest/node:x", "sha256:n"),
        ]);
        let engine = BTreeMap::from([
            ("registry:3".to_string(), "sha256:r".to_string()),
            ("busybox:1.36".to_string(), "sha256:older".to_string()),
        ]);
        assert_eq!(
            plan_load(&m, &engine),
            vec![
                LoadStep::Present,
                LoadStep::Load {
                    previous: Some("sha256:older".into())
                },
                LoadStep::Load { previous: None },
            ]
        );
    }

    #[test]
    fn tag_forms() {
        assert_eq!(
            tag_form("kindest/node:v1.34.0@sha256:abc"),
            Some("kindest/node:v1.34.0")
        );
        assert_eq!(tag_form("busybox:1.36"), Some("busybox:1.36"));
        assert_eq!(tag_form("localhost:5001/app@sha256:abc"), None);
        assert_eq!(tag_form("localhost:5001/app"), None);
    }

    #[test]
    fn manifest_round_trips_through_json() {
        let mut m = manifest(vec![entry(
            ImageRole::App,
            "localhost:5001/a:t",
            "sha256:a",
        )]);
        m.images[0].app = Some(AppImage {
            name: "a".into(),
            tag: "t".into(),
        });
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
        assert_eq!(m.unpacked_size(), 100);
    }
}
