//! The workspace's own local state, in `.kindlab/` next to `kindlab.yaml`.
//!
//! - `workspace.json`: the workspace's identity, a random id made on first use. kindlab writes
//!   it into everything it creates (the cluster's owner marker, the registry's labels), so a
//!   second workspace on the same machine can tell its things from this one's.
//! - `state.json`: what kindlab must remember between runs and cannot store in the thing
//!   itself: a cluster it is creating (kind cannot label its node containers, so this is
//!   written *before* kind starts), what the user adopted with `--adopt`, the registry port
//!   chosen for `registry.port: auto`.
//! - `lock`: held (flock) by `up` and `down`, so two of them never race in one workspace.
//!
//! Other commands keep their own files in the same directory (lab sessions).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Workspace, write_atomic, write_json_atomic};
use crate::exit;

/// The directory name, next to kindlab.yaml.
pub const STATE_DIR: &str = ".kindlab";
const IDENTITY_FILE: &str = "workspace.json";
const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("another kindlab command (pid {pid}) is changing this workspace's lab")]
    Busy { pid: String, lock: PathBuf },
    #[error("{path} is not valid kindlab state: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("cannot use {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StateError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            StateError::Busy { .. } => {
                "wait for it to finish (or stop it with Ctrl-C), then run again".into()
            }
            StateError::Corrupt { path, .. } => format!(
                "move {} aside and run again; kindlab then treats what it finds as not its own",
                path.display()
            ),
            StateError::Io { .. } => "check the workspace directory's permissions".into(),
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            StateError::Busy { .. } => exit::CONFLICT,
            StateError::Corrupt { .. } => exit::BAD_INPUT,
            StateError::Io { .. } => exit::FAILED,
        }
    }
}

/// Who a workspace is: the id kindlab writes into what it creates, and where the workspace
/// was when the id was made (for messages only: a moved workspace keeps its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceIdentity {
    pub id: String,
    pub path: String,
}

impl WorkspaceIdentity {
    /// A 16-hex-digit random id. Falls back to time and pid when the OS has no randomness
    /// to give (it always has on the systems kindlab runs on).
    fn generate(root: &Path) -> WorkspaceIdentity {
        let id = getrandom::u64().unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default();
            nanos ^ (u64::from(std::process::id()) << 32)
        });
        WorkspaceIdentity {
            id: format!("{id:016x}"),
            path: root.display().to_string(),
        }
    }
}

/// Who made a container, volume or cluster, as its labels or owner marker say, from the
/// point of view of one workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "owner", rename_all = "kebab-case")]
pub enum Owner {
    /// Created by kindlab for this workspace.
    ThisWorkspace,
    /// Created by kindlab for another workspace.
    OtherWorkspace { id: String, path: Option<String> },
    /// Created by an earlier kindlab that did not record the workspace.
    EarlierKindlab,
    /// Not created by kindlab: kind's registry script, another tool, by hand.
    NotKindlab,
}

impl Owner {
    /// Ownership from what a thing records: `recorded_id` (the workspace id it carries, with
    /// the path it was made at), `by_kindlab` (kindlab's mark without an id, as earlier
    /// versions wrote it), seen from workspace `me` (None: a workspace that never made
    /// anything).
    pub fn from_record(
        recorded_id: Option<&str>,
        recorded_path: Option<&str>,
        by_kindlab: bool,
        me: Option<&WorkspaceIdentity>,
    ) -> Owner {
        match recorded_id {
            Some(id) if !id.is_empty() && me.is_some_and(|me| me.id == id) => Owner::ThisWorkspace,
            Some(id) => Owner::OtherWorkspace {
                id: id.to_string(),
                path: recorded_path.map(str::to_string),
            },
            None if by_kindlab => Owner::EarlierKindlab,
            None => Owner::NotKindlab,
        }
    }

    pub fn is_this_workspace(&self) -> bool {
        matches!(self, Owner::ThisWorkspace)
    }

    /// "this workspace", "the kindlab workspace at /x", ...: for "made by ..." sentences.
    pub fn describe(&self) -> String {
        match self {
            Owner::ThisWorkspace => "this workspace".into(),
            Owner::OtherWorkspace {
                path: Some(path), ..
            } => format!("the kindlab workspace at {path}"),
            Owner::OtherWorkspace { id, path: None } => format!("the kindlab workspace {id}"),
            Owner::EarlierKindlab => "an earlier kindlab (no workspace recorded)".into(),
            Owner::NotKindlab => "something other than kindlab".into(),
        }
    }
}

/// Whether the workspace `owner` names is gone: it recorded where it was made, and no
/// workspace with its identity is there any more (the folder was deleted, or made anew).
/// Without a recorded path nothing can be said, so it is not gone.
pub fn is_gone(owner: &Owner) -> bool {
    let Owner::OtherWorkspace {
        id,
        path: Some(path),
    } = owner
    else {
        return false;
    };
    let identity = Path::new(path).join(STATE_DIR).join(IDENTITY_FILE);
    match read_json::<WorkspaceIdentity>(&identity) {
        Ok(Some(there)) => there.id != *id,
        Ok(None) => true,
        // Unreadable is not proof of absence.
        Err(_) => false,
    }
}

/// `state.json`. Every field is optional so older and newer kindlabs read each other's file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalState {
    #[serde(default)]
    pub registry: RegistryRecord,
    #[serde(default)]
    pub cluster: ClusterRecord,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryRecord {
    /// The port chosen for `registry.port: auto`, kept so it stays stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A registry container this workspace uses but did not create (`up --adopt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<String>,
    /// An images volume this workspace took over from a workspace that is gone (`up --adopt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_volume: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRecord {
    /// Set before `kind create cluster` starts, cleared once the owner marker is written:
    /// when a later run finds it, that creation was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creating: Option<Creating>,
    /// A kind cluster this workspace uses but did not create (`up --adopt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Creating {
    /// The kind cluster name.
    pub name: String,
    /// The `kind create cluster` process, once started (it runs in its own process group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind_pid: Option<u32>,
    /// Seconds since the epoch.
    pub started: u64,
}

impl Creating {
    pub fn new(name: &str) -> Creating {
        Creating {
            name: name.to_string(),
            kind_pid: None,
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
        }
    }
}

impl Workspace {
    /// `<workspace>/.kindlab`.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }

    /// The workspace's identity, if it has one (it gets one at its first `up`).
    pub fn identity(&self) -> Result<Option<WorkspaceIdentity>, StateError> {
        read_json(&self.state_dir().join(IDENTITY_FILE))
    }

    /// The saved identity or, for a workspace that has none yet, its path alone (an id
    /// no record carries): enough to recognise what an earlier kindlab, which recorded
    /// only the path, made from this directory, without saving anything.
    pub fn identity_or_path(&self) -> Result<WorkspaceIdentity, StateError> {
        Ok(self.identity()?.unwrap_or_else(|| WorkspaceIdentity {
            id: String::new(),
            path: self.root.display().to_string(),
        }))
    }

    /// The identity, made and saved on first use.
    pub fn ensure_identity(&self) -> Result<WorkspaceIdentity, StateError> {
        if let Some(identity) = self.identity()? {
            return Ok(identity);
        }
        self.ensure_state_dir()?;
        let identity = WorkspaceIdentity::generate(&self.root);
        let path = self.state_dir().join(IDENTITY_FILE);
        write_json_atomic(&path, &identity).map_err(|e| io_error(&path, e))?;
        Ok(identity)
    }

    pub fn read_state(&self) -> Result<LocalState, StateError> {
        Ok(read_json(&self.state_dir().join(STATE_FILE))?.unwrap_or_default())
    }

    pub fn write_state(&self, state: &LocalState) -> Result<(), StateError> {
        self.ensure_state_dir()?;
        let path = self.state_dir().join(STATE_FILE);
        write_json_atomic(&path, state).map_err(|e| io_error(&path, e))
    }

    /// Takes the workspace lock, or says who holds it. Released when the guard drops (or the
    /// process dies, however it dies).
    pub fn lock(&self) -> Result<WorkspaceLock, StateError> {
        self.ensure_state_dir()?;
        let path = self.state_dir().join(LOCK_FILE);
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let pid = std::fs::read_to_string(&path)
                    .map(|p| p.trim().to_string())
                    .unwrap_or_default();
                return Err(StateError::Busy {
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid
                    },
                    lock: path,
                });
            }
            Err(e) => return Err(io(e.into())),
        }
        file.set_len(0).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(WorkspaceLock { _file: file })
    }

    /// The pid of the `up` or `down` that holds the workspace lock now, if one does. Creates
    /// nothing.
    pub fn lock_holder(&self) -> Option<String> {
        let path = self.state_dir().join(LOCK_FILE);
        let file = std::fs::File::open(&path).ok()?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
            Err(rustix::io::Errno::WOULDBLOCK) => Some(
                std::fs::read_to_string(&path)
                    .map(|p| p.trim().to_string())
                    .unwrap_or_default(),
            ),
            // Released when `file` drops.
            _ => None,
        }
    }

    /// Creates `.kindlab/` with a `.gitignore` that keeps it out of version control: its
    /// content is this machine's, not the project's.
    fn ensure_state_dir(&self) -> Result<(), StateError> {
        let dir = self.state_dir();
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            write_atomic(
                &ignore,
                b"# kindlab's local state: this machine's, not the project's.\n*\n",
            )
            .map_err(|e| io_error(&ignore, e))?;
        }
        Ok(())
    }
}

/// Held while `up` or `down` runs.
#[derive(Debug)]
pub struct WorkspaceLock {
    _file: std::fs::File,
}

/// The remembered port for `registry.port: auto`, or the first port from 5001 up that is
/// free on 127.0.0.1 now (`up` checks it again against the engine, then remembers it).
pub(super) fn auto_port(root: &Path) -> u16 {
    let remembered = read_json::<LocalState>(&root.join(STATE_DIR).join(STATE_FILE))
        .ok()
        .flatten()
        .and_then(|s| s.registry.port);
    remembered.unwrap_or_else(|| first_free_port(AUTO_PORTS, |_| false).unwrap_or(5001))
}

/// The ports `registry.port: auto` chooses from: kind's guide uses 5001; the ones after it
/// keep the registries of several workspaces easy to tell apart.
pub const AUTO_PORTS: std::ops::RangeInclusive<u16> = 5001..=5999;

/// The first port of `range` that nothing listens on at 127.0.0.1 and `taken` does not rule
/// out (a port published by a stopped container is not bound, but is not free either).
pub fn first_free_port(
    range: std::ops::RangeInclusive<u16>,
    taken: impl Fn(u16) -> bool,
) -> Option<u16> {
    range
        .into_iter()
        .find(|&port| !taken(port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StateError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

fn io_error(path: &Path, e: super::WorkspaceError) -> StateError {
    StateError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> WorkspaceIdentity {
        WorkspaceIdentity {
            id: "aaaa".into(),
            path: "/w/a".into(),
        }
    }

    #[test]
    fn ownership_from_records() {
        assert_eq!(
            Owner::from_record(Some("aaaa"), Some("/w/a"), true, Some(&me())),
            Owner::ThisWorkspace
        );
        assert_eq!(
            Owner::from_record(Some("bbbb"), Some("/w/b"), true, Some(&me())),
            Owner::OtherWorkspace {
                id: "bbbb".into(),
                path: Some("/w/b".into())
            }
        );
        // A workspace that never made anything owns nothing.
        assert!(matches!(
            Owner::from_record(Some("aaaa"), None, true, None),
            Owner::OtherWorkspace { .. }
        ));
        assert_eq!(
            Owner::from_record(None, None, true, Some(&me())),
            Owner::EarlierKindlab
        );
        assert_eq!(
            Owner::from_record(None, None, false, Some(&me())),
            Owner::NotKindlab
        );
    }

    #[test]
    fn a_workspace_is_gone_when_its_folder_or_its_identity_there_is() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace_at(dir.path());
        let me = ws.ensure_identity().unwrap();
        let recorded = |id: &str, path: &Path| Owner::OtherWorkspace {
            id: id.into(),
            path: Some(path.display().to_string()),
        };
        assert!(!is_gone(&recorded(&me.id, dir.path())));
        assert!(is_gone(&recorded("another-id", dir.path())), "made anew");
        assert!(is_gone(&recorded(&me.id, &dir.path().join("deleted"))));
        let unknown_path = Owner::OtherWorkspace {
            id: me.id.clone(),
            path: None,
        };
        assert!(!is_gone(&unknown_path));
        assert!(!is_gone(&Owner::NotKindlab));
    }

    #[test]
    fn identity_is_made_once_and_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace_at(dir.path());
        assert_eq!(ws.identity().unwrap(), None);
        let first = ws.ensure_identity().unwrap();
        assert_eq!(first.id.len(), 16);
        assert_eq!(ws.ensure_identity().unwrap(), first);
        assert!(dir.path().join(".kindlab/.gitignore").is_file());

        let mut state = ws.read_state().unwrap();
        assert_eq!(state, LocalState::default());
        state.cluster.creating = Some(Creating::new("lab"));
        state.registry.port = Some(5007);
        ws.write_state(&state).unwrap();
        assert_eq!(ws.read_state().unwrap(), state);
        assert_eq!(auto_port(dir.path()), 5007);
    }

    #[test]
    fn a_corrupt_state_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace_at(dir.path());
        std::fs::create_dir_all(dir.path().join(".kindlab")).unwrap();
        std::fs::write(dir.path().join(".kindlab/state.json"), "{not json").unwrap();
        let err = ws.read_state().unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
        assert_eq!(err.exit_code(), exit::BAD_INPUT);
    }

    #[test]
    fn the_lock_is_exclusive_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace_at(dir.path());
        let held = ws.lock().unwrap();
        match ws.lock() {
            Err(StateError::Busy { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("expected Busy, got {other:?}"),
        }
        assert_eq!(ws.lock_holder(), Some(std::process::id().to_string()));
        drop(held);
        // Other tests in this process fork children: between fork and exec a child holds a
        // copy of every descriptor, the lock's too, for a moment.
        let released = (0..100).any(|_| {
            let free = ws.lock_holder().is_none();
            if !free {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            free
        });
        assert!(released, "the lock is still held after its guard dropped");
        ws.lock().unwrap();
    }

    #[test]
    fn free_ports_skip_what_is_taken() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bound = listener.local_addr().unwrap().port();
        assert_eq!(first_free_port(bound..=bound, |_| false), None);
        let free = first_free_port(20000..=20100, |p| p == 20000).unwrap();
        assert_ne!(free, 20000);
    }

    fn workspace_at(root: &Path) -> Workspace {
        Workspace::parse("cluster:\n  name: lab\n", &root.join("kindlab.yaml"), root).unwrap()
    }
}

crate::error::failure_from_inherent!(StateError);
