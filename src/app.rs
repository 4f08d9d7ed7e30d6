//! From a parsed command line to the verb's module, and from its report to the output and
//! an exit code. Each verb lives in its own module and returns a report that renders
//! itself; `ui::show` is the one place that chooses text or JSON. Nothing here knows how
//! Docker or kind work.

use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::exit;
use crate::interrupt::Interrupt;
use crate::ui::{self, Ui};
use crate::workspace::Workspace;
use crate::{
    build, bundle, check, diagnose, doctor, down, init, lab, manual, pin, registry_command, reset,
    status, up, workshop,
};

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
    let workspace = || Workspace::discover(&cli.workspace);
    match cli.command {
        Command::Init { dir } => Ok(ui::show(&init::run(&dir)?, output)),
        Command::Doctor(args) => Ok(ui::show(
            &doctor::command(&cli.workspace, &args).await,
            output,
        )),
        Command::Bundle { action } => {
            bundle::command::run(&cli.workspace, action, output, &ui, &interrupt).await
        }
        Command::Registry { action } => {
            let report = registry_command::run(workspace()?, action, ui, interrupt).await?;
            Ok(ui::show(&report, output))
        }
        Command::Build { images } => Ok(ui::show(
            &build::run(&workspace()?, &images, &ui).await?,
            output,
        )),
        Command::Up(args) => up::command::run(workspace()?, args, output, ui, interrupt).await,
        Command::Down {
            keep_registry,
            purge,
        } => {
            let options = down::DownOptions {
                keep_registry,
                purge,
            };
            let report = down::command(&workspace()?, options, &ui, &interrupt).await?;
            Ok(ui::show(&report, output))
        }
        Command::Lab { action } => {
            lab::command::run(&cli.workspace, action, output, &ui, interrupt).await
        }
        Command::Check { strict, registry } => Ok(ui::show(
            &check::command(&workspace()?, strict, registry).await?,
            output,
        )),
        Command::Pin { check, registry } => Ok(ui::show(
            &pin::command(&workspace()?, check, registry).await?,
            output,
        )),
        Command::Reset(args) => reset::command(&workspace()?, args, output, &ui, interrupt).await,
        Command::Diagnose(args) => diagnose::command::run(&cli.workspace, args, output, &ui).await,
        Command::Workshop { action } => {
            workshop::command::run(&cli.workspace, action, output, &ui, interrupt).await
        }
        Command::Sync { timeout } => {
            crate::gitops::sync::command(&cli.workspace, timeout, output, &ui).await
        }
        Command::Status(target) => Ok(ui::show(
            &status::command(workspace()?, target, ui, interrupt).await?,
            output,
        )),
        Command::Completion { shell } => document(&manual::completion(shell)),
        Command::Man { dir: None } => document(&manual::man_page()?),
        Command::Man { dir: Some(dir) } => Ok(ui::show(&manual::write_man_pages(&dir)?, output)),
    }
}

/// Prints a document as it is (a script, a page); a closed pipe (`| head`) is not an error.
fn document(bytes: &[u8]) -> Result<u8> {
    match ui::print_document(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(crate::error::Error::Output {
            path: "stdout".into(),
            source: e,
        }),
        _ => Ok(exit::OK),
    }
}
