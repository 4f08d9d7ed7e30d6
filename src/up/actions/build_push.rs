//! Images: build each workspace image through the Engine API and push it, or find it
//! already pushed under its content-hash tag; then make the overlay's kustomization name it.

use std::time::Instant;

use crate::error::Result;
use crate::images::{self, ImageResult};
use crate::up::{ActionReport, Outcome, UpContext};

pub async fn execute(ctx: &UpContext) -> Result<(ActionReport, Vec<ImageResult>)> {
    let started = Instant::now();
    let results = images::build_and_push(
        &ctx.engine,
        &ctx.registry_host(),
        &ctx.workspace.images,
        &ctx.ui,
    )
    .await?;
    let mut details: Vec<String> = results
        .iter()
        .filter(|r| r.built)
        .map(|r| format!("pushed {}", r.reference))
        .collect();
    let built = !details.is_empty();
    let published = images::publish(&ctx.workspace, &ctx.registry_host(), &results).await?;
    if !published.is_empty() {
        // The user's file changed: say which, on its own line.
        ctx.ui.step("Overlay").ok(published.join("; "));
    }
    let outcome = match (built, published.is_empty()) {
        (true, _) => Outcome::Created,
        (false, false) => Outcome::Repaired,
        (false, true) => Outcome::Reused,
    };
    details.extend(published);
    Ok((
        ActionReport::new("images", outcome, details, started.elapsed()),
        results,
    ))
}
