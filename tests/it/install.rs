//! Issue 21: the kubectl a user types is named and judged (`doctor`), and `make install`
//! (.ci/install.sh) puts kindlab and the tools make provided on the PATH without replacing
//! anything kindlab did not put there. The clean-environment check of the installed result
//! is `.ci/clean-env-check.sh` (run by `make lab` and by CI after `make install`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// A kubectl that says it is `client`, and that its cluster (context kind-lab) runs `server`
/// (`None`: no cluster answers, as kubectl exits then).
fn fake_kubectl(dir: &Path, client: &str, server: Option<&str>) -> PathBuf {
    let path = dir.join("kubectl");
    let client_json =
        format!(r#""clientVersion":{{"gitVersion":"{client}"}},"kustomizeVersion":"v5.7.1""#);
    let full = match server {
        Some(server) => {
            format!(r#"echo '{{{client_json},"serverVersion":{{"gitVersion":"{server}"}}}}'"#)
        }
        None => format!(
            "echo '{{{client_json}}}'; echo 'The connection to the server localhost:8080 was refused' >&2; exit 1"
        ),
    };
    script(
        &path,
        &format!(
            "case \"$*\" in\n  *--client*) echo '{{{client_json}}}' ;;\n  version*) {full} ;;\n  'config current-context') echo kind-lab ;;\nesac"
        ),
    );
    path
}

fn kubectl_check(doc: &serde_json::Value) -> serde_json::Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "kubectl")
        .cloned()
        .unwrap_or_else(|| panic!("no kubectl check in {doc}"))
}

#[test]
fn doctor_warns_when_the_kubectl_on_path_is_outside_the_clusters_version_skew() {
    let bin = tempfile::tempdir().unwrap();
    let kubectl = fake_kubectl(bin.path(), "v1.32.4", Some("v1.34.12"));
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let run = kindlab_env(&["doctor", "-o", "json"], &[("PATH", &path)]);
    let check = kubectl_check(&run.json());
    assert_eq!(check["ok"], true, "a warning, not a failure: {check}");
    assert_eq!(check["warning"], true, "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("v1.32.4 at {}", kubectl.display())),
        "{detail}"
    );
    assert!(
        detail.contains("the cluster of context kind-lab runs v1.34.12"),
        "{detail}"
    );
    assert!(
        check["fix"].as_str().unwrap().contains("v1.33 to v1.35"),
        "{check}"
    );
    let text = kindlab_env(&["doctor"], &[("PATH", &path)]);
    assert!(text.stdout.contains("! kubectl"), "{}", text.stdout);

    // Within the skew: named, and quiet.
    fake_kubectl(bin.path(), "v1.33.0", Some("v1.34.12"));
    let check = kubectl_check(&kindlab_env(&["doctor", "-o", "json"], &[("PATH", &path)]).json());
    assert_eq!(check["ok"], true, "{check}");
    assert!(check.get("warning").is_none(), "{check}");
}

#[test]
fn without_a_cluster_an_installed_doctor_compares_with_the_kubectl_the_lab_was_set_up_with() {
    // kindlab as `make install` lays it out: <prefix>/bin/kindlab and
    // <prefix>/share/kindlab/lab-tools.
    let prefix = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let installed = prefix.path().join("bin/kindlab");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    if std::fs::hard_link(env!("CARGO_BIN_EXE_kindlab"), &installed).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_kindlab"), &installed).unwrap();
    }
    let share = prefix.path().join("share/kindlab");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(
        share.join("lab-tools"),
        "# written by make install\nKINDLAB_LAB_KUBECTL=/opt/lab/kubectl\nKINDLAB_LAB_KUBECTL_VERSION=v1.34.12\n",
    )
    .unwrap();
    let bin = tempfile::tempdir().unwrap();
    fake_kubectl(bin.path(), "v1.32.4", None);
    let out = Command::new(&installed)
        .args(["doctor", "-o", "json"])
        .env("PATH", format!("{}:/usr/bin:/bin", bin.path().display()))
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = kubectl_check(&doc);
    assert_eq!(check["warning"], true, "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("the lab was set up with kubectl v1.34.12 (/opt/lab/kubectl)"),
        "{check}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("such as the lab's: /opt/lab/kubectl (v1.34.12)"),
        "{check}"
    );
}

/// `bash .ci/install.sh ACTION` as `make install DESTDIR=...` runs it, with make's .bin/ at
/// `provided` and no offline tool set.
fn install_sh(action: &str, root: &Path, provided: &Path, kindlab: &Path) -> Run {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/install.sh"))
        .arg(action)
        .env("PATH", format!("{}:/usr/bin:/bin", provided.display()))
        .env("PREFIX", "/usr/local")
        .env("DESTDIR", root.join("dest"))
        .env("KINDLAB", kindlab)
        .env("BIN_DIR", provided)
        .env("KINDLAB_CI_CACHE", root.join("no-cache"))
        .env_remove("BINDIR")
        .env_remove("TOOLS")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn make_install_puts_the_tools_make_provided_beside_kindlab_and_uninstall_removes_only_those() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let provided = root.join("dot-bin");
    script(
        &provided.join("kind"),
        "echo 'kind v0.33.0 go1.26 linux/amd64'",
    );
    script(&provided.join("kubectl"), "echo 'Client Version: v1.34.12'");
    // The real binary: it generates the completions and man pages it installs.
    let kindlab = root.join("kindlab");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_kindlab"), &kindlab).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_kindlab"), &kindlab).unwrap();
    }
    let bin = root.join("dest/usr/local/bin");
    // A kubectl of the user's own, already in the install directory.
    script(&bin.join("kubectl"), "echo 'Client Version: v1.30.0'");
    let users_kubectl = std::fs::read(bin.join("kubectl")).unwrap();

    let first = install_sh("install", root, &provided, &kindlab);
    first.assert_code(0);
    assert_eq!(
        std::fs::read(bin.join("kindlab")).unwrap(),
        std::fs::read(&kindlab).unwrap()
    );
    assert_eq!(
        std::fs::read(bin.join("kind")).unwrap(),
        std::fs::read(provided.join("kind")).unwrap(),
        "{}",
        first.stdout
    );
    assert_eq!(
        std::fs::read(bin.join("kubectl")).unwrap(),
        users_kubectl,
        "the user's kubectl is never replaced"
    );
    assert!(
        first.stdout.contains("kept /usr/local/bin/kubectl"),
        "{}",
        first.stdout
    );
    let share = root.join("dest/usr/local/share/kindlab");
    let manifest = std::fs::read_to_string(share.join("install-manifest")).unwrap();
    assert!(
        manifest.contains("  /usr/local/bin/kindlab\n"),
        "{manifest}"
    );
    assert!(manifest.contains("  /usr/local/bin/kind\n"), "{manifest}");
    // Completions and man pages, generated by the kindlab installed, are installed and owned.
    let docs = root.join("dest/usr/local/share");
    let completion = std::fs::read_to_string(docs.join("bash-completion/completions/kindlab"))
        .unwrap_or_default();
    assert!(completion.contains("complete -F"), "{}", first.stdout);
    assert!(docs.join("zsh/site-functions/_kindlab").is_file());
    assert!(
        docs.join("fish/vendor_completions.d/kindlab.fish")
            .is_file()
    );
    assert!(
        docs.join("man/man1/kindlab.1").is_file(),
        "{}",
        first.stdout
    );
    assert!(docs.join("man/man1/kindlab-lab-start.1").is_file());
    assert!(
        manifest.contains("  /usr/local/share/man/man1/kindlab.1\n")
            && manifest.contains("  /usr/local/share/bash-completion/completions/kindlab\n"),
        "{manifest}"
    );
    assert!(!manifest.contains("/usr/local/bin/kubectl"), "{manifest}");
    let lab_tools = std::fs::read_to_string(share.join("lab-tools")).unwrap();
    assert!(
        lab_tools.contains("KINDLAB_LAB_KIND=/usr/local/bin/kind\n"),
        "{lab_tools}"
    );
    assert!(
        lab_tools.contains(&format!(
            "KINDLAB_LAB_KUBECTL={}\n",
            provided.join("kubectl").display()
        )),
        "{lab_tools}"
    );
    assert!(
        lab_tools.contains("KINDLAB_LAB_KUBECTL_VERSION=v1.34.12\n"),
        "{lab_tools}"
    );

    // Twice is harmless: nothing changes.
    let again = install_sh("install", root, &provided, &kindlab);
    again.assert_code(0);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    assert_eq!(
        std::fs::read_to_string(share.join("install-manifest")).unwrap(),
        manifest
    );

    // A file changed since it was installed is kept by uninstall; the rest goes.
    script(
        &bin.join("kind"),
        "echo 'kind v0.99.0 (the user rebuilt it)'",
    );
    let gone = install_sh("uninstall", root, &provided, &kindlab);
    gone.assert_code(0);
    assert!(!bin.join("kindlab").exists(), "{}", gone.stdout);
    assert!(!docs.join("man/man1/kindlab.1").exists(), "{}", gone.stdout);
    assert!(!docs.join("bash-completion/completions/kindlab").exists());
    assert!(bin.join("kind").exists(), "{}", gone.stdout);
    assert!(
        gone.stdout.contains("kept /usr/local/bin/kind"),
        "{}",
        gone.stdout
    );
    assert_eq!(std::fs::read(bin.join("kubectl")).unwrap(), users_kubectl);
    assert!(!share.exists(), "{}", gone.stdout);
    install_sh("uninstall", root, &provided, &kindlab).assert_code(0);
}
