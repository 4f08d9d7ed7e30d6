//! Preflight: the fast half of `doctor`. Fails before anything is created when a tool `up`
//! needs is missing; names the kind and kubectl it finds, and warns (never fails) when that
//! kubectl is outside the version skew of the cluster's node image, or of the kubectl the lab
//! was set up with.

use std::time::Instant;

use crate::cluster::Kind;
use crate::doctor::kubectl;
use crate::error::Result;
use crate::up::context::UpContext;
use crate::up::outcome::{ActionReport, Outcome};
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
    // kubectl's version is asked beside the renderer's check (which runs kubectl too).
    let (renderer, mut seen) = tokio::join!(
        async {
            match &ctx.workspace.deploy {
                Some(_) => find_renderer().await.map(Some),
                None => Ok(None),
            }
        },
        kubectl::observe(false)
    );
    let renderer = renderer?;
    seen.against = ctx
        .node_image()
        .filter(|_| ctx.uses_kind())
        .and_then(|image| {
            Some(kubectl::Reference::NodeImage {
                version: kubectl::node_image_version(image)?,
                image: image.to_string(),
            })
        });
    details.extend(tool_details(renderer.as_ref(), &seen));
    let summary = details.join(", ");
    let check = kubectl::judge(&seen);
    if check.warning {
        let line = match &check.fix {
            Some(fix) => format!("warning: kubectl {}; {fix}", check.detail),
            None => format!("warning: kubectl {}", check.detail),
        };
        ctx.ui.note(&line);
        details.push(line);
    }
    step.ok(summary);
    Ok((
        ActionReport::new("preflight", Outcome::Reused, details, started.elapsed()),
        kind,
        renderer,
    ))
}

/// The renderer and the kubectl on PATH, in one phrase each (one, when kubectl renders).
fn tool_details(renderer: Option<&Renderer>, seen: &kubectl::Seen) -> Vec<String> {
    let kubectl = match (&seen.path, &seen.version) {
        (Some(path), Some(version)) => Some((path, format!("kubectl {version}"))),
        (Some(path), None) => Some((path, "kubectl".to_string())),
        _ => None,
    };
    match (renderer, kubectl) {
        (Some(Renderer::Kubectl(p)), Some((path, named))) if p == path => {
            vec![format!("{named} kustomize ({})", p.display())]
        }
        (renderer, kubectl) => renderer
            .map(Renderer::describe)
            .into_iter()
            .chain(kubectl.map(|(path, named)| format!("{named} at {}", path.display())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn seen(path: &str, version: Option<&str>) -> kubectl::Seen {
        kubectl::Seen {
            path: Some(PathBuf::from(path)),
            version: version.map(str::to_string),
            ..kubectl::Seen::default()
        }
    }

    #[test]
    fn the_kubectl_that_renders_is_named_once_with_its_version() {
        let renderer = Renderer::Kubectl(PathBuf::from("/usr/local/bin/kubectl"));
        assert_eq!(
            tool_details(
                Some(&renderer),
                &seen("/usr/local/bin/kubectl", Some("v1.34.12"))
            ),
            ["kubectl v1.34.12 kustomize (/usr/local/bin/kubectl)"]
        );
        let kustomize = Renderer::Kustomize(PathBuf::from("/x/kustomize"));
        assert_eq!(
            tool_details(Some(&kustomize), &seen("/usr/bin/kubectl", Some("v1.32.4"))),
            [
                "kustomize (/x/kustomize)",
                "kubectl v1.32.4 at /usr/bin/kubectl"
            ]
        );
        assert_eq!(
            tool_details(Some(&kustomize), &kubectl::Seen::default()),
            ["kustomize (/x/kustomize)"]
        );
        assert_eq!(
            tool_details(None, &seen("/usr/bin/kubectl", None)),
            ["kubectl at /usr/bin/kubectl"]
        );
    }
}
