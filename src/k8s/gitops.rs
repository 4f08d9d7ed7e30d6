//! Objects a GitOps controller manages. Under Argo CD (with self-heal) or Flux, a change made
//! with kubectl is reverted by the controller, so `up`, labs and `reset` must not apply over
//! such objects: they say which controller owns them and how to change them through Git.

use serde::Serialize;
use serde_json::Value;

/// Argo CD's resource tracking annotation (`<app>:<group>/<kind>:<namespace>/<name>`).
const ARGO_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
/// Argo CD 2.x's default tracking label (also set by Helm charts, so it only counts next to
/// Argo CD's field manager).
const ARGO_INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
const FLUX_KUSTOMIZE_NAME: &str = "kustomize.toolkit.fluxcd.io/name";
const FLUX_KUSTOMIZE_NAMESPACE: &str = "kustomize.toolkit.fluxcd.io/namespace";
const FLUX_HELM_NAME: &str = "helm.toolkit.fluxcd.io/name";
const FLUX_HELM_NAMESPACE: &str = "helm.toolkit.fluxcd.io/namespace";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "controller", rename_all = "kebab-case")]
pub enum GitOpsOwner {
    ArgoCd { application: String },
    FluxKustomization { name: String, namespace: String },
    FluxHelmRelease { name: String, namespace: String },
}

impl GitOpsOwner {
    pub fn describe(&self) -> String {
        match self {
            GitOpsOwner::ArgoCd { application } => format!("Argo CD (Application {application})"),
            GitOpsOwner::FluxKustomization { name, namespace } => {
                format!("Flux (Kustomization {namespace}/{name})")
            }
            GitOpsOwner::FluxHelmRelease { name, namespace } => {
                format!("Flux (HelmRelease {namespace}/{name})")
            }
        }
    }

    /// How to change such an object: through Git, then ask the controller to sync.
    pub fn fix(&self) -> String {
        match self {
            GitOpsOwner::ArgoCd { application } => format!(
                "change it through Git: commit and push, then `argocd app sync {application}` (or wait for Argo CD to poll)"
            ),
            GitOpsOwner::FluxKustomization { name, namespace } => format!(
                "change it through Git: commit and push, then `flux reconcile kustomization {name} -n {namespace} --with-source`"
            ),
            GitOpsOwner::FluxHelmRelease { name, namespace } => format!(
                "change it through Git: commit and push, then `flux reconcile helmrelease {name} -n {namespace} --with-source`"
            ),
        }
    }
}

/// The GitOps controller that manages `object` (a live object as JSON), if any: from its
/// tracking annotations and labels, or its managedFields.
pub fn owner(object: &Value) -> Option<GitOpsOwner> {
    let metadata = &object["metadata"];
    let annotation = |k: &str| metadata["annotations"][k].as_str().map(str::to_string);
    let label = |k: &str| metadata["labels"][k].as_str().map(str::to_string);
    let managers: Vec<&str> = metadata["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();

    if let Some(tracking) = annotation(ARGO_TRACKING_ID) {
        let application = tracking.split(':').next().unwrap_or(&tracking).to_string();
        return Some(GitOpsOwner::ArgoCd { application });
    }
    if let (Some(name), Some(namespace)) =
        (label(FLUX_KUSTOMIZE_NAME), label(FLUX_KUSTOMIZE_NAMESPACE))
    {
        return Some(GitOpsOwner::FluxKustomization { name, namespace });
    }
    if let (Some(name), Some(namespace)) = (label(FLUX_HELM_NAME), label(FLUX_HELM_NAMESPACE)) {
        return Some(GitOpsOwner::FluxHelmRelease { name, namespace });
    }
    let argo_manager = managers.iter().any(|m| m.starts_with("argocd"));
    if argo_manager {
        let application = label(ARGO_INSTANCE_LABEL).unwrap_or_else(|| "?".into());
        return Some(GitOpsOwner::ArgoCd { application });
    }
    if managers.contains(&"kustomize-controller") {
        return Some(GitOpsOwner::FluxKustomization {
            name: "?".into(),
            namespace: "flux-system".into(),
        });
    }
    if managers.contains(&"helm-controller") {
        return Some(GitOpsOwner::FluxHelmRelease {
            name: "?".into(),
            namespace: "flux-system".into(),
        });
    }
    None
}

/// The error that refuses to apply over `object`; `fix` says how to change it through Git
/// ([`GitOpsOwner::fix`], or kindlab's own GitOps mode's words).
pub fn refusal(object: String, owner: &GitOpsOwner, fix: String) -> super::error::K8sError {
    super::error::K8sError::ManagedByGitOps {
        object,
        controller: owner.describe(),
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argo_cd_by_tracking_id_or_by_its_field_manager() {
        let tracked = json!({"metadata": {"annotations": {
            ARGO_TRACKING_ID: "apps-dev:apps/Deployment:dev/orders-api"}}});
        assert_eq!(
            owner(&tracked),
            Some(GitOpsOwner::ArgoCd {
                application: "apps-dev".into()
            })
        );
        assert!(
            owner(&tracked)
                .unwrap()
                .fix()
                .contains("argocd app sync apps-dev")
        );
        let managed = json!({"metadata": {
            "labels": {ARGO_INSTANCE_LABEL: "apps-dev"},
            "managedFields": [{"manager": "argocd-controller", "operation": "Apply"}]}});
        assert_eq!(
            owner(&managed),
            Some(GitOpsOwner::ArgoCd {
                application: "apps-dev".into()
            })
        );
    }

    #[test]
    fn a_helm_instance_label_alone_is_not_argo_cd() {
        let helm = json!({"metadata": {"labels": {ARGO_INSTANCE_LABEL: "my-release"},
            "managedFields": [{"manager": "helm", "operation": "Update"}]}});
        assert_eq!(owner(&helm), None);
    }

    #[test]
    fn flux_by_labels_or_field_manager() {
        let labelled = json!({"metadata": {"labels": {
            FLUX_KUSTOMIZE_NAME: "apps", FLUX_KUSTOMIZE_NAMESPACE: "flux-system"}}});
        let found = owner(&labelled).unwrap();
        assert_eq!(
            found,
            GitOpsOwner::FluxKustomization {
                name: "apps".into(),
                namespace: "flux-system".into()
            }
        );
        assert!(
            found
                .fix()
                .contains("flux reconcile kustomization apps -n flux-system")
        );
        let helm = json!({"metadata": {"labels": {
            FLUX_HELM_NAME: "web", FLUX_HELM_NAMESPACE: "team"}}});
        assert!(matches!(
            owner(&helm),
            Some(GitOpsOwner::FluxHelmRelease { .. })
        ));
        let managed = json!({"metadata": {"managedFields": [{"manager": "kustomize-controller"}]}});
        assert!(matches!(
            owner(&managed),
            Some(GitOpsOwner::FluxKustomization { .. })
        ));
    }

    #[test]
    fn kindlabs_own_objects_are_nobodys() {
        let ours = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "kindlab"},
            "managedFields": [{"manager": "kindlab"}, {"manager": "kubectl-client-side-apply"}]}});
        assert_eq!(owner(&ours), None);
    }
}
