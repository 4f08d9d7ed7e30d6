//! `kindlab diagnose`: from its flags to the diagnosis, and from the diagnosis to the
//! terminal or to scripts.

use super::Target;
use crate::cli::DiagnoseArgs;
use crate::error::Result;
use crate::ui::{Output, Ui, print_json};
use crate::workspace::Workspace;

/// `kindlab diagnose`: any cluster. `--context`/`--kubeconfig`, else the workspace's kind cluster when run in
/// one, else the kubeconfig's current context.
pub async fn run(
    workspace: &std::path::Path,
    args: DiagnoseArgs,
    output: Output,
    ui: &Ui,
) -> Result<u8> {
    let target = Target::parse(args.target.as_deref())?;
    let ws = Workspace::discover(workspace).ok();
    let access = args.cluster.access();
    let client = match &ws {
        _ if access.is_explicit() => access.connect().await?.client,
        Some(ws) => crate::lab::env::connect(ws, &access).await?.client,
        None => super::default_client().await?,
    };
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let step = ui.step(match &target {
        super::Target::Namespace => format!("Diagnose namespace {namespace}"),
        other => format!(
            "Diagnose {} in namespace {namespace}",
            other.display(&namespace)
        ),
    });
    let result = if args.no_registry {
        super::diagnose_target(&client, &target, &namespace, &super::NoRegistry).await
    } else {
        let mut access = super::RegistryAccess::new();
        if let Some(ws) = &ws {
            access = access.with_plain_http(crate::registry::local_host(ws.registry.port));
        }
        super::diagnose_target(&client, &target, &namespace, &access).await
    };
    let diagnosis = match result {
        Ok(diagnosis) => diagnosis,
        Err(e) => {
            step.fail("");
            return Err(e.into());
        }
    };
    if diagnosis.healthy {
        step.ok("healthy");
    } else {
        step.ok(format!("{} problem(s)", diagnosis.findings.len()));
    }
    match output {
        Output::Json => print_json(&diagnosis),
        Output::Text => print!("{}", super::render_text(&diagnosis)),
    }
    Ok(diagnosis.exit_code())
}
