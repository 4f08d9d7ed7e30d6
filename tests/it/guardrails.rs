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

/// Puts the shared workspace's kindlab.yaml back and removes its guardrails, however the
/// test ends.
struct RestoreManifest {
    lab: &'static SharedLab,
    original: String,
}

impl Drop for RestoreManifest {
    fn drop(&mut self) {
        std::fs::write(self.lab.dir.join("kindlab.yaml"), &self.original).unwrap();
        for kind in [
            "validatingadmissionpolicybindings",
            "validatingadmissionpolicies",
        ] {
            let _ = self.lab.kubectl_in(
                &self.lab.dir,
                &["delete", kind, "-l", "dev.kindlab.guardrail"],
            );
        }
    }
}

#[test]
fn up_installs_the_guardrails_status_shows_them_and_they_refuse_set_image_latest() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let _one = one_at_a_time();
    let file = lab.dir.join("kindlab.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let _restore = RestoreManifest {
        lab,
        original: original.clone(),
    };
    std::fs::write(
        &file,
        format!("{original}guardrails:\n  registry: deny\n  noLatest: deny\n"),
    )
    .unwrap();

    // One sequence on the shared lab (install, use, remove): checks that gate no later step
    // are soft, so a failed one hides none of the others.
    let mut checks = Checks::new();
    let up = lab.run(&["up", "-o", "json"]);
    up.assert_code(0);
    checks.soft("up installs the guardrails", || {
        assert_action(&up.json(), "guardrails", "created", "no-latest (deny)")
    });
    checks.soft("the next up reuses them", || {
        let again = lab.run(&["up", "-o", "json"]);
        again.assert_code(0);
        assert_action(&again.json(), "guardrails", "reused", "registry (deny)");
    });

    checks.soft("status shows each guardrail", || {
        let status = lab.run(&["status", "-o", "json"]);
        let report = status.json();
        for rule in ["registry", "no-latest"] {
            let row = report["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["component"] == format!("guardrail {rule}"))
                .unwrap_or_else(|| panic!("no guardrail row {rule}: {report}"))
                .clone();
            assert_eq!(row["ok"], true, "{row}");
            assert_eq!(row["state"], "deny", "{row}");
            assert!(
                row["detail"].as_str().unwrap().contains("refuses in dev"),
                "{row}"
            );
        }
    });

    // The lab text's own command, typed as it is written.
    let before = lab.kubectl(&[
        "get",
        "deployment/orders-api",
        "-n",
        "dev",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    let started = Instant::now();
    let refused = loop {
        let run = lab.kubectl_in(
            &lab.dir,
            &[
                "set",
                "image",
                "deployment/orders-api",
                "api=orders-api:latest",
                "-n",
                "dev",
            ],
        );
        if run.code != 0 {
            break run;
        }
        // Admitted before the policy was enforced: undo and try again.
        lab.kubectl(&[
            "set",
            "image",
            "deployment/orders-api",
            &format!("api={before}"),
            "-n",
            "dev",
        ]);
        assert!(started.elapsed() < Duration::from_secs(60), "never refused");
        std::thread::sleep(Duration::from_millis(500));
    };
    checks.soft("the API server names the policy and the guardrail", || {
        assert!(
            refused
                .stderr
                .contains("ValidatingAdmissionPolicy 'kindlab-registry'")
                || refused
                    .stderr
                    .contains("ValidatingAdmissionPolicy 'kindlab-no-latest'"),
            "{}",
            refused.stderr
        );
        assert!(
            refused.stderr.contains("image orders-api:latest")
                && refused.stderr.contains("kindlab guardrail"),
            "{}",
            refused.stderr
        );
    });
    checks.soft("a refused change changes nothing", || {
        let after = lab.kubectl(&[
            "get",
            "deployment/orders-api",
            "-n",
            "dev",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ]);
        assert_eq!(after, before);
    });

    // Turned off, `up` removes them.
    std::fs::write(&file, &original).unwrap();
    let off = lab.run(&["up", "-o", "json"]);
    off.assert_code(0);
    checks.soft("up says it removed them", || {
        assert_action(
            &off.json(),
            "guardrails",
            "repaired",
            "kindlab-no-latest deleted",
        )
    });
    let left = lab.kubectl(&[
        "get",
        "validatingadmissionpolicies,validatingadmissionpolicybindings",
        "-l",
        "dev.kindlab.guardrail",
        "-o",
        "name",
    ]);
    assert_eq!(left, "", "guardrails left after they were turned off");
}

#[test]
fn the_refused_latest_tag_lab_needs_the_guardrails_then_runs_and_is_done_by_hand() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let _one = one_at_a_time();
    let file = lab.dir.join("kindlab.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let _restore = RestoreManifest {
        lab,
        original: original.clone(),
    };

    // Without the guardrails the lab cannot teach anything: one line, with the fix.
    let refused = lab.run(&["lab", "start", "refused-latest-tag"]);
    refused.assert_code(4).assert_error(
        "error: lab \"refused-latest-tag\" needs the guardrail no-latest to deny in the cluster: there is no ValidatingAdmissionPolicy kindlab-no-latest\n\
             help: set `guardrails: {noLatest: deny}` in kindlab.yaml and run `kindlab up` (in a workshop room, ask the instructor: attendees cannot install policies)",
    );

    std::fs::write(
        &file,
        format!("{original}guardrails:\n  registry: deny\n  noLatest: deny\n"),
    )
    .unwrap();
    lab.run(&["up"]).assert_code(0);
    // Enforced a moment after creation: until then the lab says it was admitted.
    let started = Instant::now();
    let run = loop {
        let run = lab.run(&["lab", "run", "refused-latest-tag", "-o", "json"]);
        if run.code == 0 || started.elapsed() > Duration::from_secs(60) {
            break run;
        }
        lab.run(&["reset"]);
        std::thread::sleep(Duration::from_secs(1));
    };
    run.assert_code(0);
    let report = run.json();
    assert!(
        report.to_string().contains("refused by kindlab-"),
        "the break is the refusal: {report}"
    );

    // By hand: start, the text's own command refused, the fix, check.
    let start = lab.run(&["lab", "start", "refused-latest-tag"]);
    start.assert_code(0);
    let own = lab.kubectl_in(
        &lab.dir,
        &[
            "set",
            "image",
            "deployment/orders-api",
            "api=orders-api:latest",
            "-n",
            "dev",
        ],
    );
    assert_ne!(own.code, 0, "{}", own.stdout);
    assert!(own.stderr.contains("kindlab guardrail"), "{}", own.stderr);
    lab.kubectl(&["apply", "-k", "deploy/overlays/dev"]);
    lab.run(&["lab", "check"]).assert_code(0);
}

#[test]
fn diagnose_names_the_policy_that_refuses_a_deployments_pods() {
    let lab = shared_lab();
    let _one = one_at_a_time();
    let namespace = lab.namespace("guardrails-diagnose");
    lab.kubectl(&["create", "namespace", &namespace.name]);
    // Admitted before the guardrail exists; its pods are refused once it does.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        deployment(&namespace.name, "containers", "orders-api:1.0"),
    )
    .unwrap();
    lab.kubectl(&["apply", "-f", file.path().to_str().unwrap()]);
    let settings = GuardrailSettings {
        registry: Mode::Deny,
        ..GuardrailSettings::default()
    };
    let desired = Desired::new(
        &settings,
        CASES_REGISTRY,
        Scope::Namespaces(vec![namespace.name.clone()]),
    )
    .owned_by("it-guardrails");
    let _installed = install(lab, &desired);
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probe", "namespace": namespace.name},
        "spec": {"containers": [{"name": "a", "image": "orders-api:1.0"}]}})
    .to_string();
    wait_enforced(lab, &pod, |run| run.code != 0);
    lab.kubectl(&[
        "delete",
        "pods",
        "-n",
        &namespace.name,
        "-l",
        "app=guarded",
        "--wait=true",
    ]);

    let started = Instant::now();
    let run = loop {
        let run = lab.run(&[
            "diagnose",
            "deployment/guarded",
            "-n",
            &namespace.name,
            "-o",
            "json",
        ]);
        if run.stdout.contains("admission-refused") || started.elapsed() > Duration::from_secs(60) {
            break run;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let report = run.json();
    let finding = &report["findings"][0];
    assert_eq!(finding["cause"], "admission-refused", "{report}");
    assert_eq!(finding["policy"], "kindlab-registry", "{report}");
    assert!(
        finding["summary"]
            .as_str()
            .unwrap()
            .starts_with("admission policy kindlab-registry refuses its pods: image orders-api:1.0 is not from the lab registry"),
        "{report}"
    );
}

#[test]
fn a_room_gets_the_guardrails_its_attendees_cannot_install() {
    let lab = shared_lab();
    let _one = one_at_a_time();
    let copy = lab.workspace_copy();
    let manifest = copy.path().join("kindlab.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}guardrails:\n  registry: deny\n  noLatest: deny\n"),
    )
    .unwrap();
    let pid = std::process::id();
    let room = format!("it-grd-{pid}");
    let attendee = format!("gr-eve-{pid}");
    let handout = tempfile::tempdir().unwrap();
    let provisioned = copy.run(&[
        "workshop",
        "provision",
        &attendee,
        "--room",
        &room,
        "--out",
        handout.path().to_str().unwrap(),
        "--token-ttl",
        "1h",
        "-o",
        "json",
    ]);
    provisioned.assert_code(0);
    // Torn down however the test ends: the room's namespace and bindings, and the policies.
    struct Teardown<'a>(&'a WorkspaceCopy, String);
    impl Drop for Teardown<'_> {
        fn drop(&mut self) {
            self.0.run(&["workshop", "teardown", "--room", &self.1]);
            let _ = shared_lab().kubectl_in(
                &shared_lab().dir,
                &[
                    "delete",
                    "validatingadmissionpolicies",
                    "-l",
                    "dev.kindlab.guardrail",
                ],
            );
        }
    }
    let _teardown = Teardown(&copy, room.clone());
    // One sequence on one room (provision, refuse, lab, teardown): checks that gate no later
    // step are soft, so a failed one hides none of the others.
    let mut checks = Checks::new();
    let report = provisioned.json();
    checks.soft("provision binds the guardrails to the room", || {
        assert!(
            report["guardrails"]
                .to_string()
                .contains(&format!("binding kindlab-no-latest-{room} created")),
            "{report}"
        )
    });

    // The attendee, with nothing but its own kubeconfig, is refused.
    let kubeconfig = handout.path().join(format!("{attendee}.kubeconfig"));
    // Policies take a moment to be enforced after they are made: the attendee asks the
    // server with a dry run (admission runs on it too) until it refuses, so the Deployment
    // is never changed by a `:latest` admitted too early. Then the real change is refused.
    let set_latest = [
        "set",
        "image",
        "deployment/orders-api",
        "api=orders-api:latest",
    ];
    let started = Instant::now();
    loop {
        let mut dry = set_latest.to_vec();
        dry.push("--dry-run=server");
        if kubectl_as(&kubeconfig, copy.path(), &dry).code != 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "never refused");
        std::thread::sleep(Duration::from_millis(500));
    }
    let refused = kubectl_as(&kubeconfig, copy.path(), &set_latest);
    assert_ne!(
        refused.code, 0,
        "the real change was admitted: {}",
        refused.stdout
    );
    checks.soft(
        "the API server names the room's binding and the guardrail",
        || {
            assert!(
                (refused
                    .stderr
                    .contains(&format!("with binding 'kindlab-no-latest-{room}'"))
                    || refused
                        .stderr
                        .contains(&format!("with binding 'kindlab-registry-{room}'")))
                    && refused.stderr.contains("kindlab guardrail"),
                "{}",
                refused.stderr
            )
        },
    );

    // The loop's undos may still be rolling out: the lab starts from a settled Deployment.
    let settled = kubectl_as(
        &kubeconfig,
        copy.path(),
        &[
            "rollout",
            "status",
            "deployment/orders-api",
            "--timeout=120s",
        ],
    );
    assert_eq!(settled.code, 0, "{}", settled.stderr);
    // The lab starts for the attendee (who cannot read the policies: the refusal shows them).
    let mut args = vec!["--workspace", copy.path().to_str().unwrap()];
    args.extend(["lab", "start", "refused-latest-tag", "-o", "json"]);
    let start = kindlab_env(
        &args,
        &[("KINDLAB_KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    checks.soft("the lab starts for the attendee", || {
        start.assert_code(0);
        assert!(
            start.stdout.contains("refused by kindlab-"),
            "{}",
            start.stdout
        );
    });

    // Teardown takes the room's bindings with it.
    copy.run(&["workshop", "teardown", "--room", &room])
        .assert_code(0);
    let left = lab.kubectl(&["get", "validatingadmissionpolicybindings", "-o", "name"]);
    assert!(!left.contains(&room), "{left}");
}

#[test]
fn check_refuses_what_the_guardrails_would_and_warn_only_prints() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let manifest = copy.path().join("kindlab.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let file = copy.path().join("deploy/overlays/dev/kustomization.yaml");
    let good = std::fs::read_to_string(&file).unwrap();
    let tag = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("newTag: "))
        .unwrap()
        .to_string();
    std::fs::write(&file, good.replace(&tag, "latest")).unwrap();

    std::fs::write(&manifest, format!("{text}guardrails:\n  noLatest: deny\n")).unwrap();
    let run = copy.run(&["check", "-o", "json"]);
    run.assert_code(10);
    let report = run.json();
    let finding = &report["guardrails"][0];
    assert_eq!(finding["rule"], "no-latest", "{report}");
    assert_eq!(finding["mode"], "deny", "{report}");
    assert_eq!(finding["object"], "Deployment dev/orders-api", "{report}");
    assert!(
        finding["message"].as_str().unwrap().starts_with(&format!(
            "image {}/orders-api:latest uses the tag :latest",
            lab.registry_host
        )),
        "{report}"
    );

    // Warn: printed, not a failure of its own (the missing tag `latest` still is).
    std::fs::write(&manifest, format!("{text}guardrails:\n  noLatest: warn\n")).unwrap();
    std::fs::write(&file, &good).unwrap();
    let pinned_ok = copy.run(&["check"]);
    pinned_ok.assert_code(0);
    assert!(
        !pinned_ok.stdout.contains("guardrail"),
        "{}",
        pinned_ok.stdout
    );
    std::fs::write(&file, good.replace(&tag, "latest")).unwrap();
    let warned = copy.run(&["check"]);
    assert!(
        warned
            .stdout
            .contains("! Deployment dev/orders-api  warned by guardrail no-latest"),
        "{}",
        warned.stdout
    );
}
