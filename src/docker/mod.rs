//! The Docker Engine API (bollard): connection, labels, containers, image build and push.

mod build;
pub mod buildkit;
pub mod dockerfile;
pub mod dockerignore;
mod engine;
pub mod labels;

pub use build::{BuildError, BuildEvent, BuildRequest, build_image, push_image};
pub use buildkit::Builder;
pub use engine::{DockerError, Engine, EngineStorage, resolve_host};
