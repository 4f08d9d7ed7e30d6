//! kindlab's integration tests: the real binary against a real Docker engine, a real
//! registry and (in `lab`) a real kind cluster. They fail, never skip, when Docker is missing.

mod build;
mod check;
mod cli;
mod cluster;
mod diagnose;
mod lab;
mod registry;
mod report;
mod support;
