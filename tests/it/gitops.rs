//! GitOps mode on a real kind cluster with the real controllers (Flux's source- and
//! kustomize-controller, built offline by .ci/offline-images/gitops.sh) and a real Git
//! server: `up` from nothing, a pushed commit synced, a bad one failing with the
//! controller's own error, `git revert` + `git push` fixing it, a hand-made `kubectl set
//! image` undone by the controller, `down` removing it all. One cluster of its own (GitOps
//! mode changes who deploys `dev`, so it cannot be the shared lab): one scenario, in order, whose checks that gate no later step are soft.

use std::time::{Duration, Instant};

use crate::support::*;

fn gitops_manifest(ws: &TestWorkspace) -> String {
    format!(
        "{}gitops:\n  enabled: true\n",
        manifest(&ws.cluster, &ws.registry, &ws.port.to_string())
    )
}

fn image_of(context: &str) -> String {
    kubectl(
        context,
        &[
            "-n",
            "dev",
            "get",
            "deploy/orders-api",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    )
}

#[test]
fn the_gitops_loop_push_sync_fail_revert_and_a_hand_edit_undone() {
    let _slot = own_cluster_slot();
    let ws = TestWorkspace::new();
    let _cluster = KindClusterGuard(ws.cluster.clone());
    let server = format!("{}-git", ws.cluster);
    let _server = Bystander(server.clone());
    ws.write_manifest(&gitops_manifest(&ws));
    commit_all(ws.path(), "GitOps mode");
    let context = format!("kind-{}", ws.cluster);
    let env = node_image_env();
    // Checks that gate no later step are soft: a failed one hides none of the others.
    let mut checks = Checks::new();

    // A `kindlab` remote the user made is theirs: refused before anything is made.
    git(
        ws.path(),
        &["remote", "add", "kindlab", "git@example.org:team/app.git"],
    );
    let refused = ws.run_env(&["up", "--dry-run"], &env);
    refused.assert_code(5).assert_error(
        "error: the workspace's git remote \"kindlab\" points at git@example.org:team/app.git, not at kindlab's Git server\n\
         help: kindlab needs the remote name \"kindlab\" for the lab's Git server: rename yours (`git remote rename kindlab NAME`), then run again",
    );
    git(ws.path(), &["remote", "remove", "kindlab"]);
    // The dry run plans the gitops action, not kindlab's own apply of the overlay.
    let plan = ws.run_env(&["up", "--dry-run", "-o", "json"], &env);
    plan.assert_code(0);
    checks.soft("up --dry-run plans the gitops action", || {
        let plan = plan.json();
        let actions: Vec<&str> = plan["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert!(actions.contains(&"gitops"), "{plan}");
        assert!(!actions.contains(&"deploy"), "{plan}");
    });

    // up from nothing: the server, the controllers, the remote, the push, the sync.
    let up = ws.run_env(&["--output", "json", "up", "--timeout", "300s"], &env);
    assert_eq!(
        up.code, 0,
        "up failed\nstdout:\n{}\nstderr:\n{}",
        up.stdout, up.stderr
    );
    checks.soft(
        "up makes the GitOps loop and the controller applies HEAD",
        || {
            let summary = up.json();
            let gitops = action(&summary, "gitops");
            assert_eq!(gitops["outcome"], "created", "{gitops}");
            let head = git(ws.path(), &["rev-parse", "HEAD"]);
            let applied = kubectl(
                &context,
                &[
                    "-n",
                    "flux-system",
                    "get",
                    "kustomization/kindlab",
                    "-o",
                    "jsonpath={.status.lastAppliedRevision}",
                ],
            );
            assert!(
                applied.ends_with(head.trim()),
                "applied {applied}, HEAD {head}"
            );
            assert_eq!(
                kubectl(
                    &context,
                    &[
                        "-n",
                        "dev",
                        "get",
                        "deploy/orders-api",
                        "-o",
                        "jsonpath={.metadata.labels.kustomize\\.toolkit\\.fluxcd\\.io/name}"
                    ]
                ),
                "kindlab",
                "the controller, not kindlab, applied the overlay"
            );
        },
    );
    checks.soft("status shows the sync", || {
        let status = ws.run_env(&["--output", "json", "status"], &env);
        let rows = status.json()["rows"].clone();
        let sync_row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["component"] == "gitops flux-system/kindlab")
            .unwrap_or_else(|| panic!("no gitops row: {rows}"))
            .clone();
        assert_eq!(sync_row["state"], "synced", "{sync_row}");
        assert_eq!(status.code, 0, "{}", status.stdout);
    });

    // A pushed commit with a tag that does not exist: the sync fails with the controller's
    // own words, and the pod shows ImagePullBackOff.
    let kustomization = ws.path().join("deploy/overlays/dev/kustomization.yaml");
    let good = std::fs::read_to_string(&kustomization).unwrap();
    let tag_line = good
        .lines()
        .find(|l| l.trim_start().starts_with("newTag:"))
        .unwrap();
    std::fs::write(
        &kustomization,
        good.replace(tag_line, "    newTag: no-such-tag"),
    )
    .unwrap();
    commit_all(ws.path(), "bump orders-api to a tag that was never pushed");
    let bad = git(ws.path(), &["rev-parse", "HEAD"]);
    git(ws.path(), &["push", "-q", "kindlab"]);
    let pushed_at = Instant::now();
    let sync = ws.run_env(&["sync", "--timeout", "200"], &env);
    assert_ne!(
        sync.code, 0,
        "a sync of a bad tag succeeded: {}",
        sync.stdout
    );
    checks.soft(
        "the failed sync is named with the controller's words",
        || {
            sync.assert_error(
                "error: the controller did not sync: <any>orders-api<any>\n\
                     help: fix it in Git (commit, `git push kindlab`), then `kindlab sync`; `kubectl -n flux-system describe kustomization/kindlab` shows the controller's view",
            );
        },
    );
    checks.soft("the pod waits for the missing tag", || {
        let waiting = kubectl(
            &context,
            &[
                "-n",
                "dev",
                "get",
                "pods",
                "-o",
                "jsonpath={.items[*].status.containerStatuses[*].state.waiting.reason}",
            ],
        );
        assert!(
            waiting.contains("ImagePullBackOff") || waiting.contains("ErrImagePull"),
            "pods waiting for: {waiting:?}"
        );
        assert!(image_of(&context).ends_with(":no-such-tag"));
    });

    // The fix is a commit too: `git revert` + `git push`, then `kindlab sync`.
    git(ws.path(), &["revert", "--no-edit", bad.trim()]);
    git(ws.path(), &["push", "-q", "kindlab"]);
    let sync = ws.run_env(&["--output", "json", "sync", "--timeout", "200"], &env);
    assert_eq!(
        sync.code, 0,
        "sync after the revert failed: {}",
        sync.stderr
    );
    checks.soft(
        "the sync after the revert applies HEAD and rolls out",
        || {
            let report = sync.json();
            let head = git(ws.path(), &["rev-parse", "HEAD"]);
            assert!(
                report["applied"].as_str().unwrap().ends_with(head.trim()),
                "{report}"
            );
            assert_eq!(report["rolled_out"], true);
        },
    );
    eprintln!(
        "push of the bad tag → revert synced: {:?}",
        pushed_at.elapsed()
    );
    let good_image = image_of(&context);
    assert!(!good_image.ends_with(":no-such-tag"));

    // A hand-made `kubectl set image` is undone by the controller (server-side apply on its
    // interval, or at once on a sync).
    kubectl(
        &context,
        &[
            "-n",
            "dev",
            "set",
            "image",
            "deploy/orders-api",
            "api=busybox:1.36",
        ],
    );
    assert_eq!(image_of(&context), "busybox:1.36");
    let sync = ws.run_env(&["sync", "--timeout", "200"], &env);
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    let deadline = Instant::now() + Duration::from_secs(90);
    while image_of(&context) != good_image && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
    }
    checks.soft("the controller undoes the hand edit", || {
        assert_eq!(
            image_of(&context),
            good_image,
            "the controller did not revert the hand edit"
        )
    });

    // A kubectl lab is refused in GitOps mode, saying the controller would undo it.
    checks.soft("a kubectl lab is refused in GitOps mode", || {
        let refused = ws.run_env(&["lab", "run", "bad-image-tag"], &env);
        assert_ne!(refused.code, 0, "{}", refused.stdout);
        refused.assert_error(
            "error: ConfigMap dev/orders-api-config is managed by Flux (Kustomization flux-system/kindlab): kindlab would fight it\n\
                 help: this workspace is in GitOps mode: Flux re-applies the overlay from Git every <duration> and undoes a kubectl change; change it through Git (commit, `git push kindlab`, then `kindlab sync`), or run a GitOps lab (bad-image-tag-gitops)",
        );
    });

    // The GitOps lab: the break is a pushed commit, the fix a revert pushed and synced; the
    // report has the push's way to the cluster; history is kept, not rewritten.
    let before = git(ws.path(), &["rev-list", "--count", "HEAD"]);
    let run = ws.run_env(&["lab", "run", "bad-image-tag-gitops", "-o", "json"], &env);
    assert_eq!(
        run.code, 0,
        "lab run failed\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let report = run.json();
    checks.soft(
        "the GitOps lab's report has the push's way to the cluster",
        || {
            let phases: Vec<String> = report["phases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            let at = |name: &str| {
                phases
                    .iter()
                    .position(|p| p == name)
                    .unwrap_or_else(|| panic!("no phase {name} in {phases:?}"))
            };
            assert!(
                at("break") < at("pushed")
                    && at("pushed") < at("fetched")
                    && at("fetched") <= at("applied")
                    && at("applied") < at("rolled out"),
                "{phases:?}"
            );
        },
    );
    checks.soft("history is kept: the break and its revert", || {
        let after = git(ws.path(), &["rev-list", "--count", "HEAD"]);
        assert_eq!(
            after.parse::<u32>().unwrap(),
            before.parse::<u32>().unwrap() + 2,
            "the break and its revert are two new commits"
        );
        assert!(!image_of(&context).ends_with(":nonexistent"));
    });

    // down: the server and the remote go with the cluster.
    let down = ws.run_env(&["down"], &env);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(
        containers_named(&server).is_empty(),
        "the Git server is still there"
    );
    assert!(!git(ws.path(), &["remote"]).contains("kindlab"));
}
