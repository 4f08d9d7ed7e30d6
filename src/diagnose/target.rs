//! What `kindlab diagnose` was asked to look at, as kubectl spells it.

use super::DiagnoseError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every pod and Service in the namespace.
    Namespace,
    Deployment(String),
    Pod(String),
    Service(String),
    /// A bare name: a Deployment, else a pod, else a Service.
    Name(String),
}

impl Target {
    /// `deployment/NAME` (`deploy/`, `deployments/`), `pod/NAME` (`po/`, `pods/`),
    /// `service/NAME` (`svc/`, `services/`), a bare `NAME`, or nothing.
    pub fn parse(text: Option<&str>) -> Result<Target, DiagnoseError> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Target::Namespace);
        };
        let bad = |why: &str| DiagnoseError::BadTarget {
            target: text.to_string(),
            why: why.to_string(),
        };
        let (kind, name) = match text.split_once('/') {
            Some((kind, name)) => (Some(kind), name),
            None => (None, text),
        };
        if name.is_empty() || name.contains('/') {
            return Err(bad("write KIND/NAME with one '/', or a bare NAME"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        {
            return Err(bad(
                "Kubernetes names are lower-case letters, digits, '-' and '.'",
            ));
        }
        let name = name.to_string();
        Ok(match kind.map(str::to_ascii_lowercase).as_deref() {
            None => Target::Name(name),
            Some("deployment" | "deployments" | "deploy" | "deployment.apps") => {
                Target::Deployment(name)
            }
            Some("pod" | "pods" | "po") => Target::Pod(name),
            Some("service" | "services" | "svc") => Target::Service(name),
            Some(other) => {
                return Err(bad(&format!(
                    "kind {other:?} is not one diagnose knows (deployment, pod, service)"
                )));
            }
        })
    }

    /// As kubectl would name it.
    pub fn display(&self, namespace: &str) -> String {
        match self {
            Target::Namespace => format!("namespace/{namespace}"),
            Target::Deployment(n) => format!("deployment/{n}"),
            Target::Pod(n) => format!("pod/{n}"),
            Target::Service(n) => format!("service/{n}"),
            Target::Name(n) => n.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_spellings() {
        assert_eq!(Target::parse(None).ok(), Some(Target::Namespace));
        assert_eq!(
            Target::parse(Some("deploy/orders-api")).ok(),
            Some(Target::Deployment("orders-api".into()))
        );
        assert_eq!(
            Target::parse(Some("po/web-1")).ok(),
            Some(Target::Pod("web-1".into()))
        );
        assert_eq!(
            Target::parse(Some("svc/web")).ok(),
            Some(Target::Service("web".into()))
        );
        assert_eq!(
            Target::parse(Some("web")).ok(),
            Some(Target::Name("web".into()))
        );
    }

    #[test]
    fn bad_targets_say_why() {
        for text in ["a/b/c", "cronjob/x", "deployment/", "Web"] {
            let err = Target::parse(Some(text)).err();
            assert!(
                matches!(err, Some(DiagnoseError::BadTarget { .. })),
                "{text}: {err:?}"
            );
        }
    }
}
