//! Preflight: the fast half of `doctor`. Fails before anything is created when a tool `up`
//! needs is missing.

use std::time::Instant;

use crate::cluster::Kind;
use crate::error::Result;
use crate::up::{ActionReport, Outcome, UpContext};
use crate::workspace::{Renderer, find_renderer};

/// Returns the report, kind (unless `--context`) and the overlay renderer (if the workspace
/// deploys anything), so later actions do not look them up again.
pub async fn execute(ctx: &UpContext) -> Result<(ActionReport, Option<Kind>, Option<Renderer>)> {
    let started = Instant::now();
    let step = ctx.ui.step("Preflight");
    let mut details = Vec::new();
    let kind = if ctx.uses_kind() {
        let kind = Kind::find()?;
        details.push(format!("kind at {}", kind.path.display()));
        Some(kind)
    } else {
        None
    };
    let renderer = match &ctx.workspace.deploy {
        Some(_) => {
            let r = find_renderer().await?;
            details.push(r.describe());
            Some(r)
        }
        None => None,
    };
    step.ok(details.join(", "));
    Ok((
        ActionReport::new("preflight", Outcome::Reused, details, started.elapsed()),
        kind,
        renderer,
    ))
}
