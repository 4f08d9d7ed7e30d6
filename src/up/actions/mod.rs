//! One file per action, in the order `up` runs them.

pub mod build_push;
pub mod cluster;
pub mod deploy;
pub mod preflight;
pub mod registry;
pub mod wire_nodes;
