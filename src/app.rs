//! From a parsed command line to calls into the modules, and from their results to output
//! and an exit code. Nothing here knows how Docker or kind work.

use serde::Serialize;

use crate::cli::{BundleAction, Cli, Command, Compression, DoctorArgs, RegistryAction, UpArgs};
use crate::docker::Engine;
use crate::error::{Result, exit};
use crate::interrupt::Interrupt;
use crate::ui::{self, Output, Ui, print_json};
use crate::up::{UpContext, UpOptions};
use crate::workspace::{self, Workspace};
use crate::{bundle, cluster, diagnose, doctor, down, images, lab, registry, reset, status, up};

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
        // Only kindlab's own warnings: the clients' retries (kube's "client error
        // (Connect)" while an API server restarts) are noise unless asked for.
        0 => "kindlab=warn",
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
        Command::Doctor(args) => {
            // Doctor works outside a workspace too, with the default registry settings.
            let settings = Workspace::discover(&cli.workspace)
                .map(|w| w.registry)
                .unwrap_or_default();
            let report = doctor::run(&settings, workshop_plan(&args).as_ref()).await;
            print_doctor(&report, output);
            Ok(if report.ok { exit::OK } else { exit::UNHEALTHY })
        }
        Command::Bundle { action } => {
            bundle_command(&cli.workspace, action, output, &ui, &interrupt).await
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
            let published = images::publish(&ws, &host, &results).await?;
            match output {
                Output::Json => print_json(&serde_json::json!({
                    "images": results,
                    "workspace_changes": published,
                })),
                Output::Text => {
                    for r in &results {
                        println!("{}  {}", r.reference, r.digest);
                    }
                    for line in &published {
                        println!("{line}");
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
        Command::Lab { action } => {
            lab::command::run(&cli.workspace, action, output, &ui, interrupt).await
        }
        Command::Check { strict, registry } => {
            let ws = Workspace::discover(&cli.workspace)?;
            let host = registry.unwrap_or_else(|| format!("localhost:{}", ws.registry.port));
            let renderer = workspace::find_renderer().await?;
            let report = crate::check::run(&ws, &renderer, &host, strict).await?;
            match output {
                Output::Json => print_json(&report),
                Output::Text => print!("{}", crate::check::table(&report)),
            }
            Ok(report.exit_code())
        }
        Command::Pin { check, registry } => {
            let ws = Workspace::discover(&cli.workspace)?;
            pin_command(&ws, check, registry, output).await
        }
        Command::Reset(args) => {
            let ws = Workspace::discover(&cli.workspace)?;
            reset::command(&ws, args, output, &ui, interrupt).await
        }
        Command::Diagnose(args) => diagnose::command::run(&cli.workspace, args, output, &ui).await,
        Command::Workshop { action } => {
            crate::workshop::command::run(&cli.workspace, action, output, &ui, interrupt).await
        }
        Command::Sync { timeout } => {
            crate::gitops::sync::command(&cli.workspace, timeout, output, &ui).await
        }
        Command::Status(target) => {
            let ws = Workspace::discover(&cli.workspace)?;
            let engine = Engine::connect().await?;
            let options = UpOptions {
                access: target.cluster.access(),
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
    // The overlay names the tag `up` will push, so the first commit already says what runs.
    let ws = Workspace::discover(dir)?;
    images::record_expected_tags(&ws)?;
    let git = init_git(dir, &written)?;
    match output {
        Output::Json => print_json(&serde_json::json!({
            "workspace": dir.display().to_string(),
            "files": written,
            "git": git,
        })),
        Output::Text => {
            for f in &written {
                println!("wrote {}", dir.join(f).display());
            }
            println!("{}", git.describe());
            println!("\nNext: `cd {} && kindlab up`", dir.display());
        }
    }
    Ok(exit::OK)
}

/// What `init` did about git.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
enum InitGit {
    /// A new repository with the sample as its first commit.
    Committed { commit: String },
    /// The directory is inside the user's own repository: kindlab commits nothing there.
    InsideRepository,
    /// git is not installed.
    NoGit,
}

impl InitGit {
    fn describe(&self) -> String {
        match self {
            InitGit::Committed { commit } => format!(
                "git: a new repository, first commit {} (the GitOps labs commit and revert in it)",
                &commit[..commit.len().min(12)]
            ),
            InitGit::InsideRepository => {
                "git: inside an existing repository; commit the new files yourself".into()
            }
            InitGit::NoGit => {
                "git: not installed, so the workspace is not a repository (the git labs need one)"
                    .into()
            }
        }
    }
}

/// A workspace is a git repository, as GitOps wants: `init` makes one with a first commit,
/// unless it is already inside one (never committing in the user's own repository).
fn init_git(dir: &std::path::Path, files: &[std::path::PathBuf]) -> Result<InitGit> {
    let Some(git) = workspace::Git::find(dir) else {
        return Ok(InitGit::NoGit);
    };
    if git.is_repository() && !git.is_ignored_by_enclosing_repository() {
        return Ok(InitGit::InsideRepository);
    }
    let commit = git.init_with_first_commit(files, "kindlab init: the sample workspace")?;
    Ok(InitGit::Committed { commit })
}

/// `--workshop`, or any of the flags that only make sense for one.
fn workshop_plan(args: &DoctorArgs) -> Option<doctor::Workshop> {
    (args.workshop || args.clusters.is_some() || args.bundle.is_some()).then(|| doctor::Workshop {
        clusters: args.clusters.unwrap_or(1),
        bundle: args.bundle.clone(),
    })
}

async fn bundle_command(
    workspace: &std::path::Path,
    action: BundleAction,
    output: Output,
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<u8> {
    match action {
        BundleAction::Create {
            file,
            node_image,
            compress,
        } => {
            let ws = Workspace::discover(workspace)?;
            let engine = Engine::connect().await?;
            let options = bundle::CreateOptions {
                output: file,
                node_image,
                encoding: match compress {
                    Compression::Zstd => bundle::Encoding::Zstd,
                    Compression::None => bundle::Encoding::None,
                },
            };
            let report = bundle::create(&engine, &ws, &options, ui).await?;
            match output {
                Output::Json => print_json(&report),
                Output::Text => {
                    println!(
                        "wrote {}: {} images, {} ({} unpacked) in {}",
                        report.file,
                        report.manifest.images.len(),
                        ui::format_bytes(report.size),
                        ui::format_bytes(report.unpacked_size),
                        ui::format_duration(report.duration)
                    );
                    for image in &report.manifest.images {
                        println!(
                            "  {:<9} {:<44} {:>8}  {}",
                            format!("{:?}", image.role).to_lowercase(),
                            image.reference,
                            ui::format_bytes(image.member_size),
                            image.member_sha256
                        );
                    }
                    println!(
                        "\nNext: copy it to each machine and run `kindlab bundle load {}` there",
                        report.file
                    );
                }
            }
            Ok(exit::OK)
        }
        BundleAction::Load { file, no_registry } => {
            // Inside a workspace its registry gets the app images; elsewhere the one the
            // bundle was made for does.
            let registry = match Workspace::discover(workspace) {
                _ if no_registry => bundle::RegistryChoice::Skip,
                Ok(ws) => {
                    let by = ws.ensure_identity()?;
                    bundle::RegistryChoice::Workspace(ws.registry, by)
                }
                Err(workspace::WorkspaceError::NotFound { .. }) => {
                    bundle::RegistryChoice::FromBundle
                }
                Err(e) => return Err(e.into()),
            };
            let kind_version = match cluster::Kind::find() {
                Ok(kind) => kind.version().await.ok(),
                Err(_) => None,
            };
            let engine = Engine::connect().await?;
            let options = bundle::LoadOptions {
                file,
                registry,
                kind_version,
            };
            let report = bundle::load(&engine, &options, ui, interrupt).await?;
            match output {
                Output::Json => print_json(&report),
                Output::Text => {
                    let total = report.images.len();
                    let loaded = report.images.iter().filter(|i| i.state == "loaded").count();
                    let what = match loaded {
                        0 => format!("all {total} images were already loaded"),
                        n if n == total => format!("{n} images loaded"),
                        n => format!("{n} images loaded, {} already there", total - n),
                    };
                    println!(
                        "{}: {what} (verified in {}, loaded in {})",
                        report.file,
                        ui::format_duration(report.verify_duration),
                        ui::format_duration(report.load_duration)
                    );
                    for pushed in &report.pushed {
                        println!("  in the registry: {pushed}");
                    }
                    if let Some(alias) = &report.node_alias {
                        println!("  node image for `kindlab up`: {alias}");
                    }
                    println!("\nNext: `kindlab up` (no network needed)");
                }
            }
            Ok(exit::OK)
        }
    }
}

fn print_doctor(report: &doctor::Report, output: Output) {
    match output {
        Output::Json => print_json(report),
        Output::Text => {
            for check in &report.checks {
                let mark = check.mark();
                println!("{mark} {:<14} {}", check.name, check.detail);
                if let Some(fix) = &check.fix {
                    println!("  {:<14} fix: {fix}", "");
                }
            }
            if report.ok {
                match &report.machine {
                    Some(m) => println!(
                        "\nReady for the workshop: {} cluster(s) on {}.",
                        m.clusters_planned, m.hostname
                    ),
                    None => println!("\nReady for `kindlab up`."),
                }
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
        access: args.target.cluster.access(),
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

async fn pin_command(
    ws: &Workspace,
    check: bool,
    registry: Option<String>,
    output: Output,
) -> Result<u8> {
    if check {
        let unpinned = crate::pin::unpinned(ws, &workspace::find_renderer().await?).await?;
        match output {
            Output::Json => print_json(&serde_json::json!({ "unpinned": unpinned })),
            Output::Text if unpinned.is_empty() => {
                println!("Every image reference of the overlay is pinned by digest.")
            }
            Output::Text => {
                println!("Not pinned by digest:");
                for c in &unpinned {
                    println!("  {}  ({}, container {})", c.image, c.object, c.container);
                }
                println!("`kindlab pin` pins the workspace's own images.");
            }
        }
        return Ok(if unpinned.is_empty() {
            exit::OK
        } else {
            exit::UNHEALTHY
        });
    }
    let host = registry.unwrap_or_else(|| format!("localhost:{}", ws.registry.port));
    let pinned = crate::pin::pin(ws, &host).await?;
    match output {
        Output::Json => print_json(&pinned),
        Output::Text if pinned.changes.is_empty() => {
            println!("{}: already pinned.", pinned.file)
        }
        Output::Text => {
            for c in &pinned.changes {
                println!("{}: {} -> {}", pinned.file, c.image, c.after);
            }
            println!("`kubectl apply -k` (or `kindlab up`) now deploys by digest.");
        }
    }
    Ok(exit::OK)
}
