//! `kindlab bundle create|load` for real: a bundle made from the shared lab on the machine's
//! engine, loaded into an empty engine that has no network at all (its own network
//! namespace, loopback only), where `up` and a lab then run. Damaged bundles are refused
//! before anything is loaded, and a load that fails half-way is undone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::Value;

use crate::isolated_engine::IsolatedEngine;
use crate::support::*;

/// One bundle per test run, made from the shared lab (whose workspace names no node image,
/// so the bundle takes the image its cluster runs and marks it as `up`'s default).
struct Made {
    file: PathBuf,
    report: Value,
}

fn bundle() -> &'static Made {
    static MADE: OnceLock<Made> = OnceLock::new();
    MADE.get_or_init(|| {
        let lab = shared_lab();
        let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("it-bundle.tar");
        let _ = std::fs::remove_file(&file);
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_kindlab"))
            .args(["--workspace", lab.dir.to_str().unwrap()])
            .args(["bundle", "create", file.to_str().unwrap(), "-o", "json"])
            .env_remove("KINDLAB_NODE_IMAGE")
            .env_remove("KINDLAB_WORKSPACE")
            .output()
            .unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        run.assert_code(0);
        let report = run.json();
        eprintln!(
            "[bundle] create: {} bytes ({} unpacked) in {:.1}s",
            report["size"],
            report["unpacked_size"],
            started.elapsed().as_secs_f64()
        );
        Made { file, report }
    })
}

fn image_entries(report: &Value) -> Vec<Value> {
    report["manifest"]["images"].as_array().unwrap().clone()
}

/// The bundle's node image: its `reference` and its tar `member`.
fn node_entry(report: &Value) -> Value {
    image_entries(report)
        .into_iter()
        .find(|i| i["role"] == "node")
        .unwrap()
}

/// A copy of the shared lab's workspace, with a cluster name of its own.
fn copy_workspace(to: &Path, cluster: &str) {
    let from = shared_lab().dir.clone();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
    let manifest = to.join("kindlab.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replace(
        &format!("name: {}\n", shared_lab().cluster),
        &format!("name: {cluster}\n"),
    );
    std::fs::write(&manifest, text).unwrap();
}

#[test]
fn the_bundle_holds_what_the_workspace_needs_with_checksums() {
    let made = bundle();
    let manifest = &made.report["manifest"];
    assert_eq!(manifest["format"], "kindlab-bundle/v1");
    assert!(manifest["kind_version"].as_str().unwrap().starts_with('v'));
    assert_eq!(manifest["default_node_image"], true, "{manifest}");
    let roles: Vec<&str> = manifest["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["registry", "base", "app", "node"], "{manifest}");
    // Each image's ID is the one the machine's engine has (docker's own answer).
    for image in image_entries(&made.report) {
        let reference = image["reference"].as_str().unwrap();
        assert_eq!(
            docker(&["image", "inspect", "-f", "{{.Id}}", reference]),
            image["id"].as_str().unwrap(),
            "{reference}"
        );
        assert_eq!(image["member_sha256"].as_str().unwrap().len(), 64);
    }
    // The file is a plain tar: any tar lists it, manifest last.
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&made.file)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    assert_eq!(listing.lines().last(), Some("manifest.json"), "{listing}");
    assert_eq!(listing.lines().count(), 5, "{listing}");
    let base = &image_entries(&made.report)[1];
    assert_eq!(base["reference"], "busybox:1.36");
    assert_eq!(base["used_by"], serde_json::json!(["orders-api"]));
}

#[test]
fn a_bundle_with_a_flipped_byte_is_refused_before_anything_is_loaded() {
    let made = bundle();
    let engine = IsolatedEngine::start(&format!("klb-flip-{}", std::process::id()));
    let scratch = tempfile::tempdir().unwrap();
    let mut changed = std::fs::read(&made.file).unwrap();
    // One flipped byte in the node image's member.
    let at = changed.len() / 2;
    changed[at] ^= 0x01;
    let flipped = scratch.path().join("flipped.tar");
    std::fs::write(&flipped, &changed).unwrap();
    let run = engine.kindlab(&["bundle", "load", flipped.to_str().unwrap()]);
    let node = node_entry(&made.report);
    run.assert_code(3).assert_error(&format!(
        "error: <tmp>/flipped.tar is not a usable bundle: member {} ({}) has sha256 <hex>, the manifest says <hex>\n\
         help: nothing was loaded; copy <tmp>/flipped.tar again from a good copy (compare `sha256sum`), or make a new one with `kindlab bundle create`",
        node["member"].as_str().unwrap(),
        node["reference"].as_str().unwrap(),
    ));
    assert!(
        engine.image_ids().is_empty(),
        "a refused bundle loaded images"
    );
}

#[test]
fn a_truncated_bundle_is_refused_before_anything_is_loaded() {
    let made = bundle();
    let engine = IsolatedEngine::start(&format!("klb-cut-{}", std::process::id()));
    let scratch = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&made.file).unwrap();
    // Cut short, as an interrupted copy leaves it.
    let truncated = scratch.path().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let run = engine.kindlab(&["bundle", "load", truncated.to_str().unwrap(), "-o", "json"]);
    // The cut falls in the node image's member (by far the largest).
    let node = node_entry(&made.report);
    let member = node["member"].as_str().unwrap();
    let starts_at = tar::Archive::new(std::fs::File::open(&made.file).unwrap())
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|entry| entry.path().unwrap().to_str() == Some(member))
        .unwrap()
        .raw_file_position();
    run.assert_code(3).assert_error(&format!(
        "error: <tmp>/truncated.tar is not a usable bundle: member {member} ends after {} of its {} bytes: the file is truncated\n\
         help: nothing was loaded; copy <tmp>/truncated.tar again from a good copy (compare `sha256sum`), or make a new one with `kindlab bundle create`",
        bytes.len() as u64 / 3 - starts_at,
        node["member_size"],
    ));
    assert!(engine.image_ids().is_empty());
}

#[test]
fn a_node_image_the_engine_cannot_load_undoes_the_whole_load() {
    let made = bundle();
    let engine = IsolatedEngine::start(&format!("klb-bad-{}", std::process::id()));
    let scratch = tempfile::tempdir().unwrap();
    // Checksums that match, but a node image the engine cannot load: the three images
    // loaded before it are taken out again.
    let broken = scratch.path().join("broken.tar");
    rewrite_with_broken_node_image(&made.file, &broken);
    let run = engine.kindlab(&["bundle", "load", broken.to_str().unwrap()]);
    run.assert_code(1).assert_error(&format!(
        "error: the engine did not load {}: <any>\n\
         help: nothing was left half-loaded; check the engine's disk (`docker system df`) and run the load again",
        node_entry(&made.report)["reference"].as_str().unwrap(),
    ));
    assert!(
        engine.image_ids().is_empty(),
        "a failed load left images behind: {:?}",
        engine.docker(&["images", "-a"])
    );
}

/// Copies a bundle, replacing the node image's member by a zstd stream of bytes that are
/// no image, with the manifest's size and checksum updated to match.
fn rewrite_with_broken_node_image(from: &Path, to: &Path) {
    use sha2::Digest;
    let junk = zstd::encode_all(&b"this is not a docker save stream"[..], 3).unwrap();
    let mut archive = tar::Archive::new(std::fs::File::open(from).unwrap());
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        members.push((name, data));
    }
    let (_, manifest_bytes) = members.pop().unwrap();
    let mut manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let node = manifest["images"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["role"] == "node")
        .unwrap();
    let node_member = node["member"].as_str().unwrap().to_string();
    node["member_size"] = junk.len().into();
    node["member_sha256"] = sha2::Sha256::digest(&junk)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into();
    let mut builder = tar::Builder::new(std::fs::File::create(to).unwrap());
    for (name, data) in members {
        let data = if name == node_member {
            junk.clone()
        } else {
            data
        };
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, &name, &data[..]).unwrap();
    }
    let text = serde_json::to_vec(&manifest).unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "manifest.json", &text[..])
        .unwrap();
    builder.finish().unwrap();
}

/// One isolated engine for the whole sequence (each step needs the one before): checks
/// that gate no later step are soft, so a failed one hides none of the others.
#[test]
fn after_a_load_up_and_a_lab_run_with_no_network() {
    let made = bundle();
    let engine = IsolatedEngine::start(&format!("klb-rt-{}", std::process::id()));
    let ws = tempfile::tempdir().unwrap();
    let cluster = format!("klb-rt-{}", std::process::id());
    copy_workspace(ws.path(), &cluster);
    let w = ws.path().to_str().unwrap();
    let file = made.file.to_str().unwrap();
    let mut checks = Checks::new();

    // The empty engine cannot pull kind's node image: kindlab says what to run instead.
    let run = engine.kindlab(&["--workspace", w, "up", "--timeout", "60s"]);
    checks.soft("up before the load says to load the bundle", || {
        // The node image kind defaults to (that of the kind on PATH).
        run.assert_code(4).assert_error(
            "error: the kind node image <any> is not in the Docker engine and cannot be pulled\n\
             help: load it from a bundle made where it can be pulled (`kindlab bundle load FILE`, made by `kindlab bundle create`), or build one offline (`make offline-images`) and pass it with --node-image",
        );
    });
    assert!(engine.image_ids().is_empty());

    // Load: every image, each with the ID the bundle was made with; the app image also in
    // the workspace's registry.
    let started = Instant::now();
    let run = engine.kindlab(&["--workspace", w, "bundle", "load", file, "-o", "json"]);
    run.assert_code(0);
    let loaded = run.json();
    eprintln!(
        "[bundle] load: verify {}s, load {}s, total {:.1}s",
        loaded["verify_duration"],
        loaded["load_duration"],
        started.elapsed().as_secs_f64()
    );
    checks.soft(
        "every image is loaded with the ID the bundle was made with",
        || {
            for image in image_entries(&made.report) {
                let reference = image["reference"].as_str().unwrap();
                assert_eq!(
                    engine.image_id(reference).as_deref(),
                    image["id"].as_str(),
                    "{reference} in the isolated engine"
                );
            }
            assert!(
                loaded["images"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|i| i["state"] == "loaded"),
                "{loaded}"
            );
        },
    );
    let app = image_entries(&made.report)
        .into_iter()
        .find(|i| i["role"] == "app")
        .unwrap();
    checks.soft("the app image is pushed to the registry", || {
        assert_eq!(loaded["pushed"][0], app["reference"], "{loaded}")
    });
    let alias = loaded["node_alias"].as_str().unwrap().to_string();
    checks.soft("the node image gets its alias", || {
        let node = node_entry(&made.report);
        assert_eq!(engine.image_id(&alias).as_deref(), node["id"].as_str());
    });

    checks.soft("a second load finds everything in place", || {
        let run = engine.kindlab(&["--workspace", w, "bundle", "load", file, "-o", "json"]);
        run.assert_code(0);
        let again = run.json();
        assert!(
            again["images"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["state"] == "present"),
            "{again}"
        );
    });

    checks.soft("doctor --workshop agrees the bundle is loaded", || {
        let run = engine.kindlab(&[
            "--workspace",
            w,
            "doctor",
            "--workshop",
            "--bundle",
            file,
            "-o",
            "json",
        ]);
        let doctor = run.json();
        let bundle_check = doctor["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "bundle")
            .cloned()
            .unwrap_or_else(|| panic!("no bundle check: {doctor}"));
        assert_eq!(bundle_check["ok"], true, "{doctor}");
    });

    // up with no network: the node image is the loaded one, the app image comes from the
    // registry the load filled (no build: its base image is there, but it is not needed).
    let started = Instant::now();
    let run = engine.kindlab(&["--workspace", w, "up", "-o", "json", "--timeout", "180s"]);
    run.assert_code(0);
    let up = run.json();
    eprintln!(
        "[bundle] up after load: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    checks.soft(
        "up uses the loaded node image and the pushed app image",
        || {
            let cluster_action = up["actions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["action"] == "cluster")
                .unwrap();
            assert!(
                cluster_action["details"].to_string().contains(&alias),
                "{cluster_action}"
            );
            assert_eq!(up["images"][0]["built"], false, "{up}");
            assert_eq!(up["images"][0]["reference"], app["reference"], "{up}");
        },
    );

    // And a lab, start to finish.
    checks.soft("a lab runs start to finish", || {
        let run = engine.kindlab(&[
            "--workspace",
            w,
            "lab",
            "run",
            "bad-image-tag",
            "-o",
            "json",
        ]);
        run.assert_code(0);
        let lab = run.json();
        assert!(lab.to_string().contains("ImagePullBackOff"), "{lab}");
    });

    engine.kindlab(&["--workspace", w, "down"]).assert_code(0);
}
