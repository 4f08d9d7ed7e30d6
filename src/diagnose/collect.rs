//! Reading the cluster for the pure judges: a pod's events, its previous logs, its node, its
//! pull secrets, its owner, and its images' registries. Everything beyond the target itself
//! is best effort: a lookup that fails (RBAC, a node gone) leaves that fact out, it does not
//! fail the diagnosis.

use crate::k8s::event_time;
use std::collections::BTreeMap;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, LogParams};
use kube::core::Selector;
use kube::{Client, Resource};

use super::pod::{
    EventFact, NodeFit, PodFacts, cpu_millis, diagnose_pod_facts, failing_images, memory_bytes,
    pod_needs_diagnosis_at,
};
use super::registry::RegistryProbe;
use super::service::diagnose_service;
use super::{Cause, Certainty, DiagnoseError, Diagnosis, Evidence, Finding, Target};
use crate::k8s::K8sError;

/// Lines of a crashed container's previous log to keep.
const LOG_LINES: i64 = 8;

/// A client for the kubeconfig's current context (KUBECONFIG, else ~/.kube/config), or the
/// in-cluster service account.
pub async fn default_client() -> Result<Client, DiagnoseError> {
    crate::tls::ensure_crypto_provider();
    let config = kube::Config::infer()
        .await
        .map_err(|e| DiagnoseError::NoCluster { why: e.to_string() })?;
    Client::try_from(config).map_err(|e| DiagnoseError::NoCluster { why: e.to_string() })
}

/// Why one pod is unhealthy (empty when it is not). For rollout timeouts, labs and `status`.
pub async fn diagnose_pod(
    client: &Client,
    pod: &Pod,
    registry: &impl RegistryProbe,
) -> Vec<Finding> {
    if !pod_needs_diagnosis_at(pod, Some(k8s_openapi::jiff::Timestamp::now())) {
        return Vec::new();
    }
    let facts = gather(client, pod, registry).await;
    diagnose_pod_facts(&facts)
}

/// How long a stuck rollout's registry may take to answer: the rollout has already failed and
/// the user is waiting.
const STUCK_ROLLOUT_REGISTRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// Explains the pod of a stuck rollout with the same judgement as `kindlab diagnose`,
/// registry included (briefly), so the rollout error names the cause and its fix.
pub struct StuckPodExplainer {
    registry: super::RegistryAccess,
}

impl Default for StuckPodExplainer {
    fn default() -> Self {
        StuckPodExplainer {
            registry: super::RegistryAccess::new().with_timeout(STUCK_ROLLOUT_REGISTRY_TIMEOUT),
        }
    }
}

impl crate::k8s::ExplainPod for StuckPodExplainer {
    async fn explain(&self, client: &Client, pod: &Pod) -> Option<crate::k8s::Explanation> {
        let finding = diagnose_pod(client, pod, &self.registry)
            .await
            .into_iter()
            .next()?;
        Some(crate::k8s::Explanation {
            summary: finding.summary,
            fix: finding.fix,
        })
    }
}

/// The diagnosis of a Deployment: each unhealthy pod's findings, or why it has no pods.
pub async fn diagnose_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
    registry: &impl RegistryProbe,
) -> Result<Diagnosis, DiagnoseError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = api
        .get_opt(name)
        .await
        .map_err(|e| K8sError::request(format!("read Deployment {namespace}/{name}"), e))?;
    let Some(deployment) = deployment else {
        return Err(not_found::<Deployment>(client, "deployment", namespace, name).await);
    };
    let pods = deployment_pods(client, namespace, &deployment).await?;
    let mut findings = diagnose_pods(client, &pods, registry).await;
    if pods.is_empty()
        && let Some(finding) = replica_failure(&deployment)
    {
        findings.push(finding);
    }
    Ok(Diagnosis {
        target: format!("deployment/{name}"),
        namespace: namespace.to_string(),
        healthy: findings.is_empty(),
        checked: names(&pods, "pod"),
        findings,
    })
}

/// `kindlab diagnose TARGET -n NAMESPACE`.
pub async fn diagnose_target(
    client: &Client,
    target: &Target,
    namespace: &str,
    registry: &impl RegistryProbe,
) -> Result<Diagnosis, DiagnoseError> {
    match target {
        Target::Deployment(name) => diagnose_deployment(client, namespace, name, registry).await,
        Target::Pod(name) => diagnose_one_pod(client, namespace, name, registry).await,
        Target::Service(name) => diagnose_one_service(client, namespace, name, registry).await,
        Target::Name(name) => {
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            if exists(&deployments, namespace, name).await? {
                return diagnose_deployment(client, namespace, name, registry).await;
            }
            let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
            if exists(&pods, namespace, name).await? {
                return diagnose_one_pod(client, namespace, name, registry).await;
            }
            let services: Api<Service> = Api::namespaced(client.clone(), namespace);
            if exists(&services, namespace, name).await? {
                return diagnose_one_service(client, namespace, name, registry).await;
            }
            let mut found = elsewhere::<Deployment>(client, name).await;
            found.extend(elsewhere::<Pod>(client, name).await);
            found.extend(elsewhere::<Service>(client, name).await);
            found.sort();
            found.dedup();
            Err(DiagnoseError::NotFound {
                kind: "deployment, pod or service".into(),
                name: name.clone(),
                namespace: namespace.to_string(),
                elsewhere: found,
            })
        }
        Target::Namespace => diagnose_namespace(client, namespace, registry).await,
    }
}

async fn exists<K>(api: &Api<K>, namespace: &str, name: &str) -> Result<bool, DiagnoseError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name)
        .await
        .map(|found| found.is_some())
        .map_err(|e| K8sError::request(format!("look up {namespace}/{name}"), e).into())
}

async fn diagnose_one_pod(
    client: &Client,
    namespace: &str,
    name: &str,
    registry: &impl RegistryProbe,
) -> Result<Diagnosis, DiagnoseError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = api
        .get_opt(name)
        .await
        .map_err(|e| K8sError::request(format!("read pod {namespace}/{name}"), e))?;
    let Some(pod) = pod else {
        return Err(not_found::<Pod>(client, "pod", namespace, name).await);
    };
    let findings = diagnose_pod(client, &pod, registry).await;
    Ok(Diagnosis {
        target: format!("pod/{name}"),
        namespace: namespace.to_string(),
        healthy: findings.is_empty(),
        checked: vec![format!("pod/{name}")],
        findings,
    })
}

async fn diagnose_one_service(
    client: &Client,
    namespace: &str,
    name: &str,
    registry: &impl RegistryProbe,
) -> Result<Diagnosis, DiagnoseError> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let service = api
        .get_opt(name)
        .await
        .map_err(|e| K8sError::request(format!("read Service {namespace}/{name}"), e))?;
    let Some(service) = service else {
        return Err(not_found::<Service>(client, "service", namespace, name).await);
    };
    let pods = list_pods(client, namespace, &ListParams::default()).await?;
    let ready = ready_endpoints(client, namespace, name).await;
    let mut findings: Vec<Finding> = diagnose_service(&service, &pods, ready)
        .into_iter()
        .collect();
    // The pods it selects may be why: diagnose those too.
    if let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.clone()) {
        let selected: Vec<Pod> = pods
            .iter()
            .filter(|p| {
                !selector.is_empty()
                    && selector
                        .iter()
                        .all(|(k, v)| p.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v))
            })
            .cloned()
            .collect();
        if !findings.is_empty() {
            findings.extend(diagnose_pods(client, &selected, registry).await);
        }
    }
    Ok(Diagnosis {
        target: format!("service/{name}"),
        namespace: namespace.to_string(),
        healthy: findings.is_empty(),
        checked: vec![format!("service/{name}")],
        findings,
    })
}

async fn diagnose_namespace(
    client: &Client,
    namespace: &str,
    registry: &impl RegistryProbe,
) -> Result<Diagnosis, DiagnoseError> {
    let pods = list_pods(client, namespace, &ListParams::default()).await?;
    let mut findings = diagnose_pods(client, &pods, registry).await;
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let services = services
        .list(&ListParams::default())
        .await
        .map_err(|e| K8sError::request(format!("list Services in {namespace}"), e))?
        .items;
    if pods.is_empty() && services.is_empty() {
        namespace_exists(client, namespace).await?;
    }
    let mut checked = names(&pods, "pod");
    for service in &services {
        let name = service.metadata.name.clone().unwrap_or_default();
        checked.push(format!("service/{name}"));
        let ready = ready_endpoints(client, namespace, &name).await;
        findings.extend(diagnose_service(service, &pods, ready));
    }
    Ok(Diagnosis {
        target: format!("namespace/{namespace}"),
        namespace: namespace.to_string(),
        healthy: findings.is_empty(),
        checked,
        findings,
    })
}

/// An empty namespace may be a namespace that does not exist (a typo in `-n`): say so
/// rather than call it healthy. Credentials that may not read Namespaces (an attendee's)
/// cannot tell, and the empty result stands as what it is.
async fn namespace_exists(client: &Client, namespace: &str) -> Result<(), DiagnoseError> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    match namespaces.get_opt(namespace).await {
        Ok(Some(_)) | Err(_) => Ok(()),
        Ok(None) => Err(DiagnoseError::NotFound {
            kind: "namespace".into(),
            name: namespace.to_string(),
            namespace: namespace.to_string(),
            elsewhere: Vec::new(),
        }),
    }
}

fn names(pods: &[Pod], kind: &str) -> Vec<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.as_ref())
        .map(|n| format!("{kind}/{n}"))
        .collect()
}

async fn diagnose_pods(
    client: &Client,
    pods: &[Pod],
    registry: &impl RegistryProbe,
) -> Vec<Finding> {
    join_all(pods.iter().map(|pod| diagnose_pod(client, pod, registry)))
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn list_pods(
    client: &Client,
    namespace: &str,
    params: &ListParams,
) -> Result<Vec<Pod>, DiagnoseError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut pods = api
        .list(params)
        .await
        .map_err(|e| K8sError::request(format!("list pods in {namespace}"), e))?
        .items;
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(pods)
}

async fn deployment_pods(
    client: &Client,
    namespace: &str,
    deployment: &Deployment,
) -> Result<Vec<Pod>, DiagnoseError> {
    let Some(selector) = deployment.spec.as_ref().map(|s| s.selector.clone()) else {
        return Ok(Vec::new());
    };
    let selector = Selector::try_from(selector).map_err(|e| DiagnoseError::BadTarget {
        target: deployment.metadata.name.clone().unwrap_or_default(),
        why: format!("its selector cannot be used: {e}"),
    })?;
    list_pods(
        client,
        namespace,
        &ListParams::default().labels_from(&selector),
    )
    .await
}

/// No pods at all: the Deployment's ReplicaFailure condition says why (quota, admission).
fn replica_failure(deployment: &Deployment) -> Option<Finding> {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let conditions = deployment.status.as_ref()?.conditions.as_ref()?;
    let condition = conditions
        .iter()
        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")?;
    let reason = condition
        .reason
        .clone()
        .unwrap_or_else(|| "ReplicaFailure".into());
    let message = condition.message.clone().unwrap_or_default();
    if let Some(refused) =
        super::admission::refused_by_policy(&format!("deployment/{name}"), &message)
    {
        return Some(refused);
    }
    Some(Finding {
        subject: format!("deployment/{name}"),
        container: None,
        cause: Cause::Unknown {
            reason: reason.clone(),
        },
        certainty: Certainty::Certain,
        candidates: vec![],
        summary: format!("the Deployment cannot create pods: {reason}: {message}"),
        evidence: vec![Evidence::new("cluster", format!("ReplicaFailure {reason}: {message}"))],
        fix: "fix what the message names (a ResourceQuota, a LimitRange, an admission webhook, a missing ServiceAccount)".into(),
    })
}

async fn not_found<K>(client: &Client, kind: &str, namespace: &str, name: &str) -> DiagnoseError
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    DiagnoseError::NotFound {
        kind: kind.to_string(),
        name: name.to_string(),
        namespace: namespace.to_string(),
        elsewhere: elsewhere::<K>(client, name).await,
    }
}

/// The namespaces that do have an object of this kind and name (best effort).
async fn elsewhere<K>(client: &Client, name: &str) -> Vec<String>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    let params = ListParams::default().fields(&format!("metadata.name={name}"));
    match api.list(&params).await {
        Ok(list) => list
            .items
            .iter()
            .filter_map(|o| o.meta().namespace.clone())
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "cannot search other namespaces");
            Vec::new()
        }
    }
}

/// Ready addresses in the Service's EndpointSlices; `None` when they cannot be read.
async fn ready_endpoints(client: &Client, namespace: &str, service: &str) -> Option<usize> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    match api.list(&params).await {
        Ok(list) => Some(
            list.items
                .iter()
                .flat_map(|slice| slice.endpoints.iter())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
                .map(|e| e.addresses.len())
                .sum(),
        ),
        Err(e) => {
            tracing::debug!(error = %e, service, "cannot read EndpointSlices");
            None
        }
    }
}

/// Every fact the judges use, read concurrently.
async fn gather(client: &Client, pod: &Pod, registry: &impl RegistryProbe) -> PodFacts {
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let images = failing_images(pod);
    let unschedulable = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "PodScheduled" && c.status == "False")
        });
    let (events, owner, previous_logs, node_platform, missing_pull_secrets, answers, nodes) = futures::join!(
        events(client, &namespace, pod),
        owner(client, &namespace, pod),
        previous_logs(client, &namespace, pod),
        node_platform(client, pod),
        missing_pull_secrets(client, &namespace, pod, !images.is_empty()),
        join_all(
            images
                .iter()
                .map(|image| async move { (image.clone(), registry.probe(image).await) })
        ),
        node_fits(client, unschedulable),
    );
    PodFacts {
        now: Some(k8s_openapi::jiff::Timestamp::now()),
        pod: pod.clone(),
        owner,
        events,
        previous_logs,
        registry: answers
            .into_iter()
            .filter_map(|(image, answer)| answer.map(|a| (image, a)))
            .collect(),
        node_platform,
        missing_pull_secrets,
        nodes,
    }
}

async fn events(client: &Client, namespace: &str, pod: &Pod) -> Vec<EventFact> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone();
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let mut items = match api.list(&params).await {
        Ok(list) => list.items,
        Err(e) => {
            tracing::debug!(error = %e, pod = %name, "cannot list the pod's events");
            return Vec::new();
        }
    };
    // A pod recreated under the same name is a different pod.
    items.retain(|e| {
        e.involved_object.kind.as_deref().is_none_or(|k| k == "Pod")
            && match (e.involved_object.uid.as_deref(), uid.as_deref()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    });
    items.sort_by_key(event_time);
    items
        .into_iter()
        .map(|e| EventFact {
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            type_: e.type_.unwrap_or_default(),
            count: e
                .series
                .as_ref()
                .and_then(|s| s.count)
                .or(e.count)
                .unwrap_or(1),
            field_path: e.involved_object.field_path,
        })
        .collect()
}

/// `deployment/NAME` through the ReplicaSet, or the direct owner.
async fn owner(client: &Client, namespace: &str, pod: &Pod) -> Option<String> {
    let reference = pod
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|o| o.controller == Some(true))?;
    if reference.kind != "ReplicaSet" {
        return Some(format!(
            "{}/{}",
            reference.kind.to_lowercase(),
            reference.name
        ));
    }
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let replica_set = api.get_opt(&reference.name).await.ok().flatten()?;
    let deployment = replica_set
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|o| o.kind == "Deployment")?;
    Some(format!("deployment/{}", deployment.name))
}

/// The last lines each crashed container's previous instance logged.
async fn previous_logs(
    client: &Client,
    namespace: &str,
    pod: &Pod,
) -> BTreeMap<String, Vec<String>> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    // (container, whether its last finished instance is the "previous" one): a container
    // that has just exited and not yet restarted is still the current one.
    let crashed: Vec<(String, bool)> = pod
        .status
        .iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .filter_map(|c| {
            let now = c.state.as_ref().and_then(|s| s.terminated.as_ref());
            let before = c.last_state.as_ref().and_then(|l| l.terminated.as_ref());
            let last = now.or(before.filter(|_| c.restart_count > 0))?;
            (last.reason.as_deref() != Some("OOMKilled")).then(|| (c.name.clone(), now.is_none()))
        })
        .collect();
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let logs = join_all(crashed.into_iter().map(|(container, previous)| {
        let api = api.clone();
        let name = name.clone();
        async move {
            // The kubelet answers a log it no longer has with this text, as if it were the log.
            let usable = |text: &String| !text.starts_with("unable to retrieve container logs");
            let fetch = |previous: bool| {
                let api = api.clone();
                let name = name.clone();
                let params = LogParams {
                    container: Some(container.clone()),
                    previous,
                    tail_lines: Some(LOG_LINES),
                    ..LogParams::default()
                };
                async move { api.logs(&name, &params).await }
            };
            let mut text = fetch(previous).await.ok().filter(usable);
            if text.is_none() && previous {
                text = fetch(false).await.ok().filter(usable);
            }
            match text {
                Some(text) => Some((
                    container,
                    text.lines().map(|l| l.trim_end().to_string()).collect(),
                )),
                None => {
                    tracing::debug!(container, "no log of the last finished instance");
                    None
                }
            }
        }
    }))
    .await;
    logs.into_iter().flatten().collect()
}

async fn node_platform(client: &Client, pod: &Pod) -> Option<String> {
    let node = pod.spec.as_ref()?.node_name.clone()?;
    let api: Api<Node> = Api::all(client.clone());
    let info = api.get_opt(&node).await.ok().flatten()?.status?.node_info?;
    Some(format!("{}/{}", info.operating_system, info.architecture))
}

async fn missing_pull_secrets(
    client: &Client,
    namespace: &str,
    pod: &Pod,
    pulling: bool,
) -> Vec<String> {
    if !pulling {
        return Vec::new();
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut missing = Vec::new();
    for reference in pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.as_deref())
        .unwrap_or_default()
    {
        // Only a definite "not found" counts; a refused lookup says nothing.
        if let Ok(None) = api.get_opt(&reference.name).await {
            missing.push(reference.name.clone());
        }
    }
    missing
}

async fn node_fits(client: &Client, wanted: bool) -> Vec<NodeFit> {
    if !wanted {
        return Vec::new();
    }
    let api: Api<Node> = Api::all(client.clone());
    let Ok(list) = api.list(&ListParams::default()).await else {
        return Vec::new();
    };
    list.items
        .iter()
        .map(|node| {
            let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
            NodeFit {
                name: node.metadata.name.clone().unwrap_or_default(),
                labels: node.metadata.labels.clone().unwrap_or_default(),
                cpu_millis: allocatable
                    .and_then(|a| a.get("cpu"))
                    .and_then(|q| cpu_millis(&q.0)),
                memory_bytes: allocatable
                    .and_then(|a| a.get("memory"))
                    .and_then(|q| memory_bytes(&q.0)),
            }
        })
        .collect()
}
