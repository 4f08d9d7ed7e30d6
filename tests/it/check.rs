//! `kindlab check`, the CI gate: every image the overlay names must exist. No cluster is
//! needed, only the registry (here the shared lab's).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;

#[test]
fn check_fails_on_a_missing_tag_naming_the_nearest_and_passes_after_the_fix() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    copy.run(&["check"]).assert_code(0);

    let file = copy.path().join("deploy/overlays/dev/kustomization.yaml");
    let good = std::fs::read_to_string(&file).unwrap();
    let tag = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("newTag: "))
        .unwrap()
        .to_string();
    // One character off: a typo in the tag.
    let typo = format!(
        "{}{}",
        &tag[..tag.len() - 1],
        if tag.ends_with('0') { '1' } else { '0' }
    );
    std::fs::write(&file, good.replace(&tag, &typo)).unwrap();
    let run = copy.run(&["check", "-o", "json"]);
    run.assert_code(10);
    let report = run.json();
    let reference = &report["references"][0];
    assert_eq!(reference["verdict"], "missing", "{report}");
    assert_eq!(reference["nearest"][0], tag.as_str(), "{report}");
    assert!(reference["tags"].to_string().contains(&tag), "{report}");
    let text = copy.run(&["check"]);
    text.assert_code(10);
    assert!(
        text.stdout
            .contains(&format!("nearest existing tags: {tag}")),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("fix: use a tag that exists"),
        "{}",
        text.stdout
    );

    std::fs::write(&file, &good).unwrap();
    copy.run(&["check"]).assert_code(0);
}

#[test]
fn check_warns_on_latest_and_unreachable_registries_and_strict_fails_on_them() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    // A sidecar from a public registry, by `:latest`: this machine reaches no public
    // registry, so it cannot be checked.
    let base = copy.path().join("deploy/base/orders-api/deployment.yaml");
    let text = std::fs::read_to_string(&base).unwrap();
    let with_sidecar = text.replace(
        "      containers:\n",
        "      containers:\n        - name: sidecar\n          image: busybox:latest\n          command: [\"sleep\", \"3600\"]\n",
    );
    assert_ne!(with_sidecar, text);
    std::fs::write(&base, with_sidecar).unwrap();

    let run = copy.run(&["check", "-o", "json"]);
    run.assert_code(0);
    let report = run.json();
    let sidecar = report["references"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["image"] == "busybox:latest")
        .cloned()
        .unwrap_or_else(|| panic!("no busybox reference in {report}"));
    assert_eq!(sidecar["verdict"], "not-checked", "{sidecar}");
    assert!(
        sidecar["warning"].as_str().unwrap().contains(":latest"),
        "{sidecar}"
    );
    copy.run(&["check", "--strict"]).assert_code(10);
}
