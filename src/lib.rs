//! kindlab: from nothing to a working local Kubernetes lab in one command.
//!
//! The modules mirror the pipeline: `docker` (Engine API) and `registry` (the registry
//! container and an OCI client), `cluster` (kind CLI and node wiring), `k8s` (apply, watch,
//! rollout), `workspace` (kindlab.yaml and the overlay), `up` (the ordered actions), and `ui`
//! (everything printed), `diagnose` (why a pod is unhealthy, on any cluster), `lab` (break/fix
//! labs) and `workshop` (a room of attendees on one shared cluster). `app` turns the command
//! line into calls; each verb's module renders its own report.

pub mod app;
pub mod bundle;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod desired;
pub mod diagnose;
pub mod docker;
pub mod doctor;
pub mod down;
pub mod error;
pub mod gitops;
pub mod images;
pub mod interrupt;
pub mod k8s;
pub mod lab;
pub mod pin;
pub mod registry;
pub mod report;
pub mod reset;
pub mod status;
pub mod tls;
pub mod ui;
pub mod up;
pub mod workshop;
pub mod workspace;

pub use app::run;
