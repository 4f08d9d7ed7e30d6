//! Talking to the lab's Kubernetes API: clients from kubeconfig, server-side apply of what
//! `kustomize build` prints, and waiting for Deployments the way `kubectl rollout status` does,
//! saying what the stuck pod shows when a rollout does not finish (explained by the caller).
//!
//! The module is called `k8s` (not `kube`) so the `kube` crate is never shadowed.

mod apply;
mod client;
mod document;
mod error;
pub mod gitops;
pub mod object;
mod plan;
mod rollout;

pub use apply::{Applied, ApplyOutcome, apply_all};
pub use client::{
    ClusterAccess, Connected, client_for_context, client_from_kubeconfig,
    client_from_kubeconfig_yaml,
};
pub(crate) use document::prepare;
pub use document::{FIELD_MANAGER, LAST_APPLIED, MANAGED_BY_LABEL, kubectl_last_applied};
pub use error::{Explanation, K8sError, Refusal, StuckRollout};
pub use plan::{ObjectChange, ObjectPlan, compare, plan_objects};
pub use rollout::{
    ExplainPod, Rollout, event_time, is_fatal_watch_error, judge, pod_not_ready_reason,
    wait_rollout,
};
