//! The instructor's HTML report, rendered in a real headless browser (Debian's chromium).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use crate::support::*;

/// Chromium as a test harness: headless, no network chatter, a profile of its own.
fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let program = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("the HTML report test needs chromium (Debian: apt-get install chromium)");
    Command::new(program)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
        ])
        .args(args)
        .output()
        .expect("run chromium")
}

#[test]
fn the_lab_report_renders_in_a_headless_browser() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let ns = lab.namespace("report");
    copy.run(&["lab", "run", "service-selector", "-n", &ns.name])
        .assert_code(0);
    copy.run(&[
        "lab",
        "start",
        "pending-resources",
        "-n",
        &ns.name,
        "--attendee",
        "grace",
    ])
    .assert_code(0);
    copy.run(&["lab", "solve"]).assert_code(0);
    copy.run(&["reset", "-n", &ns.name]).assert_code(0);

    let page = copy.path().join("report.html");
    let run = copy.run(&[
        "lab",
        "report",
        "--out",
        page.to_str().unwrap(),
        "-o",
        "json",
    ]);
    run.assert_code(0);
    let room = run.json();
    assert_eq!(room["sessions"].as_array().unwrap().len(), 2, "{room}");

    let url = format!("file://{}", page.display());
    let dom = chromium(&["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("grace"), "{dom}");
    assert!(
        dom.contains("pending-resources") && dom.contains("service-selector"),
        "{dom}"
    );
    assert_eq!(dom.matches("class=\"session\"").count(), 2, "{dom}");

    // A screenshot a person can look at: target/tmp/lab-report.png.
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lab-report.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1100,800",
        &url,
    ]);
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 10_000,
        "a blank page is smaller: {} bytes",
        png.len()
    );
}
