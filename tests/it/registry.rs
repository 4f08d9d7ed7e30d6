//! `kindlab registry up|down|status` against the real engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;

#[test]
fn registry_up_twice_makes_one_labelled_container_that_answers() {
    let ws = TestWorkspace::new();
    let first = ws.run(&["registry", "up"]);
    first.assert_code(0);
    assert!(first.stdout.contains("created"), "{}", first.stdout);

    let second = ws.run(&["registry", "up"]);
    second.assert_code(0);
    assert!(
        second.stdout.contains("already running; nothing to do"),
        "{}",
        second.stdout
    );
    assert_eq!(containers_named(&ws.registry).len(), 1);
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"dev.kindlab.owned\"}} {{.HostConfig.RestartPolicy.Name}}",
            &ws.registry
        ]),
        "true always"
    );
    // Published on loopback only.
    let binding = docker(&["port", &ws.registry, "5000/tcp"]);
    assert_eq!(binding, format!("127.0.0.1:{}", ws.port));

    let status = ws.run(&["registry", "status", "-o", "json"]);
    status.assert_code(0);
    let doc = status.json();
    assert_eq!(doc["state"], "running");
    assert_eq!(doc["answers"], true);
    assert_eq!(doc["container"]["owned"], true);
}

#[test]
fn status_of_a_missing_registry_is_non_zero() {
    let ws = TestWorkspace::new();
    let status = ws.run(&["registry", "status"]);
    status.assert_code(10);
    assert!(status.stdout.contains("missing"), "{}", status.stdout);
}

#[test]
fn down_removes_only_what_kindlab_labelled() {
    let ws = TestWorkspace::new();
    // A registry as kind's own script makes it: no kindlab label.
    docker(&[
        "run",
        "-d",
        "--name",
        &ws.registry,
        "-p",
        &format!("127.0.0.1:{}:5000", ws.port),
        "registry:3",
    ]);
    let adopted = ws.run(&["registry", "up"]);
    adopted.assert_code(0);
    assert!(adopted.stdout.contains("adopted"), "{}", adopted.stdout);

    let down = ws.run(&["registry", "down"]);
    down.assert_code(0);
    assert!(down.stdout.contains("left alone"), "{}", down.stdout);
    assert_eq!(
        containers_named(&ws.registry).len(),
        1,
        "the unlabelled registry must survive"
    );

    docker(&["rm", "-f", "-v", &ws.registry]);
    ws.run(&["registry", "up"]).assert_code(0);
    let down = ws.run(&["registry", "down"]);
    down.assert_code(0);
    assert!(down.stdout.contains("removed"), "{}", down.stdout);
    assert!(containers_named(&ws.registry).is_empty());
}

#[test]
fn a_stopped_registry_is_started_not_recreated() {
    let ws = TestWorkspace::new();
    ws.run(&["registry", "up"]).assert_code(0);
    let id = containers_named(&ws.registry);
    docker(&["stop", &ws.registry]);
    let up = ws.run(&["registry", "up"]);
    up.assert_code(0);
    assert!(
        up.stdout.contains("started the stopped container"),
        "{}",
        up.stdout
    );
    assert_eq!(
        containers_named(&ws.registry),
        id,
        "same container, restarted"
    );
}

#[test]
fn port_taken_by_a_container_is_named_with_the_fix() {
    let ws = TestWorkspace::new();
    let holder = unique("kl-holder");
    docker(&[
        "run",
        "-d",
        "--name",
        &holder,
        "-p",
        &format!("127.0.0.1:{}:5000", ws.port),
        "registry:3",
    ]);
    let run = ws.run(&["registry", "up"]);
    docker_quiet(&["rm", "-f", "-v", &holder]);
    run.assert_code(5);
    assert!(
        run.stderr.contains(&format!(
            "port {} on 127.0.0.1 is already in use by container \"{holder}\"",
            ws.port
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "help: stop that container (`docker stop {holder}`)"
        )),
        "{}",
        run.stderr
    );
    assert!(
        containers_named(&ws.registry).is_empty(),
        "nothing created on failure"
    );
}

#[test]
fn port_taken_by_a_process_names_the_process() {
    let ws = TestWorkspace::new();
    let _listener = std::net::TcpListener::bind(("127.0.0.1", ws.port)).unwrap();
    let run = ws.run(&["registry", "up"]);
    run.assert_code(5);
    // The test binary holds the port, so the process named is this one.
    assert!(
        run.stderr
            .contains(&format!("process {}", std::process::id())),
        "{}",
        run.stderr
    );
}

#[test]
fn unreachable_docker_is_a_missing_prerequisite_with_a_fix() {
    let ws = TestWorkspace::new();
    let run = ws.run_env(
        &["registry", "up"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    run.assert_code(4);
    assert!(
        run.stderr
            .contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: start Docker"), "{}", run.stderr);
}

#[test]
fn a_missing_registry_image_that_cannot_be_pulled_is_explained() {
    let ws = TestWorkspace::new();
    let text = std::fs::read_to_string(ws.path().join("kindlab.yaml")).unwrap();
    ws.write_manifest(&text.replace("image: registry:3", "image: kindlab-test/no-such-image:0"));
    let run = ws.run(&["registry", "up"]);
    run.assert_code(4);
    assert!(
        run.stderr
            .contains("registry image kindlab-test/no-such-image:0 is not available locally"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: pull it"), "{}", run.stderr);
}
