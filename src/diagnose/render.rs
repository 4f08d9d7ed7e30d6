//! A diagnosis for people: one block per unhealthy pod or Service with its cause, the
//! evidence and the fix. `--output json` prints the same fields (`Diagnosis` is Serialize).

use std::fmt::Write as _;

use super::{Certainty, Diagnosis, Finding};

/// Evidence longer than this is cut in text output (JSON keeps all of it).
const EVIDENCE_CHARS: usize = 400;

pub fn render_text(diagnosis: &Diagnosis) -> String {
    let mut out = String::new();
    let where_ = if diagnosis.target.starts_with("namespace/") {
        diagnosis.target.clone()
    } else {
        format!("{} in namespace {}", diagnosis.target, diagnosis.namespace)
    };
    if diagnosis.healthy && diagnosis.checked.is_empty() {
        let _ = writeln!(out, "{where_}: nothing to check (no pods or services)");
        return out;
    }
    if diagnosis.healthy {
        let _ = writeln!(
            out,
            "{where_}: healthy ({} checked)",
            plural(diagnosis.checked.len(), "object")
        );
        return out;
    }
    let subjects = {
        let mut s: Vec<&str> = diagnosis
            .findings
            .iter()
            .map(|f| f.subject.as_str())
            .collect();
        s.dedup();
        s.len()
    };
    let _ = writeln!(
        out,
        "{where_}: {} found in {} of {} checked",
        plural(diagnosis.findings.len(), "problem"),
        subjects,
        diagnosis.checked.len().max(subjects)
    );
    for finding in &diagnosis.findings {
        out.push('\n');
        block(&mut out, finding);
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn block(out: &mut String, finding: &Finding) {
    let container = finding
        .container
        .as_ref()
        .map(|c| format!(" (container {c})"))
        .unwrap_or_default();
    let _ = writeln!(out, "{}{container}", finding.subject);
    let cause = match finding.certainty {
        Certainty::Certain => finding.kind().to_string(),
        Certainty::Ambiguous => format!(
            "one of {} (the evidence cannot tell them apart)",
            finding
                .candidates
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Certainty::Unknown => format!("{} (not recognised)", finding.kind()),
    };
    let _ = writeln!(out, "  cause:    {cause}");
    let _ = writeln!(out, "  summary:  {}", finding.summary);
    let _ = writeln!(out, "  evidence:");
    for evidence in &finding.evidence {
        let text = cut(&evidence.text);
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(out, "    {}: {first}", evidence.from);
        let indent = " ".repeat(evidence.from.len() + 6);
        for line in lines {
            let _ = writeln!(out, "{indent}{line}");
        }
    }
    let _ = writeln!(out, "  fix:      {}", finding.fix);
}

fn cut(text: &str) -> String {
    if text.chars().count() <= EVIDENCE_CHARS {
        return text.to_string();
    }
    let kept: String = text.chars().take(EVIDENCE_CHARS).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::{Cause, CauseKind, Evidence};

    fn diagnosis(findings: Vec<Finding>) -> Diagnosis {
        Diagnosis {
            target: "deployment/web".into(),
            namespace: "dev".into(),
            healthy: findings.is_empty(),
            checked: vec!["pod/web-1".into()],
            findings,
        }
    }

    #[test]
    fn healthy_is_one_line() {
        assert_eq!(
            render_text(&diagnosis(vec![])),
            "deployment/web in namespace dev: healthy (1 object checked)\n"
        );
    }

    #[test]
    fn an_empty_namespace_is_not_called_healthy() {
        let empty = Diagnosis {
            target: "namespace/att01".into(),
            namespace: "att01".into(),
            healthy: true,
            checked: vec![],
            findings: vec![],
        };
        assert_eq!(
            render_text(&empty),
            "namespace/att01: nothing to check (no pods or services)\n"
        );
    }

    #[test]
    fn an_ambiguous_finding_lists_its_candidates() {
        let finding = Finding {
            subject: "pod/web-1".into(),
            container: Some("web".into()),
            cause: Cause::TagNotFound {
                image: "web:1".into(),
                repository: "web".into(),
                tag: "1".into(),
                nearest: vec![],
            },
            certainty: Certainty::Ambiguous,
            candidates: vec![CauseKind::TagNotFound, CauseKind::RepositoryNotFound],
            summary: "web:1: not found".into(),
            evidence: vec![Evidence::new("spec", "web:1\n^")],
            fix: "push it".into(),
        };
        assert_eq!(
            render_text(&diagnosis(vec![finding])),
            "deployment/web in namespace dev: 1 problem found in 1 of 1 checked\n\n\
             pod/web-1 (container web)\n  \
             cause:    one of tag-not-found, repository-not-found (the evidence cannot tell them apart)\n  \
             summary:  web:1: not found\n  \
             evidence:\n    \
             spec: web:1\n          ^\n  \
             fix:      push it\n"
        );
    }
}
