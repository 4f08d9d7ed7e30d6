//! A lab definition: what to break, what to expect, how to diagnose, fix and verify.

use std::path::{Path, PathBuf};
use std::time::Duration;

use include_dir::{Dir, include_dir};
use serde::Deserialize;

use crate::error::exit;

static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/labs");

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("no lab named {name:?}")]
    Unknown { name: String, known: Vec<String> },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("the lab needs {what}, which is not healthy: {why}")]
    NotReady { what: String, why: String },
    #[error("expected {expected} within {within:?}, saw {seen}")]
    NotObserved {
        expected: String,
        within: Duration,
        seen: String,
    },
}

impl LabError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            LabError::Unknown { known, .. } => {
                format!(
                    "run one of: {} (or give a lab file's path)",
                    known.join(", ")
                )
            }
            LabError::Read { .. } => "check the lab file's path".into(),
            LabError::Invalid { .. } => {
                "compare with labs/bad-image-tag.yaml, which `kindlab lab list` shows".into()
            }
            LabError::NotReady { .. } => "run `kindlab up` first, then the lab".into(),
            LabError::NotObserved { .. } => {
                "the cluster did not fail as the lab expects; `kindlab status` shows its state"
                    .into()
            }
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            LabError::Unknown { .. } | LabError::Read { .. } | LabError::Invalid { .. } => {
                exit::BAD_INPUT
            }
            LabError::NotReady { .. } => exit::UNHEALTHY,
            LabError::NotObserved { .. } => exit::TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabSpec {
    pub name: String,
    pub title: String,
    pub target: Target,
    #[serde(rename = "break")]
    pub breakage: Breakage,
    pub expect: Expect,
    pub diagnose: DiagnoseSpec,
    pub fix: Fix,
    pub verify: Verify,
}

/// The workload the lab breaks. Deployments only, for now.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    pub kind: TargetKind,
    pub namespace: String,
    pub name: String,
    pub container: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum TargetKind {
    Deployment,
}

/// One kind of breakage per variant; a new lab adds at most one.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Breakage {
    /// Keep the repository, point the container at this tag.
    SetImageTag(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    /// Container waiting reasons to observe, in order.
    pub waiting_reasons: Vec<String>,
    #[serde(deserialize_with = "duration")]
    pub within: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiagnoseSpec {
    #[serde(default)]
    pub events: bool,
    #[serde(default)]
    pub registry_tags: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Fix {
    /// GitOps: re-apply the workspace's desired state.
    Reapply,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Verify {
    #[serde(deserialize_with = "duration")]
    pub within: Duration,
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    crate::cli::parse_duration(&text).map_err(serde::de::Error::custom)
}

pub fn parse(text: &str, file: &str) -> Result<LabSpec, LabError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let (line, column, message) = crate::workspace::yaml_error_position(&e);
        LabError::Invalid {
            file: file.to_string(),
            line,
            column,
            message,
        }
    })
}

/// The labs shipped in `labs/`, by name.
pub fn builtin_labs() -> Vec<LabSpec> {
    BUILTIN
        .files()
        .filter_map(|f| {
            let text = f.contents_utf8()?;
            parse(text, &f.path().display().to_string()).ok()
        })
        .collect()
}

/// A built-in lab by name, or a lab file by path.
pub fn load_lab(name_or_path: &str) -> Result<LabSpec, LabError> {
    let path = Path::new(name_or_path);
    if name_or_path.ends_with(".yaml") || name_or_path.ends_with(".yml") {
        let text = std::fs::read_to_string(path).map_err(|source| LabError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        return parse(&text, name_or_path);
    }
    let labs = builtin_labs();
    let known = labs.iter().map(|l| l.name.clone()).collect();
    labs.into_iter()
        .find(|l| l.name == name_or_path)
        .ok_or(LabError::Unknown {
            name: name_or_path.to_string(),
            known,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_lab_parses() {
        let lab = load_lab("bad-image-tag").unwrap();
        assert_eq!(lab.target.name, "orders-api");
        assert_eq!(lab.breakage, Breakage::SetImageTag("does-not-exist".into()));
        assert_eq!(
            lab.expect.waiting_reasons,
            ["ErrImagePull", "ImagePullBackOff"]
        );
        assert_eq!(lab.expect.within, Duration::from_secs(120));
        assert_eq!(lab.fix, Fix::Reapply);
        assert!(lab.diagnose.registry_tags);
    }

    #[test]
    fn every_builtin_lab_file_parses() {
        assert_eq!(builtin_labs().len(), BUILTIN.files().count());
    }

    #[test]
    fn unknown_lab_lists_the_known_ones() {
        match load_lab("nope") {
            Err(e @ LabError::Unknown { .. }) => {
                assert!(e.fix().unwrap().contains("bad-image-tag"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_lab_names_the_line() {
        let text = "name: x\ntitle: y\ntarget:\n  kind: Deployment\n  namespace: a\n  name: b\n  container: c\n  replicas: 2\n";
        match parse(text, "lab.yaml") {
            Err(LabError::Invalid { line, message, .. }) => {
                assert_eq!(line, 8);
                assert!(message.contains("replicas"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_durations_are_rejected() {
        let lab = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/labs/bad-image-tag.yaml"
        ))
        .unwrap();
        assert!(parse(&lab.replace("within: 120s", "within: soon"), "lab.yaml").is_err());
    }
}
