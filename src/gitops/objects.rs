//! kindlab's GitRepository and Kustomization (pure: built from the workspace, read back from
//! the cluster), and what their status says about the sync.

use serde::Serialize;
use serde_json::{Value, json};

use super::{BRANCH, NAMESPACE, OBJECT_NAME};
use crate::k8s::object::ObjectKey;

pub const SOURCE_API: &str = "source.toolkit.fluxcd.io/v1";
pub const KUSTOMIZE_API: &str = "kustomize.toolkit.fluxcd.io/v1";
/// Flux's "reconcile now" annotation (what `flux reconcile` sets).
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// How often the controller polls the Git server and re-applies (undoing `kubectl` edits).
/// Short, for a lab: a workshop waits on it.
pub const INTERVAL: &str = "30s";
/// How long the Kustomization waits for what it applied to become ready.
pub const HEALTH_TIMEOUT: &str = "2m";

pub fn git_repository_key() -> ObjectKey {
    key(SOURCE_API, "GitRepository")
}

pub fn kustomization_key() -> ObjectKey {
    key(KUSTOMIZE_API, "Kustomization")
}

fn key(api_version: &str, kind: &str) -> ObjectKey {
    ObjectKey {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: Some(NAMESPACE.into()),
        name: OBJECT_NAME.into(),
    }
}

/// The GitRepository: the lab's Git server, the branch the remote pushes to.
pub fn git_repository(url: &str) -> Value {
    json!({
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": OBJECT_NAME, "namespace": NAMESPACE},
        "spec": {
            "interval": INTERVAL,
            "url": url,
            "ref": {"branch": BRANCH},
            "timeout": "20s",
        }
    })
}

/// The Kustomization: the overlay at `path` (relative to the repository's top, `./...`),
/// pruned, and ready only when what it applied is (so "synced" means "rolled out").
pub fn kustomization(path: &str) -> Value {
    json!({
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": OBJECT_NAME, "namespace": NAMESPACE},
        "spec": {
            "interval": INTERVAL,
            "retryInterval": "10s",
            "path": path,
            "prune": true,
            "wait": true,
            "timeout": HEALTH_TIMEOUT,
            "sourceRef": {"kind": "GitRepository", "name": OBJECT_NAME},
        }
    })
}

/// The overlay's path as the Kustomization names it: `./` + the path inside the repository.
pub fn overlay_path(top: &std::path::Path, overlay: &std::path::Path) -> Option<String> {
    let rel = overlay.strip_prefix(top).ok()?;
    let rel = rel.to_string_lossy().replace('\\', "/");
    Some(if rel.is_empty() {
        "./".into()
    } else {
        format!("./{rel}")
    })
}

/// What one Flux object's status says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct FluxStatus {
    /// The Ready condition: Some(true|false), None while unknown or absent.
    pub ready: Option<bool>,
    pub reason: String,
    pub message: String,
    /// GitRepository: the artifact's revision; Kustomization: the last applied revision
    /// (`main@sha1:<commit>`).
    pub revision: Option<String>,
    /// Kustomization: the revision it last tried (differs from `revision` after a failure).
    pub attempted: Option<String>,
    /// The last `requestedAt` the controller handled.
    pub handled: Option<String>,
    /// The object's generation has been seen by the controller.
    pub observed: bool,
    /// The Healthy condition's message (Kustomization: "Running health checks for revision
    /// …" once what it applied is being waited on).
    pub health: String,
    /// The Reconciling condition is True: the controller is working on it.
    pub reconciling: bool,
}

impl FluxStatus {
    pub fn of(object: &Value) -> FluxStatus {
        let status = &object["status"];
        let condition = |kind: &str| {
            status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == kind)
        };
        let ready = condition("Ready");
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let revision = status["lastAppliedRevision"]
            .as_str()
            .or_else(|| status["artifact"]["revision"].as_str())
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        FluxStatus {
            ready: ready.and_then(|c| match c["status"].as_str() {
                Some("True") => Some(true),
                Some("False") => Some(false),
                _ => None,
            }),
            reason: ready.map(|c| text(&c["reason"])).unwrap_or_default(),
            message: ready.map(|c| text(&c["message"])).unwrap_or_default(),
            revision,
            attempted: status["lastAttemptedRevision"].as_str().map(str::to_string),
            handled: status["lastHandledReconcileAt"]
                .as_str()
                .map(str::to_string),
            observed: status["observedGeneration"].as_i64()
                == object["metadata"]["generation"].as_i64(),
            health: condition("Healthy")
                .map(|c| text(&c["message"]))
                .unwrap_or_default(),
            reconciling: condition("Reconciling").is_some_and(|c| c["status"] == "True"),
        }
    }
}

impl FluxStatus {
    /// The revision the cluster runs: once Ready, the one the controller last tried (its
    /// `lastAppliedRevision` was seen to lag a successful apply of a revert); else the last
    /// applied one.
    pub fn applied(&self) -> Option<String> {
        match (self.ready, &self.attempted) {
            (Some(true), Some(a)) => Some(a.clone()),
            _ => self.revision.clone(),
        }
    }
}

/// The commit of a Flux revision (`main@sha1:abc…` → `abc…`).
pub fn commit_of(revision: &str) -> &str {
    revision
        .rsplit_once(':')
        .map_or(revision, |(_, c)| c)
        .trim_start_matches("sha1:")
}

/// The spec kindlab wants against the one in the cluster: equal when the live object has
/// every field of the desired one.
pub fn spec_matches(live: &Value, desired: &Value) -> bool {
    fn contains(live: &Value, want: &Value) -> bool {
        match (live, want) {
            (Value::Object(l), Value::Object(w)) => w
                .iter()
                .all(|(k, v)| l.get(k).is_some_and(|lv| contains(lv, v))),
            _ => live == want,
        }
    }
    contains(&live["spec"], &desired["spec"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kustomization_points_at_the_overlay_inside_the_repository() {
        let top = std::path::Path::new("/w");
        assert_eq!(
            overlay_path(top, std::path::Path::new("/w/deploy/overlays/dev")).as_deref(),
            Some("./deploy/overlays/dev")
        );
        assert_eq!(overlay_path(top, top).as_deref(), Some("./"));
        assert_eq!(overlay_path(top, std::path::Path::new("/elsewhere")), None);
        let k = kustomization("./deploy/overlays/dev");
        assert_eq!(k["spec"]["path"], "./deploy/overlays/dev");
        assert_eq!(k["spec"]["prune"], true);
        assert_eq!(k["spec"]["sourceRef"]["name"], OBJECT_NAME);
    }

    #[test]
    fn a_live_object_with_defaults_added_still_matches_and_a_new_url_does_not() {
        let desired = git_repository("http://lab-git:8080/workspace.git");
        let mut live = desired.clone();
        live["spec"]["provider"] = json!("generic");
        assert!(spec_matches(&live, &desired));
        live["spec"]["url"] = json!("http://other:8080/workspace.git");
        assert!(!spec_matches(&live, &desired));
    }

    #[test]
    fn a_failed_kustomization_keeps_the_last_applied_revision_and_says_why() {
        let live = json!({
            "metadata": {"generation": 2},
            "status": {
                "observedGeneration": 2,
                "lastAppliedRevision": "main@sha1:aaa",
                "lastAttemptedRevision": "main@sha1:bbb",
                "lastHandledReconcileAt": "2026-12-06T22:00:00Z",
                "conditions": [{"type": "Ready", "status": "False", "reason": "BuildFailed",
                                "message": "kustomize build failed: missing resource"}]
            }
        });
        let s = FluxStatus::of(&live);
        assert_eq!(s.ready, Some(false));
        assert_eq!(s.reason, "BuildFailed");
        assert_eq!(s.revision.as_deref(), Some("main@sha1:aaa"));
        assert_eq!(s.attempted.as_deref(), Some("main@sha1:bbb"));
        assert_eq!(s.handled.as_deref(), Some("2026-12-06T22:00:00Z"));
        assert!(s.observed);
        assert_eq!(commit_of("main@sha1:bbb"), "bbb");
        assert_eq!(s.applied().as_deref(), Some("main@sha1:aaa"));
        let mut ready = s.clone();
        ready.ready = Some(true);
        assert_eq!(ready.applied().as_deref(), Some("main@sha1:bbb"));
    }

    #[test]
    fn a_git_repository_reports_its_artifact_revision() {
        let live = json!({"status": {"artifact": {"revision": "main@sha1:ccc"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "stored artifact"}]}});
        let s = FluxStatus::of(&live);
        assert_eq!(s.ready, Some(true));
        assert_eq!(s.revision.as_deref(), Some("main@sha1:ccc"));
    }
}
