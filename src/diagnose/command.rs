//! `kindlab diagnose`: from its flags to the diagnosis, and from the diagnosis to the
//! terminal or to scripts.

use super::Target;
use crate::cli::DiagnoseArgs;
use crate::error::Result;
use crate::ui::{Output, Ui};
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
        Some(ws) => crate::cluster::connect(ws, &access).await?.client,
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
    let diagnosis = result?;
    if diagnosis.healthy {
        step.ok("healthy");
    } else {
        step.ok(format!("{} problem(s)", diagnosis.findings.len()));
    }
    Ok(crate::ui::show(&diagnosis, output))
}

impl crate::ui::Report for super::Diagnosis {
    fn text(&self) -> String {
        super::render_text(self)
    }
    fn exit_code(&self) -> u8 {
        super::Diagnosis::exit_code(self)
    }
}
