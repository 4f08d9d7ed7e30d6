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
fn an_interrupted_create_leaves_nothing() {
    let _slot = own_cluster_slot();
    let cluster = unique("kl-ic");
    let ws = TestWorkspace::with_cluster(&cluster);
    let _guard = KindClusterGuard(cluster.clone());
    let env = node_image_env();

    // Ctrl-C while kind is creating the cluster: kind is stopped and its cluster deleted.
    // The registry and the image, made beside the cluster and much quicker, are waited for
    // first, so what the run finished is the same every time.
    let mut up = Spawned::start(&workspace_args(&ws, &["up"]), &env);
    up.wait_for_lines(
        &[&format!("Cluster kind-{cluster}"), "✓ Image orders-api"],
        Duration::from_secs(120),
    );
    wait_for_nodes(&cluster, Duration::from_secs(60));
    let signalled = Instant::now();
    up.signal(Signal::INT);
    let run = up.finish(Duration::from_secs(60));
    eprintln!(
        "interrupted create cleaned up in {:.1}s",
        signalled.elapsed().as_secs_f64()
    );
    run.assert_code(130).assert_error(
        "error: interrupted during cluster creation; the half-made cluster kind-kl-ic-<id> was deleted; finished: registry (created), images (created); not finished: cluster, wire-nodes, deploy\n\
             help: run `kindlab up` to finish the lab (`kindlab status` shows where it stands; `kindlab down` removes what this workspace made)",
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
}

#[test]
fn a_killed_create_is_made_again_by_the_next_up_and_down_then_removes_it() {
    let _slot = own_cluster_slot();
    let cluster = unique("kl-kc");
    let ws = TestWorkspace::with_cluster(&cluster);
    let _guard = KindClusterGuard(cluster.clone());
    let env = node_image_env();
    let mut checks = Checks::new();

    // Killed outright: kind goes on alone. The next `up` stops it, deletes what it made and
    // makes the cluster again.
    let mut up = Spawned::start(&workspace_args(&ws, &["up"]), &env);
    up.wait_for_line(&format!("Cluster kind-{cluster}"), Duration::from_secs(60));
    wait_for_nodes(&cluster, Duration::from_secs(60));
    up.signal(Signal::KILL);
    let killed = up.finish(Duration::from_secs(10));
    assert_eq!(killed.code, -1, "not killed: {}", killed.stderr);
    checks.soft("the state remembers the creation", || {
        assert_eq!(state(&ws)["cluster"]["creating"]["name"], cluster.as_str())
    });
    checks.soft("status names the half-made cluster", || {
        let status = ws.run(&["status"]);
        status.assert_code(10);
        assert!(status.stdout.contains("half-made"), "{}", status.stdout);
    });
    checks.soft("the plan deletes the half-made cluster", || {
        let plan = ws.run(&["up", "--dry-run", "-o", "json"]);
        plan.assert_code(0);
        assert!(
            plans(&plan.json())["cluster"]
                .iter()
                .any(|p| p.starts_with(&format!("delete the half-made cluster kind-{cluster}"))),
            "{}",
            plan.stdout
        );
    });
    let started = Instant::now();
    let recovered = ws.run_env(&["up", "-o", "json", "--timeout", "180s"], &env);
    eprintln!(
        "recovery after a killed create: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    recovered.assert_code(0);
    checks.soft("up says it deleted the half-made cluster", || {
        assert_action(
            &recovered.json(),
            "cluster",
            "created",
            "deleted the half-made cluster",
        )
    });
    checks.soft("the lab is healthy and no creation is pending", || {
        ws.run(&["status"]).assert_code(0);
        assert!(state(&ws)["cluster"].get("creating").is_none());
    });

    // Down: this workspace's cluster and registry go; the images stay unless purged.
    let down = ws.run(&["down", "-o", "json"]);
    down.assert_code(0);
    let report = down.json();
    checks.soft("down deletes the cluster", || {
        assert_eq!(report["cluster"], "deleted");
        assert!(kind_nodes(&cluster).is_empty());
    });
    checks.soft("down removes the registry and keeps its images", || {
        assert!(
            report["registry"]
                .as_str()
                .unwrap()
                .contains("images kept on volume"),
            "{report}"
        );
        assert!(containers_named(&ws.registry).is_empty());
    });
    let volume = format!("{}-images", ws.registry);
    checks.soft("the images volume stays after down", || {
        assert!(volume_exists(&volume), "{volume} is gone")
    });
    ws.run(&["down", "--purge"]).assert_code(0);
    checks.soft("down --purge removes the images volume", || {
        assert!(!volume_exists(&volume))
    });
}

#[test]
fn a_workspace_with_the_shared_labs_names_is_refused_both_ways_and_touches_nothing() {
    let lab = shared_lab();
    let clash = TestWorkspace::new();
    clash.write_manifest(&manifest(
        &lab.cluster,
        &lab.registry,
        &lab.port.to_string(),
    ));
    let mut checks = Checks::new();
    checks.soft("up is refused", || {
        clash.run(&["up"]).assert_code(5).assert_error(
            "error: cluster kind-<lab> was made by the kindlab workspace at <target-tmp>/shared-lab\n\
                 help: give this workspace its own cluster (set cluster.name in kindlab.yaml), run `kindlab down` in the workspace that made kind-<lab>, or share it with `kindlab up --adopt`",
        );
    });
    checks.soft("down is refused", || {
        clash.run(&["down"]).assert_code(5).assert_error(
            "error: cluster kind-<lab> was made by the kindlab workspace at <target-tmp>/shared-lab, not by this workspace\n\
                 help: run `kindlab down` in <target-tmp>/shared-lab; kindlab deletes only what this workspace made",
        );
    });
    checks.soft("status says the lab is not this workspace's", || {
        let status = clash.run(&["status"]);
        status.assert_code(10);
        assert!(status.stdout.contains("not ours"), "{}", status.stdout);
    });
    // (Tests that break the shared lab on purpose hold this lock while it is broken.)
    let _dev = lab.lock_dev();
    lab.run(&["status"]).assert_code(0);
}

#[test]
fn a_second_workspace_lives_beside_the_first_and_touches_only_its_own() {
    let lab = shared_lab();
    let bystander = Bystander::container("kl-bystander");
    let network = BystanderNetwork::new("kl-bystander-net");
    let mut checks = Checks::new();

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
    checks.soft("the registry gets a port of its own", || {
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
    });
    checks.soft("a second up changes nothing and keeps the port", || {
        b.run(&["status"]).assert_code(0);
        let plan = b.run(&["up", "--dry-run", "-o", "json"]);
        assert_eq!(plan.json()["empty"], true, "{}", plan.stdout);
        let again = b.run_env(&["up"], &env);
        again.assert_code(0);
        assert!(again.stdout.contains("nothing changed"), "{}", again.stdout);
        assert_eq!(state_port(&b), port, "the chosen port is stable");
    });

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
    checks.soft("status names the drift", || {
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
    });
    let planned = plans(&b.run(&["up", "--dry-run", "-o", "json"]).json());
    checks.soft("the plan repairs the drift", || {
        assert_eq!(
            planned["wire-nodes"],
            vec![
                format!("write hosts.toml for localhost:{port} in {node}"),
                format!("write hosts.toml for {in_cluster} in {node}"),
                format!("connect {} to the kind network", b.registry),
            ]
        )
    });
    let repaired = b.run_env(&["up", "-o", "json", "--timeout", "180s"], &env);
    repaired.assert_code(0);
    checks.soft("up repairs exactly as planned", || {
        assert_eq!(plans(&repaired.json()), planned, "{}", repaired.stdout);
        b.run(&["status"]).assert_code(0);
    });
    checks.soft("the shared lab is untouched by the repair", || {
        // (Tests that break the shared lab on purpose hold this lock while it is broken.)
        let _dev = lab.lock_dev();
        lab.run(&["status"]).assert_code(0);
    });

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
    checks.soft("down keeps a registry another cluster pulls from", || {
        assert_eq!(report["cluster"], "deleted");
        assert_eq!(
            report["registry"],
            format!("kept: kind cluster {} still pulls from it", lab.cluster).as_str()
        );
        assert_eq!(containers_named(&b.registry).len(), 1);
    });

    let down = b.run(&["down", "-o", "json"]);
    down.assert_code(0);
    checks.soft("the next down removes the registry", || {
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
    });
    checks.soft("nothing of anyone else's was touched", || {
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
        let _dev = lab.lock_dev();
        lab.run(&["status"]).assert_code(0);
    });
    b.run(&["down", "--purge"]).assert_code(0);
    assert!(!volume_exists(&format!("{}-images", b.registry)));
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

    // One cluster for the whole sequence (each step starts from the one before): checks that
    // gate no later step are soft, so a failed one hides none of the others.
    let mut checks = Checks::new();

    checks.soft("up without --adopt is refused", || {
        ws.run(&["up"]).assert_code(5).assert_error(
            "error: cluster kind-kl-f-<id> was made by something other than kindlab\n\
                 help: `kindlab up --adopt` uses it as it is (kindlab never deletes an adopted cluster), or set cluster.name in kindlab.yaml to another name",
        );
    });
    checks.soft(
        "down without --adopt is refused and touches nothing",
        || {
            ws.run(&["down"]).assert_code(5).assert_error(
                "error: cluster kind-kl-f-<id> was made by something other than kindlab, not by this workspace\n\
                     help: kindlab deletes only clusters this workspace made; `kind delete cluster --name kl-f-<id>` deletes it if you mean to",
            );
            assert_eq!(kind_nodes(&cluster), vec![node.clone()]);
        },
    );

    // Stopped while `up` waits for the rollout (of the sample's new Deployment).
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
    checks.soft("a stopped node is named with the fix", || {
        run.assert_error(
            "error: node kl-f-<id>-control-plane of cluster kind-kl-f-<id> is exited; it was running when kindlab started\n\
                 help: run `kindlab up` again: it starts kl-f-<id>-control-plane (or `docker start kl-f-<id>-control-plane`)",
        );
    });
    let started = Instant::now();
    let recovered = ws.run(&["up", "-o", "json", "--timeout", "240s"]);
    eprintln!(
        "recovery after a node stopped mid-up: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    recovered.assert_code(0);
    checks.soft("the next up starts the stopped node", || {
        assert_action(
            &recovered.json(),
            "cluster",
            "repaired",
            &format!("started stopped nodes {node}"),
        )
    });

    // Paused while `up` waits for a rollout (one `rollout restart` makes).
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
    checks.soft("a paused node is named with the fix", || {
        run.assert_error(
            "error: node kl-f-<id>-control-plane of cluster kind-kl-f-<id> is paused; it was running when kindlab started\n\
                 help: run `kindlab up` again: it unpauses kl-f-<id>-control-plane (or `docker unpause kl-f-<id>-control-plane`)",
        );
    });
    let started = Instant::now();
    let recovered = ws.run(&["up", "-o", "json", "--timeout", "240s"]);
    eprintln!(
        "recovery after a node paused mid-up: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    recovered.assert_code(0);
    checks.soft("the next up unpauses the node", || {
        assert_action(
            &recovered.json(),
            "cluster",
            "repaired",
            &format!("unpaused paused nodes {node}"),
        );
        ws.run(&["status"]).assert_code(0);
    });

    // Restarted by the engine, not by kindlab (a reboot, an engine restart: the node's
    // restart policy): the node runs before its API server answers, and `up` waits for it
    // instead of failing on the first call.
    docker(&["restart", "-t", "0", &node]);
    let after_restart = ws.run(&["up", "-o", "json", "--timeout", "240s"]);
    after_restart.assert_code(0);
    checks.soft("up waits for a restarted node's API server", || {
        assert_action(
            &after_restart.json(),
            "cluster",
            "reused",
            "API server answered after",
        )
    });

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
