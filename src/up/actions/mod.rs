//! One file per action, in the order `up` runs them. Each observes its resource, plans with
//! a pure function, and acts; `status` and `up --dry-run` call the same observe and plan.

pub mod build_push;
pub mod cluster;
pub mod deploy;
pub mod gitops;
pub mod guardrails;
pub mod preflight;
pub mod registry;
pub mod wire_nodes;

use crate::error::Result;
use crate::up::context::UpContext;

/// Test builds only: `KINDLAB_TEST_HOLD=registry,wire-nodes` makes those actions wait at
/// their start until the run is interrupted (or two minutes pass), so the integration tests
/// can interrupt a phase that is otherwise too quick to hit. Release builds ignore it.
pub async fn hold(ctx: &UpContext, action: &str) -> Result<()> {
    #[cfg(debug_assertions)]
    if std::env::var("KINDLAB_TEST_HOLD").is_ok_and(|v| v.split(',').any(|a| a == action)) {
        ctx.ui.note(format!("   (test hold at {action})"));
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(120),
            ctx.interrupt.requested(),
        )
        .await;
        if ctx.interrupt.is_requested() {
            let during = match action {
                "wire-nodes" => "registry wiring".to_string(),
                "deploy" => "deploy".to_string(),
                other => format!("the {other}"),
            };
            return Err(crate::up::context::interrupted(&during, "").into());
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (ctx, action);
    Ok(())
}
