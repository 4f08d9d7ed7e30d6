//! The workload a lab runs against, resolved from the cluster once, and the placeholders
//! (`${namespace}`, `${repository}`, ...) a lab's text and actions use.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use serde::{Deserialize, Serialize};

use super::spec::{LabError, TargetDefaults};
use crate::k8s::K8sError;
use crate::workspace::repository;

/// Which Deployment and container, as the command line or the lab names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRef {
    pub namespace: String,
    pub deployment: String,
    pub container: String,
}

impl TargetRef {
    /// The lab's defaults, overridden by `--target deployment/NAME`, `-n NS`, `--container C`.
    pub fn choose(
        defaults: &TargetDefaults,
        deployment: Option<&str>,
        namespace: Option<&str>,
        container: Option<&str>,
    ) -> TargetRef {
        TargetRef {
            namespace: namespace.unwrap_or(&defaults.namespace).to_string(),
            deployment: deployment.unwrap_or(&defaults.deployment).to_string(),
            container: container.unwrap_or(&defaults.container).to_string(),
        }
    }

    pub fn describe(&self) -> String {
        format!("Deployment {}/{}", self.namespace, self.deployment)
    }
}

/// `deployment/NAME` or `NAME` -> `NAME`; other kinds are refused (labs break Deployments).
pub fn parse_target(text: &str) -> Result<String, String> {
    match text.split_once('/') {
        None => Ok(text.to_string()),
        Some((kind, name))
            if ["deployment", "deployments", "deploy"].contains(&kind.to_lowercase().as_str()) =>
        {
            Ok(name.to_string())
        }
        Some((kind, _)) => Err(format!(
            "labs run against Deployments, not {kind}: use deployment/NAME"
        )),
    }
}

/// The target as found in the cluster when the lab starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedTarget {
    #[serde(flatten)]
    pub target: TargetRef,
    /// The container's image before the break.
    pub image: String,
    /// `key=value,...` from the Deployment's matchLabels (for `kubectl -l`).
    pub selector: String,
    /// The first Service in the namespace that selects the target's pods, if any.
    pub service: Option<String>,
    /// The workspace's overlay, relative to the workspace (`deploy/overlays/dev`).
    pub overlay: String,
    /// What the container reads its settings from (`${env}`, `${configMap}`).
    #[serde(flatten, default)]
    pub config: ContainerConfig,
}

/// Where the target container's settings come from, as its Deployment declares them: the
/// environment variable and the ConfigMap a lab removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerConfig {
    /// `${env}`: the first environment variable set from a ConfigMap or Secret key (a
    /// setting the app is given, not a constant of its image), else the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// `${configMap}`: the first ConfigMap the container needs: from its environment
    /// (`configMapKeyRef`, then `envFrom`), else from the pod's volumes. Optional
    /// references do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
}

impl ContainerConfig {
    /// Reads it from the container `name` of a pod spec (as JSON).
    pub fn of(pod_spec: &serde_json::Value, name: &str) -> ContainerConfig {
        let Some(container) = pod_spec["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        else {
            return ContainerConfig::default();
        };
        let env = container["env"].as_array().cloned().unwrap_or_default();
        let from_key = |e: &serde_json::Value| {
            e["valueFrom"]["configMapKeyRef"].is_object()
                || e["valueFrom"]["secretKeyRef"].is_object()
        };
        let env_name = env
            .iter()
            .find(|e| from_key(e))
            .or_else(|| env.first())
            .and_then(|e| e["name"].as_str())
            .map(str::to_string);
        let required =
            |r: &serde_json::Value| r.is_object() && r["optional"] != true && r["name"].is_string();
        let name_of = |r: &serde_json::Value| r["name"].as_str().map(str::to_string);
        let from_env = env
            .iter()
            .map(|e| &e["valueFrom"]["configMapKeyRef"])
            .find(|r| required(r))
            .and_then(name_of);
        let from_env_from = || {
            container["envFrom"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| &e["configMapRef"])
                .find(|r| required(r))
                .and_then(name_of)
        };
        let from_volumes = || {
            pod_spec["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| &v["configMap"])
                .find(|r| required(r))
                .and_then(name_of)
        };
        ContainerConfig {
            env: env_name,
            config_map: from_env.or_else(from_env_from).or_else(from_volumes),
        }
    }
}

/// Placeholders a target may have no value for, and what it then lacks.
const OPTIONAL_PLACEHOLDERS: [(&str, &str); 2] = [
    ("env", "environment variable"),
    ("configMap", "ConfigMap it reads its settings from"),
];

impl ResolvedTarget {
    /// Reads the Deployment (and the Service in front of it).
    pub async fn resolve(
        client: &kube::Client,
        target: &TargetRef,
        overlay: &str,
    ) -> Result<ResolvedTarget, crate::error::Error> {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &target.namespace);
        let deployment = deployments
            .get_opt(&target.deployment)
            .await
            .map_err(|source| K8sError::Api {
                action: format!("read {}", target.describe()),
                source,
            })?
            .ok_or_else(|| LabError::NotReady {
                what: target.describe(),
                why: "it does not exist".into(),
                fix: format!(
                    "run `kindlab up` (or pick an existing Deployment: --target deployment/NAME -n {})",
                    target.namespace
                ),
            })?;
        let containers = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        let image = containers
            .iter()
            .find(|c| c.name == target.container)
            .and_then(|c| c.image.clone())
            .ok_or_else(|| LabError::NotReady {
                what: target.describe(),
                why: format!("it has no container {:?}", target.container),
                fix: format!(
                    "name one of its containers with --container ({})",
                    containers
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let config = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .map(|spec| ContainerConfig::of(&spec, &target.container))
            .unwrap_or_default();
        let labels = pod_labels(&deployment);
        let selector = deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let services: Api<Service> = Api::namespaced(client.clone(), &target.namespace);
        let service = services
            .list(&Default::default())
            .await
            .map_err(|source| K8sError::Api {
                action: format!("list Services in {}", target.namespace),
                source,
            })?
            .items
            .into_iter()
            .filter(|s| {
                s.spec
                    .as_ref()
                    .and_then(|spec| spec.selector.as_ref())
                    .is_some_and(|sel| selects(sel, &labels))
            })
            .filter_map(|s| s.metadata.name)
            .min();
        Ok(ResolvedTarget {
            target: target.clone(),
            image,
            selector,
            service,
            overlay: overlay.to_string(),
            config,
        })
    }

    /// Every placeholder a lab may use, with its value for this target.
    pub fn placeholders(&self) -> BTreeMap<&'static str, String> {
        let repo = repository(&self.image).to_string();
        let (registry, name) = match repo.rsplit_once('/') {
            Some((host, name)) => (host.to_string(), name.to_string()),
            None => (String::new(), repo.clone()),
        };
        let tag = image_tag(&self.image).unwrap_or("latest").to_string();
        let mut values = BTreeMap::from([
            ("namespace", self.target.namespace.clone()),
            ("deployment", self.target.deployment.clone()),
            ("container", self.target.container.clone()),
            ("selector", self.selector.clone()),
            (
                "service",
                self.service
                    .clone()
                    .unwrap_or_else(|| self.target.deployment.clone()),
            ),
            ("overlay", self.overlay.clone()),
            ("image", self.image.clone()),
            ("repository", repo),
            ("registry", registry),
            ("name", name),
            ("tag", tag),
        ]);
        if let Some(env) = &self.config.env {
            values.insert("env", env.clone());
        }
        if let Some(config_map) = &self.config.config_map {
            values.insert("configMap", config_map.clone());
        }
        values
    }

    /// `text` rendered for an action: a placeholder the target has no value for (a
    /// container without environment variables has no `${env}`) is an error naming it.
    pub fn render_required(&self, text: &str, action: &str) -> Result<String, LabError> {
        let rendered = self.render(text);
        match OPTIONAL_PLACEHOLDERS
            .iter()
            .find(|(key, _)| rendered.contains(&format!("${{{key}}}")))
        {
            Some((key, lacks)) => Err(LabError::CannotApply {
                action: action.to_string(),
                why: format!(
                    "container {} of {} has no {lacks} (${{{key}}})",
                    self.target.container,
                    self.target.describe()
                ),
            }),
            None => Ok(rendered),
        }
    }

    /// `text` with every `${placeholder}` replaced.
    pub fn render(&self, text: &str) -> String {
        render(text, &self.placeholders())
    }

    /// A JSON value with every string's placeholders replaced.
    pub fn render_value(&self, value: &serde_json::Value) -> serde_json::Value {
        let values = self.placeholders();
        map_strings(value, &|s| render(s, &values))
    }
}

fn pod_labels(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// True when every key of a Service selector is among the pod's labels with the same value.
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The tag of an image reference, if it has one (a digest is not a tag).
pub fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let repo = repository(without_digest);
    without_digest
        .strip_prefix(repo)
        .and_then(|rest| rest.strip_prefix(':'))
}

fn render(text: &str, values: &BTreeMap<&'static str, String>) -> String {
    let mut out = text.to_string();
    for (key, value) in values {
        out = out.replace(&format!("${{{key}}}"), value);
    }
    out
}

fn map_strings(value: &serde_json::Value, f: &dyn Fn(&str) -> String) -> serde_json::Value {
    match value {
        serde_json::Value::String(s) => serde_json::Value::String(f(s)),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(|v| map_strings(v, f)).collect())
        }
        serde_json::Value::Object(map) => {
            serde_json::Value::Object(map.iter().map(|(k, v)| (f(k), map_strings(v, f))).collect())
        }
        other => other.clone(),
    }
}

/// The sample workspace's target, as unit tests resolve it.
#[cfg(test)]
pub fn sample_target() -> ResolvedTarget {
    ResolvedTarget {
        target: TargetRef {
            namespace: "dev".into(),
            deployment: "orders-api".into(),
            container: "api".into(),
        },
        image: "localhost:5001/orders-api:4aaa724028c0".into(),
        selector: "app=orders-api".into(),
        service: Some("orders-api".into()),
        overlay: "deploy/overlays/dev".into(),
        config: ContainerConfig {
            env: Some("ORDERS_DB_URL".into()),
            config_map: Some("orders-api-config".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> ResolvedTarget {
        sample_target()
    }

    #[test]
    fn placeholders_split_the_image() {
        let t = target();
        assert_eq!(
            t.render("${repository}:nonexistent"),
            "localhost:5001/orders-api:nonexistent"
        );
        assert_eq!(
            t.render("${registry}/${name}s:${tag}"),
            "localhost:5001/orders-apis:4aaa724028c0"
        );
        assert_eq!(
            t.render("kubectl get pods -n ${namespace} -l ${selector}"),
            "kubectl get pods -n dev -l app=orders-api"
        );
        let patch = serde_json::json!({"name": "${service}", "spec": {"selector": {"app": "x"}}});
        assert_eq!(t.render_value(&patch)["name"], "orders-api");
    }

    #[test]
    fn a_container_says_where_its_settings_come_from() {
        // The sample: both settings from its ConfigMap.
        let sample = serde_json::json!({"containers": [{"name": "api", "env": [
            {"name": "ORDERS_DB_URL", "valueFrom": {"configMapKeyRef": {"name": "orders-api-config", "key": "db-url"}}},
            {"name": "CACHE_MB", "valueFrom": {"configMapKeyRef": {"name": "orders-api-config", "key": "cache-mb"}}}
        ]}]});
        assert_eq!(ContainerConfig::of(&sample, "api"), target().config);
        // Another shape: a constant first, an optional reference, envFrom, another container.
        let other = serde_json::json!({
            "containers": [
                {"name": "proxy", "env": [{"name": "UPSTREAM", "value": "x"}]},
                {"name": "web", "env": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "FEATURES", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "f", "optional": true}}},
                    {"name": "CATALOG_STORE", "valueFrom": {"secretKeyRef": {"name": "store", "key": "url"}}}
                ], "envFrom": [{"configMapRef": {"name": "catalog-settings"}}]}
            ],
            "volumes": [{"name": "v", "configMap": {"name": "templates"}}]
        });
        assert_eq!(
            ContainerConfig::of(&other, "web"),
            ContainerConfig {
                env: Some("FEATURES".into()),
                config_map: Some("catalog-settings".into())
            }
        );
        assert_eq!(
            ContainerConfig::of(&other, "proxy"),
            ContainerConfig {
                env: Some("UPSTREAM".into()),
                config_map: Some("templates".into())
            }
        );
        assert_eq!(
            ContainerConfig::of(&other, "missing"),
            ContainerConfig::default()
        );
    }

    #[test]
    fn a_placeholder_the_target_lacks_is_an_error() {
        let mut t = target();
        assert_eq!(
            t.render_required("${configMap}", "delete it").unwrap(),
            "orders-api-config"
        );
        assert_eq!(t.render("${env}"), "ORDERS_DB_URL");
        t.config = ContainerConfig::default();
        let err = t.render_required("${env}", "remove ${env}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the lab cannot remove ${env}: container api of Deployment dev/orders-api has no environment variable (${env})"
        );
        assert!(t.render_required("${service}", "x").is_ok());
        // A session written before these existed still reads.
        let json = serde_json::to_value(&t).unwrap();
        assert!(json.get("env").is_none(), "{json}");
        let read: ResolvedTarget = serde_json::from_value(json).unwrap();
        assert_eq!(read, t);
        let json = serde_json::to_value(target()).unwrap();
        assert_eq!(json["configMap"], "orders-api-config");
    }

    #[test]
    fn tags_and_targets() {
        assert_eq!(image_tag("localhost:5001/a:b"), Some("b"));
        assert_eq!(image_tag("localhost:5001/a"), None);
        assert_eq!(image_tag("a@sha256:00"), None);
        assert_eq!(parse_target("deployment/web"), Ok("web".into()));
        assert_eq!(parse_target("web"), Ok("web".into()));
        assert!(parse_target("statefulset/db").is_err());
    }

    #[test]
    fn a_selector_selects_when_every_key_matches() {
        let labels = BTreeMap::from([
            ("app".to_string(), "orders-api".to_string()),
            ("tier".to_string(), "web".to_string()),
        ]);
        let sel = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(selects(&sel(&[("app", "orders-api")]), &labels));
        assert!(!selects(&sel(&[("app", "order-api")]), &labels));
        assert!(!selects(&sel(&[]), &labels));
    }
}
