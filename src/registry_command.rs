//! `kindlab registry up|down|status`: the lab's registry on its own, as `up` and `down`
//! reconcile it (the same observe, plan and act), for a workspace that wants only the
//! registry or wants to look at it.

use serde::Serialize;

use crate::cli::RegistryAction;
use crate::cluster;
use crate::docker::Engine;
use crate::error::Result;
use crate::exit;
use crate::interrupt::Interrupt;
use crate::registry::{self, Probe, RegistryError, RegistrySeen};
use crate::ui::{self, Report, Ui};
use crate::up::{self, UpContext, UpOptions};
use crate::workspace::Workspace;

#[derive(Debug, Serialize)]
pub struct RegistryReport {
    pub name: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<RegistrySeen>,
    /// Whether it answered as a registry (None: not asked).
    pub answers: Option<bool>,
    /// For people: what was done, where it listens.
    #[serde(skip)]
    pub summary: Summary,
}

#[derive(Debug, Default)]
pub enum Summary {
    /// `registry NAME at HOST: WHAT`.
    Up { host: String, what: String },
    /// `registry NAME: WHAT`.
    #[default]
    Down,
    /// `registry NAME: STATE` and the container's details.
    Status,
}

pub async fn run(
    ws: Workspace,
    action: RegistryAction,
    ui: Ui,
    interrupt: Interrupt,
) -> Result<RegistryReport> {
    let engine = Engine::connect().await?;
    let name = ws.registry.name.clone();
    match action {
        RegistryAction::Up { adopt } => {
            let options = UpOptions {
                adopt,
                ..UpOptions::default()
            };
            let ctx = UpContext::for_up(ws, options, engine, ui, interrupt).await?;
            let report = up::registry_up(&ctx).await?;
            let what = match report.outcome {
                up::Outcome::Reused => "already running; nothing to do".to_string(),
                _ => report.summary(),
            };
            let seen = registry::observe_container(&ctx.engine, &name, ctx.me()).await?;
            Ok(RegistryReport {
                name,
                state: serde_json::to_value(report.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                container: seen,
                answers: Some(true),
                summary: Summary::Up {
                    host: ctx.registry_host(),
                    what,
                },
            })
        }
        RegistryAction::Down { purge } => {
            let _lock = ws.lock()?;
            let me = ws.identity()?;
            let state = ws.read_state()?;
            let observed = registry::observe(&engine, &name, me.as_ref()).await?;
            let users = match &observed.container {
                Some(_) => cluster::registry_users(&engine, &name, "").await?,
                None => Vec::new(),
            };
            let adopted = state.registry.adopted.as_deref() == Some(name.as_str());
            let removal = registry::plan_removal(&observed, adopted, &users, false, purge)
                .map_err(|e| match e {
                    RegistryError::NotOurs { name, owner } => {
                        RegistryError::NotOursToDelete { name, owner }
                    }
                    other => other,
                })?;
            let what = registry::remove(&engine, &name, &removal).await?;
            Ok(RegistryReport {
                name,
                state: what,
                container: None,
                answers: None,
                summary: Summary::Down,
            })
        }
        RegistryAction::Status => {
            let me = ws.identity()?;
            let seen = registry::observe_container(&engine, &name, me.as_ref()).await?;
            let probe = match &seen {
                Some(s) if s.running => Some(
                    registry::RegistryClient::new(&registry::local_host(ws.registry.port))
                        .probe()
                        .await,
                ),
                _ => None,
            };
            Ok(RegistryReport {
                name,
                state: status_state(seen.as_ref(), probe.as_ref()).to_string(),
                answers: probe.as_ref().map(|p| *p == Probe::Registry),
                container: seen,
                summary: Summary::Status,
            })
        }
    }
}

/// The registry's state in one word, from the container and its answer. Pure.
fn status_state(seen: Option<&RegistrySeen>, probe: Option<&Probe>) -> &'static str {
    match (seen, probe) {
        (None, _) => "missing",
        (Some(s), _) if s.paused => "paused",
        (Some(s), _) if !s.running => "stopped",
        (Some(_), Some(Probe::Registry)) => "running",
        (Some(_), Some(Probe::NotARegistry { .. })) => "not a registry",
        (Some(_), _) => "not answering",
    }
}

impl Report for RegistryReport {
    fn text(&self) -> String {
        let name = &self.name;
        let mut lines = Vec::new();
        match &self.summary {
            Summary::Up { host, what } => lines.push(format!("registry {name} at {host}: {what}")),
            Summary::Down => lines.push(format!("registry {name}: {}", self.state)),
            Summary::Status => {
                lines.push(format!("registry {name}: {}", self.state));
                if let Some(s) = &self.container {
                    lines.push(format!("  image    {}", s.image));
                    lines.push(format!(
                        "  port     {}:{} -> 5000",
                        s.host_ip.as_deref().unwrap_or("0.0.0.0"),
                        s.host_port.map_or("-".to_string(), |p| p.to_string())
                    ));
                    lines.push(format!("  made by  {}", s.owner.describe()));
                    if let Some(volume) = &s.volume {
                        lines.push(format!("  images   volume {volume}"));
                    }
                    lines.push(format!("  networks {}", s.networks.join(", ")));
                }
            }
        }
        ui::lines(lines)
    }
    /// `status` of a registry that is not running and answering is unhealthy.
    fn exit_code(&self) -> u8 {
        match self.summary {
            Summary::Status if self.state != "running" => exit::UNHEALTHY,
            _ => exit::OK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_registry_is_unhealthy_and_says_so() {
        let report = RegistryReport {
            name: "kind-registry".into(),
            state: status_state(None, None).into(),
            container: None,
            answers: None,
            summary: Summary::Status,
        };
        assert_eq!(report.text(), "registry kind-registry: missing\n");
        assert_eq!(report.exit_code(), exit::UNHEALTHY);
    }

    #[test]
    fn up_names_where_it_listens_and_down_what_it_did() {
        let up = RegistryReport {
            name: "kind-registry".into(),
            state: "reused".into(),
            container: None,
            answers: Some(true),
            summary: Summary::Up {
                host: "localhost:5001".into(),
                what: "already running; nothing to do".into(),
            },
        };
        assert_eq!(
            up.text(),
            "registry kind-registry at localhost:5001: already running; nothing to do\n"
        );
        let down = RegistryReport {
            summary: Summary::Down,
            state: "removed (images kept)".into(),
            ..up
        };
        assert_eq!(
            down.text(),
            "registry kind-registry: removed (images kept)\n"
        );
        assert_eq!(down.exit_code(), exit::OK);
    }
}
