//! Files kindlab renders from `templates/`: kind's cluster config, the containerd hosts
//! file for each node, and the KEP-1755 ConfigMap. Each has one or two variables, so a plain
//! replacement is all the templating they need.

const KIND_CONFIG: &str = include_str!("../../templates/kind-config.yaml");
const HOSTS_TOML: &str = include_str!("../../templates/hosts.toml");
const REGISTRY_HOSTING: &str = include_str!("../../templates/local-registry-hosting.yaml");

pub fn render_kind_config(cluster_name: &str) -> String {
    KIND_CONFIG.replace("{{name}}", cluster_name)
}

/// The hosts.toml that sends pulls to the registry container on the kind network.
pub fn render_hosts_toml(registry_name: &str) -> String {
    HOSTS_TOML.replace("{{name}}", registry_name)
}

pub fn render_registry_hosting(registry_name: &str, port: u16) -> String {
    REGISTRY_HOSTING
        .replace("{{name}}", registry_name)
        .replace("{{port}}", &port.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_config_uses_config_path_never_mirrors() {
        let config = render_kind_config("lab");
        assert!(config.contains("name: lab\n"));
        assert!(config.contains(r#"config_path = "/etc/containerd/certs.d""#));
        // Comments may name the legacy patch; no TOML table may use it.
        assert!(
            !config
                .lines()
                .any(|l| l.trim_start().starts_with('[') && l.contains("mirrors"))
        );
        assert!(!config.contains("{{"));
    }

    #[test]
    fn hosts_toml_points_at_the_registry_container() {
        let hosts = render_hosts_toml("kind-registry");
        assert!(hosts.contains(r#"[host."http://kind-registry:5000"]"#));
        // Without `server`, containerd falls back to the registry name itself.
        assert!(
            hosts.contains("server = \"http://kind-registry:5000\""),
            "{hosts}"
        );
    }

    #[test]
    fn registry_hosting_has_all_kep_1755_fields() {
        let cm = render_registry_hosting("kind-registry", 5001);
        for field in [
            r#"host: "localhost:5001""#,
            r#"hostFromContainerRuntime: "kind-registry:5000""#,
            r#"hostFromClusterNetwork: "kind-registry:5000""#,
            "help: ",
        ] {
            assert!(cm.contains(field), "missing {field} in {cm}");
        }
        assert!(cm.contains("namespace: kube-public"));
    }
}
