//! Building a `kube::Client` from the kubeconfig kind prints, or from the user's own kubeconfig.

use std::path::PathBuf;

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use super::error::K8sError;

/// Client from kubeconfig YAML text (what `kind get kubeconfig --name X` prints).
/// `context: None` uses the kubeconfig's current-context.
pub async fn client_from_kubeconfig_yaml(
    yaml: &str,
    context: Option<&str>,
) -> Result<Client, K8sError> {
    crate::tls::ensure_crypto_provider();
    let origin = "the kubeconfig kind printed";
    let kubeconfig = Kubeconfig::from_yaml(yaml).map_err(|source| K8sError::Kubeconfig {
        origin: origin.into(),
        source,
    })?;
    client_from(kubeconfig, context, origin).await
}

/// Client for the current context of a kubeconfig kindlab read (`origin` says from where).
pub async fn client_from_kubeconfig(
    kubeconfig: Kubeconfig,
    origin: &str,
) -> Result<Client, K8sError> {
    crate::tls::ensure_crypto_provider();
    client_from(kubeconfig, None, origin).await
}

/// Client for a context of the user's default kubeconfig (`KUBECONFIG`, else `~/.kube/config`),
/// for `--context NAME` mode.
pub async fn client_for_context(context: &str) -> Result<Client, K8sError> {
    let access = ClusterAccess {
        kubeconfig: None,
        context: Some(context.to_string()),
    };
    Ok(access.connect().await?.client)
}

/// Which cluster, as whom: `--kubeconfig FILE` and `--context NAME`, as kubectl takes them.
/// Neither given: the caller's own default (a workspace's kind cluster).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterAccess {
    /// A kubeconfig file instead of `KUBECONFIG` / `~/.kube/config` (an attendee's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// A context of it instead of its current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// A client, and what the kubeconfig said about it.
pub struct Connected {
    pub client: Client,
    /// The context's name (the kubeconfig's current one when none was asked for).
    pub context: String,
    /// The context's namespace, when the kubeconfig sets one (an attendee's own).
    pub namespace: Option<String>,
    /// The kubeconfig it came from: the server and its CA, for writing kubeconfigs for
    /// others (a workshop's attendees).
    pub kubeconfig: Kubeconfig,
}

impl ClusterAccess {
    /// A kubeconfig or a context was named: not the workspace's own cluster.
    pub fn is_explicit(&self) -> bool {
        self.kubeconfig.is_some() || self.context.is_some()
    }

    pub async fn connect(&self) -> Result<Connected, K8sError> {
        crate::tls::ensure_crypto_provider();
        let (kubeconfig, origin) = match &self.kubeconfig {
            Some(path) => (
                Kubeconfig::read_from(path),
                format!("--kubeconfig {}", path.display()),
            ),
            None => (Kubeconfig::read(), default_origin()),
        };
        let kubeconfig = kubeconfig.map_err(|source| K8sError::Kubeconfig {
            origin: origin.clone(),
            source,
        })?;
        let context = self
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .unwrap_or_default();
        let namespace = kubeconfig
            .contexts
            .iter()
            .find(|named| named.name == context)
            .and_then(|named| named.context.as_ref()?.namespace.clone());
        let config = config_from(kubeconfig.clone(), self.context.as_deref(), &origin).await?;
        let client = Client::try_from(config).map_err(|source| K8sError::Client { source })?;
        Ok(Connected {
            client,
            context,
            namespace,
            kubeconfig,
        })
    }
}

async fn client_from(
    kubeconfig: Kubeconfig,
    context: Option<&str>,
    origin: &str,
) -> Result<Client, K8sError> {
    let config = config_from(kubeconfig, context, origin).await?;
    Client::try_from(config).map_err(|source| K8sError::Client { source })
}

async fn config_from(
    kubeconfig: Kubeconfig,
    context: Option<&str>,
    origin: &str,
) -> Result<Config, K8sError> {
    // kube reports a missing context as an opaque "failed to load current context"; checking
    // first lets the error list the contexts that do exist.
    if let Some(wanted) = context {
        let available = context_names(&kubeconfig);
        if !available.iter().any(|name| name == wanted) {
            return Err(K8sError::ContextNotFound {
                context: wanted.to_string(),
                origin: origin.to_string(),
                available,
            });
        }
    }
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| K8sError::Kubeconfig {
            origin: origin.to_string(),
            source,
        })
}

fn context_names(kubeconfig: &Kubeconfig) -> Vec<String> {
    kubeconfig
        .contexts
        .iter()
        .map(|named| named.name.clone())
        .collect()
}

/// Where `Kubeconfig::read` looks, in words for error messages.
fn default_origin() -> String {
    match std::env::var("KUBECONFIG") {
        Ok(value) if !value.is_empty() => format!("KUBECONFIG={value}"),
        _ => "~/.kube/config".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND_KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
clusters:
- cluster:
    insecure-skip-tls-verify: true
    server: https://127.0.0.1:6443
  name: kind-lab
contexts:
- context:
    cluster: kind-lab
    user: kind-lab
  name: kind-lab
current-context: kind-lab
users:
- name: kind-lab
  user:
    token: abc
"#;

    #[tokio::test]
    async fn builds_client_for_current_context() {
        let client = client_from_kubeconfig_yaml(KIND_KUBECONFIG, None).await;
        assert!(client.is_ok(), "{:?}", client.err());
    }

    #[tokio::test]
    async fn unknown_context_lists_the_known_ones() {
        let err = client_from_kubeconfig_yaml(KIND_KUBECONFIG, Some("kind-other"))
            .await
            .err();
        match err {
            Some(K8sError::ContextNotFound {
                context, available, ..
            }) => {
                assert_eq!(context, "kind-other");
                assert_eq!(available, vec!["kind-lab".to_string()]);
            }
            other => panic!("expected ContextNotFound, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn garbage_is_a_kubeconfig_error() {
        let err = client_from_kubeconfig_yaml("clusters: [", None).await.err();
        assert!(matches!(err, Some(K8sError::Kubeconfig { .. })), "{err:?}");
    }
}
