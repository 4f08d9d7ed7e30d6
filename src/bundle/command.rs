//! `kindlab bundle create|load`: from the flags to the bundle, and the reports as people
//! read them.

use std::path::Path;

use super::{CreateOptions, CreateReport, Encoding, LoadOptions, LoadReport, RegistryChoice};
use crate::cli::{BundleAction, Compression};
use crate::cluster;
use crate::docker::Engine;
use crate::error::Result;
use crate::interrupt::Interrupt;
use crate::ui::{self, Output, Report, Ui, format_bytes, format_duration};
use crate::workspace::{Workspace, WorkspaceError};

pub async fn run(
    workspace: &Path,
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
            let options = CreateOptions {
                output: file,
                node_image,
                encoding: match compress {
                    Compression::Zstd => Encoding::Zstd,
                    Compression::None => Encoding::None,
                },
            };
            let report = super::create(&engine, &ws, &options, ui).await?;
            Ok(ui::show(&report, output))
        }
        BundleAction::Load { file, no_registry } => {
            // Inside a workspace its registry gets the app images; elsewhere the one the
            // bundle was made for does.
            let registry = match Workspace::discover(workspace) {
                _ if no_registry => RegistryChoice::Skip,
                Ok(ws) => {
                    let by = ws.ensure_identity()?;
                    RegistryChoice::Workspace(ws.registry, by)
                }
                Err(WorkspaceError::NotFound { .. }) => RegistryChoice::FromBundle,
                Err(e) => return Err(e.into()),
            };
            let kind_version = match cluster::Kind::find() {
                Ok(kind) => kind.version().await.ok(),
                Err(_) => None,
            };
            let engine = Engine::connect().await?;
            let options = LoadOptions {
                file,
                registry,
                kind_version,
            };
            let report = super::load(&engine, &options, ui, interrupt).await?;
            Ok(ui::show(&report, output))
        }
    }
}

impl Report for CreateReport {
    fn text(&self) -> String {
        let mut lines = vec![format!(
            "wrote {}: {} images, {} ({} unpacked) in {}",
            self.file,
            self.manifest.images.len(),
            format_bytes(self.size),
            format_bytes(self.unpacked_size),
            format_duration(self.duration)
        )];
        for image in &self.manifest.images {
            lines.push(format!(
                "  {:<9} {:<44} {:>8}  {}",
                format!("{:?}", image.role).to_lowercase(),
                image.reference,
                format_bytes(image.member_size),
                image.member_sha256
            ));
        }
        lines.push(String::new());
        lines.push(format!(
            "Next: copy it to each machine and run `kindlab bundle load {}` there",
            self.file
        ));
        ui::lines(lines)
    }
}

impl Report for LoadReport {
    fn text(&self) -> String {
        let total = self.images.len();
        let loaded = self.images.iter().filter(|i| i.state == "loaded").count();
        let what = match loaded {
            0 => format!("all {total} images were already loaded"),
            n if n == total => format!("{n} images loaded"),
            n => format!("{n} images loaded, {} already there", total - n),
        };
        let mut lines = vec![format!(
            "{}: {what} (verified in {}, loaded in {})",
            self.file,
            format_duration(self.verify_duration),
            format_duration(self.load_duration)
        )];
        for pushed in &self.pushed {
            lines.push(format!("  in the registry: {pushed}"));
        }
        if let Some(alias) = &self.node_alias {
            lines.push(format!("  node image for `kindlab up`: {alias}"));
        }
        lines.push(String::new());
        lines.push("Next: `kindlab up` (no network needed)".to_string());
        ui::lines(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::LoadedImage;
    use std::time::Duration;

    #[test]
    fn a_load_says_what_was_loaded_and_what_was_already_there() {
        let image = |state: &'static str| LoadedImage {
            reference: "kindlab/node:v1.34.12".into(),
            role: crate::bundle::ImageRole::Node,
            id: "sha256:0".into(),
            state,
        };
        let report = LoadReport {
            file: "lab.kindlab".into(),
            images: vec![image("loaded"), image("present")],
            node_alias: Some("kindlab/node:bundle".into()),
            pushed: vec!["localhost:5001/orders-api:abc".into()],
            warnings: vec![],
            verify_duration: Duration::from_millis(1500),
            load_duration: Duration::from_secs(3),
            duration: Duration::from_secs(5),
        };
        let text = report.text();
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("lab.kindlab: 1 images loaded, 1 already there (verified in "),
            "{text}"
        );
        assert!(text.contains("\n  in the registry: localhost:5001/orders-api:abc\n  node image for `kindlab up`: kindlab/node:bundle\n\nNext: `kindlab up` (no network needed)\n"), "{text}");
    }
}
