//! Running the `kind` CLI. kind owns cluster creation; kindlab drives it and keeps its
//! output for the error when it fails.

use std::path::PathBuf;
use std::process::Stdio;

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
        let out = tokio::process::Command::new(&self.path)
            .args(args)
            .stdin(Stdio::null())
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

    /// `kind create cluster` with the config on stdin. Every status line kind prints goes to
    /// `on_line` as it comes; all of kind's output is kept for the error if it fails.
    pub async fn create(
        &self,
        name: &str,
        config: &str,
        node_image: Option<&str>,
        mut on_line: impl FnMut(&str),
    ) -> Result<(), ClusterError> {
        let mut args = vec!["create", "cluster", "--name", name, "--config", "-"];
        if let Some(image) = node_image {
            args.extend(["--image", image]);
        }
        let spawn_err = |source| ClusterError::KindSpawn {
            path: self.path.display().to_string(),
            source,
        };
        let mut child = tokio::process::Command::new(&self.path)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(config.as_bytes())
                .await
                .map_err(spawn_err)?;
            // Dropping stdin closes it, so kind sees the end of the config.
        }
        let mut transcript = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let clean = clean_status_line(&line);
                if !clean.is_empty() {
                    on_line(&clean);
                    transcript.push(clean);
                }
            }
        }
        let status = child.wait().await.map_err(spawn_err)?;
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
