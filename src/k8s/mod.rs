//! Talking to the lab's Kubernetes API: clients from kubeconfig, server-side apply of what
//! `kustomize build` prints, and waiting for Deployments the way `kubectl rollout status` does,
//! with a diagnosis of the stuck pod when a rollout does not finish.
//!
//! The module is called `k8s` (not `kube`) so the `kube` crate is never shadowed.

mod apply;
mod client;
mod error;
pub mod gitops;
pub mod object;
mod rollout;

pub(crate) use apply::prepare;
pub use apply::{
    Applied, ApplyOutcome, LAST_APPLIED, ObjectChange, ObjectPlan, apply_all, compare,
    kubectl_last_applied, plan_objects,
};
pub use client::{
    ClusterAccess, Connected, client_for_context, client_from_kubeconfig,
    client_from_kubeconfig_yaml,
};
pub use error::{Diagnosis, K8sError, Refusal};
pub use rollout::{
    Rollout, event_time, is_fatal_watch_error, judge, pod_not_ready_reason, wait_rollout,
};

/// The field manager kindlab's server-side applies are recorded under.
pub const FIELD_MANAGER: &str = "kindlab";

/// Label kindlab adds to every object it applies, so its objects can be told apart.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "kindlab");
