//! `kindlab check`: the lab text's "CI/CD gate: only allow tags that exist", for this
//! workspace, without a cluster. The overlay is rendered as `kubectl apply -k` would, and every
//! image reference in it is checked: is it a valid reference, does its registry have it (the
//! workspace's registry over plain HTTP, others anonymously with a short timeout), and is it a
//! moving `:latest` or untagged reference (the lab's admission-policy advice). A missing
//! reference names the tags that do exist, the nearest one, and the fix.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::diagnose::{self, Presence, RegistryProbe, reference};
use crate::error::Result;
use crate::exit;
use crate::guardrails::{self, Mode};
use crate::workspace::{Renderer, Workspace, container_images, render_overlay};

/// How long one registry gets to answer: a CI gate must not hang on a dead registry.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The registry has it.
    Exists,
    /// Not a valid reference at all.
    Invalid,
    /// The registry has no such repository, tag or digest.
    Missing,
    /// The registry could not be asked, or refuses anonymous callers.
    NotChecked,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferenceCheck {
    pub image: String,
    /// The objects and containers that use it.
    pub used_by: Vec<String>,
    pub verdict: Verdict,
    /// What the registry said, or why it was not asked.
    pub detail: String,
    /// A warning that is not an error unless `--strict`: `:latest` or no tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The tags that do exist in the repository (when it was listed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The existing tags nearest to the one asked for, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nearest: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub strict: bool,
    pub overlay: String,
    pub references: Vec<ReferenceCheck>,
    /// The guardrails of kindlab.yaml evaluated on the rendered objects, with the very
    /// expressions the cluster's admission policies run: what the cluster would refuse
    /// (`deny`) or warn about (`warn`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<guardrails::Finding>,
}

impl CheckReport {
    /// 0 when every reference passes, 10 when one is missing or invalid (or, with `--strict`,
    /// not checked or only a warning).
    pub fn exit_code(&self) -> u8 {
        if self.ok { exit::OK } else { exit::UNHEALTHY }
    }
}

/// Checks every image reference of the workspace's overlay.
pub async fn run(
    ws: &Workspace,
    renderer: &Renderer,
    registry_host: &str,
    strict: bool,
) -> Result<CheckReport> {
    let Some(deploy) = &ws.deploy else {
        return Ok(CheckReport {
            ok: true,
            strict,
            overlay: String::new(),
            references: Vec::new(),
            guardrails: Vec::new(),
        });
    };
    let overlay = deploy
        .overlay
        .strip_prefix(&ws.root)
        .unwrap_or(&deploy.overlay)
        .display()
        .to_string();
    let docs = render_overlay(renderer, &deploy.overlay).await?;
    let desired =
        guardrails::Desired::new(&ws.guardrails, registry_host, guardrails::scope_of(&docs));
    let findings = guardrails::evaluate_objects(&desired, &docs)?;
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in container_images(&docs) {
        used.entry(c.image)
            .or_default()
            .push(format!("{} (container {})", c.object, c.container));
    }
    let access = diagnose::RegistryAccess::new()
        .with_plain_http(registry_host.to_string())
        .with_timeout(REGISTRY_TIMEOUT);
    let checks = futures::future::join_all(used.into_iter().map(|(image, used_by)| {
        let access = &access;
        let overlay = &overlay;
        async move {
            let answer = if reference::check(&image).is_empty() {
                access.probe(&image).await
            } else {
                None
            };
            judge(&image, used_by, answer.as_ref(), overlay)
        }
    }))
    .await;
    let fails = |c: &ReferenceCheck| match c.verdict {
        Verdict::Invalid | Verdict::Missing => true,
        Verdict::NotChecked => strict,
        Verdict::Exists => strict && c.warning.is_some(),
    };
    let refused = |f: &guardrails::Finding| f.mode == Mode::Deny || strict;
    Ok(CheckReport {
        ok: !checks.iter().any(fails) && !findings.iter().any(refused),
        strict,
        overlay,
        references: checks,
        guardrails: findings,
    })
}

/// The verdict on one reference, from the registry's answer (None: not asked). Pure.
pub fn judge(
    image: &str,
    used_by: Vec<String>,
    answer: Option<&diagnose::RegistryAnswer>,
    overlay: &str,
) -> ReferenceCheck {
    let problems = reference::check(image);
    let parts = reference::parts(image);
    let warning = match (&parts.tag, &parts.digest) {
        (None, None) => Some(
            "no tag: runtimes pull `latest`, which moves; name a version or pin a digest (`kindlab pin`)"
                .to_string(),
        ),
        (Some(t), None) if t == "latest" => Some(
            "`:latest` moves under you; name a version or pin a digest (`kindlab pin`)".to_string(),
        ),
        _ => None,
    };
    let mut check = ReferenceCheck {
        image: image.to_string(),
        used_by,
        verdict: Verdict::NotChecked,
        detail: String::new(),
        warning,
        tags: Vec::new(),
        nearest: Vec::new(),
        fix: None,
    };
    if !problems.is_empty() {
        check.verdict = Verdict::Invalid;
        check.detail = reference::pointer(image, &problems);
        check.fix = reference::suggest(image).map(|s| format!("write {s} in {overlay}"));
        return check;
    }
    let Some(answer) = answer else {
        check.detail = "not checked: the reference cannot be asked about".into();
        return check;
    };
    let what = answer.describe(&parts.path, parts.tag.as_deref());
    check.detail = what.join("; ");
    if !answer.reached {
        check.detail = format!(
            "not checked: {}",
            answer.problem.as_deref().unwrap_or("no answer")
        );
        return check;
    }
    match (answer.repository, answer.tag) {
        (_, Presence::Exists) => check.verdict = Verdict::Exists,
        (Presence::Missing, _) => {
            check.verdict = Verdict::Missing;
            check.fix = Some(format!(
                "name a repository the registry has in {overlay}, or push it (`kindlab build`)"
            ));
        }
        (_, Presence::Missing) => {
            check.verdict = Verdict::Missing;
            let wanted = parts.tag.clone().unwrap_or_else(|| "latest".into());
            check.tags = answer.tags.clone();
            check.nearest = diagnose::nearest(&wanted, &answer.tags);
            check.fix = Some(match check.nearest.first() {
                Some(near) => format!(
                    "use a tag that exists (nearest: {near}) in {overlay}, or push {wanted} (`kindlab build`)"
                ),
                None => {
                    format!("push {wanted} (`kindlab build`) or name an existing tag in {overlay}")
                }
            });
        }
        (Presence::Denied, _) | (_, Presence::Denied) => {
            check.detail = format!(
                "not checked: the registry refuses anonymous callers ({})",
                check.detail
            );
        }
        _ => {}
    }
    check
}

/// The last line: only what was verified. References that could not be asked about are
/// counted as such, never as existing.
fn summary(report: &CheckReport) -> String {
    let count = |verdict: Verdict| {
        report
            .references
            .iter()
            .filter(|c| c.verdict == verdict)
            .count()
    };
    let (total, exists, unchecked) = (
        report.references.len(),
        count(Verdict::Exists),
        count(Verdict::NotChecked),
    );
    let strict = if report.strict { " (strict)" } else { "" };
    let refused = report
        .guardrails
        .iter()
        .any(|f| f.mode == Mode::Deny || report.strict);
    if !report.ok && refused {
        return format!(
            "{} breaks the guardrails of kindlab.yaml: the cluster would refuse it.",
            report.overlay
        );
    }
    if !report.ok {
        return format!("{} names images that cannot be pulled.", report.overlay);
    }
    match (total, unchecked) {
        (0, _) => format!("{} names no images.", report.overlay),
        (_, 0) => format!(
            "Every image reference of {} exists{strict}.",
            report.overlay
        ),
        (_, _) if exists == 0 => format!(
            "No image reference of {} could be checked ({unchecked} not checked); `--strict` fails on that.",
            report.overlay
        ),
        _ => format!(
            "{exists} of {total} image references of {} exist; {unchecked} could not be checked (`--strict` fails on that).",
            report.overlay
        ),
    }
}

/// The report for people: one line per reference, then what to do.
pub fn table(report: &CheckReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for c in &report.references {
        let mark = match (c.verdict, &c.warning) {
            (Verdict::Exists, None) => "✓",
            (Verdict::Exists, Some(_)) => "!",
            (Verdict::NotChecked, _) => "?",
            _ => "✗",
        };
        let verdict = match c.verdict {
            Verdict::Exists => "exists",
            Verdict::Invalid => "invalid",
            Verdict::Missing => "missing",
            Verdict::NotChecked => "not checked",
        };
        let _ = writeln!(out, "{mark} {}  {verdict}", c.image);
        let _ = writeln!(out, "    used by {}", c.used_by.join(", "));
        if c.verdict != Verdict::Exists && !c.detail.is_empty() {
            let _ = writeln!(out, "    {}", c.detail);
        }
        if !c.nearest.is_empty() {
            let _ = writeln!(out, "    nearest existing tags: {}", c.nearest.join(", "));
        }
        if let Some(w) = &c.warning {
            let _ = writeln!(out, "    warning: {w}");
        }
        if let Some(f) = &c.fix {
            let _ = writeln!(out, "    fix: {f}");
        }
    }
    for f in &report.guardrails {
        let (mark, verb) = match f.mode {
            Mode::Deny => ("✗", "refused"),
            _ => ("!", "warned"),
        };
        let _ = writeln!(
            out,
            "{mark} {}  {verb} by guardrail {}",
            f.object,
            f.rule.name()
        );
        let _ = writeln!(out, "    {}", f.message);
    }
    let _ = writeln!(out, "{}", summary(report));
    out
}

impl crate::ui::Report for CheckReport {
    fn text(&self) -> String {
        table(self)
    }
    fn exit_code(&self) -> u8 {
        CheckReport::exit_code(self)
    }
}

/// `kindlab check [--strict] [--registry HOST]`.
pub async fn command(
    ws: &Workspace,
    strict: bool,
    registry: Option<String>,
) -> Result<CheckReport> {
    let host = registry.unwrap_or_else(|| crate::registry::local_host(ws.registry.port));
    let renderer = crate::workspace::find_renderer().await?;
    run(ws, &renderer, &host, strict).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::RegistryAnswer;

    fn answer(repository: Presence, tag: Presence, tags: &[&str]) -> RegistryAnswer {
        RegistryAnswer {
            registry: "localhost:5001".into(),
            repository,
            tag,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..RegistryAnswer::default()
        }
    }

    #[test]
    fn a_missing_tag_names_the_nearest_existing_one() {
        let a = answer(
            Presence::Exists,
            Presence::Missing,
            &["1.2.3", "1.2.5", "2.0.0"],
        );
        let c = judge(
            "localhost:5001/orders-api:1.2.4",
            vec![],
            Some(&a),
            "deploy/overlays/dev",
        );
        assert_eq!(c.verdict, Verdict::Missing);
        assert_eq!(c.nearest.first().map(String::as_str), Some("1.2.3"));
        assert!(
            c.fix.as_ref().unwrap().contains("nearest: 1.2.3"),
            "{:?}",
            c.fix
        );
        assert!(c.detail.contains("no tag 1.2.4"), "{}", c.detail);
    }

    #[test]
    fn latest_and_untagged_are_warnings_not_errors() {
        let a = answer(Presence::Exists, Presence::Exists, &["latest"]);
        let c = judge("localhost:5001/orders-api:latest", vec![], Some(&a), "o");
        assert_eq!(c.verdict, Verdict::Exists);
        assert!(c.warning.as_ref().unwrap().contains(":latest"));
        let c = judge("localhost:5001/orders-api", vec![], Some(&a), "o");
        assert!(c.warning.as_ref().unwrap().contains("no tag"));
        let c = judge("localhost:5001/orders-api:1.0", vec![], Some(&a), "o");
        assert_eq!(c.warning, None);
    }

    #[test]
    fn an_unreachable_registry_is_not_checked_and_an_invalid_reference_is_invalid() {
        let unreachable = RegistryAnswer {
            reached: false,
            problem: Some("dns: no such host".into()),
            ..RegistryAnswer::default()
        };
        let c = judge("nginx:1.27", vec![], Some(&unreachable), "o");
        assert_eq!(c.verdict, Verdict::NotChecked);
        assert!(c.detail.contains("no such host"), "{}", c.detail);
        let c = judge("Orders-API:1.0", vec![], None, "o");
        assert_eq!(c.verdict, Verdict::Invalid);
    }

    #[test]
    fn a_missing_repository_is_missing() {
        let a = answer(Presence::Missing, Presence::Missing, &[]);
        let c = judge("localhost:5001/order-api:1", vec![], Some(&a), "o");
        assert_eq!(c.verdict, Verdict::Missing);
        assert!(c.fix.unwrap().contains("repository"));
    }

    #[test]
    fn the_summary_says_only_what_was_verified() {
        let reference = |verdict| ReferenceCheck {
            image: "localhost:5001/orders-api:1".into(),
            used_by: vec!["Deployment dev/orders-api (container app)".into()],
            verdict,
            detail: "not checked: connection refused".into(),
            warning: None,
            tags: vec![],
            nearest: vec![],
            fix: None,
        };
        let report = |references| CheckReport {
            ok: true,
            strict: false,
            overlay: "deploy/overlays/dev".into(),
            references,
            guardrails: vec![],
        };
        let all_unchecked = report(vec![reference(Verdict::NotChecked)]);
        assert_eq!(
            table(&all_unchecked),
            "? localhost:5001/orders-api:1  not checked\n    \
             used by Deployment dev/orders-api (container app)\n    \
             not checked: connection refused\n\
             No image reference of deploy/overlays/dev could be checked (1 not checked); `--strict` fails on that.\n"
        );
        let some = report(vec![
            reference(Verdict::Exists),
            reference(Verdict::NotChecked),
        ]);
        assert!(
            summary(&some).starts_with(
                "1 of 2 image references of deploy/overlays/dev exist; 1 could not be checked"
            ),
            "{}",
            summary(&some)
        );
        assert_eq!(
            summary(&report(vec![reference(Verdict::Exists)])),
            "Every image reference of deploy/overlays/dev exists."
        );
        assert_eq!(
            summary(&report(vec![])),
            "deploy/overlays/dev names no images."
        );
    }
}
