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
    let id = workspace_id(&ws);
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"dev.kindlab.owned\"}} {{index .Config.Labels \"dev.kindlab.workspace\"}} {{.HostConfig.RestartPolicy.Name}}",
            &ws.registry
        ]),
        format!("true {id} always")
    );
    // Published on loopback only.
    let binding = docker(&["port", &ws.registry, "5000/tcp"]);
    assert_eq!(binding, format!("127.0.0.1:{}", ws.port));
    // The images volume is named, labelled with the workspace, and mounted.
    let volume = format!("{}-images", ws.registry);
    assert_eq!(
        docker(&[
            "volume",
            "inspect",
            "-f",
            "{{index .Labels \"dev.kindlab.workspace\"}}",
            &volume
        ]),
        id
    );

    let status = ws.run(&["registry", "status", "-o", "json"]);
    status.assert_code(0);
    let doc = status.json();
    assert_eq!(doc["state"], "running");
    assert_eq!(doc["answers"], true);
    assert_eq!(doc["container"]["owner"], "this-workspace");
    assert_eq!(doc["container"]["volume"], volume.as_str());
}

/// The id in the workspace's `.kindlab/workspace.json`.
fn workspace_id(ws: &TestWorkspace) -> String {
    let text = std::fs::read_to_string(ws.path().join(".kindlab/workspace.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["id"].as_str().unwrap().to_string()
}

#[test]
fn status_of_a_missing_registry_is_non_zero() {
    let ws = TestWorkspace::new();
    let status = ws.run(&["registry", "status"]);
    status.assert_code(10);
    assert!(status.stdout.contains("missing"), "{}", status.stdout);
}

#[test]
fn a_registry_kindlab_did_not_make_needs_adopt_and_is_never_removed() {
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
    let refused = ws.run(&["registry", "up"]);
    refused.assert_code(5);
    refused.assert_error(
        "error: registry container \"kl-registry-<id>\" was made by something other than kindlab\n\
             help: `kindlab up --adopt` uses it as it is (kindlab never deletes an adopted registry), or set registry.name in kindlab.yaml to another name",
    );

    let adopted = ws.run(&["registry", "up", "--adopt"]);
    adopted.assert_code(0);
    assert!(adopted.stdout.contains("adopted"), "{}", adopted.stdout);
    // Remembered: no --adopt needed any more.
    ws.run(&["registry", "up"]).assert_code(0);

    let down = ws.run(&["registry", "down", "--purge"]);
    down.assert_code(0);
    assert!(down.stdout.contains("kept: adopted"), "{}", down.stdout);
    assert_eq!(
        containers_named(&ws.registry).len(),
        1,
        "the unlabelled registry must survive"
    );
    let down = ws.run(&["down", "--purge"]);
    down.assert_code(0);
    assert_eq!(containers_named(&ws.registry).len(), 1);
}

#[test]
fn another_workspaces_registry_is_refused_and_not_removed() {
    let first = TestWorkspace::new();
    first.run(&["registry", "up"]).assert_code(0);
    // A second workspace with the same registry name and port.
    let second = TestWorkspace::new();
    second.write_manifest(&std::fs::read_to_string(first.path().join("kindlab.yaml")).unwrap());
    let up = second.run(&["registry", "up"]);
    up.assert_code(5);
    up.assert_error(
        "error: registry container \"kl-registry-<id>\" was made by the kindlab workspace at <tmp>\n\
             help: give this workspace its own registry (set registry.name, and registry.port or `port: auto`, in kindlab.yaml), or share kl-registry-<id> with `kindlab up --adopt`",
    );
    let down = second.run(&["registry", "down"]);
    down.assert_code(5);
    down.assert_error(
        "error: registry container \"kl-registry-<id>\" was made by the kindlab workspace at <tmp>, not by this workspace\n\
             help: run `kindlab down` in <tmp>; kindlab deletes only what this workspace made",
    );
    let down = second.run(&["down", "--purge"]);
    down.assert_code(5);
    assert_eq!(containers_named(&first.registry).len(), 1);
    first.run(&["registry", "status"]).assert_code(0);
}

#[test]
fn the_images_outlive_the_container_unless_purged() {
    let ws = TestWorkspace::new();
    ws.run(&["registry", "up"]).assert_code(0);
    let built = ws.run(&["build", "-o", "json"]);
    built.assert_code(0);
    let tag = built.json()["images"][0]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    let tags = || {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                &format!("http://127.0.0.1:{}/v2/orders-api/tags/list", ws.port),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(tags().contains(&tag), "{}", tags());

    let down = ws.run(&["registry", "down"]);
    down.assert_code(0);
    assert!(
        down.stdout.contains("images kept on volume"),
        "{}",
        down.stdout
    );
    assert!(containers_named(&ws.registry).is_empty());
    ws.run(&["registry", "up"]).assert_code(0);
    assert!(tags().contains(&tag), "the images were lost: {}", tags());
    let warm = ws.run(&["build", "-o", "json"]);
    assert_eq!(warm.json()["images"][0]["built"], false);

    let purged = ws.run(&["registry", "down", "--purge"]);
    purged.assert_code(0);
    assert!(
        purged.stdout.contains("removed (--purge)"),
        "{}",
        purged.stdout
    );
    assert!(!volume_exists(&format!("{}-images", ws.registry)));
}

#[test]
fn a_web_server_in_the_registrys_place_is_not_a_registry() {
    let ws = TestWorkspace::new();
    // An HTTP server that answers 404 to everything, where the registry should be.
    docker(&[
        "run",
        "-d",
        "--name",
        &ws.registry,
        "-p",
        &format!("127.0.0.1:{}:5000", ws.port),
        "busybox:1.36",
        "httpd",
        "-f",
        "-p",
        "5000",
        "-h",
        "/tmp",
    ]);
    let run = ws.run(&["registry", "up", "--adopt"]);
    run.assert_code(5);
    run.assert_error(
        "error: localhost:<port> (container \"kl-registry-<id>\") answers HTTP 404 without a Docker-Distribution-Api-Version header: it is not a registry\n\
             help: check what runs in kl-registry-<id> (`docker logs kl-registry-<id>`); set registry.image to a registry image such as registry:3",
    );
    let status = ws.run(&["registry", "status"]);
    status.assert_code(10);
    assert!(
        status.stdout.contains("not a registry"),
        "{}",
        status.stdout
    );
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
    run.assert_error(
        "error: port <port> on 127.0.0.1 is already in use by container \"kl-holder-<id>\" (image registry:3)\n\
             help: stop that container (`docker stop kl-holder-<id>`) or set registry.port in kindlab.yaml to a free port",
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
    let pid = std::process::id();
    run.assert_error(
        &format!("error: port <port> on 127.0.0.1 is already in use by process {pid} (it-<hex>)\n\
             help: stop process {pid} or set registry.port in kindlab.yaml to a port other than <port>"),
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
    run.assert_error(
        "error: cannot reach the Docker engine at unix:///nonexistent/docker.sock\n\
             help: start Docker (Docker Desktop, Colima, or `sudo systemctl start docker`), or point DOCKER_HOST at a running engine",
    );
}

#[test]
fn a_missing_registry_image_that_cannot_be_pulled_is_explained() {
    let ws = TestWorkspace::new();
    let text = std::fs::read_to_string(ws.path().join("kindlab.yaml")).unwrap();
    ws.write_manifest(&text.replace("image: registry:3", "image: kindlab-test/no-such-image:0"));
    let run = ws.run(&["registry", "up"]);
    run.assert_code(4);
    run.assert_error(
        "error: registry image kindlab-test/no-such-image:0 is not available locally and could not be pulled: <any>\n\
             help: pull it where a registry is reachable (`docker pull kindlab-test/no-such-image:0`), or set registry.image in kindlab.yaml to an image you have",
    );
}

#[test]
fn the_images_volume_of_a_deleted_workspace_is_refused_then_taken_over_with_adopt() {
    let first = TestWorkspace::new();
    first.run(&["registry", "up"]).assert_code(0);
    let built = first.run(&["build", "-o", "json"]);
    built.assert_code(0);
    let tag = built.json()["images"][0]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    first.run(&["registry", "down"]).assert_code(0);
    let manifest = std::fs::read_to_string(first.path().join("kindlab.yaml")).unwrap();
    let gone = first.path().display().to_string();
    std::fs::remove_dir_all(first.path()).unwrap();

    // A new workspace with the same names finds the kept volume of a workspace that is gone.
    let second = TestWorkspace::new();
    second.write_manifest(&manifest);
    let refused = second.run(&["registry", "up"]);
    refused.assert_code(5);
    refused.assert_error(
        "error: volume \"kl-registry-<id>-images\" (for registry \"kl-registry-<id>\") holds the images of the kindlab workspace at <tmp>, which no longer exists\n\
         help: take it over with its images: `kindlab up --adopt` (kindlab then uses it and never deletes it); or set registry.name in kindlab.yaml to another name, or remove it with `docker volume rm kl-registry-<id>-images`",
    );
    let volume = format!("{}-images", first.registry);

    let adopted = second.run(&["registry", "up", "--adopt"]);
    adopted.assert_code(0);
    assert!(
        adopted.stdout.contains(&format!(
            "took over volume {volume} (made by the kindlab workspace at {gone})"
        )),
        "{}",
        adopted.stdout
    );
    let tags = std::process::Command::new("curl")
        .args([
            "-s",
            &format!("http://127.0.0.1:{}/v2/orders-api/tags/list", first.port),
        ])
        .output()
        .unwrap();
    let tags = String::from_utf8_lossy(&tags.stdout);
    assert!(tags.contains(&tag), "the images were lost: {tags}");
    // Remembered: a plain `up` uses it from now on.
    second.run(&["registry", "up"]).assert_code(0);

    let purged = second.run(&["registry", "down", "--purge"]);
    purged.assert_code(0);
    assert!(
        purged.stdout.contains(&format!(
            "images volume {volume} kept: taken over from the kindlab workspace at {gone}"
        )),
        "{}",
        purged.stdout
    );
    assert!(volume_exists(&volume), "{volume} is gone");
}
