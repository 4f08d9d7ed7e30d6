//! Guardrails against a real API server: the shared table of cases (the one `kindlab
//! check`'s unit tests evaluate locally) must get the same verdicts from the cluster's
//! ValidatingAdmissionPolicies; `warn` admits with kubectl's warning; `up` installs the
//! rules of kindlab.yaml, `status` shows them, and `up` removes them once they are off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use kindlab::guardrails::rules::{CASES_ALLOWED, CASES_REGISTRY, case_digest};
use kindlab::guardrails::{CASES, Desired, GuardrailSettings, Mode, PRODUCTION_LABEL, Rule, Scope};

use crate::support::*;

/// The policies have cluster-wide names: one test at a time installs them.
static GUARDRAILS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    GUARDRAILS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes the policies and bindings a test installed, however it ends.
struct Installed(&'static SharedLab);

impl Drop for Installed {
    fn drop(&mut self) {
        for kind in [
            "validatingadmissionpolicybindings",
            "validatingadmissionpolicies",
        ] {
            let _ = self.0.kubectl_in(
                &self.0.dir,
                &["delete", kind, "-l", "dev.kindlab.workspace=it-guardrails"],
            );
        }
    }
}

fn install(lab: &'static SharedLab, desired: &Desired) -> Installed {
    let file = tempfile::NamedTempFile::new().unwrap();
    let docs: Vec<String> = desired
        .objects()
        .iter()
        .map(|o| serde_json::to_string(o).unwrap())
        .collect();
    std::fs::write(file.path(), docs.join("\n---\n")).unwrap();
    lab.kubectl(&[
        "apply",
        "--server-side",
        "-f",
        file.path().to_str().unwrap(),
    ]);
    Installed(lab)
}

/// A Deployment in `namespace` running `image` in `list`; its other container keeps every
/// rule.
fn deployment(namespace: &str, list: &str, image: &str) -> String {
    let filler = format!("{CASES_REGISTRY}/orders-api{}", case_digest());
    let mut spec = serde_json::json!({"containers": [{"name": "api", "image": filler}]});
    if list == "containers" {
        spec["containers"][0]["image"] = image.into();
    } else {
        spec[list] = serde_json::json!([{"name": "first", "image": image}]);
    }
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "guarded", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "guarded"}},
            "template": {"metadata": {"labels": {"app": "guarded"}}, "spec": spec}
        }
    })
    .to_string()
}

/// `kubectl apply --dry-run=server` of `manifest`: the API server's admission decides.
fn dry_run(lab: &SharedLab, manifest: &str) -> Run {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest).unwrap();
    lab.kubectl_in(
        &lab.dir,
        &[
            "apply",
            "--dry-run=server",
            "-f",
            file.path().to_str().unwrap(),
        ],
    )
}

/// Policies take a moment to be enforced after they are created: wait until `manifest`
/// gets `until`'s answer.
fn wait_enforced(lab: &SharedLab, manifest: &str, until: impl Fn(&Run) -> bool) {
    let started = Instant::now();
    loop {
        let run = dry_run(lab, manifest);
        if until(&run) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the policies were not enforced within 60 s: {}",
            run.stderr
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn production_namespace(lab: &'static SharedLab, what: &str) -> TestNamespace {
    let namespace = lab.namespace(what);
    lab.kubectl(&["create", "namespace", &namespace.name]);
    lab.kubectl(&[
        "label",
        "namespace",
        &namespace.name,
        &format!("{PRODUCTION_LABEL}=true"),
    ]);
    namespace
}

#[test]
fn the_api_server_decides_the_shared_table_as_check_does() {
    let lab = shared_lab();
    let _one = one_at_a_time();
    let namespace = production_namespace(lab, "guardrails");
    let mut disagreements = Vec::new();
    // One rule at a time, so each refusal is that rule's.
    for rule in Rule::ALL {
        let settings = GuardrailSettings {
            allowed_registries: vec![CASES_ALLOWED.into()],
            ..GuardrailSettings::default()
        };
        let settings = match rule {
            Rule::Registry => GuardrailSettings {
                registry: Mode::Deny,
                ..settings
            },
            Rule::NoLatest => GuardrailSettings {
                no_latest: Mode::Deny,
                ..settings
            },
            Rule::DigestInProduction => GuardrailSettings {
                digest_in_production: Mode::Deny,
                ..settings
            },
        };
        let desired = Desired::new(
            &settings,
            CASES_REGISTRY,
            Scope::Namespaces(vec![namespace.name.clone()]),
        )
        .owned_by("it-guardrails");
        let installed = install(lab, &desired);
        let cases: Vec<_> = CASES.iter().filter(|c| c.rule == rule).collect();
        let refused = cases.iter().find(|c| !c.admitted).unwrap();
        wait_enforced(
            lab,
            &deployment(&namespace.name, refused.list, refused.image),
            |run| run.code != 0,
        );
        for case in cases {
            let run = dry_run(lab, &deployment(&namespace.name, case.list, case.image));
            if (run.code == 0) != case.admitted {
                disagreements.push(format!("{case:?}: {}", run.stderr.trim()));
            }
            if !case.admitted {
                assert!(
                    run.stderr.contains(case.image)
                        && run
                            .stderr
                            .contains(&format!("kindlab guardrail {}", rule.name())),
                    "the refusal names the image and the rule: {}",
                    run.stderr
                );
            }
        }
        drop(installed);
    }
    assert!(
        disagreements.is_empty(),
        "the API server and the local evaluation disagree:\n{}",
        disagreements.join("\n")
    );
}

#[test]
fn warn_admits_with_kubectls_warning() {
    let lab = shared_lab();
    let _one = one_at_a_time();
    let namespace = production_namespace(lab, "guardrails-warn");
    let settings = GuardrailSettings {
        no_latest: Mode::Warn,
        ..GuardrailSettings::default()
    };
    let desired = Desired::new(
        &settings,
        &lab.registry_host,
        Scope::Namespaces(vec![namespace.name.clone()]),
    )
    .owned_by("it-guardrails");
    let _installed = install(lab, &desired);
    let latest = deployment(&namespace.name, "containers", "orders-api:latest");
    wait_enforced(lab, &latest, |run| run.stderr.contains("Warning:"));
    let run = dry_run(lab, &latest);
    run.assert_code(0);
    // kubectl prints the policy's own message after the policy's name.
    assert!(
        run.stderr.contains("Warning: Validation failed for ValidatingAdmissionPolicy 'kindlab-no-latest'")
            && run.stderr.contains(
                "image orders-api:latest uses the tag :latest, which moves (kindlab guardrail no-latest)"
            ),
        "{}",
        run.stderr
    );
}
