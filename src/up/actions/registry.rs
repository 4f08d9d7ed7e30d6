//! Registry: make sure the local registry container runs and answers (or use `--registry`).

use std::time::Instant;

use crate::error::Result;
use crate::registry::{self, RegistryState};
use crate::up::{ActionReport, Outcome, RegistryTarget, UpContext};

pub async fn execute(ctx: &UpContext) -> Result<ActionReport> {
    let started = Instant::now();
    if let RegistryTarget::External(host) = ctx.registry_target() {
        return Ok(ActionReport::new(
            "registry",
            Outcome::Skipped,
            vec![format!("using the existing registry {host}")],
            started.elapsed(),
        ));
    }
    let spec = &ctx.workspace.registry;
    let step = ctx.ui.step(format!("Registry {}", spec.name));
    let (state, _seen) = match registry::reconcile(&ctx.engine, spec, |d| step.detail(d)).await {
        Ok(r) => r,
        Err(e) => {
            step.fail("");
            return Err(e.into());
        }
    };
    let (outcome, detail) = match state {
        RegistryState::Created => (
            Outcome::Created,
            format!("{} on 127.0.0.1:{}", spec.name, spec.port),
        ),
        RegistryState::Reused => (Outcome::Reused, format!("127.0.0.1:{}", spec.port)),
        RegistryState::Adopted => (Outcome::Reused, state.describe().to_string()),
        RegistryState::Started | RegistryState::Recreated => {
            (Outcome::Repaired, state.describe().to_string())
        }
    };
    let report = ActionReport::new("registry", outcome, vec![detail], started.elapsed());
    step.ok(report.summary());
    Ok(report)
}
