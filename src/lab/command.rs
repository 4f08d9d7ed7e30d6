//! The `kindlab lab` verbs: from their flags to the lab engine, and from its reports to the
//! terminal (text) or to scripts (JSON).

use std::path::Path;

use super::attendee;
use super::env::LabEnv;
use super::render::attendee::{Catalogue, LabPage, Sessions};
use super::render::html;
use super::session::{self, Session, SessionStore};
use super::target::{self, TargetRef};
use super::{LabError, LabSpec};
use crate::cli::{LabAction, LabTargetArgs, SessionArgs, TargetArgs};
use crate::error::Result;
use crate::exit;
use crate::interrupt::Interrupt;
use crate::lab;
use crate::ui::{self, Output, Ui, print_json};
use crate::workspace::{self, Workspace};

/// Runs one `kindlab lab` verb; returns the exit code.
pub async fn run(
    workspace: &Path,
    action: LabAction,
    output: Output,
    ui: &Ui,
    interrupt: Interrupt,
) -> Result<u8> {
    match action {
        LabAction::List => {
            let labs = lab::builtin_labs()?;
            Ok(ui::show(&Catalogue(labs), output))
        }
        LabAction::Show { lab: name, source } => {
            let spec = lab::load_lab(&name)?;
            let source = match (output, source) {
                (Output::Text, true) => Some(match lab::builtin_source(&spec.name) {
                    Some(text) if !name.ends_with(".yaml") => text.to_string(),
                    _ => std::fs::read_to_string(&name).map_err(|source| LabError::Read {
                        path: name.clone().into(),
                        source,
                    })?,
                }),
                _ => None,
            };
            Ok(ui::show(&LabPage { spec, source }, output))
        }
        LabAction::Schema => {
            print_json(&lab::schema());
            Ok(exit::OK)
        }
        LabAction::Start {
            lab: name,
            on,
            attendee: who,
            no_wait,
        } => {
            interrupt.handle();
            let spec = lab::load_lab(&name)?;
            let ws = Workspace::discover(workspace)?;
            let (env, target) = open_lab(&ws, &spec, &on, ui, interrupt).await?;
            let who = who
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "attendee".into());
            let started = attendee::start(&env, &spec, &name, &target, &who, !no_wait).await?;
            Ok(ui::show(&started, output))
        }
        LabAction::Check(args) => {
            let ws = Workspace::discover(workspace)?;
            let (session, spec, env) = open_session(&ws, &args, ui, interrupt).await?;
            let checked = attendee::check(&env, &spec, session).await?;
            Ok(ui::show(&checked, output))
        }
        LabAction::Hint(args) => {
            let ws = Workspace::discover(workspace)?;
            let store = SessionStore::new(&ws);
            let session = find_session(&ws, &store, &args).await?;
            let spec = lab::load_lab(&session.source_or_name())?;
            let hint = attendee::hint(&store, &spec, session)?;
            Ok(ui::show(&hint, output))
        }
        LabAction::Solve(args) => {
            interrupt.handle();
            let ws = Workspace::discover(workspace)?;
            let (session, spec, env) = open_session(&ws, &args, ui, interrupt).await?;
            let solved = attendee::solve(&env, &spec, session).await?;
            Ok(ui::show(&solved, output))
        }
        LabAction::Status {
            all_namespaces,
            target,
        } => {
            let ws = Workspace::discover(workspace)?;
            let reports = if all_namespaces {
                let cluster = crate::cluster::connect(&ws, &target.cluster.access()).await?;
                session::mirrored(&cluster.client).await?
            } else {
                SessionStore::new(&ws)
                    .all()
                    .iter()
                    .map(|s| s.report())
                    .collect()
            };
            Ok(ui::show(&Sessions(reports), output))
        }
        LabAction::Report {
            all_namespaces,
            from,
            out,
            title,
            target,
        } => {
            let ws = Workspace::discover(workspace).ok();
            let sessions = match (&from, all_namespaces, &ws) {
                (Some(dir), _, _) => read_reports(dir)?,
                (None, true, Some(ws)) => {
                    let cluster = crate::cluster::connect(ws, &target.cluster.access()).await?;
                    session::mirrored(&cluster.client).await?
                }
                (None, true, None) => {
                    let access = target.cluster.access();
                    if !access.is_explicit() {
                        return Err(LabError::Needs {
                            what: "a cluster to read the sessions from".into(),
                            fix: "run it in a workspace, or give --context or --kubeconfig".into(),
                        }
                        .into());
                    }
                    session::mirrored(&access.connect().await?.client).await?
                }
                (None, false, Some(ws)) => {
                    let store = SessionStore::new(ws);
                    let mut all: Vec<_> = store.reports().into_iter().map(|(_, r)| r).collect();
                    all.extend(store.all().iter().map(|s| s.report()));
                    all
                }
                (None, false, None) => {
                    return Err(workspace::WorkspaceError::NotFound {
                        dir: workspace.to_path_buf(),
                    }
                    .into());
                }
            };
            let room = html::summarise(&title, sessions);
            let out = match (out, &ws) {
                (Some(o), _) => o,
                (None, Some(ws)) => ws.root.join(".kindlab/reports/report.html"),
                (None, None) => std::path::PathBuf::from("kindlab-report.html"),
            };
            workspace::write_atomic(&out, html::render(&room).as_bytes())?;
            Ok(ui::show(&html::Written { path: out, room }, output))
        }
        LabAction::Run {
            lab: name,
            on,
            repeat,
        } => {
            interrupt.handle();
            let spec = lab::load_lab(&name)?;
            let ws = Workspace::discover(workspace)?;
            let (env, target) = open_lab(&ws, &spec, &on, ui, interrupt).await?;
            let mut runs = Vec::new();
            for i in 0..repeat {
                if repeat > 1 {
                    ui.note(format!("run {}/{repeat}", i + 1));
                }
                runs.push(lab::runner::run(&env, &spec, &target).await?);
            }
            if repeat == 1 {
                return Ok(ui::show(&runs.remove(0), output));
            }
            let summary = super::report::RunSummary {
                lab: spec.name.clone(),
                stats: super::report::phase_stats(&runs),
                runs,
            };
            Ok(ui::show(&summary, output))
        }
    }
}

/// Every session report (`*.json`) under `dir`, however the instructor collected them.
fn read_reports(dir: &Path) -> Result<Vec<session::SessionReport>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| LabError::Read {
            path: d.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json")
                && let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(report) = serde_json::from_str(&text)
            {
                found.push(report);
            }
        }
    }
    Ok(found)
}

/// The lab's target: its defaults, overridden by the command line; the namespace defaults to
/// the kubeconfig context's (an attendee's own).
/// The environment and target of a lab about to begin (`start`, `run`).
async fn open_lab<'a>(
    ws: &'a Workspace,
    spec: &LabSpec,
    on: &LabTargetArgs,
    ui: &'a Ui,
    interrupt: Interrupt,
) -> Result<(LabEnv<'a>, TargetRef)> {
    let env = lab_env(ws, &on.cluster, ui, interrupt).await?;
    let target = lab_target(spec, on, &env)?;
    Ok((env, target))
}

/// The session a `check` or `solve` continues, its lab and its environment.
async fn open_session<'a>(
    ws: &'a Workspace,
    args: &SessionArgs,
    ui: &'a Ui,
    interrupt: Interrupt,
) -> Result<(Session, LabSpec, LabEnv<'a>)> {
    let session = find_session(ws, &SessionStore::new(ws), args).await?;
    let spec = lab::load_lab(&session.source_or_name())?;
    let env = session_env(ws, &session, args, ui, interrupt).await?;
    Ok((session, spec, env))
}

fn lab_target(spec: &LabSpec, on: &LabTargetArgs, env: &LabEnv<'_>) -> Result<TargetRef> {
    let deployment = on
        .target
        .as_deref()
        .map(target::parse_target)
        .transpose()
        .map_err(|why| LabError::CannotApply {
            action: "pick the target".into(),
            why,
        })?;
    let namespace = on.namespace.as_deref().or(env.default_namespace.as_deref());
    Ok(TargetRef::choose(
        &spec.target,
        deployment.as_deref(),
        namespace,
        on.container.as_deref(),
    ))
}

/// Everything a lab command needs, for the cluster `target` names.
async fn lab_env<'a>(
    ws: &'a Workspace,
    target: &TargetArgs,
    ui: &'a Ui,
    interrupt: Interrupt,
) -> Result<LabEnv<'a>> {
    let connection = crate::cluster::connect(ws, &target.cluster.access()).await?;
    LabEnv::open(ws, connection, target.registry.clone(), ui, interrupt).await
}

/// The session a `check`, `hint` or `solve` is about: the one in `-n` (default: the
/// kubeconfig context's namespace), on the cluster the flags name, else the only one.
async fn find_session(ws: &Workspace, store: &SessionStore, args: &SessionArgs) -> Result<Session> {
    let access = args.cluster.access();
    let (namespace, context) = match access.is_explicit() {
        // Reads the kubeconfig only: making a client sends no request.
        true => {
            let connected = access.connect().await?;
            (
                args.namespace.clone().or(connected.namespace),
                Some(connected.context),
            )
        }
        false => (args.namespace.clone(), None),
    };
    Ok(store.find(ws, namespace.as_deref(), context.as_deref())?)
}

/// The lab environment a running session was started in (the flags win: a new token).
async fn session_env<'a>(
    ws: &'a Workspace,
    session: &Session,
    args: &SessionArgs,
    ui: &'a Ui,
    interrupt: Interrupt,
) -> Result<LabEnv<'a>> {
    let access = match args.cluster.access() {
        given if given.is_explicit() => given,
        _ => session.access_or_context(&format!("kind-{}", ws.cluster.name)),
    };
    let connection = crate::cluster::connect(ws, &access).await?;
    LabEnv::open(
        ws,
        connection,
        Some(session.registry_host.clone()),
        ui,
        interrupt,
    )
    .await
}
