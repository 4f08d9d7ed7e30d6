//! From a parsed command line to calls into the modules, and from their results to output
//! and an exit code. Nothing here knows how Docker or kind work.

use serde::Serialize;

use crate::cli::{
    BundleAction, Cli, Command, Compression, DoctorArgs, LabAction, RegistryAction, TargetArgs,
    UpArgs,
};
use crate::docker::Engine;
use crate::error::{Error, Result, exit};
use crate::interrupt::Interrupt;
use crate::ui::{self, Output, Ui, print_json};
use crate::up::{UpContext, UpOptions};
use crate::workspace::{self, RegistrySettings, Workspace};
use crate::{bundle, cluster, doctor, down, images, k8s, lab, registry, report, status, up};

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
    let _ = &interrupt;
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
            let settings = Workspace::discover(&cli.workspace)
                .map(|w| w.registry)
                .unwrap_or_default();
            let engine = Engine::connect().await?;
            registry_command(&engine, &settings, action, output, &ui).await
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
            up_command(ws, args, output, ui).await
        }
        Command::Down { keep_registry } => {
            let ws = Workspace::discover(&cli.workspace)?;
            let engine = Engine::connect().await?;
            let report = down::run(&engine, &ws, keep_registry, &ui).await?;
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
            let report = status::run(&engine, &ws, &target).await;
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
                Ok(ws) => bundle::RegistryChoice::Workspace(ws.registry),
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
                let mark = if check.ok { "✓" } else { "✗" };
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
    engine: &Engine,
    settings: &RegistrySettings,
    action: RegistryAction,
    output: Output,
    ui: &Ui,
) -> Result<u8> {
    #[derive(Serialize)]
    struct RegistryDoc<'a> {
        name: &'a str,
        state: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        container: Option<registry::RegistrySeen>,
        answers: Option<bool>,
    }
    match action {
        RegistryAction::Up => {
            let step = ui.step(format!("Registry {}", settings.name));
            let (state, seen) =
                match registry::reconcile(engine, settings, |d| step.detail(d)).await {
                    Ok(r) => r,
                    Err(e) => {
                        step.fail("");
                        return Err(e.into());
                    }
                };
            let summary = match state {
                registry::RegistryState::Reused => "already running; nothing to do".to_string(),
                other => other.describe().to_string(),
            };
            step.ok(&summary);
            match output {
                Output::Json => print_json(&RegistryDoc {
                    name: &settings.name,
                    state: serde_json::to_value(state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    container: Some(seen),
                    answers: Some(true),
                }),
                Output::Text => println!(
                    "registry {} at localhost:{}: {summary}",
                    settings.name, settings.port
                ),
            }
            Ok(exit::OK)
        }
        RegistryAction::Down => {
            let what = registry::remove(engine, &settings.name).await?;
            match output {
                Output::Json => print_json(&RegistryDoc {
                    name: &settings.name,
                    state: what.to_string(),
                    container: None,
                    answers: None,
                }),
                Output::Text => println!("registry {}: {what}", settings.name),
            }
            Ok(exit::OK)
        }
        RegistryAction::Status => {
            let seen = registry::observe(engine, &settings.name)
                .await
                .map_err(Error::from)?;
            let answers = match &seen {
                Some(s) if s.running => Some(
                    registry::RegistryClient::new(&format!("localhost:{}", settings.port))
                        .ping()
                        .await,
                ),
                _ => None,
            };
            let state = match &seen {
                None => "missing",
                Some(s) if !s.running => "stopped",
                Some(_) if answers == Some(true) => "running",
                Some(_) => "not answering",
            };
            let healthy = state == "running";
            match output {
                Output::Json => print_json(&RegistryDoc {
                    name: &settings.name,
                    state: state.to_string(),
                    container: seen.clone(),
                    answers,
                }),
                Output::Text => {
                    println!("registry {}: {state}", settings.name);
                    if let Some(s) = &seen {
                        println!("  image    {}", s.image);
                        println!(
                            "  port     {}:{} -> 5000",
                            s.host_ip.as_deref().unwrap_or("0.0.0.0"),
                            s.host_port.map_or("-".to_string(), |p| p.to_string())
                        );
                        println!(
                            "  owner    {}",
                            if s.owned {
                                "kindlab"
                            } else {
                                "not kindlab (adopted, never deleted)"
                            }
                        );
                        println!("  networks {}", s.networks.join(", "));
                    }
                }
            }
            Ok(if healthy { exit::OK } else { exit::UNHEALTHY })
        }
    }
}

async fn up_command(ws: Workspace, args: UpArgs, output: Output, ui: Ui) -> Result<u8> {
    let engine = Engine::connect().await?;
    let ctx = UpContext {
        workspace: ws,
        options: UpOptions {
            node_image: args.node_image,
            context: args.target.context,
            registry: args.target.registry,
            rollout_timeout: args.timeout,
        },
        engine,
        ui,
    };
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
