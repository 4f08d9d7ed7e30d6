//! Who holds a TCP port: a container (asked through the Engine API) or a local process
//! (found through /proc on Linux), so "port taken" errors can name it.

use std::fmt;

use crate::docker::{DockerError, Engine};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PortHolder {
    Container { name: String, image: String },
    Process { pid: u32, command: String },
    Unknown,
}

impl fmt::Display for PortHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortHolder::Container { name, image } => {
                write!(f, "container {name:?} (image {image})")
            }
            PortHolder::Process { pid, command } => write!(f, "process {pid} ({command})"),
            PortHolder::Unknown => write!(f, "another program"),
        }
    }
}

/// Returns who holds `port`, or None when it is free. `except` names a container whose
/// holding the port is expected (our own registry).
pub async fn find_port_holder(
    engine: &Engine,
    port: u16,
    except: Option<&str>,
) -> Result<Option<PortHolder>, DockerError> {
    let containers = engine
        .docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(false)
                .build(),
        ))
        .await
        .map_err(DockerError::api("list containers"))?;
    for c in containers {
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let publishes = c
            .ports
            .as_ref()
            .is_some_and(|ports| ports.iter().any(|p| p.public_port == Some(port)));
        if publishes {
            if except == Some(name.as_str()) {
                return Ok(None);
            }
            return Ok(Some(PortHolder::Container {
                name,
                image: c.image.unwrap_or_default(),
            }));
        }
    }
    // Binding is the only reliable test for "free"; the listener closes at once.
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(None),
        Err(_) => Ok(Some(
            process_listening_on(port).unwrap_or(PortHolder::Unknown),
        )),
    }
}

/// Every host port a container publishes or will publish when started: running containers'
/// ports, and stopped containers' port bindings (which hold no socket yet, but will).
pub async fn published_ports(
    engine: &Engine,
) -> Result<std::collections::HashSet<u16>, DockerError> {
    let containers = engine
        .docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(true)
                .build(),
        ))
        .await
        .map_err(DockerError::api("list containers"))?;
    let mut ports = std::collections::HashSet::new();
    for c in containers {
        ports.extend(c.ports.iter().flatten().filter_map(|p| p.public_port));
        let running = c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING);
        if running {
            continue;
        }
        let Some(id) = c.id else { continue };
        let Ok(inspect) = engine.docker.inspect_container(&id, None).await else {
            continue;
        };
        let bindings = inspect
            .host_config
            .and_then(|h| h.port_bindings)
            .unwrap_or_default();
        ports.extend(
            bindings
                .into_values()
                .flatten()
                .flatten()
                .filter_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok())),
        );
    }
    Ok(ports)
}

/// Linux: find the socket inode listening on `port` in /proc/net/tcp{,6}, then the process
/// holding that inode among /proc/<pid>/fd. Best effort: None when anything is unreadable.
fn process_listening_on(port: u16) -> Option<PortHolder> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find_map(|table| listening_inode(&table, port))?;
    let needle = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == needle));
        if holds {
            let command = std::fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default();
            return Some(PortHolder::Process { pid, command });
        }
    }
    None
}

/// Parses a /proc/net/tcp table: `sl local_address rem_address st ... inode`, with the local
/// port in hex and state 0A meaning LISTEN.
fn listening_inode(table: &str, port: u16) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let local_port = cols.get(1)?.rsplit(':').next()?;
        let listening = *cols.get(3)? == "0A";
        (listening && u16::from_str_radix(local_port, 16).ok()? == port)
            .then(|| cols.get(9).map(|s| s.to_string()))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_inode_for_a_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1389 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1389 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 999 1\n";
        assert_eq!(listening_inode(table, 5001), Some("12345".into()));
        assert_eq!(listening_inode(table, 5002), None);
    }

    #[test]
    fn a_listening_process_is_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        match process_listening_on(port) {
            Some(PortHolder::Process { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("expected this test process, got {other:?}"),
        }
    }
}
