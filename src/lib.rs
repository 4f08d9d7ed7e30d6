//! kindlab: from nothing to a working local Kubernetes lab in one command.
//!
//! The house, from the ground up: a module imports only modules on earlier lines (or its own
//! line's); there is no import circle and no import that runs back up.
//!
//! - Ground: `exit` (exit codes), `tls`, `interrupt` (one cancellation path), `error` (any
//!   module's error at the binary edge, through the `Failure` trait; names none of them).
//! - `ui`: everything printed: step lines, tables, JSON, errors, and `ui::show`, the one place
//!   that picks text or JSON for a verb's `Report`.
//! - `k8s`: clients from kubeconfig; a manifest document as the API sees it (`document`),
//!   server-side apply (`apply`) and its dry-run plan (`plan`) around one apply request;
//!   watches; rollouts judged (a stuck pod is explained by whoever waits, see `ExplainPod`);
//!   GitOps-managed objects recognised; refusals (403) named.
//! - `cli` (the command line, clap only); `guardrails` (the admission rules, CEL, as
//!   policies in the cluster and in `check`).
//! - `workspace` (kindlab.yaml, the overlay, state, git, `init`'s scaffold); `manual`
//!   (completions and man pages from `cli`).
//! - `docker`: the Engine API (bollard): connection, storage, labels, builds (BuildKit or
//!   classic), `.dockerignore` as Docker reads it.
//! - `registry` (the registry container, observe → plan → act, and an OCI client); `desired`
//!   (what the workspace wants deployed).
//! - `cluster` (the kind CLI, node wiring to the registry, kubeconfig, connecting to the
//!   lab's cluster or any other); `images` (build and push); `pin`.
//! - `diagnose` (why a pod or Service is unhealthy, one file per cause in `diagnose/pod/`,
//!   and the explainer of a stuck rollout); `bundle` (offline bundles); the verbs `init`,
//!   `build`.
//! - `gitops` (GitOps mode with Flux), `check`, `doctor`.
//! - `lab` (break/fix labs from `labs/*.yaml`: spec, target, actions, observation, the
//!   shared phases, the attendee's verbs and the unattended run, their reports and
//!   renderings in `lab/render`); `up` (the lab as ordered actions in `up/actions`, each
//!   observe → plan → act; `status` and `up --dry-run` read the same survey); `down`.
//! - Verbs on top of those: `status`, `reset`, `registry_command`; then `workshop` (a room
//!   of attendees on one shared cluster).
//! - Top: `app` dispatches a parsed command line to its verb. Every verb returns a
//!   `ui::Report` (the `command` files of `bundle`, `diagnose`, `lab`, `up` and `workshop`,
//!   and the verb modules above).

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
