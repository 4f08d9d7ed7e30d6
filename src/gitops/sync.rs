//! `kindlab sync`: what `argocd app sync` or `flux reconcile kustomization --with-source` is
//! to the lab text. Asks Flux to reconcile now (`reconcile.fluxcd.io/requestedAt` on the
//! GitRepository, then the Kustomization), waits until the Kustomization has tried the
//! commit the Git server has, and reports the revision applied and whether what it applied
//! rolled out, with the controller's own error when it did not.

use std::time::{Duration, Instant};

use kube::api::Patch;
use serde::Serialize;
use serde_json::json;

use super::objects::{self, FluxStatus, REQUESTED_AT};
use super::{GitOpsError, MANAGER, NAMESPACE, REMOTE};
use crate::error::Result;
use crate::k8s::object;

/// How long the pushed commit must stay failed before `sync` reports the failure: two of
/// the Kustomization's retry intervals (10s).
const FAILURE_GRACE: Duration = Duration::from_secs(25);

/// What one sync did.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// The commit the Git server's branch is at (what the controller should apply).
    pub pushed: Option<String>,
    /// The workspace's HEAD.
    pub head: Option<String>,
    /// The revision the GitRepository fetched.
    pub fetched: Option<String>,
    /// The revision the Kustomization applied.
    pub applied: Option<String>,
    /// Everything applied is ready (the Kustomization waits for its rollouts).
    pub rolled_out: bool,
    pub message: String,
    /// From the request to the controller's answer.
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub duration: Duration,
}

impl crate::ui::Report for SyncReport {
    fn text(&self) -> String {
        let short = |r: &Option<String>| {
            r.as_deref()
                .map(|r| objects::commit_of(r).chars().take(12).collect::<String>())
                .unwrap_or_else(|| "-".into())
        };
        let mut out = format!(
            "✓ synced {} in {}: fetched {}, applied {}, {}\n",
            short(&self.pushed),
            crate::ui::format_duration(self.duration),
            short(&self.fetched),
            short(&self.applied),
            if self.rolled_out {
                "rolled out"
            } else {
                "not rolled out"
            }
        );
        if self.head.is_some() && short(&self.head) != short(&self.pushed) {
            out.push_str(&format!(
                "  note: HEAD {} is not pushed; `git push {REMOTE}` sends it to the lab's Git server\n",
                short(&self.head)
            ));
        }
        out
    }
}

/// Sets `requestedAt` on the GitRepository and the Kustomization; returns the token.
pub async fn request(client: &kube::Client) -> Result<String> {
    let token = jiff::Timestamp::now().to_string();
    let body = json!({"metadata": {"annotations": {REQUESTED_AT: token}}});
    for key in [objects::git_repository_key(), objects::kustomization_key()] {
        object::patch(client, &key, Patch::Merge(body.clone()), MANAGER).await?;
    }
    Ok(token)
}

/// Waits until the Kustomization has tried `commit` (or, with none, handled `token`), and
/// says how that went. A failed apply or health check is an error carrying the
/// controller's message.
pub async fn wait(
    client: &kube::Client,
    commit: Option<&str>,
    token: &str,
    timeout: Duration,
    mut on_progress: impl FnMut(String),
) -> Result<(FluxStatus, FluxStatus)> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    let mut failing_since: Option<Instant> = None;
    loop {
        let source = object::get(client, &objects::git_repository_key())
            .await?
            .map(|o| FluxStatus::of(&serde_json::to_value(o).unwrap_or_default()))
            .unwrap_or_default();
        let kustomization = object::get(client, &objects::kustomization_key())
            .await?
            .map(|o| FluxStatus::of(&serde_json::to_value(o).unwrap_or_default()))
            .unwrap_or_default();
        // The request handled (so a drift a `kubectl` edit made is corrected by now), and
        // the pushed commit tried.
        let tried = kustomization.handled.as_deref() == Some(token)
            && commit.is_none_or(|c| {
                kustomization
                    .attempted
                    .as_deref()
                    .is_some_and(|a| objects::commit_of(a) == c)
            });
        let source_failed = source.ready == Some(false)
            && commit.is_some_and(|c| {
                source
                    .revision
                    .as_deref()
                    .is_none_or(|r| objects::commit_of(r) != c)
            });
        if source_failed {
            return Err(GitOpsError::SyncFailed {
                object: "gitrepository/kindlab".into(),
                message: format!("GitRepository: {}", source.message),
            }
            .into());
        }
        if tried && kustomization.observed {
            match kustomization.ready {
                Some(true) => return Ok((source, kustomization)),
                // A health check can fail at once on what the previous revision left (a
                // Deployment still marked as past its deadline) and pass on the
                // controller's retry: failing means failing for a while.
                Some(false)
                    if failing_since.get_or_insert_with(Instant::now).elapsed() < FAILURE_GRACE => {
                }
                Some(false) => {
                    return Err(GitOpsError::SyncFailed {
                        object: "kustomization/kindlab".into(),
                        message: format!("{}: {}", kustomization.reason, kustomization.message),
                    }
                    .into());
                }
                None => {}
            }
        }
        let now = if kustomization.message.is_empty() {
            "waiting for the controller".to_string()
        } else {
            kustomization.message.clone()
        };
        if now != last {
            on_progress(now.clone());
            last = now;
        }
        if Instant::now() >= deadline {
            return Err(GitOpsError::SyncTimeout {
                secs: timeout.as_secs(),
                last,
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the Kustomization has applied `commit` (health checks still running, or
/// failed: a lab's break is such a commit). Its status then.
pub async fn wait_tried(
    client: &kube::Client,
    commit: Option<&str>,
    token: &str,
    timeout: Duration,
) -> Result<FluxStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        let kustomization = object::get(client, &objects::kustomization_key())
            .await?
            .map(|o| FluxStatus::of(&serde_json::to_value(o).unwrap_or_default()))
            .unwrap_or_default();
        let tried = match commit {
            Some(c) => kustomization
                .attempted
                .as_deref()
                .is_some_and(|a| objects::commit_of(a) == c),
            None => kustomization.handled.as_deref() == Some(token),
        };
        if tried {
            return Ok(kustomization);
        }
        if Instant::now() >= deadline {
            return Err(GitOpsError::SyncTimeout {
                secs: timeout.as_secs(),
                last: kustomization.message,
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// When the controller fetched and applied a pushed commit (a lab's timeline).
#[derive(Debug, Clone, Copy)]
pub struct Followed {
    pub fetched: Instant,
    pub applied: Instant,
}

/// Watches (by polling) the GitRepository fetch `commit` and the Kustomization apply it.
pub async fn follow(client: &kube::Client, commit: &str, timeout: Duration) -> Result<Followed> {
    let deadline = Instant::now() + timeout;
    let mut fetched = None;
    loop {
        let now = Instant::now();
        let get = |key| async move {
            object::get(client, &key)
                .await
                .map(|o| o.map(|o| FluxStatus::of(&serde_json::to_value(o).unwrap_or_default())))
        };
        let source = get(objects::git_repository_key())
            .await?
            .unwrap_or_default();
        let kustomization = get(objects::kustomization_key()).await?.unwrap_or_default();
        let is = |r: &Option<String>| {
            r.as_deref()
                .is_some_and(|r| objects::commit_of(r) == commit)
        };
        if fetched.is_none() && is(&source.revision) {
            fetched = Some(now);
        }
        // Applied: its objects are applied and their health is being waited on, or the
        // reconcile of that revision is over.
        let applied = is(&kustomization.attempted)
            && (kustomization.health.contains(commit)
                || (!kustomization.reconciling && kustomization.ready.is_some()));
        if applied {
            let fetched = fetched.unwrap_or(now);
            return Ok(Followed {
                fetched,
                applied: now,
            });
        }
        if now >= deadline {
            return Err(GitOpsError::SyncTimeout {
                secs: timeout.as_secs(),
                last: kustomization.message,
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Request, wait, report: `kindlab sync` and the end of GitOps mode's `up`.
pub async fn sync(
    client: &kube::Client,
    head: Option<String>,
    pushed: Option<String>,
    timeout: Duration,
    on_progress: impl FnMut(String),
) -> Result<SyncReport> {
    let started = Instant::now();
    if object::get(client, &objects::kustomization_key())
        .await?
        .is_none()
    {
        return Err(GitOpsError::NotSetUp {
            namespace: NAMESPACE.into(),
        }
        .into());
    }
    let token = request(client).await?;
    let (source, kustomization) =
        wait(client, pushed.as_deref(), &token, timeout, on_progress).await?;
    Ok(SyncReport {
        pushed,
        head,
        fetched: source.revision,
        applied: kustomization.applied(),
        rolled_out: kustomization.ready == Some(true),
        message: kustomization.message,
        duration: started.elapsed(),
    })
}

/// `kindlab sync`: the workspace's lab, its `kindlab` remote, one sync.
pub async fn command(
    workspace: &std::path::Path,
    timeout_secs: u64,
    output: crate::ui::Output,
    ui: &crate::ui::Ui,
) -> Result<u8> {
    let ws = crate::workspace::Workspace::discover(workspace)?;
    if !ws.gitops {
        return Err(GitOpsError::Disabled.into());
    }
    let repo = super::remote::Repo::open(&ws.root)?;
    let client = crate::k8s::client_for_context(&format!("kind-{}", ws.cluster.name)).await?;
    let step = ui.step("Sync");
    let result = sync(
        &client,
        repo.head(),
        repo.pushed(),
        Duration::from_secs(timeout_secs),
        |m| step.detail(m),
    )
    .await;
    let report = result?;
    step.ok(crate::ui::format_duration(report.duration));
    Ok(crate::ui::show(&report, output))
}
