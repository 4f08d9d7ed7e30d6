//! Images: build each workspace image through the Engine API and push it, or find it
//! already pushed under its content-hash tag.

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
    let built: Vec<String> = results
        .iter()
        .filter(|r| r.built)
        .map(|r| format!("pushed {}", r.reference))
        .collect();
    let outcome = if built.is_empty() {
        Outcome::Reused
    } else {
        Outcome::Created
    };
    Ok((
        ActionReport::new("images", outcome, built, started.elapsed()),
        results,
    ))
}
