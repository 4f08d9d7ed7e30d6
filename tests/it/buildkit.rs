//! BuildKit builds through the Engine API on the real engine: the Dockerfiles people write
//! (cache and secret mounts, a multi-stage `--target`, a build arg) built and deployed by
//! `up`; a secret that leaves no trace; the build context equal to `docker build`'s; the
//! classic builder for an engine that asks for it, said once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::isolated_engine::IsolatedEngine;
use crate::support::*;

/// A two-stage app: the first stage uses a cache mount, a build arg and a secret; the image
/// is the `runtime` stage, not the last (`debug`) one.
const MODERN_DOCKERFILE: &str = r#"FROM busybox:1.36 AS build
ARG FLAVOUR=plain
RUN --mount=type=cache,target=/cache echo "$FLAVOUR" >> /cache/runs && echo "$FLAVOUR" > /flavour
RUN --mount=type=secret,id=api_token,required=true wc -c < /run/secrets/api_token | tr -d ' ' > /token-length
FROM busybox:1.36 AS runtime
COPY www/ /www/
COPY VERSION /VERSION
COPY start.sh /start.sh
COPY --from=build /flavour /www/flavour
COPY --from=build /token-length /www/token-length
RUN printf '{"service":"orders-api","version":"%s"}\n' "$(cat /VERSION)" > /www/index.html
EXPOSE 8080
CMD ["/bin/sh", "/start.sh"]
FROM runtime AS debug
RUN echo debug > /www/debug
"#;

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn up_deploys_an_app_built_with_cache_and_secret_mounts_a_target_and_a_build_arg() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let ns = lab.namespace("buildkit");
    let dir = copy.path();
    // The app in a namespace of this test's own.
    for file in [
        "deploy/overlays/dev/kustomization.yaml",
        "deploy/overlays/dev/namespace.yaml",
    ] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("namespace: dev", &format!("namespace: {}", ns.name))
                .replace("name: dev", &format!("name: {}", ns.name)),
        )
        .unwrap();
    }
    std::fs::write(dir.join("apps/orders-api/Dockerfile"), MODERN_DOCKERFILE).unwrap();
    let flavour = unique("flavour");
    let manifest = std::fs::read_to_string(dir.join("kindlab.yaml")).unwrap();
    std::fs::write(
        dir.join("kindlab.yaml"),
        manifest.replace(
            "    dockerfile: Dockerfile\n",
            &format!(
                "    dockerfile: Dockerfile\n    target: runtime\n    args:\n      FLAVOUR: {flavour}\n    secrets:\n      - id: api_token\n        env: KL_TEST_API_TOKEN\n"
            ),
        ),
    )
    .unwrap();
    let secret = format!("s3cret-{}", unique("value"));

    let mut env = node_image_env();
    env.push(("KL_TEST_API_TOKEN", &secret));
    env.push(("KINDLAB_LOG", "debug"));
    let up = kindlab_env(
        &[
            "--workspace",
            dir.to_str().unwrap(),
            "up",
            "--adopt",
            "-o",
            "json",
        ],
        &env,
    );
    up.assert_code(0);
    let summary = up.json();
    let image = summary["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == "orders-api"))
        .unwrap_or_else(|| panic!("no orders-api image in {summary}"));
    assert_eq!(image["built"], true, "{image}");
    let reference = image["reference"].as_str().unwrap().to_string();

    // What runs in the cluster is that build: the arg's value, the secret's length, and the
    // `runtime` stage (the `debug` stage after it was not built into the image).
    let exec = |path: &str| {
        lab.kubectl_in(
            dir,
            &[
                "exec",
                "-n",
                &ns.name,
                "deploy/orders-api",
                "--",
                "cat",
                path,
            ],
        )
    };
    let served = exec("/www/flavour");
    assert_eq!(served.code, 0, "{}", served.stderr);
    assert_eq!(served.stdout.trim(), flavour);
    assert_eq!(
        exec("/www/token-length").stdout.trim(),
        secret.len().to_string()
    );
    let debug = exec("/www/debug");
    assert_ne!(debug.code, 0, "the debug stage was built: {}", debug.stdout);

    // The secret's value is in no image layer or history, no output, no file kindlab wrote.
    let saved = dir.join("image.tar");
    docker(&["save", "-o", saved.to_str().unwrap(), &reference]);
    let layers = std::fs::read(&saved).unwrap();
    std::fs::remove_file(&saved).unwrap();
    assert!(
        layers.len() > 1000,
        "docker save wrote {} bytes",
        layers.len()
    );
    assert!(
        !layers.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is in a layer of {reference}"
    );
    let history = docker(&["history", "--no-trunc", &reference]);
    assert!(!history.contains(&secret), "{history}");
    assert!(!up.stdout.contains(&secret) && !up.stderr.contains(&secret));
    assert_eq!(
        files_containing(dir, secret.as_bytes()),
        Vec::<String>::new()
    );

    // Unchanged inputs: no rebuild, and the secret is not even needed.
    let again = copy.run(&["build", "-o", "json"]);
    again.assert_code(0);
    assert_eq!(again.json()["images"][0]["built"], false);
    assert_eq!(again.json()["images"][0]["reference"], reference.as_str());
}

#[test]
fn a_missing_secret_is_one_line_with_its_fix() {
    let ws = TestWorkspace::new();
    ws.run(&["registry", "up"]).assert_code(0);
    std::fs::write(ws.app_dir().join("Dockerfile"), MODERN_DOCKERFILE).unwrap();
    ws.write_manifest(&format!(
        "cluster:\n  name: {}\nregistry:\n  name: {}\n  port: {}\nimages:\n  - name: orders-api\n    context: apps/orders-api\n    secrets:\n      - id: api_token\n        file: no-such-token.txt\n",
        ws.cluster, ws.registry, ws.port
    ));
    let run = ws.run(&["build"]);
    run.assert_code(3).assert_error(
        "error: building orders-api needs the secret \"api_token\", but its file <tmp>/no-such-token.txt does not exist\n\
         help: create that file or set that variable (images[].secrets in kindlab.yaml says which), then run the command again",
    );
}

#[test]
fn a_syntax_line_whose_frontend_is_missing_names_the_image() {
    let ws = TestWorkspace::new();
    ws.run(&["registry", "up"]).assert_code(0);
    let frontend = format!("kindlab-test/no-such-frontend:{}", std::process::id());
    std::fs::write(
        ws.app_dir().join("Dockerfile"),
        format!("# syntax={frontend}\nFROM busybox:1.36\nRUN true\n"),
    )
    .unwrap();
    let run = ws.run(&["build"]);
    run.assert_code(3).assert_error(
        &format!("error: orders-api's Dockerfile asks for the BuildKit frontend {frontend} (`# syntax=`), which the engine does not have\n\
             help: load it with `kindlab bundle load` from a bundle made where it could be pulled (`docker pull {frontend}` there, then `kindlab bundle create`), or remove the `# syntax=` line to use the engine's built-in frontend"),
    );
}

/// Heredocs (`RUN <<EOF`) are in the Dockerfile frontend from 1.4, built into Docker Engine
/// 23.0 and later (BuildKit 0.10); Debian's 20.10 engine has BuildKit 0.8's frontend.
#[test]
fn a_heredoc_builds_where_the_engines_frontend_knows_it_and_is_explained_where_not() {
    let ws = TestWorkspace::new();
    ws.run(&["registry", "up"]).assert_code(0);
    std::fs::write(
        ws.app_dir().join("Dockerfile"),
        "FROM busybox:1.36\nRUN <<EOT\necho line-one > /heredoc\necho line-two >> /heredoc\nEOT\nCMD [\"cat\", \"/heredoc\"]\n",
    )
    .unwrap();
    let major: u32 = docker(&["version", "--format", "{{.Server.Version}}"])
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let run = ws.run(&["build", "-o", "json"]);
    if major >= 23 {
        run.assert_code(0);
        let reference = run.json()["images"][0]["reference"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(docker(&["run", "--rm", &reference]), "line-one\nline-two");
    } else {
        run.assert_code(3).assert_error(
            "error: orders-api's Dockerfile uses a heredoc, which the engine's Dockerfile frontend does not know: <any>unknown instruction: ECHO\n\
             help: heredocs need the Dockerfile frontend 1.4 or later, built into Docker Engine 23.0 and later: upgrade the engine, or add `# syntax=docker/dockerfile:1.4` with that image in the engine, or write the lines as one RUN joined with &&",
        );
    }
}

/// The paths kindlab sends are the paths `docker build` sends, for a `.dockerignore` with
/// issue 19's order case, exceptions, `**` and an excluded directory: both images list
/// their copied context and the lists are equal.
#[test]
fn the_build_context_is_the_one_docker_build_sends() {
    let ws = TestWorkspace::new();
    ws.run(&["registry", "up"]).assert_code(0);
    let app = ws.app_dir();
    for file in [
        "dir/keep.txt",
        "dir/other.txt",
        "dir/sub/deep.txt",
        "src/main.go",
        "src/main_test.go",
        "docs/README.md",
        "docs/a/b.md",
    ] {
        let path = app.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, file).unwrap();
    }
    std::fs::create_dir_all(app.join("empty")).unwrap();
    std::fs::write(
        app.join(".dockerignore"),
        "!dir/keep.txt\ndir\n**/*_test.go\ndocs\n!docs/README.md\n!**/deep.txt\n*.swp\n./README.md\n",
    )
    .unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        "FROM busybox:1.36\nCOPY . /ctx\nRUN cd /ctx && find . | sort > /list\nCMD [\"cat\", \"/list\"]\n",
    )
    .unwrap();
    let run = ws.run(&["build", "-o", "json"]);
    run.assert_code(0);
    let reference = run.json()["images"][0]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let kindlab_sent = docker(&["run", "--rm", &reference]);

    let theirs = format!("kindlab-ctx-{}", std::process::id());
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &theirs, app.to_str().unwrap()])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docker_sent = docker(&["run", "--rm", &theirs]);
    docker_quiet(&["rmi", &theirs]);
    assert_eq!(kindlab_sent, docker_sent);
    assert!(
        !kindlab_sent.contains("./dir/keep.txt") && kindlab_sent.contains("./docs/README.md"),
        "{kindlab_sent}"
    );
}

/// An engine that asks for the classic builder gets it, and the output says so once. The
/// engine is a second dockerd of this machine's own version, started with
/// `features.buildkit: false`: its `/_ping` then answers `Builder-Version: 1`, the engine's
/// own word (as an engine older than 18.09 or a Windows engine would have no BuildKit at
/// all, which kindlab decides from the same answers; unit-tested in docker::buildkit).
#[test]
fn an_engine_without_buildkit_builds_with_the_classic_builder_said_once() {
    let engine = IsolatedEngine::start_with(
        &format!("klbk-{}", std::process::id()),
        serde_json::json!({ "features": { "buildkit": false } }),
    );
    for image in ["registry:3", "busybox:1.36"] {
        let file = engine.dir.join("image.tar");
        docker(&["save", "-o", file.to_str().unwrap(), image]);
        engine.docker(&["load", "-i", file.to_str().unwrap()]);
        std::fs::remove_file(&file).unwrap();
    }
    let dir = engine.dir.join("ws");
    engine
        .kindlab(&["init", dir.to_str().unwrap()])
        .assert_code(0);
    let ws = dir.to_str().unwrap();
    engine
        .kindlab(&["--workspace", ws, "registry", "up"])
        .assert_code(0);
    let build = engine.kindlab(&["--workspace", ws, "build"]);
    build.assert_code(0);
    let output = format!("{}{}", build.stdout, build.stderr);
    let said: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("classic builder"))
        .collect();
    assert_eq!(
        said,
        [
            "building with the classic builder: the engine's /_ping names the classic builder (Builder-Version: 1, its features.buildkit is false); Dockerfiles using RUN --mount, heredocs or secrets need BuildKit (Docker 18.09+ on Linux)"
        ],
        "{output}"
    );
    assert!(output.contains("built and pushed"), "{output}");
}
