//! Exit codes, stable for scripts. 2 is clap's usage error.
//!
//! A leaf: every module may name a code without importing the errors of the others.

pub const OK: u8 = 0;
/// The operation was attempted and failed (engine error, build failed, rollout failed).
pub const FAILED: u8 = 1;
/// Bad input: an invalid kindlab.yaml, an unknown image name, a workspace that is not one.
pub const BAD_INPUT: u8 = 3;
/// A prerequisite is missing: Docker not reachable, kind or kustomize not installed.
pub const MISSING_PREREQUISITE: u8 = 4;
/// Something kindlab does not own is in the way (a port, a container, a cluster).
pub const CONFLICT: u8 = 5;
/// A wait ran out of time (rollout, registry readiness).
pub const TIMEOUT: u8 = 6;
/// The credentials lack a permission the command needs (the API server answered 401 or
/// 403); the error names the verb, the resource and the namespace, and who can grant it.
pub const FORBIDDEN: u8 = 7;
/// `status`, `doctor` or `diagnose` found a problem; nothing failed while looking.
pub const UNHEALTHY: u8 = 10;
/// Something the command was using went away under it (a node stopped or paused, the
/// registry removed); running the command again recovers.
pub const DISRUPTED: u8 = 11;
/// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;
