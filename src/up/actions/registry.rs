//! Registry: the local registry container runs, answers its API, and is this workspace's
//! (or adopted), or `--registry` names one. Observe, plan, act.

use std::time::Instant;

use crate::error::Result;
use crate::registry::{self, Probe, RegistryClient, RegistryObserved, RegistryStep};
use crate::up::context::{RegistryTarget, UpContext};
use crate::up::outcome::{ActionReport, Outcome};
use crate::up::row::Row;

/// What `status` and `--dry-run` show of the registry.
pub struct View {
    pub observed: Option<RegistryObserved>,
    /// The plan, or why `up` would refuse.
    pub plan: Result<Vec<RegistryStep>>,
    /// How its host:port answers (only asked for a running registry or `--registry`).
    pub probe: Option<Probe>,
}

pub async fn observe(ctx: &UpContext) -> Result<View> {
    let host = ctx.registry_host();
    if let RegistryTarget::External(_) = ctx.registry_target() {
        return Ok(View {
            observed: None,
            plan: Ok(Vec::new()),
            probe: Some(RegistryClient::new(&host).probe().await),
        });
    }
    let observed = registry::observe(&ctx.engine, &ctx.workspace.registry.name, ctx.me()).await?;
    let plan = registry::plan(ctx.registry_desired(), &observed).map_err(Into::into);
    let probe = match &observed.container {
        Some(c) if c.running => Some(RegistryClient::new(&host).probe().await),
        _ => None,
    };
    Ok(View {
        observed: Some(observed),
        plan,
        probe,
    })
}

impl View {
    /// `up`'s plan, in its words.
    pub fn changes(&self, ctx: &UpContext) -> Vec<String> {
        match &self.plan {
            Ok(steps) => steps
                .iter()
                .map(|s| s.describe(&ctx.workspace.registry))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn rows(&self, ctx: &UpContext) -> Vec<Row> {
        let spec = &ctx.workspace.registry;
        let answers = matches!(self.probe, Some(Probe::Registry));
        let probe_detail = match &self.probe {
            Some(Probe::NotARegistry { status, .. }) => {
                format!("; answers HTTP {status}, not as a registry")
            }
            Some(Probe::NoAnswer(_)) => "; does not answer".into(),
            _ => String::new(),
        };
        let Some(observed) = &self.observed else {
            let host = ctx.registry_host();
            return vec![Row::new(
                format!("registry {host}"),
                answers,
                if answers { "external" } else { "not answering" },
                format!("--registry {host}{probe_detail}"),
                Vec::new(),
            )];
        };
        let component = format!("registry {}", spec.name);
        if let Err(e) = &self.plan {
            return vec![Row::refused(component, e)];
        }
        let changes = self.changes(ctx);
        let row = match &observed.container {
            None => Row::new(component, false, "missing", "", changes),
            Some(c) => {
                let state = if c.paused {
                    "paused"
                } else if !c.running {
                    "stopped"
                } else if !answers {
                    "not answering"
                } else {
                    "running"
                };
                let images = match &c.volume {
                    Some(v) => format!("; images on volume {v}"),
                    None => String::new(),
                };
                Row::new(
                    component,
                    changes.is_empty() && answers,
                    state,
                    format!(
                        "{} on 127.0.0.1:{} (made by {}{images}){probe_detail}",
                        c.image,
                        c.host_port.map_or("-".to_string(), |p| p.to_string()),
                        c.owner.describe(),
                    ),
                    changes,
                )
            }
        };
        vec![row]
    }
}

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
    let result = ctx
        .interruptible("the registry", async {
            super::hold(ctx, "registry").await?;
            let observed = registry::observe(&ctx.engine, &spec.name, ctx.me()).await?;
            let steps = registry::plan(ctx.registry_desired(), &observed)?;
            let seen =
                registry::apply(&ctx.engine, spec, &ctx.identity, &steps, |d| step.detail(d))
                    .await?;
            if steps
                .iter()
                .any(|s| matches!(s, RegistryStep::Adopt { .. }))
            {
                ctx.update_state(|s| s.registry.adopted = Some(spec.name.clone()))?;
            }
            if steps
                .iter()
                .any(|s| matches!(s, RegistryStep::AdoptVolume { .. }))
            {
                let volume = registry::volume_name(&spec.name);
                ctx.update_state(|s| s.registry.adopted_volume = Some(volume))?;
            }
            Ok((steps, seen))
        })
        .await;
    let (steps, _seen) = result?;
    let outcome = if steps.contains(&RegistryStep::Create) {
        Outcome::Created
    } else if steps.is_empty() {
        Outcome::Reused
    } else if steps.iter().all(|s| {
        matches!(
            s,
            RegistryStep::Adopt { .. } | RegistryStep::AdoptVolume { .. }
        )
    }) {
        Outcome::Adopted
    } else {
        Outcome::Repaired
    };
    let details = if steps.is_empty() {
        vec![format!("127.0.0.1:{}", spec.port)]
    } else {
        steps.iter().map(|s| s.done(spec)).collect()
    };
    let report = ActionReport::new("registry", outcome, details, started.elapsed())
        .with_plan(steps.iter().map(|s| s.describe(spec)).collect());
    step.ok(report.summary());
    Ok(report)
}
