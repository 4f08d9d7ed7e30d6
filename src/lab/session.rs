//! An attendee's lab session: which lab, against what, when it broke, when the symptoms
//! showed, hints used, checks, when it was fixed, and what the lab changed (so `reset` can undo
//! exactly that). Kept in the workspace (`.kindlab/sessions/`, one file per namespace and
//! context) and mirrored into a ConfigMap in the lab's namespace, so an instructor sees every
//! attendee's lab on a shared cluster (`kindlab lab status --all-namespaces`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};

use super::spec::LabError;
use super::target::ResolvedTarget;
use crate::k8s::K8sError;
use crate::k8s::object::ObjectKey;
use crate::workspace::{Workspace, WorkspaceError, write_json_atomic};

/// kindlab's own state in a workspace (never committed: `kindlab init` ignores it in git).
pub const STATE_DIR: &str = ".kindlab";
/// The ConfigMap each session is mirrored into, in the lab's namespace.
pub const SESSION_CONFIGMAP: &str = "kindlab-lab-session";
pub const SESSION_LABEL: &str = "dev.kindlab.session";
const SESSION_MANAGER: &str = "kindlab-lab-session";

/// Seconds since the Unix epoch, with milliseconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// `2026-12-01T16:02:03.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    k8s_openapi::jiff::Timestamp::try_from(t)
        .map(|ts| {
            ts.round(k8s_openapi::jiff::Unit::Millisecond)
                .unwrap_or(ts)
                .to_string()
        })
        .unwrap_or_default()
}

fn rfc3339_from_unix(secs: f64) -> String {
    rfc3339(UNIX_EPOCH + std::time::Duration::from_secs_f64(secs.max(0.0)))
}

/// What a lab changed, so it can be undone without touching anything else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// Objects the lab set fields in (under its field manager).
    #[serde(default)]
    pub patched: Vec<ObjectKey>,
    /// Objects the lab created (labelled as the lab's).
    #[serde(default)]
    pub created: Vec<ObjectKey>,
    /// Objects the lab deleted (the workspace's apply brings them back).
    #[serde(default)]
    pub deleted: Vec<ObjectKey>,
    /// Commits the lab's break made.
    #[serde(default)]
    pub commits: Vec<String>,
    /// Reverts the lab's solution made.
    #[serde(default)]
    pub reverts: Vec<String>,
    /// Workspace files the lab edited: their text before and after the lab's edit.
    #[serde(default)]
    pub files: Vec<SavedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFile {
    /// Relative to the workspace.
    pub path: PathBuf,
    pub original: String,
    pub lab_version: String,
}

impl Changes {
    pub fn patched(&mut self, key: ObjectKey) {
        if !self.patched.contains(&key) {
            self.patched.push(key);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub at: String,
    pub fixed: bool,
    /// What was still wrong (pointers), empty when fixed.
    pub pointers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub lab: String,
    /// What the user named to start it: a built-in lab's name or a lab file's path.
    #[serde(default)]
    pub source: String,
    pub title: String,
    pub target: ResolvedTarget,
    /// The kubeconfig context the lab runs in (`kind-kindlab`).
    pub context: String,
    /// How the lab's cluster was reached (`--kubeconfig`, `--context`), so `check`, `hint`
    /// and `solve` reach it the same way without the flags.
    #[serde(default)]
    pub access: crate::k8s::ClusterAccess,
    pub registry_host: String,
    /// Who is doing it (`--attendee`, else the user name).
    pub attendee: String,
    pub started_at: String,
    /// Unix seconds of the break, the symptoms and the fix.
    pub broken_unix: f64,
    #[serde(default)]
    pub symptoms_unix: Option<f64>,
    #[serde(default)]
    pub fixed_unix: Option<f64>,
    #[serde(default)]
    pub hints_used: u32,
    /// `kindlab lab solve` was used.
    #[serde(default)]
    pub solved_with_help: bool,
    #[serde(default)]
    pub checks: Vec<CheckRecord>,
    #[serde(default)]
    pub changes: Changes,
    /// The session's mirror was written into its namespace: once it is gone (`workshop
    /// reset`, another machine's `reset`), this session has ended there.
    #[serde(default)]
    pub mirrored: bool,
}

impl Session {
    /// What to load the lab from again: the file or name it was started with.
    pub fn source_or_name(&self) -> String {
        if self.source.is_empty() {
            self.lab.clone()
        } else {
            self.source.clone()
        }
    }

    /// How to reach the session's cluster again: as it was reached, or (a session from
    /// before kindlab kept that) by its context, unless that is the workspace's kind cluster.
    pub fn access_or_context(&self, kind_context: &str) -> crate::k8s::ClusterAccess {
        if self.access.is_explicit() || self.context == kind_context {
            return self.access.clone();
        }
        crate::k8s::ClusterAccess {
            kubeconfig: None,
            context: Some(self.context.clone()),
        }
    }

    pub fn time_to_symptoms_s(&self) -> Option<f64> {
        self.symptoms_unix.map(|t| round(t - self.broken_unix))
    }

    pub fn time_to_fix_s(&self) -> Option<f64> {
        self.fixed_unix.map(|t| round(t - self.broken_unix))
    }

    pub fn state(&self) -> &'static str {
        match (self.fixed_unix, self.solved_with_help) {
            (Some(_), true) => "solved",
            (Some(_), false) => "fixed",
            (None, _) if self.symptoms_unix.is_some() => "broken",
            (None, _) => "breaking",
        }
    }

    /// The report kept when the session ends.
    pub fn report(&self) -> SessionReport {
        SessionReport {
            lab: self.lab.clone(),
            title: self.title.clone(),
            attendee: self.attendee.clone(),
            target: self.target.target.describe(),
            context: self.context.clone(),
            state: self.state().to_string(),
            started_at: self.started_at.clone(),
            broken_at: rfc3339_from_unix(self.broken_unix),
            symptoms_at: self.symptoms_unix.map(rfc3339_from_unix),
            fixed_at: self.fixed_unix.map(rfc3339_from_unix),
            time_to_symptoms_s: self.time_to_symptoms_s(),
            time_to_fix_s: self.time_to_fix_s(),
            hints_used: self.hints_used,
            solved_with_help: self.solved_with_help,
            checks: self.checks.len(),
            commits: self.changes.commits.clone(),
            reverts: self.changes.reverts.clone(),
        }
    }
}

/// A finished (or abandoned) session, as `.kindlab/reports/*.json` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionReport {
    pub lab: String,
    pub title: String,
    pub attendee: String,
    pub target: String,
    pub context: String,
    pub state: String,
    pub started_at: String,
    pub broken_at: String,
    pub symptoms_at: Option<String>,
    pub fixed_at: Option<String>,
    pub time_to_symptoms_s: Option<f64>,
    pub time_to_fix_s: Option<f64>,
    pub hints_used: u32,
    pub solved_with_help: bool,
    pub checks: usize,
    pub commits: Vec<String>,
    pub reverts: Vec<String>,
}

fn round(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Where a workspace keeps its sessions and reports.
pub struct SessionStore {
    dir: PathBuf,
}

impl SessionStore {
    pub fn new(ws: &Workspace) -> SessionStore {
        SessionStore {
            dir: ws.root.join(STATE_DIR),
        }
    }

    fn sessions_dir(&self) -> PathBuf {
        self.dir.join("sessions")
    }

    fn path(&self, context: &str, namespace: &str) -> PathBuf {
        let safe = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        };
        self.sessions_dir()
            .join(format!("{}--{}.json", safe(context), safe(namespace)))
    }

    pub fn save(&self, session: &Session) -> Result<(), WorkspaceError> {
        write_json_atomic(
            &self.path(&session.context, &session.target.target.namespace),
            session,
        )
    }

    /// Every running session of this workspace.
    pub fn all(&self) -> Vec<Session> {
        let Ok(entries) = std::fs::read_dir(self.sessions_dir()) else {
            return Vec::new();
        };
        let mut sessions: Vec<Session> = entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect();
        sessions.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        sessions
    }

    /// The session to act on: the one in `namespace` (and `context`) when given, else the only
    /// one there is.
    pub fn find(
        &self,
        ws: &Workspace,
        namespace: Option<&str>,
        context: Option<&str>,
    ) -> Result<Session, LabError> {
        let mut matching: Vec<Session> = self
            .all()
            .into_iter()
            .filter(|s| namespace.is_none_or(|n| s.target.target.namespace == n))
            .filter(|s| context.is_none_or(|c| s.context == c))
            .collect();
        match matching.len() {
            0 => Err(LabError::NoSession {
                workspace: ws.root.clone(),
            }),
            1 => Ok(matching.swap_remove(0)),
            _ => Err(LabError::CannotApply {
                action: "pick a session".into(),
                why: format!(
                    "labs run in several namespaces ({}); name one with -n",
                    matching
                        .iter()
                        .map(|s| s.target.target.namespace.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// Ends a session: its report is kept, the session file goes.
    pub fn finish(&self, session: &Session) -> Result<PathBuf, WorkspaceError> {
        let stamp = session
            .started_at
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>();
        let report = self.dir.join("reports").join(format!(
            "{stamp}-{}-{}.json",
            session.lab, session.target.target.namespace
        ));
        write_json_atomic(&report, &session.report())?;
        let path = self.path(&session.context, &session.target.target.namespace);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(report),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(report),
            Err(source) => Err(WorkspaceError::Write { path, source }),
        }
    }

    /// Every report kept in this workspace.
    pub fn reports(&self) -> Vec<(PathBuf, SessionReport)> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("reports")) else {
            return Vec::new();
        };
        let mut reports: Vec<(PathBuf, SessionReport)> = entries
            .flatten()
            .filter_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                Some((e.path(), serde_json::from_str(&text).ok()?))
            })
            .collect();
        reports.sort_by(|a, b| a.1.started_at.cmp(&b.1.started_at));
        reports
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Mirrors the session into its namespace (best effort: an attendee without the right to
/// write ConfigMaps still does the lab; the instructor then just does not see it). Records
/// in the session whether the mirror is there.
pub async fn mirror(client: &kube::Client, session: &mut Session) {
    let ns = &session.target.target.namespace;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": SESSION_CONFIGMAP,
            "namespace": ns,
            "labels": {SESSION_LABEL: "true"},
        },
        "data": {"session.json": serde_json::to_string(&session.report()).unwrap_or_default()},
    });
    let params = PatchParams::apply(SESSION_MANAGER).force();
    match api
        .patch(SESSION_CONFIGMAP, &params, &Patch::Apply(&body))
        .await
    {
        Ok(_) => session.mirrored = true,
        Err(e) => tracing::debug!(error = %e, namespace = %ns, "cannot mirror the lab session"),
    }
}

/// Whether a mirrored session has ended on the cluster: its mirror is gone, or holds
/// another session (a later start). `false` when the cluster cannot be asked.
pub async fn ended_on_cluster(client: &kube::Client, session: &Session) -> bool {
    if !session.mirrored {
        return false;
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &session.target.target.namespace);
    match api.get_opt(SESSION_CONFIGMAP).await {
        Ok(None) => true,
        Ok(Some(cm)) => cm
            .data
            .as_ref()
            .and_then(|d| d.get("session.json"))
            .and_then(|text| serde_json::from_str::<SessionReport>(text).ok())
            .is_some_and(|mirror| mirror.started_at != session.started_at),
        Err(_) => false,
    }
}

/// Removes the mirror when the session ends.
pub async fn unmirror(client: &kube::Client, namespace: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let _ = api.delete(SESSION_CONFIGMAP, &Default::default()).await;
}

/// Every mirrored session on the cluster (`lab status --all-namespaces`).
pub async fn mirrored(client: &kube::Client) -> Result<Vec<SessionReport>, K8sError> {
    let mut reports: Vec<SessionReport> = mirrored_sessions(client)
        .await?
        .into_iter()
        .map(|m| m.report)
        .collect();
    reports.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(reports)
}

/// A session as its namespace holds it, and when it was last written.
#[derive(Debug, Clone)]
pub struct MirroredSession {
    pub namespace: String,
    pub report: SessionReport,
    /// The newest write of the mirror (RFC 3339): the attendee's last start, check
    /// or solve (a hint is counted at the next check).
    pub updated_at: Option<String>,
}

/// Every mirrored session on the cluster, with its namespace.
pub async fn mirrored_sessions(client: &kube::Client) -> Result<Vec<MirroredSession>, K8sError> {
    let api: Api<ConfigMap> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(&format!("{SESSION_LABEL}=true")))
        .await
        .map_err(|source| K8sError::Api {
            action: "list lab sessions".into(),
            source,
        })?;
    Ok(list
        .items
        .iter()
        .filter_map(|cm| {
            let report = serde_json::from_str(cm.data.as_ref()?.get("session.json")?).ok()?;
            let updated_at = cm
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .filter_map(|m| m.time.as_ref())
                .map(|t| t.0)
                .max()
                .map(|t| t.to_string());
            Some(MirroredSession {
                namespace: cm.metadata.namespace.clone()?,
                report,
                updated_at,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::target::TargetRef;

    fn session(namespace: &str) -> Session {
        Session {
            lab: "bad-image-tag".into(),
            source: "bad-image-tag".into(),
            title: String::new(),
            target: ResolvedTarget {
                target: TargetRef {
                    namespace: namespace.into(),
                    deployment: "orders-api".into(),
                    container: "api".into(),
                },
                image: String::new(),
                selector: String::new(),
                service: None,
                overlay: String::new(),
                config: Default::default(),
            },
            context: "kind-kindlab".into(),
            access: Default::default(),
            registry_host: String::new(),
            attendee: String::new(),
            started_at: "2026-12-01T16:00:00Z".into(),
            broken_unix: 100.0,
            symptoms_unix: None,
            fixed_unix: None,
            hints_used: 0,
            solved_with_help: false,
            checks: Vec::new(),
            changes: Changes::default(),
            mirrored: false,
        }
    }

    #[test]
    fn times_and_states() {
        let mut s = session("dev");
        assert_eq!(s.state(), "breaking");
        s.symptoms_unix = Some(101.25);
        assert_eq!(s.state(), "broken");
        assert_eq!(s.time_to_symptoms_s(), Some(1.25));
        s.fixed_unix = Some(160.0);
        assert_eq!(s.state(), "fixed");
        assert_eq!(s.report().time_to_fix_s, Some(60.0));
        s.solved_with_help = true;
        assert_eq!(s.state(), "solved");
        assert_eq!(rfc3339_from_unix(0.5), "1970-01-01T00:00:00.5Z");
    }

    #[test]
    fn sessions_per_namespace_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kindlab.yaml"), "").unwrap();
        let ws = Workspace::discover(dir.path()).unwrap();
        let store = SessionStore::new(&ws);
        assert!(matches!(
            store.find(&ws, None, None),
            Err(LabError::NoSession { .. })
        ));
        store.save(&session("team-a")).unwrap();
        assert_eq!(
            store.find(&ws, None, None).unwrap().target.target.namespace,
            "team-a"
        );
        store.save(&session("team-b")).unwrap();
        assert!(store.find(&ws, None, None).is_err());
        let b = store.find(&ws, Some("team-b"), None).unwrap();
        let report = store.finish(&b).unwrap();
        assert!(report.starts_with(dir.path().join(".kindlab/reports")));
        assert_eq!(store.all().len(), 1);
        assert_eq!(store.reports().len(), 1);
        assert_eq!(store.reports()[0].1.lab, "bad-image-tag");
    }
}
