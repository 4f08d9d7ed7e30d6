//! The user's workspace: `kindlab.yaml`, the images it builds, the overlay it deploys, and
//! `kindlab init`, which scaffolds one from `templates/workspace/`.

mod files;
mod manifest;
mod overlay;
mod scaffold;
mod state;

pub use files::{write_atomic, write_json_atomic};
pub use manifest::{
    ClusterSpec, DeploySpec, ImageSpec, MANIFEST_FILE, RegistrySettings, Workspace, WorkspaceError,
    yaml_error_position,
};
pub use overlay::{
    Renderer, find_renderer, parse_documents, render_overlay, repository, set_images,
};
pub use scaffold::scaffold;
pub use state::{
    AUTO_PORTS, ClusterRecord, Creating, LocalState, Owner, RegistryRecord, STATE_DIR, StateError,
    WorkspaceIdentity, WorkspaceLock, first_free_port,
};
