//! The overlay's kustomization file, edited as `kustomize edit set image` would: each workspace
//! image's `images:` entry names what kindlab pushed, so the files say what is deployed and a
//! hand `kubectl apply -k` applies exactly what `kindlab up` did.
//!
//! The edits are surgical (yamlpatch works on the parsed tree and rewrites only the spans it
//! changes), so the user's comments, key order and formatting stay. Deciding what to change is
//! a pure function of the file's text; writing is atomic and only happens when the text changed.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use yamlpatch::{Op, Patch};
use yamlpath::{Document, route};

use super::WorkspaceError;

/// The names kustomize looks for, in its own order.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The kustomization file of an overlay directory, if it has one.
pub fn kustomization_file(overlay: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|f| overlay.join(f))
        .find(|p| p.is_file())
}

/// One entry of `images:`, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageEntry {
    pub name: String,
    #[serde(default)]
    pub new_name: Option<String>,
    #[serde(default)]
    pub new_tag: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
}

impl ImageEntry {
    /// The reference kustomize (v5) renders for this entry: `newName` (or `name`), then
    /// `:newTag`, then `@digest` when pinned (the digest decides what is pulled).
    pub fn reference(&self) -> String {
        let repository = self.new_name.as_deref().unwrap_or(&self.name);
        let tag = self
            .new_tag
            .as_ref()
            .map(|t| format!(":{t}"))
            .unwrap_or_default();
        let digest = self
            .digest
            .as_ref()
            .map(|d| format!("@{d}"))
            .unwrap_or_default();
        format!("{repository}{tag}{digest}")
    }
}

#[derive(Debug, Deserialize)]
struct ImagesOnly {
    #[serde(default)]
    images: Option<Vec<ImageEntry>>,
}

/// The `images:` entries of a kustomization's text.
pub fn read_images(text: &str, file: &Path) -> Result<Vec<ImageEntry>, WorkspaceError> {
    let parsed: ImagesOnly = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column, message) = super::yaml_error_position(&e);
        WorkspaceError::Invalid {
            file: file.to_path_buf(),
            line,
            column,
            message,
            fix: "fix the kustomization's YAML (`kustomize build` shows the same error)".into(),
        }
    })?;
    Ok(parsed.images.unwrap_or_default())
}

/// What an image's entry must say after a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedImage {
    /// The image's name in kindlab.yaml (`orders-api`): the entry's `name` when kindlab adds one.
    pub image: String,
    /// `localhost:5001/orders-api`.
    pub new_name: String,
    pub new_tag: String,
    pub digest: DigestChange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestChange {
    /// Keep a pin up to date: set this digest if the entry is pinned, else leave it unpinned.
    UpdateIfPinned(String),
    /// Pin to this digest (`kindlab pin`).
    Pin(String),
    /// Leave any digest as it is (no build has happened yet).
    Keep,
}

/// The entry (by index) that stands for a workspace image: named after it, or already
/// pointing at its repository, bare or with a registry in front.
pub fn find_entry(entries: &[ImageEntry], image: &str, new_name: &str) -> Option<usize> {
    let suffix = format!("/{image}");
    let is_ours = |s: &str| s == image || s == new_name || s.ends_with(&suffix);
    entries
        .iter()
        .position(|e| e.name == image || e.name == new_name)
        .or_else(|| {
            entries
                .iter()
                .position(|e| is_ours(&e.name) || e.new_name.as_deref().is_some_and(is_ours))
        })
}

/// One change made to the file, for the status line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageChange {
    pub image: String,
    /// The reference the entry rendered before (None: there was no entry).
    pub before: Option<String>,
    pub after: String,
}

/// The kustomization's text with every wanted image set, and what changed; `None` when the
/// text already says it all.
pub fn set_images(
    text: &str,
    file: &Path,
    wanted: &[WantedImage],
) -> Result<Option<(String, Vec<ImageChange>)>, WorkspaceError> {
    let entries = read_images(text, file)?;
    let mut patches: Vec<Patch<'static>> = Vec::new();
    let mut changes = Vec::new();
    let before = parse_value(text, file)?;
    let has_images_key = before.get("images").is_some();
    // The whole document as it must read after the edit: the edit is checked against it, so
    // an edit the patch library gets wrong is refused instead of written.
    let mut expected = before.clone();
    let mut appended: Vec<yaml_serde::Value> = Vec::new();

    // The entry each wanted image claimed: one entry cannot name two images.
    let mut claimed: Vec<(usize, &str)> = Vec::new();
    for want in wanted {
        match find_entry(&entries, &want.image, &want.new_name) {
            Some(index) => {
                let entry = &entries[index];
                if let Some((_, other)) = claimed.iter().find(|(i, _)| *i == index) {
                    return Err(WorkspaceError::Kustomization {
                        path: file.to_path_buf(),
                        message: format!(
                            "its images entry {:?} stands for both {other} and {}; give each image its own entry",
                            entry.name, want.image
                        ),
                    });
                }
                claimed.push((index, &want.image));
                let digest = match &want.digest {
                    DigestChange::Pin(d) => Some(d.clone()),
                    DigestChange::UpdateIfPinned(d) => entry.digest.as_ref().map(|_| d.clone()),
                    DigestChange::Keep => entry.digest.clone(),
                };
                let after = ImageEntry {
                    name: entry.name.clone(),
                    new_name: Some(want.new_name.clone()),
                    new_tag: Some(want.new_tag.clone()),
                    digest,
                };
                let fields = [
                    ("newName", &entry.new_name, &after.new_name),
                    ("newTag", &entry.new_tag, &after.new_tag),
                    ("digest", &entry.digest, &after.digest),
                ];
                for (key, old, new) in fields {
                    if let Some(entry) = expected
                        .pointer_mut(&format!("/images/{index}"))
                        .and_then(serde_json::Value::as_object_mut)
                    {
                        match new {
                            Some(v) => entry.insert(key.into(), v.clone().into()),
                            None => entry.remove(key),
                        };
                    }
                    if let Some(op) = field_op(key, old.as_deref(), new.as_deref()) {
                        let route = match &op {
                            Op::Add { .. } => route!("images", index),
                            _ => route!("images", index, key),
                        };
                        patches.push(Patch {
                            route,
                            operation: op,
                        });
                    }
                }
                if after.reference() != entry.reference() {
                    changes.push(ImageChange {
                        image: want.image.clone(),
                        before: Some(entry.reference()),
                        after: after.reference(),
                    });
                }
            }
            None => {
                let entry = ImageEntry {
                    name: want.image.clone(),
                    new_name: Some(want.new_name.clone()),
                    new_tag: Some(want.new_tag.clone()),
                    digest: match &want.digest {
                        DigestChange::Pin(d) => Some(d.clone()),
                        DigestChange::UpdateIfPinned(_) | DigestChange::Keep => None,
                    },
                };
                changes.push(ImageChange {
                    image: want.image.clone(),
                    before: None,
                    after: entry.reference(),
                });
                let images = expected
                    .as_object_mut()
                    .map(|doc| doc.entry("images").or_insert(serde_json::Value::Null));
                if let Some(images) = images {
                    if !images.is_array() {
                        *images = serde_json::Value::Array(Vec::new());
                    }
                    if let Some(list) = images.as_array_mut() {
                        list.push(entry_json(&entry));
                    }
                }
                appended.push(entry_value(&entry));
            }
        }
    }

    if !appended.is_empty() {
        if has_images_key && !entries.is_empty() {
            for value in appended {
                patches.push(Patch {
                    route: route!("images"),
                    operation: Op::Append { value },
                });
            }
        } else if has_images_key {
            // `images: []` or `images:` with nothing: replace the empty value.
            patches.push(Patch {
                route: route!("images"),
                operation: Op::Replace(yaml_serde::Value::Sequence(appended)),
            });
        } else {
            patches.push(Patch {
                route: route!(),
                operation: Op::Add {
                    key: "images".into(),
                    value: yaml_serde::Value::Sequence(appended),
                },
            });
        }
    }

    if patches.is_empty() {
        return Ok(None);
    }
    let edit_err = |message: String| WorkspaceError::Kustomization {
        path: file.to_path_buf(),
        message,
    };
    let document = Document::new(text.to_string()).map_err(|e| edit_err(e.to_string()))?;
    // yamlpath cannot tell what kind of node carries an anchor or a tag (`&base`, `!!map`)
    // and panics on some of them: such a node is left to the user.
    for patch in &patches {
        if let Ok(feature) = document.query_pretty(&patch.route)
            && document
                .extract(&feature)
                .trim_start()
                .starts_with(['&', '!'])
        {
            return Err(edit_err(
                "kindlab does not edit a node with a YAML anchor or tag (`&name`, `!!type`) in place"
                    .into(),
            ));
        }
    }
    let patched =
        yamlpatch::apply_yaml_patches(&document, &patches).map_err(|e| edit_err(e.to_string()))?;
    let new_text = patched.source().to_string();
    if parse_value(&new_text, file).ok().as_ref() != Some(&expected) {
        tracing::debug!(%new_text, "the in-place edit did not read back as intended");
        return Err(edit_err(
            "kindlab cannot edit its images entry in place (is it written in flow style, `{...}`?)"
                .into(),
        ));
    }
    if new_text == text {
        return Ok(None);
    }
    Ok(Some((new_text, changes)))
}

/// Reads the overlay's kustomization, sets the images, and writes it back atomically when it
/// changed. Returns the file and the changes (empty: nothing written).
pub fn record_images(
    overlay: &Path,
    wanted: &[WantedImage],
) -> Result<(PathBuf, Vec<ImageChange>), WorkspaceError> {
    let file = kustomization_file(overlay).ok_or_else(|| WorkspaceError::NoKustomization {
        overlay: overlay.to_path_buf(),
    })?;
    let text = std::fs::read_to_string(&file).map_err(|source| WorkspaceError::Read {
        path: file.clone(),
        source,
    })?;
    match set_images(&text, &file, wanted)? {
        None => Ok((file, Vec::new())),
        Some((new_text, changes)) => {
            super::write_atomic(&file, new_text.as_bytes())?;
            Ok((file, changes))
        }
    }
}

fn field_op(key: &str, old: Option<&str>, new: Option<&str>) -> Option<Op<'static>> {
    let value = |s: &str| yaml_serde::Value::String(s.to_string());
    match (old, new) {
        (Some(a), Some(b)) if a == b => None,
        (Some(_), Some(b)) => Some(Op::Replace(value(b))),
        (None, Some(b)) => Some(Op::Add {
            key: key.to_string(),
            value: value(b),
        }),
        (Some(_), None) => Some(Op::Remove),
        (None, None) => None,
    }
}

fn entry_value(entry: &ImageEntry) -> yaml_serde::Value {
    let mut map = yaml_serde::Mapping::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            map.insert(k.into(), v.clone().into());
        }
    };
    put("name", &Some(entry.name.clone()));
    put("newName", &entry.new_name);
    put("newTag", &entry.new_tag);
    put("digest", &entry.digest);
    yaml_serde::Value::Mapping(map)
}

fn entry_json(entry: &ImageEntry) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert("name".into(), entry.name.clone().into());
    for (k, v) in [
        ("newName", &entry.new_name),
        ("newTag", &entry.new_tag),
        ("digest", &entry.digest),
    ] {
        if let Some(v) = v {
            map.insert(k.into(), v.clone().into());
        }
    }
    serde_json::Value::Object(map)
}

/// The whole document as plain data, to compare before and after an edit.
fn parse_value(text: &str, file: &Path) -> Result<serde_json::Value, WorkspaceError> {
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column, message) = super::yaml_error_position(&e);
        WorkspaceError::Invalid {
            file: file.to_path_buf(),
            line,
            column,
            message,
            fix: "fix the kustomization's YAML".into(),
        }
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        include_str!("../../templates/workspace/deploy/overlays/dev/kustomization.yaml");

    fn want(tag: &str) -> WantedImage {
        WantedImage {
            image: "orders-api".into(),
            new_name: "localhost:5001/orders-api".into(),
            new_tag: tag.into(),
            digest: DigestChange::UpdateIfPinned("sha256:aaa".into()),
        }
    }

    fn file() -> &'static Path {
        Path::new("kustomization.yaml")
    }

    #[test]
    fn a_new_tag_changes_only_that_value_and_keeps_comments() {
        let text = "# dev overlay: what runs on my laptop\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: dev   # all objects go here\nimages:\n  # kindlab keeps this in step with the pushed build\n  - name: orders-api\n    newName: localhost:5001/orders-api # the local registry\n    newTag: dev\nresources:\n  - ../../base/orders-api\n";
        let (new_text, changes) = set_images(text, file(), &[want("abc123")])
            .unwrap()
            .unwrap();
        assert_eq!(new_text, text.replace("newTag: dev", "newTag: abc123"));
        assert_eq!(
            changes,
            vec![ImageChange {
                image: "orders-api".into(),
                before: Some("localhost:5001/orders-api:dev".into()),
                after: "localhost:5001/orders-api:abc123".into(),
            }]
        );
        // A second run has nothing to do.
        assert_eq!(
            set_images(&new_text, file(), &[want("abc123")]).unwrap(),
            None
        );
    }

    #[test]
    fn a_commented_overlay_keeps_every_comment_and_blank_line() {
        let text = include_str!("testdata/kustomization-commented.yaml");
        let golden = include_str!("testdata/kustomization-commented.golden.yaml");
        let (new_text, _) = set_images(text, file(), &[want("0123456789ab")])
            .unwrap()
            .unwrap();
        assert_eq!(new_text, golden);
    }

    #[test]
    fn the_sample_overlay_is_edited_in_place() {
        let (new_text, _) = set_images(SAMPLE, file(), &[want("abc123")])
            .unwrap()
            .unwrap();
        let entries = read_images(&new_text, file()).unwrap();
        assert_eq!(entries[0].reference(), "localhost:5001/orders-api:abc123");
        // Everything else in the file is byte for byte the same.
        let changed: Vec<_> = SAMPLE
            .lines()
            .zip(new_text.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(SAMPLE.lines().count(), new_text.lines().count());
    }

    #[test]
    fn a_pinned_entry_keeps_its_pin_up_to_date() {
        let text = "images:\n- name: orders-api\n  newName: localhost:5001/orders-api\n  newTag: old\n  digest: sha256:old\n";
        let (new_text, changes) = set_images(text, file(), &[want("new")]).unwrap().unwrap();
        assert!(new_text.contains("digest: sha256:aaa"), "{new_text}");
        assert!(new_text.contains("newTag: new"), "{new_text}");
        assert_eq!(changes[0].after, "localhost:5001/orders-api:new@sha256:aaa");
    }

    #[test]
    fn pin_adds_a_digest() {
        let mut w = want("abc");
        w.digest = DigestChange::Pin("sha256:bbb".into());
        let text = "images:\n  - name: orders-api\n    newName: localhost:5001/orders-api\n    newTag: abc\n";
        let (new_text, changes) = set_images(text, file(), &[w]).unwrap().unwrap();
        let entries = read_images(&new_text, file()).unwrap();
        assert_eq!(entries[0].digest.as_deref(), Some("sha256:bbb"));
        assert_eq!(changes[0].after, "localhost:5001/orders-api:abc@sha256:bbb");
    }

    #[test]
    fn a_missing_entry_is_added_and_a_missing_key_too() {
        let text = "resources:\n  - deployment.yaml\n";
        let (new_text, _) = set_images(text, file(), &[want("t1")]).unwrap().unwrap();
        let entries = read_images(&new_text, file()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name, "orders-api");
        assert_eq!(entries[0].reference(), "localhost:5001/orders-api:t1");
        assert!(
            new_text.starts_with("resources:\n  - deployment.yaml\n"),
            "{new_text}"
        );

        let other = "images:\n  - name: busybox\n    newTag: \"1.36\"\n";
        let (new_text, _) = set_images(other, file(), &[want("t1")]).unwrap().unwrap();
        let entries = read_images(&new_text, file()).unwrap();
        assert_eq!(entries.len(), 2, "{new_text}");
        assert_eq!(entries[0].new_tag.as_deref(), Some("1.36"));
        assert_eq!(entries[1].reference(), "localhost:5001/orders-api:t1");
    }

    #[test]
    fn entries_are_found_by_name_or_repository() {
        let entries = vec![
            ImageEntry {
                name: "nginx".into(),
                ..Default::default()
            },
            ImageEntry {
                name: "example/orders-api".into(),
                new_name: Some("localhost:5002/orders-api".into()),
                ..Default::default()
            },
        ];
        assert_eq!(
            find_entry(&entries, "orders-api", "localhost:5001/orders-api"),
            Some(1)
        );
        assert_eq!(
            find_entry(&entries, "billing", "localhost:5001/billing"),
            None
        );
    }

    #[test]
    fn an_entry_it_cannot_edit_in_place_is_refused_not_mangled() {
        // yamlpatch rewrites flow mappings wrongly; the read-back check refuses the result.
        let text =
            "images:\n  - {name: orders-api, newName: localhost:5001/orders-api, newTag: dev}\n";
        match set_images(text, file(), &[want("abc")]) {
            Err(WorkspaceError::Kustomization { message, .. }) => {
                assert!(message.contains("flow style"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// Found by fuzzing (fuzz/fuzz_targets/kustomization_images.rs): yamlpath panicked
    /// ("unexpected feature kind: anchor") on a node with an anchor or a tag that kindlab
    /// had to edit, e.g. the whole document anchored, so `kindlab up` crashed.
    #[test]
    fn a_node_with_an_anchor_or_a_tag_is_refused_not_a_panic() {
        for text in [
            "&root\nresources:\n  - ../../base\n",
            "!!map\nresources:\n  - ../../base\n",
            "images:\n  - !!map\n    name: orders-api\n    newTag: dev\n",
            "images:\n  - &entry\n    name: orders-api\n    newTag: dev\n",
        ] {
            match set_images(text, file(), &[want("abc")]) {
                Err(WorkspaceError::Kustomization { message, .. }) => {
                    assert!(message.contains("anchor or tag"), "{text:?}: {message}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        // An anchor elsewhere is no reason to refuse.
        let text = "images: &images\n  - name: orders-api\n    newTag: dev\n";
        let (new_text, _) = set_images(text, file(), &[want("abc")]).unwrap().unwrap();
        assert_eq!(
            read_images(&new_text, file()).unwrap()[0].reference(),
            "localhost:5001/orders-api:abc"
        );
    }

    /// Found with the fuzz target's assertion (an edited text must say what was asked): an
    /// entry named after one image and renamed to another stood for both, the second edit
    /// overwrote the first, and the changes reported both as done.
    #[test]
    fn one_entry_for_two_images_is_refused() {
        let text = "images:\n- name: team/orders-api\n  newName: team/billing\n  newTag: v1\n";
        let billing = WantedImage {
            image: "billing".into(),
            new_name: "localhost:5001/billing".into(),
            ..want("abc")
        };
        match set_images(text, file(), &[want("abc"), billing]) {
            Err(WorkspaceError::Kustomization { message, .. }) => {
                assert!(message.contains("both orders-api and billing"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn record_images_writes_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kustomization.yaml");
        std::fs::write(&path, SAMPLE).unwrap();
        let (file, changes) = record_images(dir.path(), &[want("abc")]).unwrap();
        assert_eq!(file, path);
        assert_eq!(changes.len(), 1);
        // Every write replaces the file (write_atomic renames a new one over it), so an
        // unchanged inode proves no second write, whatever the file system's clock grain.
        use std::os::unix::fs::MetadataExt as _;
        let inode = |p: &std::path::Path| std::fs::metadata(p).unwrap().ino();
        let written = inode(&path);
        let (_, changes) = record_images(dir.path(), &[want("abc")]).unwrap();
        assert!(changes.is_empty());
        assert_eq!(inode(&path), written, "rewritten although nothing changed");
        let (_, changes) = record_images(dir.path(), &[want("def")]).unwrap();
        assert_eq!(changes.len(), 1);
        assert_ne!(inode(&path), written, "a change must be written");
    }
}
