//! The user's workspace: `kindlab.yaml`, the images it builds, the overlay it deploys, and
//! `kindlab init`, which scaffolds one from `templates/workspace/`.

mod files;
mod git;
mod kustomization;
mod manifest;
mod overlay;
mod scaffold;
mod state;

pub use files::{write_atomic, write_json_atomic};
pub use git::Git;
pub use kustomization::{
    DigestChange, ImageChange, ImageEntry, WantedImage, find_entry, kustomization_file,
    read_images, record_images, set_images,
};
pub use manifest::{
    BuildSecret, ClusterSpec, DeploySpec, ImageSpec, MANIFEST_FILE, RegistrySettings, SecretSource,
    Workspace, WorkspaceError, yaml_error_position,
};
pub use overlay::{
    ContainerImage, Renderer, container_images, find_renderer, find_renderer_and_render,
    namespace_overlay, parse_documents, render_overlay, repository,
};
pub use scaffold::scaffold;
pub use state::{
    AUTO_PORTS, ClusterRecord, Creating, LocalState, Owner, RegistryRecord, STATE_DIR, StateError,
    WorkspaceIdentity, WorkspaceLock, first_free_port, is_gone,
};
