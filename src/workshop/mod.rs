//! `kindlab workshop`: a room on one shared cluster. The instructor provisions a namespace of
//! its own per attendee (with a ServiceAccount bound to a namespaced Role, a quota, a
//! LimitRange, a same-namespace NetworkPolicy, Pod Security, the workspace deployed) and one
//! kubeconfig per attendee; watches the room (`status`), resets one attendee or all, and tears
//! down exactly what `provision` made.
//!
//! Each attendee's objects are reconciled as everything else is: observe (read the live
//! object), plan (the server's dry run of the apply, compared with it), act (apply what
//! would change). A second `provision` changes nothing; adding attendees adds only them.

pub mod command;
mod guardrails;
pub mod handout;
pub mod plan;

use std::path::PathBuf;
use std::time::{Duration, Instant, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::config::Kubeconfig;
use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::exit;
use crate::k8s::object::{self, ObjectKey};
use crate::k8s::{self, K8sError, ObjectChange};
use crate::lab::LabEnv;
use crate::lab::session;
use crate::ui::Ui;
use handout::{Endpoint, Entry, Index};
use plan::{ATTENDEE_ACCOUNT, Budget, ROOM_LABEL, ROOM_MANAGER};

#[derive(Debug, thiserror::Error)]
pub enum WorkshopError {
    #[error("{why}")]
    Roster { why: String },
    #[error("cannot tell the attendees where the cluster is: {why}")]
    Endpoint { why: String },
    #[error("namespace {namespace} exists and is not room {room}'s{}", owner.as_ref().map(|o| format!(" (it is room {o}'s)")).unwrap_or_default())]
    NotOurs {
        namespace: String,
        room: String,
        owner: Option<String>,
    },
    #[error("you may not {what} on this cluster")]
    NotAllowed { what: String, user_fix: String },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("room {room}'s namespaces are still being deleted after {}s: {left}", .waited.as_secs())]
    TeardownTimeout {
        room: String,
        waited: Duration,
        left: String,
    },
}

impl WorkshopError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            WorkshopError::Roster { .. } => {
                "name the attendees (lower-case namespace names), or give --count N".into()
            }
            WorkshopError::Endpoint { .. } => {
                "give the API server's address as attendees reach it with --server https://HOST:PORT".into()
            }
            WorkshopError::NotOurs { .. } => {
                "pick another attendee name, or delete that namespace yourself if it is no longer used".into()
            }
            WorkshopError::NotAllowed { user_fix, .. } => user_fix.clone(),
            WorkshopError::Write { .. } => "check the --out folder and its permissions".into(),
            WorkshopError::TeardownTimeout { .. } => {
                "run `kindlab workshop teardown` again; `kubectl get ns -l dev.kindlab.room` shows what is left".into()
            }
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            WorkshopError::Roster { .. } | WorkshopError::Endpoint { .. } => exit::BAD_INPUT,
            WorkshopError::NotOurs { .. } => exit::CONFLICT,
            WorkshopError::NotAllowed { .. } => exit::FORBIDDEN,
            WorkshopError::Write { .. } => exit::FAILED,
            WorkshopError::TeardownTimeout { .. } => exit::TIMEOUT,
        }
    }
}

pub struct ProvisionOptions {
    pub room: String,
    pub attendees: Vec<String>,
    pub out: PathBuf,
    pub token_ttl: Duration,
    pub server: Option<String>,
    pub dry_run: bool,
    pub parallel: usize,
    pub rollout_timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct ProvisionReport {
    pub room: String,
    pub dry_run: bool,
    pub attendees: Vec<AttendeeReport>,
    /// The handout folder (kubeconfigs, index.json, README.md).
    pub handout: String,
    /// What the room has but may not work as it says (a NetworkPolicy nothing enforces).
    pub warnings: Vec<String>,
    /// The workspace's guardrails as the room's bindings: what provision did to them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<String>,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub duration: Duration,
}

impl ProvisionReport {
    pub fn is_noop(&self) -> bool {
        self.attendees.iter().all(|a| a.changes.is_empty())
    }
}

#[derive(Debug, Serialize)]
pub struct AttendeeReport {
    pub attendee: String,
    pub namespace: String,
    /// What was (or, with --dry-run, would be) changed, one line each; empty: nothing.
    pub changes: Vec<String>,
    /// `issued`, `kept` (still valid), or `planned`.
    pub token: String,
    pub kubeconfig: String,
    pub expires_at: String,
    pub expires_unix: i64,
    /// What the token and file were made for (ServiceAccount, server, CA).
    #[serde(skip)]
    pub issued_for: String,
}

/// The checks before a room is made: may this user create what a room is made of?
pub async fn preflight(client: &kube::Client) -> Result<()> {
    let asks = [
        ("create", "", "namespaces"),
        ("create", "rbac.authorization.k8s.io", "roles"),
        ("create", "rbac.authorization.k8s.io", "rolebindings"),
        ("create", "", "resourcequotas"),
        ("create", "networking.k8s.io", "networkpolicies"),
        ("create", "", "serviceaccounts/token"),
    ];
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for (verb, group, resource) in asks {
        let (resource, subresource) = match resource.split_once('/') {
            Some((r, s)) => (r, Some(s.to_string())),
            None => (resource, None),
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    subresource,
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|source| K8sError::request("ask the API server what you may do", source))?;
        if !answer.status.is_some_and(|s| s.allowed) {
            missing.push(format!("{verb} {resource}"));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(WorkshopError::NotAllowed {
        what: missing.join(", "),
        user_fix: "run it as the cluster's admin (a kubeconfig with cluster-admin, as `kind` or your cloud gives you), or ask for a ClusterRole that allows these".into(),
    }
    .into())
}

/// `kindlab workshop provision`: every attendee's namespace, credentials, budget, isolation
/// and deployed workspace, and the handout folder.
///
/// `env` is the instructor's (a client that may make namespaces and RBAC); `kubeconfig` is
/// the one it came from, whose server and CA the attendees get.
pub async fn provision(
    env: &LabEnv<'_>,
    kubeconfig: &Kubeconfig,
    options: &ProvisionOptions,
) -> Result<ProvisionReport> {
    let started = Instant::now();
    let step = env.ui.step("Preflight");
    preflight(&env.client).await?;
    // The context the client was made for: the one asked for, else the kubeconfig's own.
    let context = match &env.access.context {
        Some(asked) => asked.clone(),
        None => kubeconfig
            .current_context
            .clone()
            .unwrap_or_else(|| env.context.clone()),
    };
    let endpoint = handout::endpoint(kubeconfig, &context, options.server.as_deref())?;
    // The workspace renders once; each attendee gets it moved into its namespace.
    let rendered = env.desired_everywhere().await?;
    let extra_rules = plan::workspace_rules(&declared_resources(&env.client, &rendered).await?);
    step.ok(format!(
        "may create namespaces and RBAC; kubeconfigs point at {}",
        endpoint.server
    ));
    let mut warnings = Vec::new();
    if is_loopback(&endpoint.server) && options.server.is_none() {
        warnings.push(format!(
            "the kubeconfigs point at {}, which only this machine reaches: give --server https://HOST:PORT as attendees reach the API server",
            endpoint.server
        ));
    }
    warnings.extend(network_policy_warning(&env.client).await);
    for warning in &warnings {
        env.ui.note(format!("warning: {warning}"));
    }

    let index = Index::read(&options.out);
    let budget = Budget::default();
    let room = RoomPlan {
        budget: &budget,
        rendered: &rendered,
        extra_rules: &extra_rules,
        index: &index,
        endpoint: &endpoint,
    };
    let results: Vec<Result<AttendeeReport>> = futures::stream::iter(&options.attendees)
        .map(|attendee| provision_one(env, options, &room, attendee))
        .buffer_unordered(options.parallel.max(1))
        .collect()
        .await;
    let mut attendees = Vec::new();
    let mut first_error = None;
    for result in results {
        match result {
            Ok(a) => attendees.push(a),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    attendees.sort_by(|a, b| a.attendee.cmp(&b.attendee));
    // The tokens already issued are handed out even when another attendee failed.
    if !options.dry_run {
        write_index(options, &endpoint, &attendees)?;
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let guardrails = if options.dry_run {
        Vec::new()
    } else {
        guardrails::provision(env, &options.room).await?
    };
    Ok(ProvisionReport {
        room: options.room.clone(),
        dry_run: options.dry_run,
        attendees,
        handout: options.out.display().to_string(),
        warnings,
        guardrails,
        duration: started.elapsed(),
    })
}

/// A warning when no network plugin known to enforce NetworkPolicy runs on the cluster (by
/// its DaemonSets' names, in any namespace), or when that cannot be told.
async fn network_policy_warning(client: &kube::Client) -> Option<String> {
    let api: Api<k8s_openapi::api::apps::v1::DaemonSet> = Api::all(client.clone());
    let names: Vec<String> = match api.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .collect(),
        Err(e) => {
            return Some(format!(
                "cannot tell whether the cluster enforces NetworkPolicy (listing DaemonSets: {e}); without an enforcing network plugin, pods of other namespaces can reach each attendee's Services"
            ));
        }
    };
    match plan::policy_enforcer(&names) {
        Some(_) => None,
        None => Some(format!(
            "no known NetworkPolicy enforcer among the cluster's DaemonSets ({}): each attendee's same-namespace policy is made, but unless the network plugin enforces it, pods of other namespaces can reach its Services (kindnet enforces from kind v0.24; Calico, Cilium, kube-router do)",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )),
    }
}

/// What every attendee of one `provision` shares.
struct RoomPlan<'a> {
    budget: &'a Budget,
    rendered: &'a [Value],
    extra_rules: &'a [Value],
    index: &'a Index,
    endpoint: &'a Endpoint,
}

async fn provision_one(
    env: &LabEnv<'_>,
    options: &ProvisionOptions,
    room: &RoomPlan<'_>,
    attendee: &str,
) -> Result<AttendeeReport> {
    let client = &env.client;
    let step = env.ui.step(format!("Attendee {attendee}"));
    refuse_foreign_namespace(client, attendee, &options.room).await?;
    let mut changes = Vec::new();
    for object in plan::attendee_objects(&options.room, attendee, room.budget, room.extra_rules) {
        if let Some(change) = reconcile(client, &object, options.dry_run).await? {
            changes.push(change);
        }
    }
    step.detail("the workspace");
    // The workspace as the attendee's own overlay renders it: the Namespace object too, so
    // kubectl's record of it matches and the attendee's `kubectl apply -k` leaves it alone.
    let docs = crate::lab::env::in_namespace(room.rendered.to_vec(), attendee);
    // Only what is missing is deployed: a workspace object that differs may be an
    // attendee's lab in progress, which `workshop reset` (not a re-provision) puts back.
    // The Namespace (no lab changes it) is applied whenever it differs: kubectl's record of
    // it must be the overlay's, or the attendee's `kubectl apply -k` would try to patch it.
    let plans = k8s::plan_objects(client, &docs).await?;
    let wanted = |p: &k8s::ObjectPlan| {
        p.change == ObjectChange::Create
            || (p.kind == "Namespace" && p.change != ObjectChange::Unchanged)
    };
    let changed: Vec<Value> = docs
        .iter()
        .zip(&plans)
        .filter(|(_, p)| wanted(p))
        .map(|(d, _)| d.clone())
        .collect();
    for p in plans.iter().filter(|p| wanted(p)) {
        changes.push(format!(
            "{} {}",
            verb(&p.change, options.dry_run),
            p.object()
        ));
    }
    if !options.dry_run && !changed.is_empty() {
        k8s::apply_all(client, &changed).await?;
        for deployment in docs.iter().filter(|d| d["kind"] == "Deployment") {
            let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
            step.detail(format!("rollout of {attendee}/{name}"));
            k8s::wait_rollout(
                client,
                attendee,
                name,
                options.rollout_timeout,
                &crate::diagnose::StuckPodExplainer::default(),
                |_| {},
            )
            .await?;
        }
    }
    let now = unix_now();
    let ttl = options.token_ttl.as_secs() as i64;
    let kubeconfig = handout::kubeconfig_path(&options.out, attendee);
    // A token is kept only for the same ServiceAccount (a room torn down and made again has
    // new ones, and their old tokens are refused) and the same server and CA.
    let account = account_uid(client, attendee).await?;
    let issued_for = handout::issued_for(room.endpoint, account.as_deref().unwrap_or_default());
    let kept = room
        .index
        .still_valid(&options.out, attendee, &issued_for, now, ttl / 2);
    let (token, expires_unix) = match kept {
        Some(entry) => ("kept".to_string(), entry.expires_unix),
        None if options.dry_run => ("planned".to_string(), now + ttl),
        None => {
            let (token, expires) = issue_token(client, attendee, options.token_ttl).await?;
            let expires_at = rfc3339(expires);
            let text = handout::render(&options.room, attendee, room.endpoint, &token, &expires_at);
            write_private(&kubeconfig, &text)?;
            ("issued".to_string(), expires)
        }
    };
    step.ok(match (changes.is_empty(), options.dry_run) {
        (true, _) => format!("nothing to change; token {token}"),
        (false, true) => format!("would make {} change(s)", changes.len()),
        (false, false) => format!("{} change(s); token {token}", changes.len()),
    });
    Ok(AttendeeReport {
        attendee: attendee.to_string(),
        namespace: attendee.to_string(),
        changes,
        token,
        kubeconfig: kubeconfig.display().to_string(),
        expires_at: rfc3339(expires_unix),
        expires_unix,
        issued_for,
    })
}

/// A namespace with the attendee's name that another room (or nobody's room) made is not
/// ours to take over.
async fn refuse_foreign_namespace(client: &kube::Client, name: &str, room: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let found = api
        .get_opt(name)
        .await
        .map_err(|source| K8sError::request(format!("read namespace {name}"), source))?;
    let Some(found) = found else {
        return Ok(());
    };
    let owner = found
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ROOM_LABEL))
        .cloned();
    if owner.as_deref() == Some(room) {
        return Ok(());
    }
    Err(WorkshopError::NotOurs {
        namespace: name.to_string(),
        room: room.to_string(),
        owner,
    }
    .into())
}

/// Observe, plan, act for one of the room's objects: the server's dry run of the apply,
/// compared with the live object, says whether anything would change.
async fn reconcile(
    client: &kube::Client,
    desired: &Value,
    dry_run: bool,
) -> Result<Option<String>> {
    let Some(key) = ObjectKey::of(desired) else {
        return Ok(None);
    };
    let live = object::get(client, &key).await?;
    let change = match &live {
        None => ObjectChange::Create,
        Some(live) => {
            let would_be = object::apply(client, &key, desired, ROOM_MANAGER, true, true).await?;
            k8s::compare(
                &serde_json::to_value(live).unwrap_or_default(),
                &serde_json::to_value(&would_be).unwrap_or_default(),
            )
        }
    };
    if change == ObjectChange::Unchanged {
        return Ok(None);
    }
    if !dry_run {
        object::apply(client, &key, desired, ROOM_MANAGER, true, false).await?;
    }
    Ok(Some(format!(
        "{} {}",
        verb(&change, dry_run),
        key.describe()
    )))
}

fn verb(change: &ObjectChange, dry_run: bool) -> &'static str {
    match (change, dry_run) {
        (ObjectChange::Create, false) => "created",
        (ObjectChange::Create, true) => "would create",
        (_, false) => "configured",
        (_, true) => "would configure",
    }
}

/// The uid of the attendee's ServiceAccount (`None` in a dry run before it exists).
async fn account_uid(client: &kube::Client, namespace: &str) -> Result<Option<String>> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let found = api.get_opt(ATTENDEE_ACCOUNT).await.map_err(|source| {
        K8sError::request(format!("read {namespace}/{ATTENDEE_ACCOUNT}"), source)
    })?;
    Ok(found.and_then(|a| a.metadata.uid))
}

/// `https://127.0.0.1:6443`, `https://localhost:...`, `https://[::1]:...`: an address only
/// this machine reaches.
fn is_loopback(server: &str) -> bool {
    let Ok(uri) = server.parse::<http::Uri>() else {
        return false;
    };
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_loopback_server_is_recognised() {
        assert!(super::is_loopback("https://127.0.0.1:41733"));
        assert!(super::is_loopback("https://localhost:6443"));
        assert!(super::is_loopback("https://[::1]:6443"));
        assert!(!super::is_loopback("https://10.0.0.5:6443"));
        assert!(!super::is_loopback("https://room.example.org"));
    }
}

/// The namespaced kinds the workspace declares, as RBAC names them (discovery says their
/// plural and scope).
async fn declared_resources(
    client: &kube::Client,
    rendered: &[Value],
) -> Result<Vec<plan::DeclaredResource>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut declared = Vec::new();
    for doc in rendered {
        let (Some(api_version), Some(kind)) = (doc["apiVersion"].as_str(), doc["kind"].as_str())
        else {
            continue;
        };
        if !seen.insert((api_version.to_string(), kind.to_string())) {
            continue;
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|source| K8sError::request(format!("look up {api_version} {kind}"), source))?;
        if caps.scope == kube::discovery::Scope::Namespaced {
            declared.push(plan::DeclaredResource {
                group: resource.group,
                plural: resource.plural,
            });
        }
    }
    Ok(declared)
}

/// A token for the attendee's ServiceAccount from the TokenRequest API: `(token, expiry as
/// Unix seconds)`.
async fn issue_token(
    client: &kube::Client,
    namespace: &str,
    ttl: Duration,
) -> Result<(String, i64)> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(ttl.as_secs() as i64),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api
        .create_token_request(ATTENDEE_ACCOUNT, &PostParams::default(), &request)
        .await
        .map_err(|source| {
            K8sError::request(
                format!("issue a token for {namespace}/{ATTENDEE_ACCOUNT}"),
                source,
            )
        })?;
    match answer.status {
        Some(status) => Ok((status.token, status.expiration_timestamp.0.as_second())),
        // The API always answers with a status; without one there is no token to hand out.
        None => Err(WorkshopError::Endpoint {
            why: format!(
                "the TokenRequest for {namespace}/{ATTENDEE_ACCOUNT} came back without a token"
            ),
        }
        .into()),
    }
}

fn write_index(
    options: &ProvisionOptions,
    endpoint: &Endpoint,
    attendees: &[AttendeeReport],
) -> Result<()> {
    let mut index = Index::read(&options.out);
    index.room = options.room.clone();
    index.server = endpoint.server.clone();
    for a in attendees {
        index.upsert(Entry {
            attendee: a.attendee.clone(),
            namespace: a.namespace.clone(),
            kubeconfig: format!("{}.kubeconfig", a.attendee),
            expires_at: a.expires_at.clone(),
            expires_unix: a.expires_unix,
            issued_for: a.issued_for.clone(),
        });
    }
    let json = serde_json::to_string_pretty(&index).unwrap_or_default();
    write_private(&options.out.join(handout::INDEX_FILE), &json)?;
    write_private(&options.out.join("README.md"), &index.readme())?;
    Ok(())
}

/// Writes a file only its owner can read (kubeconfigs hold tokens), atomically: the
/// temporary file is made 0600, so the token is never readable by others, even briefly; the
/// folder is made 0700.
fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;
    let fail = |source| WorkshopError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

fn unix_now() -> i64 {
    session::unix_now() as i64
}

fn rfc3339(unix: i64) -> String {
    session::rfc3339(UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64))
}

/// The room's attendees, as the cluster has them (the namespaces labelled with the room).
pub async fn attendees(client: &kube::Client, room: &str) -> Result<Vec<String>> {
    let api: Api<Namespace> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(&format!("{ROOM_LABEL}={room}")))
        .await
        .map_err(|source| K8sError::request(format!("list room {room}'s namespaces"), source))?;
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}

/// One attendee's line of `workshop status`.
#[derive(Debug, Serialize)]
pub struct AttendeeStatus {
    pub attendee: String,
    pub lab: Option<String>,
    pub state: String,
    pub time_to_symptoms_s: Option<f64>,
    pub time_to_fix_s: Option<f64>,
    pub hints_used: u32,
    pub checks: usize,
    /// When the attendee's kindlab last wrote the session (RFC 3339).
    pub last_activity: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RoomStatus {
    pub room: String,
    pub attendees: Vec<AttendeeStatus>,
}

/// `kindlab workshop status`: every attendee's lab, from the sessions their kindlab mirrors
/// into their namespaces.
pub async fn status(client: &kube::Client, room: &str) -> Result<RoomStatus> {
    let (names, sessions) =
        futures::join!(attendees(client, room), session::mirrored_sessions(client));
    let names = names?;
    let sessions = sessions?;
    let attendees = names
        .into_iter()
        .map(|name| match sessions.iter().find(|s| s.namespace == name) {
            Some(s) => AttendeeStatus {
                attendee: name,
                lab: Some(s.report.lab.clone()),
                state: s.report.state.clone(),
                time_to_symptoms_s: s.report.time_to_symptoms_s,
                time_to_fix_s: s.report.time_to_fix_s,
                hints_used: s.report.hints_used,
                checks: s.report.checks,
                last_activity: s.updated_at.clone(),
            },
            None => AttendeeStatus {
                attendee: name,
                lab: None,
                state: "idle".into(),
                time_to_symptoms_s: None,
                time_to_fix_s: None,
                hints_used: 0,
                checks: 0,
                last_activity: None,
            },
        })
        .collect();
    Ok(RoomStatus {
        room: room.to_string(),
        attendees,
    })
}

#[derive(Debug, Serialize)]
pub struct RoomReset {
    pub attendees: Vec<crate::reset::NamespaceReset>,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub duration: Duration,
}

/// `kindlab workshop reset`: each attendee's namespace back to the workspace (at most
/// `parallel` at once); the lab session the attendee had running ends.
pub async fn reset(
    env: &LabEnv<'_>,
    names: &[String],
    parallel: usize,
    timeout: Duration,
) -> Result<RoomReset> {
    let started = Instant::now();
    let sessions = session::mirrored_sessions(&env.client).await?;
    let sessions = &sessions;
    let results: Vec<Result<crate::reset::NamespaceReset>> = futures::stream::iter(names)
        .map(|name| async move {
            let ended = sessions
                .iter()
                .find(|s| &s.namespace == name)
                .map(|s| s.report.clone());
            let mut report = crate::reset::run(env, Some(name), timeout).await?;
            session::unmirror(&env.client, name).await;
            let mut reset =
                report
                    .namespaces
                    .pop()
                    .unwrap_or_else(|| crate::reset::NamespaceReset {
                        namespace: name.clone(),
                        ended: None,
                        done: Vec::new(),
                    });
            if reset.ended.is_none() {
                reset.ended = ended;
            }
            Ok(reset)
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut attendees = Vec::new();
    for r in results {
        attendees.push(r?);
    }
    attendees.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    Ok(RoomReset {
        attendees,
        duration: started.elapsed(),
    })
}

#[derive(Debug, Serialize)]
pub struct Teardown {
    pub room: String,
    pub dry_run: bool,
    /// The namespaces deleted (everything in them goes with them).
    pub namespaces: Vec<String>,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub duration: Duration,
}

/// `kindlab workshop teardown`: deletes the room's namespaces (only those labelled with the
/// room: what `provision` made) and waits until they are gone.
pub async fn teardown(
    client: &kube::Client,
    room: &str,
    dry_run: bool,
    ui: &Ui,
) -> Result<Teardown> {
    let started = Instant::now();
    let namespaces = attendees(client, room).await?;
    if !dry_run {
        let step = ui.step(format!(
            "Deleting room {room}: {} namespace(s)",
            namespaces.len()
        ));
        let api: Api<Namespace> = Api::all(client.clone());
        for name in &namespaces {
            // The workshop is over: its pods need no grace period (the sample app ignores
            // SIGTERM, so each would hold its namespace for the default 30 s).
            let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), name);
            if let Err(e) = pods
                .delete_collection(
                    &DeleteParams::default().grace_period(0),
                    &ListParams::default(),
                )
                .await
            {
                tracing::debug!(error = %e, namespace = %name, "cannot delete the pods first");
            }
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => {
                    return Err(
                        K8sError::request(format!("delete namespace {name}"), source).into(),
                    );
                }
            }
        }
        let wait = Duration::from_secs(180);
        loop {
            let left = attendees(client, room).await?;
            if left.is_empty() {
                break;
            }
            step.detail(format!("{} namespace(s) still terminating", left.len()));
            if started.elapsed() > wait {
                return Err(WorkshopError::TeardownTimeout {
                    room: room.to_string(),
                    waited: wait,
                    left: left.join(", "),
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        guardrails::teardown(client, room).await?;
        step.ok("gone");
    }
    Ok(Teardown {
        room: room.to_string(),
        dry_run,
        namespaces,
        duration: started.elapsed(),
    })
}

crate::error::failure_from_inherent!(WorkshopError);
