//! Running the `kind` CLI. kind owns cluster creation; kindlab drives it and keeps its
//! output for the error when it fails.

use std::path::PathBuf;
use std::process::Stdio;

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::ClusterError;

#[derive(Debug, Clone)]
pub struct Kind {
    pub path: PathBuf,
}

impl Kind {
    pub fn find() -> Result<Kind, ClusterError> {
        which::which("kind")
            .map(|path| Kind { path })
            .map_err(|_| ClusterError::KindNotFound)
    }

    async fn output(&self, args: &[&str]) -> Result<String, ClusterError> {
        let mut command = tokio::process::Command::new(&self.path);
        command.args(args).stdin(Stdio::null());
        // A Ctrl-C in the terminal is kindlab's to handle: a short kind command (a delete)
        // finishes rather than dying half way.
        #[cfg(unix)]
        command.process_group(0);
        let out = command
            .output()
            .await
            .map_err(|source| ClusterError::KindSpawn {
                path: self.path.display().to_string(),
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(ClusterError::KindFailed {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// `kind v0.33.0 go1.26.8 linux/amd64` -> `v0.33.0`.
    pub async fn version(&self) -> Result<String, ClusterError> {
        let text = self.output(&["version"]).await?;
        Ok(text
            .split_whitespace()
            .nth(1)
            .unwrap_or(text.trim())
            .to_string())
    }

    pub async fn clusters(&self) -> Result<Vec<String>, ClusterError> {
        let text = self.output(&["get", "clusters"]).await?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The admin kubeconfig of a cluster, with the API server on its host port.
    pub async fn kubeconfig(&self, name: &str) -> Result<String, ClusterError> {
        self.output(&["get", "kubeconfig", "--name", name]).await
    }

    pub async fn delete(&self, name: &str) -> Result<(), ClusterError> {
        self.output(&["delete", "cluster", "--name", name])
            .await
            .map(|_| ())
    }

    /// `kind create cluster` with the config on stdin. Every status line kind prints (on
    /// stdout or stderr, read together and to the end, whatever bytes they hold) goes to
    /// `on_line` as it comes, and all of it is kept for the error if kind fails.
    ///
    /// kind runs in its own process group, so a Ctrl-C in the terminal reaches kindlab only:
    /// kindlab decides. `on_spawn` gets kind's pid (the group's id) as soon as it runs. When
    /// `cancel` resolves first, the whole group is killed and [`ClusterError::Cancelled`] is
    /// returned; the half-made cluster is the caller's to remove.
    pub async fn create(
        &self,
        name: &str,
        config: &str,
        node_image: Option<&str>,
        on_spawn: impl FnOnce(u32),
        mut on_line: impl FnMut(&str),
        cancel: impl std::future::Future<Output = ()>,
    ) -> Result<(), ClusterError> {
        let mut args = vec!["create", "cluster", "--name", name, "--config", "-"];
        if let Some(image) = node_image {
            args.extend(["--image", image]);
        }
        let spawn_err = |source| ClusterError::KindSpawn {
            path: self.path.display().to_string(),
            source,
        };
        let mut command = tokio::process::Command::new(&self.path);
        command
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(spawn_err)?;
        let pid = child.id();
        if let Some(pid) = pid {
            on_spawn(pid);
        }
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(config.as_bytes())
                .await
                .map_err(spawn_err)?;
            // Dropping stdin closes it, so kind sees the end of the config.
        }
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut transcript = Vec::new();
        let finished = tokio::select! {
            status = async {
                let mut lines = std::pin::pin!(futures::stream::select(
                    lossy_lines(stdout),
                    lossy_lines(stderr),
                ));
                while let Some(line) = lines.next().await {
                    let clean = clean_status_line(&line);
                    if !clean.is_empty() {
                        on_line(&clean);
                        transcript.push(clean);
                    }
                }
                child.wait().await
            } => Some(status),
            () = cancel => None,
        };
        let Some(status) = finished else {
            kill_group(pid);
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(ClusterError::Cancelled {
                name: name.to_string(),
            });
        };
        let status = status.map_err(spawn_err)?;
        if status.success() {
            return Ok(());
        }
        let stderr = transcript.join("\n");
        Err(match unpullable_image(&stderr) {
            Some(image) => ClusterError::NodeImageUnavailable { image, stderr },
            None => ClusterError::KindFailed {
                args: args.join(" "),
                stderr,
            },
        })
    }
}

/// Kills kind's process group (kind and the docker commands it started).
pub fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// True when `pid` is a running `kind` process (a `kind create` left behind by a kindlab that
/// was killed). Linux only; elsewhere, never.
pub fn is_kind_process(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "kind")
}

/// The lines of a child's output, decoded lossily (kind prints emoji; a broken byte must not
/// end the reading, or a chatty kind would block on a full pipe). `\r` ends a line too:
/// spinners redraw with it.
fn lossy_lines<R: tokio::io::AsyncRead + Unpin>(
    reader: Option<R>,
) -> impl futures::Stream<Item = String> {
    futures::stream::unfold(
        (reader.map(BufReader::new), Vec::<String>::new()),
        |(mut reader, mut pending)| async move {
            loop {
                if let Some(line) = pending.pop() {
                    return Some((line, (reader, pending)));
                }
                let r = reader.as_mut()?;
                let mut buf = Vec::new();
                match r.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf);
                        // Reversed, so `pop` yields them in order.
                        pending = text
                            .split(['\n', '\r'])
                            .filter(|l| !l.trim().is_empty())
                            .map(str::to_string)
                            .rev()
                            .collect();
                    }
                }
            }
        },
    )
}

/// The image in kind's `failed to pull image "…"`: the node image is neither in the
/// engine nor reachable (no network, an air-gapped site, a registry's rate limit).
fn unpullable_image(stderr: &str) -> Option<String> {
    let rest = stderr.split("failed to pull image \"").nth(1)?;
    rest.split('"').next().map(str::to_string)
}

/// kind decorates its status lines with a spinner, ticks and emoji; keep the words.
fn clean_status_line(line: &str) -> String {
    line.chars()
        .filter(|c| c.is_ascii() || c.is_alphanumeric())
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_read_whatever_their_bytes() {
        let bytes: &[u8] = b"one\n\xff\xfe broken\r\nspin\rdone\nlast without newline";
        let lines: Vec<String> = std::pin::pin!(lossy_lines(Some(bytes))).collect().await;
        assert_eq!(
            lines,
            vec![
                "one".to_string(),
                "\u{fffd}\u{fffd} broken".to_string(),
                "spin".to_string(),
                "done".to_string(),
                "last without newline".to_string()
            ]
        );
    }

    #[tokio::test]
    async fn a_chatty_child_on_both_streams_is_read_to_the_end() {
        // 200 KiB on each stream: more than a pipe holds, so unread output would block it.
        let script = "i=0; while [ $i -lt 4000 ]; do echo \"out line $i of kind's stdout padding padding\"; echo \"err line $i of kind's stderr padding padding\" >&2; i=$((i+1)); done; exit 3";
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("kind");
        std::fs::write(&fake, format!("#!/bin/sh\ncat >/dev/null\n{script}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let kind = Kind { path: fake };
        let mut seen = 0;
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            kind.create(
                "x",
                "config",
                None,
                |_| {},
                |_| seen += 1,
                std::future::pending(),
            ),
        )
        .await
        .expect("kind's output was not read to the end");
        assert_eq!(seen, 8000);
        match result {
            Err(ClusterError::KindFailed { stderr, .. }) => {
                assert!(
                    stderr.contains("err line 3999"),
                    "{}",
                    &stderr[stderr.len() - 200..]
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn cancelling_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("kind");
        let marker = dir.path().join("child-still-running");
        // kind starts a child (as it starts docker) that would write a file later.
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\ncat >/dev/null\necho Creating cluster\n(sleep 2; touch {}) &\nsleep 30\n",
                marker.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let kind = Kind { path: fake };
        let mut pid = None;
        let started = std::time::Instant::now();
        let result = kind
            .create(
                "x",
                "config",
                None,
                |p| pid = Some(p),
                |_| {},
                tokio::time::sleep(std::time::Duration::from_millis(500)),
            )
            .await;
        assert!(
            matches!(result, Err(ClusterError::Cancelled { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert!(!marker.exists(), "kind's child outlived the cancel");
        assert!(!is_kind_process(pid.unwrap()));
    }

    #[test]
    fn an_unpullable_node_image_is_recognised() {
        let stderr = "Creating cluster \"kl\" ...\nEnsuring node image (kindest/node:v1.34.0)\nERROR: failed to create cluster: failed to pull image \"kindest/node:v1.34.0@sha256:ab\": command \"docker pull kindest/node:v1.34.0@sha256:ab\" failed with error: exit status 1";
        assert_eq!(
            unpullable_image(stderr).as_deref(),
            Some("kindest/node:v1.34.0@sha256:ab")
        );
        assert_eq!(
            unpullable_image("ERROR: failed to create cluster: boom"),
            None
        );
    }

    #[test]
    fn status_lines_lose_their_decoration() {
        assert_eq!(
            clean_status_line(" ✓ Ensuring node image (kindest/node:v1.34.0) 🖼"),
            "Ensuring node image (kindest/node:v1.34.0)"
        );
        assert_eq!(
            clean_status_line("Creating cluster \"kindlab\" ..."),
            "Creating cluster \"kindlab\" ..."
        );
    }
}
