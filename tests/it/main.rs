//! kindlab's integration tests: the real binary against a real Docker engine, a real
//! registry and (in `lab`) a real kind cluster. They fail, never skip, when Docker is missing.

mod build;
mod bundle;
mod cli;
mod cluster;
mod isolated_engine;
mod registry;
mod support;
