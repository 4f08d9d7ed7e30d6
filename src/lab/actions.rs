//! The steps a lab's break and solution are made of (`spec::Action`), carried out against
//! the resolved target. Fields a break sets are applied server-side under the lab's own field
//! manager, so the fix (and `reset`) can take exactly those back; everything a step changes is
//! recorded in [`Changes`].

use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota};
use kube::Api;
use kube::api::{ListParams, Patch};
use serde_json::{Value, json};

use super::env::{LAB_LABEL, LAB_MANAGER, LabEnv};
use super::resources::{self, ContainerResources};
use super::session::{Changes, SavedFile};
use super::spec::{Action, LabError, LabSpec};
use super::target::ResolvedTarget;
use crate::error::Result;
use crate::k8s::object::{self, ObjectKey, default_api_version};
use crate::workspace::{DigestChange, Git, WantedImage, kustomization_file, repository};

/// `kubectl rollout restart` records its change under this manager; a restart is not a field
/// the lab leaves behind.
const RESTART_MANAGER: &str = "kubectl-rollout";

/// Which half of a lab an action belongs to: a solution's workspace apply checks that the
/// images it names exist, a break's does not (the git lab's break applies a missing tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Break,
    Solution,
}

fn deployment_key(target: &ResolvedTarget) -> ObjectKey {
    ObjectKey {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(target.target.namespace.clone()),
        name: target.target.deployment.clone(),
    }
}

fn object_key(
    target: &ResolvedTarget,
    kind: &str,
    api_version: Option<&str>,
    name: &str,
    verb: &str,
) -> std::result::Result<ObjectKey, LabError> {
    Ok(ObjectKey {
        api_version: api_version
            .map(str::to_string)
            .unwrap_or_else(|| default_api_version(kind).to_string()),
        kind: kind.to_string(),
        namespace: Some(target.target.namespace.clone()),
        name: target.render_required(name, &format!("{verb} a {kind}"))?,
    })
}

/// A partial Deployment that sets `fields` in the target container.
fn container_patch(target: &ResolvedTarget, fields: &Value) -> Value {
    let mut container = match fields {
        Value::Object(map) => Value::Object(map.clone()),
        _ => json!({}),
    };
    container["name"] = Value::String(target.target.container.clone());
    let key = deployment_key(target);
    let mut body = key.identity();
    body["spec"] = json!({"template": {"spec": {"containers": [container]}}});
    body
}

/// The admission policy's refusal an error carries, if it is one.
fn admission_denial(error: &crate::error::Error) -> Option<crate::diagnose::admission::Denial> {
    match error.downcast_ref::<crate::k8s::K8sError>() {
        Some(crate::k8s::K8sError::Apply { message, .. }) => {
            crate::diagnose::admission::parse_denial(message)
        }
        _ => None,
    }
}

/// Carries out one action; returns what it did, in words.
pub async fn run(
    env: &LabEnv<'_>,
    lab: &LabSpec,
    target: &ResolvedTarget,
    action: &Action,
    phase: Phase,
    changes: &mut Changes,
) -> Result<String> {
    let client = &env.client;
    match action {
        Action::Refused(inner) => {
            match Box::pin(run(env, lab, target, inner, phase, changes)).await {
                Ok(done) => Err(LabError::Admitted { done }.into()),
                Err(e) => match admission_denial(&e) {
                    Some(denial) => Ok(format!("refused by {}: {}", denial.policy, denial.message)),
                    None => Err(e),
                },
            }
        }
        Action::SetImage(template) => {
            let image = target.render(template);
            let key = deployment_key(target);
            let body = container_patch(target, &json!({"image": image}));
            object::apply(client, &key, &body, LAB_MANAGER, true, false).await?;
            changes.patched(key);
            Ok(format!(
                "image of {} set to {image}",
                target.target.container
            ))
        }
        Action::PatchContainer(fields) => {
            let mut fields = target.render_value(fields);
            let key = deployment_key(target);
            let mut notes = String::new();
            let touches_probe = PROBES.iter().any(|p| fields[*p].is_object());
            let containers = if fields["resources"].is_object() || touches_probe {
                live_containers(env, target, &key).await?
            } else {
                Vec::new()
            };
            let mine = containers
                .iter()
                .find(|c| c["name"] == target.target.container.as_str())
                .cloned()
                .unwrap_or_default();
            if let Some(why) = probe_mismatch(&mine, &fields) {
                return Err(LabError::CannotApply {
                    action: format!("change the probes of container {}", target.target.container),
                    why,
                }
                .into());
            }
            if fields["resources"].is_object() {
                let fitted = fit_resources(env, target, &containers, &fields["resources"]).await?;
                let resources = &mut fields["resources"];
                for (side, list) in [
                    ("requests", &fitted.resources.requests),
                    ("limits", &fitted.resources.limits),
                ] {
                    if let Some(map) = resources.as_object_mut() {
                        if list.is_empty() {
                            map.remove(side);
                        } else {
                            map.insert(side.into(), json!(list));
                        }
                    }
                }
                for note in fitted.notes {
                    notes.push_str("; ");
                    notes.push_str(&note);
                }
            }
            object::apply(
                client,
                &key,
                &container_patch(target, &fields),
                LAB_MANAGER,
                true,
                false,
            )
            .await?;
            changes.patched(key);
            Ok(format!(
                "container {} changed: {fields}{notes}",
                target.target.container
            ))
        }
        Action::PatchDeployment(fields) => {
            let fields = target.render_value(fields);
            let key = deployment_key(target);
            let mut body = key.identity();
            merge(&mut body, &fields);
            object::apply(client, &key, &body, LAB_MANAGER, true, false).await?;
            changes.patched(key.clone());
            Ok(format!("{} changed: {fields}", key.describe()))
        }
        Action::PatchObject(p) => {
            let key = object_key(target, &p.kind, p.api_version.as_deref(), &p.name, "change")?;
            if object::get(client, &key).await?.is_none() {
                return Err(LabError::CannotApply {
                    action: format!("change {}", key.describe()),
                    why: "it does not exist".into(),
                }
                .into());
            }
            let fields = target.render_value(&p.patch);
            let mut body = key.identity();
            merge(&mut body, &fields);
            object::apply(client, &key, &body, LAB_MANAGER, true, false).await?;
            changes.patched(key.clone());
            Ok(format!("{} changed: {fields}", key.describe()))
        }
        Action::RemoveEnv(name) => {
            let name = &target.render_required(name, "remove an environment variable")?;
            let key = deployment_key(target);
            let live = object::get(client, &key)
                .await?
                .ok_or_else(|| LabError::CannotApply {
                    action: format!("remove {name}"),
                    why: format!("{} does not exist", key.describe()),
                })?;
            let live = serde_json::to_value(&live).unwrap_or_default();
            let path = env_path(&live, &target.target.container, name).ok_or_else(|| {
                LabError::CannotApply {
                    action: format!("remove the environment variable {name}"),
                    why: format!(
                        "container {} of {} has no {name}",
                        target.target.container,
                        key.describe()
                    ),
                }
            })?;
            // `test` first: the removal applies only if the entry is still the one we found.
            let patch: json_patch::Patch = serde_json::from_value(json!([
                {"op": "test", "path": format!("{path}/name"), "value": name},
                {"op": "remove", "path": path}
            ]))
            .map_err(|e| LabError::CannotApply {
                action: format!("remove {name}"),
                why: e.to_string(),
            })?;
            object::patch(client, &key, Patch::Json(patch), LAB_MANAGER).await?;
            changes.patched(key);
            Ok(format!(
                "removed {name} from container {}",
                target.target.container
            ))
        }
        Action::DeleteObject(r) => {
            let key = object_key(target, &r.kind, r.api_version.as_deref(), &r.name, "delete")?;
            if !object::delete(client, &key).await? {
                return Err(LabError::CannotApply {
                    action: format!("delete {}", key.describe()),
                    why: "it does not exist".into(),
                }
                .into());
            }
            changes.deleted.push(key.clone());
            Ok(format!("deleted {}", key.describe()))
        }
        Action::CreateObject(manifest) => {
            let mut body = target.render_value(manifest);
            body["metadata"]["namespace"] = Value::String(target.target.namespace.clone());
            body["metadata"]["labels"][LAB_LABEL] = Value::String(lab.name.clone());
            let key = ObjectKey::of(&body).ok_or_else(|| LabError::CannotApply {
                action: "create an object".into(),
                why: "it needs apiVersion, kind and metadata.name".into(),
            })?;
            object::apply(client, &key, &body, LAB_MANAGER, true, false).await?;
            changes.created.push(key.clone());
            Ok(format!("created {}", key.describe()))
        }
        Action::Restart => {
            let key = deployment_key(target);
            let now = super::session::rfc3339(std::time::SystemTime::now());
            let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": now
            }}}}});
            object::patch(client, &key, Patch::Strategic(patch), RESTART_MANAGER).await?;
            Ok(format!("restarted the pods of {}", key.describe()))
        }
        Action::CommitImageTag(tag) => commit_image_tag(env, lab, target, tag, changes),
        Action::GitRevert => git_revert(env, changes),
        Action::PushGit => push_git(env).await,
        Action::ApplyWorkspace => {
            let done = env
                .restore(&target.target.namespace, changes, phase == Phase::Solution)
                .await?;
            Ok(if done.is_empty() {
                format!("applied {} (nothing to change)", env.overlay())
            } else {
                format!("applied {}: {}", env.overlay(), done.join(", "))
            })
        }
    }
}

/// The containers of the target Deployment as they are now.
async fn live_containers(
    env: &LabEnv<'_>,
    target: &ResolvedTarget,
    key: &ObjectKey,
) -> Result<Vec<Value>> {
    let live = object::get(&env.client, key)
        .await?
        .ok_or_else(|| LabError::CannotApply {
            action: format!("change container {}", target.target.container),
            why: format!("{} does not exist", key.describe()),
        })?;
    let live = serde_json::to_value(&live).unwrap_or_default();
    Ok(live
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// The probes a lab may change, and the ways a probe can check.
const PROBES: [&str; 3] = ["readinessProbe", "livenessProbe", "startupProbe"];
const PROBE_HANDLERS: [&str; 4] = ["httpGet", "tcpSocket", "exec", "grpc"];

/// Why the lab's probe change cannot apply to `container` (as JSON), if it cannot: merged
/// server-side, a handler of another kind would sit beside the container's own (the API
/// server allows one), and a probe the container does not have would be incomplete.
fn probe_mismatch(container: &Value, fields: &Value) -> Option<String> {
    let name = container["name"].as_str().unwrap_or_default();
    PROBES.iter().find_map(|probe| {
        let wanted = fields[*probe].as_object()?;
        let live = container[*probe].as_object();
        let Some(live) = live else {
            return Some(format!("container {name} has no {probe} to change"));
        };
        let handler = |m: &serde_json::Map<String, Value>| {
            PROBE_HANDLERS.iter().copied().find(|h| m.contains_key(*h))
        };
        match (handler(wanted), handler(live)) {
            (Some(w), Some(l)) if w != l => Some(format!(
                "the lab changes the {w} check of {probe}, and container {name}'s {probe} uses {l}"
            )),
            _ => None,
        }
    })
}

/// The lab's `resources` for the target container, made valid against the container's own
/// requests and limits, the namespace's LimitRanges and its quotas ([`resources::fit`]). The
/// LimitRanges and quotas are read best effort: a reader who may not list them gets the
/// container's own checks only.
async fn fit_resources(
    env: &LabEnv<'_>,
    target: &ResolvedTarget,
    containers: &[Value],
    wanted: &Value,
) -> Result<resources::Fitted> {
    let action = format!(
        "change the resources of container {}",
        target.target.container
    );
    let (mine, others): (Vec<&Value>, Vec<&Value>) = containers
        .iter()
        .partition(|c| c["name"] == target.target.container.as_str());
    let mine = mine
        .first()
        .map(|c| ContainerResources::from_json(&c["resources"]))
        .unwrap_or_default();
    let others: Vec<ContainerResources> = others
        .iter()
        .map(|c| ContainerResources::from_json(&c["resources"]))
        .collect();
    let ns = &target.target.namespace;
    let ranges: Api<LimitRange> = Api::namespaced(env.client.clone(), ns);
    let quotas: Api<ResourceQuota> = Api::namespaced(env.client.clone(), ns);
    let all = ListParams::default();
    let (ranges, quotas) = futures::join!(ranges.list(&all), quotas.list(&all));
    let bounds: Vec<_> = match ranges {
        Ok(list) => list.items.iter().flat_map(resources::bounds_of).collect(),
        Err(e) => {
            tracing::debug!("cannot list LimitRanges in {ns} ({e}); fitting without them");
            Vec::new()
        }
    };
    let rooms: Vec<_> = match quotas {
        Ok(list) => list.items.iter().map(resources::room_of).collect(),
        Err(e) => {
            tracing::debug!("cannot list ResourceQuotas in {ns} ({e}); fitting without them");
            Vec::new()
        }
    };
    resources::fit(
        &mine,
        &ContainerResources::from_json(wanted),
        &others,
        &bounds,
        &rooms,
    )
    .map_err(|e| {
        LabError::CannotApply {
            action,
            why: e.to_string(),
        }
        .into()
    })
}

/// Writes `tag` into the overlay's images entry for the target's image and commits that file
/// alone. The file must have no uncommitted change: kindlab never commits the user's edits.
fn commit_image_tag(
    env: &LabEnv<'_>,
    lab: &LabSpec,
    target: &ResolvedTarget,
    tag: &str,
    changes: &mut Changes,
) -> Result<String> {
    let ws = env.workspace;
    let git = Git::find(&ws.root)
        .filter(Git::is_repository)
        .ok_or_else(|| LabError::Needs {
            what: format!("{} to be a git repository", ws.root.display()),
            fix: "make it one: `git init && git add -A && git commit -m init` (`kindlab init` does it for new workspaces)".into(),
        })?;
    let overlay = ws
        .deploy
        .as_ref()
        .map(|d| d.overlay.clone())
        .ok_or_else(|| LabError::CannotApply {
            action: "change the overlay".into(),
            why: "kindlab.yaml has no deploy.overlay".into(),
        })?;
    let file = kustomization_file(&overlay).ok_or_else(|| LabError::CannotApply {
        action: "change the overlay".into(),
        why: format!("{} has no kustomization.yaml", overlay.display()),
    })?;
    let relative = file.strip_prefix(&ws.root).unwrap_or(&file).to_path_buf();
    git.require_clean(&relative)?;
    let original = std::fs::read_to_string(&file).map_err(|source| {
        crate::workspace::WorkspaceError::Read {
            path: file.clone(),
            source,
        }
    })?;
    let repo = repository(&target.image).to_string();
    let name = repo.rsplit('/').next().unwrap_or(&repo).to_string();
    let wanted = WantedImage {
        image: name.clone(),
        new_name: repo.clone(),
        new_tag: tag.to_string(),
        digest: DigestChange::Keep,
    };
    let entries = crate::workspace::read_images(&original, &file)?;
    if crate::workspace::find_entry(&entries, &name, &repo)
        .is_some_and(|i| entries[i].digest.is_some())
    {
        return Err(LabError::CannotApply {
            action: format!("set the tag of {name}"),
            why: format!("{} pins it by digest", relative.display()),
        }
        .into());
    }
    let Some((lab_version, _)) = crate::workspace::set_images(&original, &file, &[wanted])? else {
        return Err(LabError::CannotApply {
            action: format!("set the tag of {name} to {tag}"),
            why: "the overlay already says so".into(),
        }
        .into());
    };
    crate::workspace::write_atomic(&file, lab_version.as_bytes())?;
    changes.files.push(SavedFile {
        path: relative.clone(),
        original,
        lab_version,
    });
    let message = format!(
        "{name}: use tag {tag}\n\nMade by `kindlab lab` ({}).",
        lab.name
    );
    let commit = git.commit_file(&relative, &message)?;
    changes.commits.push(commit.clone());
    Ok(format!(
        "committed {} ({}): {name} -> {repo}:{tag}",
        short(&commit),
        relative.display()
    ))
}

/// Reverts the lab's break commit (never the user's own commits or changes).
fn git_revert(env: &LabEnv<'_>, changes: &mut Changes) -> Result<String> {
    let ws = env.workspace;
    let commit = changes
        .commits
        .last()
        .cloned()
        .ok_or_else(|| LabError::CannotApply {
            action: "revert the lab's commit".into(),
            why: "the lab made no commit".into(),
        })?;
    let git = Git::find(&ws.root).ok_or_else(|| LabError::CannotApply {
        action: "revert the lab's commit".into(),
        why: "git is not installed".into(),
    })?;
    if git.is_reverted(&commit) {
        return Ok(format!("{} is already reverted", short(&commit)));
    }
    for file in &changes.files {
        git.require_clean(&file.path)?;
    }
    let revert = git.revert(&commit)?;
    changes.reverts.push(revert.clone());
    Ok(format!(
        "reverted {} with {}",
        short(&commit),
        short(&revert)
    ))
}

pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// The JSON pointer of env var `name` in `container` of a Deployment.
fn env_path(deployment: &Value, container: &str, name: &str) -> Option<String> {
    let containers = deployment
        .pointer("/spec/template/spec/containers")?
        .as_array()?;
    let (ci, c) = containers
        .iter()
        .enumerate()
        .find(|(_, c)| c["name"] == container)?;
    let ei = c["env"]
        .as_array()?
        .iter()
        .position(|e| e["name"] == name)?;
    Some(format!("/spec/template/spec/containers/{ci}/env/{ei}"))
}

/// Deep-merges `patch` into `base` (objects merge, everything else replaces).
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// GitOps mode: `git push kindlab`, then the controller's sync of that commit.
pub(crate) async fn push_git(env: &LabEnv<'_>) -> Result<String> {
    if !env.workspace.gitops {
        return Err(crate::gitops::GitOpsError::Disabled.into());
    }
    let repo = crate::gitops::remote::Repo::open(&env.workspace.root)?;
    repo.push()?;
    let pushed = repo.pushed();
    let token = crate::gitops::sync::request(&env.client).await?;
    let tried = crate::gitops::sync::wait_tried(
        &env.client,
        pushed.as_deref(),
        &token,
        std::time::Duration::from_secs(120),
    )
    .await?;
    Ok(format!(
        "pushed {} to the lab's Git server (`git push {}`); the controller applied it{}",
        pushed.as_deref().map(short).unwrap_or("-"),
        crate::gitops::REMOTE,
        if tried.ready == Some(false) && !tried.message.is_empty() {
            format!(" and reports: {}", tried.message)
        } else {
            String::new()
        }
    ))
}

/// `pushGit` with its moments, for a lab's timeline: pushed, fetched by the controller,
/// applied by it (the rollout is the verify that follows).
pub(crate) async fn push_git_timed(
    env: &LabEnv<'_>,
) -> Result<(String, Vec<(&'static str, String, std::time::Instant)>)> {
    if !env.workspace.gitops {
        return Err(crate::gitops::GitOpsError::Disabled.into());
    }
    let repo = crate::gitops::remote::Repo::open(&env.workspace.root)?;
    repo.push()?;
    let pushed_at = std::time::Instant::now();
    let pushed = repo.pushed().unwrap_or_default();
    crate::gitops::sync::request(&env.client).await?;
    let followed =
        crate::gitops::sync::follow(&env.client, &pushed, std::time::Duration::from_secs(120))
            .await?;
    let sha = short(&pushed).to_string();
    Ok((
        format!(
            "pushed {sha} to the lab's Git server (`git push {}`); the controller applied it",
            crate::gitops::REMOTE
        ),
        vec![
            (
                "pushed",
                format!("`git push {}` of {sha}", crate::gitops::REMOTE),
                pushed_at,
            ),
            (
                "fetched",
                format!("the GitRepository fetched {sha}"),
                followed.fetched,
            ),
            (
                "applied",
                format!("the Kustomization applied {sha}"),
                followed.applied,
            ),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> ResolvedTarget {
        crate::lab::target::sample_target()
    }

    #[test]
    fn a_container_patch_names_the_container() {
        let body = container_patch(
            &target(),
            &json!({"resources": {"limits": {"memory": "16Mi"}}}),
        );
        assert_eq!(body["kind"], "Deployment");
        assert_eq!(
            body["metadata"],
            json!({"name": "orders-api", "namespace": "dev"})
        );
        assert_eq!(
            body["spec"]["template"]["spec"]["containers"],
            json!([{"name": "api", "resources": {"limits": {"memory": "16Mi"}}}])
        );
    }

    #[test]
    fn a_probe_change_must_fit_the_containers_probe() {
        let lab = json!({"readinessProbe": {"httpGet": {"path": "/health"}}});
        let http =
            json!({"name": "web", "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}});
        assert_eq!(probe_mismatch(&http, &lab), None);
        let tcp = json!({"name": "db", "readinessProbe": {"tcpSocket": {"port": 5432}}});
        assert_eq!(
            probe_mismatch(&tcp, &lab).as_deref(),
            Some(
                "the lab changes the httpGet check of readinessProbe, and container db's readinessProbe uses tcpSocket"
            )
        );
        let none = json!({"name": "worker", "livenessProbe": {"exec": {"command": ["true"]}}});
        assert_eq!(
            probe_mismatch(&none, &lab).as_deref(),
            Some("container worker has no readinessProbe to change")
        );
        // Timing alone fits any handler; fields that are not probes are not judged.
        assert_eq!(
            probe_mismatch(&tcp, &json!({"readinessProbe": {"periodSeconds": 1}})),
            None
        );
        assert_eq!(
            probe_mismatch(&none, &json!({"resources": {"limits": {"memory": "16Mi"}}})),
            None
        );
    }

    #[test]
    fn env_paths_and_merges() {
        let d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar"},
            {"name": "api", "env": [{"name": "A"}, {"name": "ORDERS_DB_URL"}]}
        ]}}}});
        assert_eq!(
            env_path(&d, "api", "ORDERS_DB_URL").as_deref(),
            Some("/spec/template/spec/containers/1/env/1")
        );
        assert_eq!(env_path(&d, "api", "MISSING"), None);
        assert_eq!(env_path(&d, "sidecar", "A"), None);
        let mut base = json!({"metadata": {"name": "x"}});
        merge(
            &mut base,
            &json!({"spec": {"selector": {"app": "y"}}, "metadata": {"labels": {"a": "b"}}}),
        );
        assert_eq!(
            base,
            json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"selector": {"app": "y"}}})
        );
    }
}
