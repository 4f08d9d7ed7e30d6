//! `kindlab build`: images built through the Engine API, pushed, and checked by digest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;

#[test]
fn build_pushes_verifies_the_digest_and_skips_when_warm() {
    let ws = TestWorkspace::new();
    ws.run(&["registry", "up"]).assert_code(0);

    let cold = ws.run(&["build", "-o", "json"]);
    cold.assert_code(0);
    let image = &cold.json()["images"][0];
    assert_eq!(image["built"], true);
    let reference = image["reference"].as_str().unwrap().to_string();
    let digest = image["digest"].as_str().unwrap().to_string();
    assert!(
        reference.starts_with(&format!("localhost:{}/orders-api:", ws.port)),
        "{reference}"
    );
    assert!(digest.starts_with("sha256:"), "{digest}");
    // Independently of kindlab: the engine's RepoDigest for the pushed tag is the same.
    let repo_digests = docker(&[
        "image",
        "inspect",
        "-f",
        "{{json .RepoDigests}}",
        &reference,
    ]);
    assert!(repo_digests.contains(&digest), "{repo_digests} vs {digest}");

    let warm = ws.run(&["build", "-o", "json"]);
    warm.assert_code(0);
    let again = &warm.json()["images"][0];
    assert_eq!(
        again["built"], false,
        "an unchanged workspace is not rebuilt"
    );
    assert_eq!(again["reference"], reference.as_str());
    assert_eq!(again["digest"], digest.as_str());

    // Files .dockerignore excludes do not change the tag; real inputs do.
    std::fs::write(ws.app_dir().join("README.md"), "edited").unwrap();
    let ignored = ws.run(&["build", "-o", "json"]);
    assert_eq!(ignored.json()["images"][0]["built"], false);
    std::fs::write(ws.app_dir().join("VERSION"), "2.0.0\n").unwrap();
    let changed = ws.run(&["build", "-o", "json"]);
    changed.assert_code(0);
    let changed_image = &changed.json()["images"][0];
    assert_eq!(changed_image["built"], true);
    assert_ne!(changed_image["reference"], reference.as_str());
}

#[test]
fn a_broken_dockerfile_reports_the_failing_step_and_its_output() {
    let ws = TestWorkspace::new();
    ws.run(&["registry", "up"]).assert_code(0);
    std::fs::write(
        ws.app_dir().join("Dockerfile"),
        "FROM busybox:1.36\nRUN echo about-to-fail && exit 3\n",
    )
    .unwrap();
    let run = ws.run(&["build"]);
    run.assert_code(1);
    run.assert_error(
        "error: building orders-api failed at [2/2] RUN echo about-to-fail && exit 3: <any>: exit code: 3\n\
             help: fix that Dockerfile step (its output is above), then run the command again",
    );
    assert!(
        run.stderr.contains("| about-to-fail"),
        "the step's output is shown: {}",
        run.stderr
    );
}

#[test]
fn building_an_unknown_image_lists_the_known_ones() {
    let ws = TestWorkspace::new();
    let run = ws.run(&["build", "payments"]);
    run.assert_code(3).assert_error(
        "error: no image named \"payments\" in <tmp>/kindlab.yaml\n\
             help: use one of: orders-api",
    );
}
