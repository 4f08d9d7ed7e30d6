//! Clusters that must be created or deleted, so each test makes its own (each costs about
//! 15-20 s of two busy cores; keep them few): an interrupted and a killed `kind create`,
//! a second workspace beside the shared one (`registry.port: auto`), and nodes stopped or
//! paused in the middle of `up` on a cluster kind made without kindlab.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;

use crate::support::*;

fn state(ws: &TestWorkspace) -> Value {
    std::fs::read_to_string(ws.path().join(".kindlab/state.json"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null)
}

/// Waits until kind has made at least one node container of `cluster`.
fn wait_for_nodes(cluster: &str, within: Duration) {
    let started = Instant::now();
    while kind_nodes(cluster).is_empty() {
        assert!(
            started.elapsed() < within,
            "kind made no node of {cluster} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn workspace_args<'a>(ws: &'a TestWorkspace, args: &[&'a str]) -> Vec<&'a str> {
    let mut full = vec!["--workspace", ws.path().to_str().unwrap()];
    full.extend_from_slice(args);
    full
}

/// Points the overlay at the bare image name, so the image is found whatever port the
/// registry gets (`port: auto`).
fn overlay_names_bare_image(ws: &TestWorkspace) {
    let path = ws.path().join("deploy/overlays/dev/kustomization.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let bare: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("newName:") {
                "    newName: orders-api".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, bare + "\n").unwrap();
}

#[test]
fn an_interrupted_create_leaves_nothing_and_a_killed_one_is_made_again() {
    let _slot = own_cluster_slot();
    let cluster = unique("kl-ic");
    let ws = TestWorkspace::with_cluster(&cluster);
    let _guard = KindClusterGuard(cluster.clone());
    let env = node_image_env();

    // Ctrl-C while kind is creating the cluster: kind is stopped and its cluster deleted.
    let mut up = Spawned::start(&workspace_args(&ws, &["up"]), &env);
    up.wait_for_line(&format!("Cluster kind-{cluster}"), Duration::from_secs(60));
    wait_for_nodes(&cluster, Duration::from_secs(60));
    let signalled = Instant::now();
    up.signal(Signal::INT);
    let run = up.finish(Duration::from_secs(60));
    eprintln!(
        "interrupted create cleaned up in {:.1}s",
        signalled.elapsed().as_secs_f64()
    );
    run.assert_code(130);
    assert!(
        run.stderr.contains(&format!(
            "error: interrupted during cluster creation; the half-made cluster kind-{cluster} was deleted"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("help: run `kindlab up` to finish the lab"),
        "{}",
        run.stderr
    );
    assert!(
        kind_nodes(&cluster).is_empty(),
        "{:?}",
        kind_nodes(&cluster)
    );
    assert!(!kind_clusters().contains(&cluster));
    assert!(
        state(&ws)["cluster"].get("creating").is_none(),
        "{}",
        state(&ws)
    );

    // Killed outright: kind goes on alone. The next `up` stops it, deletes what it made and
    // makes the cluster again.
    let mut up = Spawned::start(&workspace_args(&ws, &["up"]), &env);
    up.wait_for_line(&format!("Cluster kind-{cluster}"), Duration::from_secs(60));
    wait_for_nodes(&cluster, Duration::from_secs(60));
    up.signal(Signal::KILL);
    let killed = up.finish(Duration::from_secs(10));
    assert_eq!(killed.code, -1, "not killed: {}", killed.stderr);
    assert_eq!(state(&ws)["cluster"]["creating"]["name"], cluster.as_str());
    let status = ws.run(&["status"]);
    status.assert_code(10);
    assert!(status.stdout.contains("half-made"), "{}", status.stdout);
    let plan = ws.run(&["up", "--dry-run", "-o", "json"]);
    plan.assert_code(0);
    assert!(
        plans(&plan.json())["cluster"]
            .iter()
            .any(|p| p.starts_with(&format!("delete the half-made cluster kind-{cluster}"))),
        "{}",
        plan.stdout
    );
    let started = Instant::now();
    let recovered = ws.run_env(&["up", "-o", "json", "--timeout", "180s"], &env);
    eprintln!(
        "recovery after a killed create: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    recovered.assert_code(0);
    let summary = recovered.json();
    assert_action(
        &summary,
        "cluster",
        "created",
        "deleted the half-made cluster",
    );
    ws.run(&["status"]).assert_code(0);
    assert!(state(&ws)["cluster"].get("creating").is_none());

    // Down: this workspace's cluster and registry go; the images stay unless purged.
    let down = ws.run(&["down", "-o", "json"]);
    down.assert_code(0);
    let report = down.json();
    assert_eq!(report["cluster"], "deleted");
    assert!(
        report["registry"]
            .as_str()
            .unwrap()
            .contains("images kept on volume"),
        "{report}"
    );
    assert!(kind_nodes(&cluster).is_empty());
    assert!(containers_named(&ws.registry).is_empty());
    let volume = format!("{}-images", ws.registry);
    assert_eq!(
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{volume}$")
        ]),
        volume
    );
    ws.run(&["down", "--purge"]).assert_code(0);
    assert!(
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{volume}$")
        ])
        .is_empty()
    );
}

#[test]
fn a_second_workspace_lives_beside_the_first_and_touches_only_its_own() {
    let lab = shared_lab();
    let bystander = Bystander::container("kl-bystander");
    let network = BystanderNetwork::new("kl-bystander-net");

    // A third workspace with the shared lab's names: refused both ways, nothing touched.
    let clash = TestWorkspace::new();
    clash.write_manifest(&manifest(
        &lab.cluster,
        &lab.registry,
        &lab.port.to_string(),
    ));
    let up = clash.run(&["up"]);
    up.assert_code(5);
    assert!(
        up.stderr.contains(&format!(
            "was made by the kindlab workspace at {}",
            lab.dir.display()
        )),
        "{}",
        up.stderr
    );
    let down = clash.run(&["down"]);
    down.assert_code(5);
    assert!(
        down.stderr.contains(&format!(
            "help: run `kindlab down` in {}",
            lab.dir.display()
        )),
        "{}",
        down.stderr
    );
    let status = clash.run(&["status"]);
    status.assert_code(10);
    assert!(status.stdout.contains("not ours"), "{}", status.stdout);
    // (Tests that break the shared lab on purpose hold this lock while it is broken.)
    {
        let _dev = lab.lock_dev();
        lab.run(&["status"]).assert_code(0);
    }

    // Workspace B: its own cluster and a registry on a port chosen for it.
    let _slot = own_cluster_slot();
    let cluster = unique("kl-b");
    let b = TestWorkspace::with_cluster(&cluster);
    let _guard = KindClusterGuard(cluster.clone());
    b.write_manifest(&manifest(&cluster, &b.registry, "auto"));
    overlay_names_bare_image(&b);
    let env = node_image_env();
    let up = b.run_env(&["up", "-o", "json", "--timeout", "180s"], &env);
    up.assert_code(0);
    let port = state_port(&b);
    assert_ne!(port, lab.port);
    assert_eq!(
        docker(&["port", &b.registry, "5000/tcp"]),
        format!("127.0.0.1:{port}")
    );
    assert!(
        up.json()["images"][0]["reference"]
            .as_str()
            .unwrap()
            .starts_with(&format!("localhost:{port}/orders-api:")),
        "{}",
        up.stdout
    );
    b.run(&["status"]).assert_code(0);
    let plan = b.run(&["up", "--dry-run", "-o", "json"]);
    assert_eq!(plan.json()["empty"], true, "{}", plan.stdout);
    let again = b.run_env(&["up"], &env);
    again.assert_code(0);
    assert!(again.stdout.contains("nothing changed"), "{}", again.stdout);
    assert_eq!(state_port(&b), port, "the chosen port is stable");

    // Wiring drift on B's own node and network: named by status and --dry-run, then
    // repaired exactly as planned.
    let node = format!("{cluster}-control-plane");
    let in_cluster = format!("{}:5000", b.registry);
    docker(&[
        "exec",
        &node,
        "rm",
        &format!("/etc/containerd/certs.d/{in_cluster}/hosts.toml"),
        &format!("/etc/containerd/certs.d/localhost:{port}/hosts.toml"),
    ]);
    docker(&["network", "disconnect", "kind", &b.registry]);
    let status = b.run(&["status", "-o", "json"]);
    status.assert_code(10);
    let rows = status.json()["rows"].clone();
    let state_of = |component: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["component"] == component)
            .map(|r| r["state"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no row {component}: {rows}"))
    };
    assert_eq!(state_of(&format!("node {node}")), "hosts.toml missing");
    assert_eq!(state_of("registry network"), "not connected");
    let planned = plans(&b.run(&["up", "--dry-run", "-o", "json"]).json());
    assert_eq!(
        planned["wire-nodes"],
        vec![
            format!("write hosts.toml for localhost:{port} in {node}"),
            format!("write hosts.toml for {in_cluster} in {node}"),
            format!("connect {} to the kind network", b.registry),
        ]
    );
    let repaired = b.run_env(&["up", "-o", "json", "--timeout", "180s"], &env);
    repaired.assert_code(0);
    assert_eq!(plans(&repaired.json()), planned, "{}", repaired.stdout);
    b.run(&["status"]).assert_code(0);
    // (Tests that break the shared lab on purpose hold this lock while it is broken.)
    {
        let _dev = lab.lock_dev();
        lab.run(&["status"]).assert_code(0);
    }

    // Another cluster pulling from B's registry keeps it through B's `down`.
    let lab_node = format!("{}-control-plane", lab.cluster);
    let wired = format!("/etc/containerd/certs.d/localhost:{port}");
    docker(&[
        "exec",
        &lab_node,
        "sh",
        "-c",
        &format!(
            "mkdir -p {wired} && printf 'server = \"http://{}:5000\"\\n' > {wired}/hosts.toml",
            b.registry
        ),
    ]);
    let down = b.run(&["down", "-o", "json"]);
    docker_quiet(&["exec", &lab_node, "rm", "-rf", &wired]);
    down.assert_code(0);
    let report = down.json();
    assert_eq!(report["cluster"], "deleted");
    assert_eq!(
        report["registry"],
        format!("kept: kind cluster {} still pulls from it", lab.cluster).as_str()
    );
    assert_eq!(containers_named(&b.registry).len(), 1);

    let down = b.run(&["down", "-o", "json"]);
    down.assert_code(0);
    assert!(
        down.json()["registry"]
            .as_str()
            .unwrap()
            .starts_with("removed; images kept on volume"),
        "{}",
        down.stdout
    );
    assert!(containers_named(&b.registry).is_empty());
    assert!(!kind_clusters().contains(&cluster));
    // Nothing of anyone else's was touched.
    assert!(kind_clusters().contains(&lab.cluster));
    assert_eq!(containers_named(&bystander.0).len(), 1);
    assert_eq!(
        docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{}$", network.0)
        ])
        .lines()
        .count(),
        1
    );
    // (Tests that break the shared lab on purpose hold this lock while it is broken.)
    {
        let _dev = lab.lock_dev();
        lab.run(&["status"]).assert_code(0);
    }
    b.run(&["down", "--purge"]).assert_code(0);
    assert!(
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{}-images$", b.registry)
        ])
        .is_empty()
    );
}

/// The steps' progress (debug) on stderr, so a test can cue on a step's detail.
const ROLLOUT_PROGRESS: &[(&str, &str)] =
    &[("KINDLAB_LOG", "kindlab=warn,kindlab::ui::status=debug")];

/// The rollout wait's first report of the sample's Deployment (`dev/orders-api: 0 of 1 ...`):
/// `up` is watching the rollout.
const ROLLOUT_WATCHED: &str = "dev/orders-api: ";

fn state_port(ws: &TestWorkspace) -> u16 {
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.path().join(".kindlab/state.json")).unwrap(),
    )
    .unwrap();
    state["registry"]["port"].as_u64().unwrap() as u16
}

#[test]
fn nodes_stopped_or_paused_mid_up_end_it_at_once_and_the_next_up_recovers() {
    // A cluster kind made on its own, as kind's local-registry guide makes it (containerd's
    // config_path set): kindlab uses it only when told to.
    let _slot = own_cluster_slot();
    let cluster = unique("kl-f");
    let _guard = KindClusterGuard(cluster.clone());
    let config = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/kind-config.yaml"),
    )
    .unwrap()
    .replace("{{name}}", &cluster);
    let mut create = std::process::Command::new("kind");
    create.args(["create", "cluster", "--config", "-"]);
    if let Ok(image) = std::env::var("KINDLAB_TEST_NODE_IMAGE") {
        create.args(["--image", &image]);
    }
    create.stdin(std::process::Stdio::piped());
    create.stdout(std::process::Stdio::piped());
    create.stderr(std::process::Stdio::piped());
    let mut child = create.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), config.as_bytes()).unwrap();
    let made = child.wait_with_output().unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let node = format!("{cluster}-control-plane");
    let context = format!("kind-{cluster}");
    let ws = TestWorkspace::with_cluster(&cluster);
    ws.slow_readiness(20);

    let refused = ws.run(&["up"]);
    refused.assert_code(5);
    assert!(
        refused.stderr.contains(&format!(
            "error: cluster kind-{cluster} was made by something other than kindlab"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("help: `kindlab up --adopt`"),
        "{}",
        refused.stderr
    );
    ws.run(&["down"]).assert_code(5);
    assert_eq!(kind_nodes(&cluster), vec![node.clone()]);

    // Stopped while `up` waits for the rollout.
    let mut up = Spawned::start(
        &workspace_args(&ws, &["up", "--adopt", "--timeout", "180s"]),
        ROLLOUT_PROGRESS,
    );
    up.wait_for_line(ROLLOUT_WATCHED, Duration::from_secs(120));
    docker(&["stop", &node]);
    // `docker stop` returns once the node has stopped (systemd takes a few seconds).
    let stopped_at = Instant::now();
    let run = up.finish(Duration::from_secs(60));
    eprintln!(
        "up ended {:.1}s after the node stopped",
        stopped_at.elapsed().as_secs_f64()
    );
    run.assert_code(11);
    assert!(
        run.stderr.contains(&format!(
            "error: node {node} of cluster kind-{cluster} is exited; it was running when kindlab started"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("help: run `kindlab up` again: it starts"),
        "{}",
        run.stderr
    );
    let started = Instant::now();
    let recovered = ws.run(&["up", "-o", "json", "--timeout", "240s"]);
    eprintln!(
        "recovery after a node stopped mid-up: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    recovered.assert_code(0);
    assert_action(
        &recovered.json(),
        "cluster",
        "repaired",
        &format!("started stopped nodes {node}"),
    );

    // Paused while `up` waits for a rollout.
    kubectl(
        &context,
        &["-n", "dev", "rollout", "restart", "deployment/orders-api"],
    );
    let mut up = Spawned::start(
        &workspace_args(&ws, &["up", "--timeout", "180s"]),
        ROLLOUT_PROGRESS,
    );
    up.wait_for_line(ROLLOUT_WATCHED, Duration::from_secs(120));
    docker(&["pause", &node]);
    let run = up.finish(Duration::from_secs(60));
    run.assert_code(11);
    assert!(
        run.stderr.contains(&format!(
            "error: node {node} of cluster kind-{cluster} is paused"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("it unpauses {node}")),
        "{}",
        run.stderr
    );
    let started = Instant::now();
    let recovered = ws.run(&["up", "-o", "json", "--timeout", "240s"]);
    eprintln!(
        "recovery after a node paused mid-up: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    recovered.assert_code(0);
    assert_action(
        &recovered.json(),
        "cluster",
        "repaired",
        &format!("unpaused paused nodes {node}"),
    );
    ws.run(&["status"]).assert_code(0);

    // Restarted by the engine, not by kindlab (a reboot, an engine restart: the node's
    // restart policy): the node runs before its API server answers, and `up` waits for it
    // instead of failing on the first call.
    docker(&["restart", "-t", "0", &node]);
    let after_restart = ws.run(&["up", "-o", "json", "--timeout", "240s"]);
    after_restart.assert_code(0);
    assert_action(
        &after_restart.json(),
        "cluster",
        "reused",
        "API server answered after",
    );

    // Down leaves the adopted cluster as it found it, and this workspace's registry too:
    // that cluster still pulls from it.
    let down = ws.run(&["down", "-o", "json"]);
    down.assert_code(0);
    let report = down.json();
    assert!(
        report["cluster"]
            .as_str()
            .unwrap()
            .starts_with("kept: adopted"),
        "{report}"
    );
    assert_eq!(
        report["registry"],
        format!("kept: kind cluster {cluster} still pulls from it").as_str()
    );
    assert_eq!(kind_nodes(&cluster), vec![node]);
    assert_eq!(containers_named(&ws.registry).len(), 1);
}
