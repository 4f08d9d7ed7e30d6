//! GitOps (in place of deploy when `gitops.enabled`): the Git server on the kind network,
//! Flux's controllers, the workspace's `kindlab` remote and push, the GitRepository and
//! Kustomization; then a sync, so `up` ends with the pushed commit applied and rolled out.
//! Observe, plan ([`gitops::plan::plan`], pure), act.

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::gitops::plan::{self, Desired, Observed, Step};
use crate::gitops::remote::Repo;
use crate::gitops::{self, GitOpsError, Images, flux, objects, server};
use crate::k8s::{self, Applied};
use crate::ui::Report as _;
use crate::up::context::UpContext;
use crate::up::outcome::{ActionReport, Outcome};
use crate::up::row::Row;
use crate::workspace::{Renderer, WorkspaceError};

const SERVER_READY: Duration = Duration::from_secs(20);

pub fn desired(ctx: &UpContext, repo: &Repo, images: &Images) -> Result<Desired> {
    let overlay = ctx
        .workspace
        .deploy
        .as_ref()
        .map(|d| d.overlay.clone())
        .unwrap_or_else(|| ctx.workspace.root.clone());
    let overlay = overlay.canonicalize().unwrap_or(overlay);
    let top = repo.top.canonicalize().unwrap_or(repo.top.clone());
    let path =
        objects::overlay_path(&top, &overlay).ok_or_else(|| GitOpsError::OverlayOutside {
            overlay: overlay.clone(),
            top: top.clone(),
        })?;
    Ok(Desired {
        server_image: images.git_server.clone(),
        controllers: flux::desired(&ctx.registry_host()),
        git_repository: objects::git_repository(&gitops::cluster_url(ctx.cluster_name())),
        kustomization: objects::kustomization(&path),
    })
}

pub async fn observe(
    ctx: &UpContext,
    client: Option<&kube::Client>,
    repo: &Repo,
) -> Result<Observed> {
    let name = gitops::server_name(ctx.cluster_name());
    let server = server::observe(&ctx.engine, &name, ctx.me()).await?;
    let remote = repo.remote_url();
    // A `kindlab` remote the user made is theirs: refused before anything is changed.
    if let Some(url) = remote.as_ref().filter(|u| !gitops::is_kindlab_remote(u)) {
        return Err(GitOpsError::RemoteTaken { url: url.clone() }.into());
    }
    let pushed = match (&server, &remote) {
        (Some(s), Some(_)) if s.running => repo.pushed(),
        _ => None,
    };
    let (controllers, git_repository, kustomization) = match client {
        Some(client) => {
            let get = |key| async move {
                k8s::object::get(client, &key)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|o| serde_json::to_value(o).ok())
            };
            (
                flux::observe(client).await.unwrap_or_default(),
                get(objects::git_repository_key()).await,
                get(objects::kustomization_key()).await,
            )
        }
        None => (Vec::new(), None, None),
    };
    Ok(Observed {
        server,
        controllers,
        remote,
        head: repo.head(),
        pushed,
        git_repository,
        kustomization,
    })
}

/// Everything GitOps mode has in the lab, observed and planned, without changing anything:
/// what `up` acts on, `up --dry-run` lists and `status` shows.
pub struct View {
    images: Images,
    repo: Repo,
    desired: Desired,
    seen: Observed,
    /// The `kindlab` remote's URL as it must be (the server's published port).
    url: Option<String>,
    steps: Vec<Step>,
}

pub async fn view(ctx: &UpContext, client: Option<&kube::Client>) -> Result<View> {
    let images = Images::from_env();
    let repo = Repo::open(&ctx.workspace.root)?;
    let desired = desired(ctx, &repo, &images)?;
    let seen = observe(ctx, client, &repo).await?;
    let url = seen
        .server
        .as_ref()
        .and_then(|s| s.host_port)
        .map(gitops::remote_url);
    let steps = plan::plan(&desired, &seen, url.as_deref());
    Ok(View {
        images,
        repo,
        desired,
        seen,
        url,
        steps,
    })
}

impl View {
    /// `up`'s plan, in its words.
    pub fn changes(&self) -> Vec<String> {
        self.steps.iter().map(Step::describe).collect()
    }

    /// `status`'s rows: the Git server, the controllers, the sync.
    pub fn rows(&self, ctx: &UpContext) -> Vec<Row> {
        let View {
            desired, seen, url, ..
        } = self;
        let changes = self.changes();
        let name = gitops::server_name(ctx.cluster_name());
        let server_row = match &seen.server {
            None => Row::new(
                format!("git-server {name}"),
                false,
                "missing",
                "",
                Vec::new(),
            ),
            Some(s) => Row::new(
                format!("git-server {name}"),
                s.running,
                if s.running { "running" } else { "stopped" },
                format!(
                    "{} on {}; remote `{}`",
                    s.image,
                    url.as_deref().unwrap_or("-"),
                    gitops::REMOTE
                ),
                Vec::new(),
            ),
        };
        let controllers_ok = desired.controllers.iter().all(|(n, i)| {
            seen.controllers
                .iter()
                .any(|c| &c.name == n && &c.image == i && c.available)
        });
        let controllers_row = Row::new(
            "flux controllers",
            controllers_ok,
            if controllers_ok {
                "available"
            } else {
                "not ready"
            },
            seen.controllers
                .iter()
                .map(|c| {
                    format!(
                        "{} {}",
                        c.name,
                        if c.available {
                            "available"
                        } else {
                            "not available"
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            Vec::new(),
        );
        let (ok, state, detail) = plan::sync_state(seen);
        let sync_row = Row::new(
            format!("gitops {}/{}", gitops::NAMESPACE, gitops::OBJECT_NAME),
            ok && changes.is_empty(),
            state,
            detail,
            changes,
        );
        vec![server_row, controllers_row, sync_row]
    }
}

pub async fn execute(
    ctx: &UpContext,
    client: &kube::Client,
    renderer: Option<&Renderer>,
) -> Result<(ActionReport, Vec<Applied>)> {
    let started = Instant::now();
    let step = ctx.ui.step("GitOps (Git server, Flux, push, sync)");
    let result = ctx
        .interruptible("gitops", async {
            super::hold(ctx, "gitops").await?;
            let View {
                images,
                repo,
                desired,
                steps,
                ..
            } = view(ctx, Some(client)).await?;
            for s in &steps {
                step.detail(s.describe());
                act(ctx, client, renderer, &images, &repo, &desired, s, |d| {
                    step.detail(d)
                })
                .await?;
            }
            if !steps.is_empty() {
                ctx.note_progress(format!("GitOps: {} step(s) done", steps.len()));
            }
            step.detail("sync: waiting for the controller");
            let report = gitops::sync::sync(
                client,
                repo.head(),
                repo.pushed(),
                ctx.rollout_timeout() + Duration::from_secs(60),
                |m| step.detail(format!("sync: {m}")),
            )
            .await?;
            Ok((steps, report))
        })
        .await;
    // A failure returns here; the step's guard marks it failed.
    let (steps, report) = result?;
    let outcome = if steps.contains(&Step::CreateServer) {
        Outcome::Created
    } else if steps.is_empty() {
        Outcome::Reused
    } else {
        Outcome::Repaired
    };
    let mut details = vec![
        report
            .text()
            .trim_start_matches("✓ ")
            .trim_end()
            .to_string(),
    ];
    if let Some(deploy) = &ctx.workspace.deploy
        && let Some(file) = crate::workspace::kustomization_file(&deploy.overlay)
        && let Some(git) = crate::workspace::Git::find(&ctx.workspace.root)
        && !git.is_clean(&file).unwrap_or(true)
    {
        details.push(format!(
            "{} has changes that are not committed: the controller deploys what is pushed (commit, then `git push {}`)",
            file.display(),
            gitops::REMOTE
        ));
    }
    let report = ActionReport::new("gitops", outcome, details, started.elapsed())
        .with_plan(steps.iter().map(Step::describe).collect());
    step.ok(report.summary());
    Ok((report, Vec::new()))
}

#[allow(clippy::too_many_arguments)]
async fn act(
    ctx: &UpContext,
    client: &kube::Client,
    renderer: Option<&Renderer>,
    images: &Images,
    repo: &Repo,
    desired: &Desired,
    s: &Step,
    mut on_detail: impl FnMut(String),
) -> Result<()> {
    let name = gitops::server_name(ctx.cluster_name());
    match s {
        Step::Refuse { owner } => {
            return Err(GitOpsError::NameTaken {
                name,
                owner: owner.describe(),
            }
            .into());
        }
        Step::CreateServer | Step::RecreateServer { .. } => {
            if ctx
                .engine
                .docker
                .inspect_image(&images.git_server)
                .await
                .is_err()
            {
                return Err(GitOpsError::NoImage {
                    image: images.git_server.clone(),
                }
                .into());
            }
            if matches!(s, Step::RecreateServer { .. }) {
                server::remove(&ctx.engine, &name).await?;
            }
            server::create(&ctx.engine, &name, &images.git_server, &ctx.identity).await?;
        }
        Step::StartServer => server::start(&ctx.engine, &name).await?,
        Step::UnpauseServer => server::unpause(&ctx.engine, &name).await?,
        Step::InstallControllers { .. } => {
            let renderer = renderer.ok_or(WorkspaceError::NoRenderer)?;
            let config = images
                .flux_config
                .clone()
                .ok_or_else(|| GitOpsError::NoFluxConfig {
                    what: "KINDLAB_GITOPS_FLUX_CONFIG is not set".into(),
                })?;
            let host = ctx.registry_host();
            flux::push_images(&ctx.engine, images, &host, &mut on_detail).await?;
            let docs = flux::render(renderer, &config, &host).await?;
            flux::install(client, &docs, ctx.rollout_timeout(), &mut on_detail).await?;
        }
        Step::SetRemote => {
            let port = ready_port(ctx, &name).await?;
            repo.set_remote(&gitops::remote_url(port))?;
        }
        Step::Push => {
            ready_port(ctx, &name).await?;
            repo.push()?;
        }
        Step::ApplyObjects { .. } => {
            k8s::apply_all(
                client,
                &[
                    desired.git_repository.clone(),
                    desired.kustomization.clone(),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// The server's published port, once it answers.
async fn ready_port(ctx: &UpContext, name: &str) -> Result<u16> {
    let seen = server::observe(&ctx.engine, name, ctx.me()).await?;
    let port = seen
        .and_then(|s| s.host_port)
        .ok_or_else(|| GitOpsError::ServerNotAnswering {
            name: name.to_string(),
            port: 0,
        })?;
    if !server::wait_ready(port, SERVER_READY).await {
        return Err(GitOpsError::ServerNotAnswering {
            name: name.to_string(),
            port,
        }
        .into());
    }
    Ok(port)
}
