//! kindlab's integration tests: the real binary against a real Docker engine, a real
//! registry and (in `lab`) a real kind cluster. They fail, never skip, when Docker is missing.

mod build;
mod buildkit;
mod bundle;
mod check;
mod cli;
mod cluster;
mod diagnose;
mod gitops;
mod guardrails;
mod install;
mod interrupt;
mod isolated_engine;
mod lab;
mod lab_faults;
mod lifecycle;
mod registry;
mod report;
mod room;
mod second_app;
mod support;
