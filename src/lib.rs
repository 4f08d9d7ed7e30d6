//! kindlab: from nothing to a working local Kubernetes lab in one command.
//!
//! The house, from the ground up (a module imports only modules on lower lines, except
//! where noted; there is no import circle):
//!
//! - Ground: `exit` (exit codes), `tls`, `interrupt` (one cancellation path), `error` (any
//!   module's error at the binary edge, through the `Failure` trait; names none of them).
//! - `workspace`: kindlab.yaml, the overlay, state, git, `kindlab init`'s scaffold.
//! - `ui`: everything printed: step lines, tables, JSON, errors, and `ui::show`, the one place
//!   that picks text or JSON for a verb's `Report`.
//! - `k8s`: clients from kubeconfig, server-side apply and its dry-run plan, watches,
//!   rollouts, GitOps-managed objects, refusals (403) named.
//! - `docker`: the Engine API (bollard): connection, labels, builds (BuildKit or classic),
//!   `.dockerignore` as Docker reads it.
//! - `registry`: the registry container (observe → plan → act) and an OCI client.
//! - `cli`: the command line (clap only).
//! - `desired`, `images`: what the workspace wants deployed; build and push of its images.
//! - `cluster`: the kind CLI, node wiring to the registry, kubeconfig.
//! - `diagnose`: why a pod or Service is unhealthy, one file per cause (`diagnose/pod/`).
//! - `guardrails`: the admission rules (CEL), as policies in the cluster and in `check`.
//! - `bundle`: offline bundles (create, load).
//! - `lab`: break/fix labs from `labs/*.yaml`: spec, target, actions, observation, the
//!   attendee's verbs and the unattended run, their reports and renderings (`lab/render`).
//! - `up`: the lab as ordered actions (`up/actions`), each observe → plan → act; `status`
//!   and `up --dry-run` read the same survey.
//! - `workshop`: a room of attendees on one shared cluster.
//! - Verbs, each a module returning a `ui::Report`: `init`, `build`, `check`, `pin`,
//!   `status`, `down`, `reset`, `doctor`, `registry_command`, `manual` (completions, man
//!   pages), and the `command` files of `bundle`, `diagnose`, `lab`, `up` and `workshop`.
//! - Top: `app` dispatches a parsed command line to its verb.

pub mod app;
pub mod build;
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
pub mod exit;
pub mod gitops;
pub mod guardrails;
pub mod images;
pub mod init;
pub mod interrupt;
pub mod k8s;
pub mod lab;
pub mod manual;
pub mod pin;
pub mod registry;
pub mod registry_command;
pub mod reset;
pub mod status;
pub mod tls;
pub mod ui;
pub mod up;
pub mod workshop;
pub mod workspace;

pub use app::run;
