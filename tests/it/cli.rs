//! Bad input and missing tools: one-line errors with their fix, and exit codes scripts trust.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;

#[test]
fn an_invalid_manifest_names_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    kindlab(&["init", dir.path().to_str().unwrap()]).assert_code(0);
    let manifest = dir.path().join("kindlab.yaml");
    std::fs::write(&manifest, "cluster:\n  name: lab\n  workers: 3\n").unwrap();
    let run = kindlab(&["--workspace", dir.path().to_str().unwrap(), "build"]);
    run.assert_code(3).assert_error(
        "error: <tmp>/kindlab.yaml:3:3: unknown field `workers`, expected one of name, nodeImage at line 3, column 3\n\
             help: remove or rename the key; kindlab.yaml accepts cluster.{name,nodeImage}, registry.{name,port,image}, images[].{name,context,dockerfile,target,args,platform,secrets}, deploy.{overlay,updateImages}, guardrails.{registry,noLatest,digestInProduction,allowedRegistries}, gitops.enabled",
    );

    std::fs::write(&manifest, "registry:\n  port: 0\n").unwrap();
    let run = kindlab(&[
        "--workspace",
        dir.path().to_str().unwrap(),
        "build",
        "-o",
        "json",
    ]);
    run.assert_code(3).assert_error(
        "error: <tmp>/kindlab.yaml:2:9: registry.port 0 is not a TCP port\n\
             help: use a port from 1 to 65535, e.g. 5001, or `auto`",
    );
    assert_eq!(run.json()["exit_code"], 3);
}

#[test]
fn outside_a_workspace_the_error_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = kindlab(&["--workspace", dir.path().to_str().unwrap(), "up"]);
    run.assert_code(3).assert_error(
        "error: no kindlab.yaml in <tmp> or any parent directory\n\
             help: run kindlab in a workspace, pass --workspace DIR, or create one with `kindlab init`",
    );
}

#[test]
fn init_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    kindlab(&["init", dir.path().to_str().unwrap()]).assert_code(0);
    let again = kindlab(&["init", dir.path().to_str().unwrap()]);
    again.assert_code(3).assert_error(
        "error: <tmp>/kindlab.yaml already exists\n\
             help: choose an empty or new directory: `kindlab init DIR`",
    );
}

#[test]
fn doctor_reports_each_check_and_fails_when_kind_is_missing() {
    require_docker();
    // A PATH with docker's CLI dir but no kind, kubectl or kustomize.
    let empty = tempfile::tempdir().unwrap();
    let run = kindlab_env(
        &["doctor", "-o", "json"],
        &[("PATH", empty.path().to_str().unwrap())],
    );
    run.assert_code(10);
    let doc = run.json();
    let check = |name: &str| {
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check in {doc}"))
    };
    assert_eq!(check("docker")["ok"], true, "{doc}");
    assert_eq!(check("kind")["ok"], false);
    assert!(
        check("kind")["fix"]
            .as_str()
            .unwrap()
            .contains("go install sigs.k8s.io/kind@")
    );
    assert_eq!(check("kustomize")["ok"], false);
    assert_eq!(doc["ok"], false);
}

#[test]
fn doctor_names_an_unreachable_docker_host() {
    let run = kindlab_env(
        &["doctor"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    run.assert_code(10);
    assert!(run.stdout.contains("✗ docker"), "{}", run.stdout);
    assert!(run.stdout.contains("fix: start Docker"), "{}", run.stdout);
}

#[test]
fn status_refuses_the_render_of_a_kubectl_whose_kustomize_is_older_than_v5() {
    // The version check runs beside the render: the old kubectl's error must still win over
    // the (valid) documents it prints.
    let ws = TestWorkspace::new();
    let bin = tempfile::tempdir().unwrap();
    let kubectl = bin.path().join("kubectl");
    std::fs::write(
        &kubectl,
        "#!/bin/sh\ncase \"$1\" in\n  version) echo '{\"kustomizeVersion\":\"v4.5.7\"}' ;;\n  kustomize) printf 'apiVersion: v1\\nkind: Namespace\\nmetadata:\\n  name: dev\\n' ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &kubectl,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let run = ws.run_env(
        &["status", "-o", "json"],
        &[("PATH", &format!("{}:/usr/bin:/bin", bin.path().display()))],
    );
    run.assert_code(10);
    let overlay = run.json()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["component"] == "overlay")
        .cloned()
        .unwrap_or_else(|| panic!("no overlay row: {}", run.stdout));
    assert_eq!(overlay["ok"], false, "{overlay}");
    assert!(
        overlay["detail"]
            .as_str()
            .unwrap()
            .contains("kubectl's embedded kustomize is v4.5.7, older than v5"),
        "{overlay}"
    );
}
