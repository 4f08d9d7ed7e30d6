//! From a parsed command line to calls into the modules, and from their results to output
//! and an exit code. Nothing here knows how Docker or kind work.

use serde::Serialize;

use crate::cli::{Cli, Command, LabAction, RegistryAction, TargetArgs, UpArgs};
use crate::docker::Engine;
use crate::error::{Result, exit};
use crate::interrupt::Interrupt;
use crate::ui::{self, Output, Ui, print_json};
use crate::up::{UpContext, UpOptions};
use crate::workspace::{self, Workspace};
use crate::{cluster, doctor, down, images, k8s, lab, registry, report, status, up};

/// Runs one command and returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::FAILED;
        }
    };
    let output = cli.output;
    runtime.block_on(async {
        let interrupt = Interrupt::install();
        tokio::select! {
            result = dispatch(cli, interrupt.clone()) => match result {
                Ok(code) => code,
                Err(e) => {
                    ui::render_error(&e, output);
                    e.exit_code()
                }
            },
            _ = interrupt.must_stop() => {
                // The command did not stop at a safe point (or was asked twice): whatever
                // it was doing is left as it is, and `up` converges from there.
                eprintln!(
                    "\ninterrupted; the lab may be half-changed: `kindlab status` shows it, `kindlab up` repairs it"
                );
                exit::INTERRUPTED
            }
        }
    })
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "kindlab=info",
        2 => "kindlab=debug",
        _ => "kindlab=trace,kube=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KINDLAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

async fn dispatch(cli: Cli, interrupt: Interrupt) -> Result<u8> {
    // Commands that stop at their own safe points take `interrupt` over (`handle()`).
    let output = cli.output;
    let ui = Ui::new();
    match cli.command {
        Command::Init { dir } => init(&dir, output),
        Command::Doctor => {
            // Doctor works outside a workspace too, with the default registry settings.
            let settings = Workspace::discover(&cli.workspace)
                .map(|w| w.registry)
                .unwrap_or_default();
            let report = doctor::run(&settings).await;
            print_doctor(&report, output);
            Ok(if report.ok { exit::OK } else { exit::UNHEALTHY })
        }
        Command::Registry { action } => {
            let ws = Workspace::discover(&cli.workspace)?;
            let engine = Engine::connect().await?;
            registry_command(ws, engine, action, output, ui, interrupt).await
        }
        Command::Build { images: names } => {
            let ws = Workspace::discover(&cli.workspace)?;
            let selected = match names.is_empty() {
                true => ws.images.clone(),
                false => names
                    .iter()
                    .map(|n| ws.image(n).cloned())
                    .collect::<Result<Vec<_>, _>>()?,
            };
            let engine = Engine::connect().await?;
            let host = format!("localhost:{}", ws.registry.port);
            let results = images::build_and_push(&engine, &host, &selected, &ui).await?;
            match output {
                Output::Json => print_json(&serde_json::json!({ "images": results })),
                Output::Text => {
                    for r in &results {
                        println!("{}  {}", r.reference, r.digest);
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Up(args) => {
            let ws = Workspace::discover(&cli.workspace)?;
            up_command(ws, args, output, ui, interrupt).await
        }
        Command::Down {
            keep_registry,
            purge,
        } => {
            let ws = Workspace::discover(&cli.workspace)?;
            let engine = Engine::connect().await?;
            let options = down::DownOptions {
                keep_registry,
                purge,
            };
            let report = down::run(&engine, &ws, options, &ui, &interrupt).await?;
            match output {
                Output::Json => print_json(&report),
                Output::Text => {
                    for line in &report.lines {
                        println!("{line}");
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Lab { action } => lab_command(&cli.workspace, action, output, &ui).await,
        Command::Status(target) => {
            let ws = Workspace::discover(&cli.workspace)?;
            let engine = Engine::connect().await?;
            let options = UpOptions {
                context: target.context,
                registry: target.registry,
                ..UpOptions::default()
            };
            let ctx = UpContext::read_only(ws, options, engine, ui, interrupt)?;
            let report = status::run(&ctx).await;
            match output {
                Output::Json => print_json(&report),
                Output::Text => print!("{}", status::table(&report)),
            }
            Ok(if report.ok { exit::OK } else { exit::UNHEALTHY })
        }
    }
}

fn init(dir: &std::path::Path, output: Output) -> Result<u8> {
    let written = workspace::scaffold(dir)?;
    match output {
        Output::Json => print_json(&serde_json::json!({
            "workspace": dir.display().to_string(),
            "files": written,
        })),
        Output::Text => {
            for f in &written {
                println!("wrote {}", dir.join(f).display());
            }
            println!("\nNext: `cd {} && kindlab up`", dir.display());
        }
    }
    Ok(exit::OK)
}

fn print_doctor(report: &doctor::Report, output: Output) {
    match output {
        Output::Json => print_json(report),
        Output::Text => {
            for check in &report.checks {
                let mark = if check.ok { "✓" } else { "✗" };
                println!("{mark} {:<14} {}", check.name, check.detail);
                if let Some(fix) = &check.fix {
                    println!("  {:<14} fix: {fix}", "");
                }
            }
            if report.ok {
                println!("\nReady for `kindlab up`.");
            }
        }
    }
}

async fn registry_command(
    ws: Workspace,
    engine: Engine,
    action: RegistryAction,
    output: Output,
    ui: Ui,
    interrupt: Interrupt,
) -> Result<u8> {
    #[derive(Serialize)]
    struct RegistryDoc<'a> {
        name: &'a str,
        state: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        container: Option<registry::RegistrySeen>,
        answers: Option<bool>,
    }
    let name = ws.registry.name.clone();
    match action {
        RegistryAction::Up { adopt } => {
            let options = UpOptions {
                adopt,
                ..UpOptions::default()
            };
            let ctx = UpContext::for_up(ws, options, engine, ui, interrupt).await?;
            let report = up::registry_up(&ctx).await?;
            let summary = match report.outcome {
                up::Outcome::Reused => "already running; nothing to do".to_string(),
                _ => report.summary(),
            };
            let seen = registry::observe_container(&ctx.engine, &name, ctx.me()).await?;
            match output {
                Output::Json => print_json(&RegistryDoc {
                    name: &name,
                    state: serde_json::to_value(report.outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    container: seen,
                    answers: Some(true),
                }),
                Output::Text => println!("registry {name} at {}: {summary}", ctx.registry_host()),
            }
            Ok(exit::OK)
        }
        RegistryAction::Down { purge } => {
            let _lock = ws.lock()?;
            let me = ws.identity()?;
            let state = ws.read_state()?;
            let observed = registry::observe(&engine, &name, me.as_ref()).await?;
            let users = match &observed.container {
                Some(_) => cluster::registry_users(&engine, &name, "").await?,
                None => Vec::new(),
            };
            let adopted = state.registry.adopted.as_deref() == Some(name.as_str());
            let removal = registry::plan_removal(&observed, adopted, &users, false, purge)
                .map_err(|e| match e {
                    registry::RegistryError::NotOurs { name, owner } => {
                        registry::RegistryError::NotOursToDelete { name, owner }
                    }
                    other => other,
                })?;
            let what = registry::remove(&engine, &name, &removal).await?;
            match output {
                Output::Json => print_json(&RegistryDoc {
                    name: &name,
                    state: what.clone(),
                    container: None,
                    answers: None,
                }),
                Output::Text => println!("registry {name}: {what}"),
            }
            Ok(exit::OK)
        }
        RegistryAction::Status => {
            let me = ws.identity()?;
            let seen = registry::observe_container(&engine, &name, me.as_ref()).await?;
            let probe = match &seen {
                Some(s) if s.running => Some(
                    registry::RegistryClient::new(&format!("localhost:{}", ws.registry.port))
                        .probe()
                        .await,
                ),
                _ => None,
            };
            let answers = probe.as_ref().map(|p| *p == registry::Probe::Registry);
            let state = match (&seen, &probe) {
                (None, _) => "missing",
                (Some(s), _) if s.paused => "paused",
                (Some(s), _) if !s.running => "stopped",
                (Some(_), Some(registry::Probe::Registry)) => "running",
                (Some(_), Some(registry::Probe::NotARegistry { .. })) => "not a registry",
                (Some(_), _) => "not answering",
            };
            let healthy = state == "running";
            match output {
                Output::Json => print_json(&RegistryDoc {
                    name: &name,
                    state: state.to_string(),
                    container: seen.clone(),
                    answers,
                }),
                Output::Text => {
                    println!("registry {name}: {state}");
                    if let Some(s) = &seen {
                        println!("  image    {}", s.image);
                        println!(
                            "  port     {}:{} -> 5000",
                            s.host_ip.as_deref().unwrap_or("0.0.0.0"),
                            s.host_port.map_or("-".to_string(), |p| p.to_string())
                        );
                        println!("  made by  {}", s.owner.describe());
                        if let Some(volume) = &s.volume {
                            println!("  images   volume {volume}");
                        }
                        println!("  networks {}", s.networks.join(", "));
                    }
                }
            }
            Ok(if healthy { exit::OK } else { exit::UNHEALTHY })
        }
    }
}

async fn up_command(
    ws: Workspace,
    args: UpArgs,
    output: Output,
    ui: Ui,
    interrupt: Interrupt,
) -> Result<u8> {
    let engine = Engine::connect().await?;
    let options = UpOptions {
        node_image: args.node_image,
        context: args.target.context,
        registry: args.target.registry,
        rollout_timeout: args.timeout,
        adopt: args.adopt,
    };
    if args.dry_run {
        let ctx = UpContext::read_only(ws, options, engine, ui, interrupt)?;
        let plan = up::dry_run(&ctx).await?;
        let empty = plan.iter().all(|a| a.planned.is_empty());
        match output {
            Output::Json => print_json(&serde_json::json!({
                "dry_run": true,
                "empty": empty,
                "actions": plan,
            })),
            Output::Text => {
                if empty {
                    println!("Nothing to do: the lab is up as kindlab.yaml wants it.");
                } else {
                    println!("`kindlab up` would (nothing was changed):");
                    for action in plan.iter().filter(|a| !a.planned.is_empty()) {
                        for change in &action.planned {
                            println!("  {:<11} {change}", action.action);
                        }
                    }
                }
            }
        }
        return Ok(exit::OK);
    }
    let ctx = UpContext::for_up(ws, options, engine, ui, interrupt).await?;
    let summary = up::run(&ctx).await?;
    match output {
        Output::Json => print_json(&summary),
        Output::Text => {
            let verdict = if summary.is_noop() {
                "already up; nothing changed"
            } else {
                "up"
            };
            println!(
                "Lab {verdict} in {}. Context: {}",
                ui::format_duration(summary.duration),
                summary.context
            );
            println!(
                "Next: `kubectl --context {} get pods -A` or `kindlab status`",
                summary.context
            );
        }
    }
    Ok(exit::OK)
}

async fn lab_command(
    workspace: &std::path::Path,
    action: LabAction,
    output: Output,
    ui: &Ui,
) -> Result<u8> {
    match action {
        LabAction::List => {
            let labs = lab::builtin_labs();
            match output {
                Output::Json => print_json(
                    &labs
                        .iter()
                        .map(|l| serde_json::json!({"name": l.name, "title": l.title}))
                        .collect::<Vec<_>>(),
                ),
                Output::Text => {
                    for l in &labs {
                        println!("{:<20} {}", l.name, l.title);
                    }
                }
            }
            Ok(exit::OK)
        }
        LabAction::Run { lab: name, target } => {
            let spec = lab::load_lab(&name)?;
            let ws = Workspace::discover(workspace)?;
            let client = cluster_client(&ws, &target).await?;
            let renderer = workspace::find_renderer().await?;
            let registry_host = target
                .registry
                .clone()
                .unwrap_or_else(|| format!("localhost:{}", ws.registry.port));
            let ctx = lab::LabContext {
                workspace: &ws,
                client,
                renderer,
                registry_host,
                ui,
            };
            let report = lab::run(&ctx, &spec).await?;
            match output {
                Output::Json => print_json(&report),
                Output::Text => print!("{}", report::table(&report)),
            }
            Ok(exit::OK)
        }
    }
}

/// A client for the lab's cluster: `--context`, else kindlab's kind cluster.
async fn cluster_client(ws: &Workspace, target: &TargetArgs) -> Result<kube::Client> {
    if let Some(context) = &target.context {
        return Ok(k8s::client_for_context(context).await?);
    }
    let kind = cluster::Kind::find()?;
    let kubeconfig = kind.kubeconfig(&ws.cluster.name).await?;
    Ok(k8s::client_from_kubeconfig_yaml(&kubeconfig, None).await?)
}
