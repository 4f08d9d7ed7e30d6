//! What the instructor hands out: one kubeconfig per attendee (a time-limited ServiceAccount
//! token from the TokenRequest API, the cluster's server and CA, the attendee's namespace as
//! the context's), and an index of them.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use kube::config::Kubeconfig;
use serde::{Deserialize, Serialize};

use super::WorkshopError;

const KUBECONFIG_TEMPLATE: &str = include_str!("../../templates/attendee-kubeconfig.yaml");
/// The index of a handout folder, read back by the next `provision`.
pub const INDEX_FILE: &str = "index.json";

/// Where attendees reach the API server, and how they trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub server: String,
    /// The CA bundle, base64 of PEM (as `certificate-authority-data` holds it).
    pub ca_data: Option<String>,
    pub insecure: bool,
}

/// The endpoint of `context` in the instructor's kubeconfig; `server` replaces its URL
/// (the instructor's may be `127.0.0.1`, which attendees on other machines cannot reach).
pub fn endpoint(
    kubeconfig: &Kubeconfig,
    context: &str,
    server: Option<&str>,
) -> Result<Endpoint, WorkshopError> {
    let no = |why: String| WorkshopError::Endpoint { why };
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| no(format!("the kubeconfig has no context {context:?}")))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| no(format!("the kubeconfig has no cluster {cluster_name:?}")))?;
    let ca_data = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => Some(data.clone()),
        (None, Some(file)) => {
            let pem = std::fs::read(file)
                .map_err(|e| no(format!("cannot read the cluster's CA file {file}: {e}")))?;
            Some(base64::engine::general_purpose::STANDARD.encode(pem))
        }
        (None, None) => None,
    };
    let server = server
        .map(str::to_string)
        .or_else(|| cluster.server.clone())
        .ok_or_else(|| no(format!("cluster {cluster_name:?} names no server")))?;
    Ok(Endpoint {
        server,
        ca_data,
        insecure: cluster.insecure_skip_tls_verify.unwrap_or(false),
    })
}

/// An attendee's kubeconfig. Every value is written as a JSON string, which YAML reads as
/// the same string whatever it holds.
pub fn render(
    room: &str,
    attendee: &str,
    endpoint: &Endpoint,
    token: &str,
    expires: &str,
) -> String {
    let quoted = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    // No CA and not insecure: the server's certificate is trusted through the system's
    // roots (a cloud endpoint), so neither line is written.
    let tls = match (&endpoint.ca_data, endpoint.insecure) {
        (_, true) => "      insecure-skip-tls-verify: true".to_string(),
        (Some(ca), false) => format!("      certificate-authority-data: {}", quoted(ca)),
        (None, false) => String::new(),
    };
    KUBECONFIG_TEMPLATE
        .replace("{{tls}}", &tls)
        .replace("{{server}}", &quoted(&endpoint.server))
        .replace("{{token}}", &quoted(token))
        .replace("{{cluster}}", &quoted(room))
        .replace("{{user}}", &quoted(&format!("{room}-{attendee}")))
        .replace("{{context}}", &quoted(&format!("{room}-{attendee}")))
        .replace("{{room}}", room)
        .replace("{{expires}}", expires)
        .replace("{{attendee}}", attendee)
}

/// One attendee's line of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub attendee: String,
    pub namespace: String,
    /// The kubeconfig file, relative to the index.
    pub kubeconfig: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Unix seconds of `expires_at`.
    pub expires_unix: i64,
    /// What the file was made for ([`issued_for`]): a token is kept only for the same.
    #[serde(default)]
    pub issued_for: String,
}

/// The ServiceAccount (its uid), the server and the CA a kubeconfig was made for, in one
/// string: a token of another ServiceAccount (the room made again) is refused, and a file
/// with another server or CA points at the wrong place.
pub fn issued_for(endpoint: &Endpoint, account_uid: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(
        format!(
            "{account_uid}\n{}\n{}\n{}",
            endpoint.server,
            endpoint.ca_data.as_deref().unwrap_or_default(),
            endpoint.insecure
        )
        .as_bytes(),
    );
    hex::encode(&digest[..12])
}

/// The handout folder's index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub room: String,
    pub server: String,
    pub attendees: Vec<Entry>,
}

impl Index {
    pub fn read(dir: &Path) -> Index {
        std::fs::read_to_string(dir.join(INDEX_FILE))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// The entry of `attendee` made for `issued_for` whose token still has more than
    /// `keep_if_left` seconds to run and whose file is still there.
    pub fn still_valid(
        &self,
        dir: &Path,
        attendee: &str,
        issued_for: &str,
        now_unix: i64,
        keep_if_left: i64,
    ) -> Option<&Entry> {
        self.attendees.iter().find(|e| {
            e.attendee == attendee
                && e.issued_for == issued_for
                && e.expires_unix - now_unix > keep_if_left
                && dir.join(&e.kubeconfig).is_file()
        })
    }

    /// Puts `entry` in, replacing the attendee's earlier one; sorted by attendee.
    pub fn upsert(&mut self, entry: Entry) {
        self.attendees.retain(|e| e.attendee != entry.attendee);
        self.attendees.push(entry);
        self.attendees.sort_by(|a, b| a.attendee.cmp(&b.attendee));
    }

    /// The page an instructor prints or shares: who gets which file, and what to type.
    pub fn readme(&self) -> String {
        let mut text = format!(
            "# Workshop room {room}\n\nEach attendee gets one file and works in a namespace of its own on {server}.\n\n| attendee | namespace | kubeconfig | expires |\n|---|---|---|---|\n",
            room = self.room,
            server = self.server
        );
        for e in &self.attendees {
            text.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                e.attendee, e.namespace, e.kubeconfig, e.expires_at
            ));
        }
        text.push_str(
            "\nAs an attendee, in your copy of the workshop's workspace:\n\n```sh\nexport KUBECONFIG=$PWD/ATTENDEE.kubeconfig KINDLAB_KUBECONFIG=$PWD/ATTENDEE.kubeconfig\nkindlab lab list\nkindlab lab start bad-image-tag     # in your namespace\nkubectl get pods                    # the lab text's commands, in your namespace\nkindlab lab check                   # hint, solve, status\nkindlab reset\n```\n",
        );
        text
    }
}

/// The kubeconfig file of `attendee` in `dir`.
pub fn kubeconfig_path(dir: &Path, attendee: &str) -> PathBuf {
    dir.join(format!("{attendee}.kubeconfig"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTRUCTOR: &str = r#"apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://127.0.0.1:40001
  name: kind-room
contexts:
- context:
    cluster: kind-room
    user: kind-room
  name: kind-room
current-context: kind-room
users:
- name: kind-room
  user:
    token: admin
"#;

    #[test]
    fn the_attendees_kubeconfig_has_the_server_ca_token_and_namespace() {
        let kubeconfig = Kubeconfig::from_yaml(INSTRUCTOR).unwrap();
        let endpoint = endpoint(&kubeconfig, "kind-room", None).unwrap();
        assert_eq!(endpoint.server, "https://127.0.0.1:40001");
        let text = render("room", "att01", &endpoint, "tok.en", "2026-12-07T08:00:00Z");
        let parsed = Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("room-att01"));
        let context = parsed.contexts[0].context.as_ref().unwrap();
        assert_eq!(context.namespace.as_deref(), Some("att01"));
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:40001"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0EK"));
        let user = parsed.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(
            user.token.is_some(),
            "kube reads the token (and keeps it secret)"
        );
        assert!(text.contains("token: \"tok.en\""), "{text}");
    }

    #[test]
    fn tls_is_verified_unless_the_instructors_cluster_says_otherwise() {
        let endpoint = |ca: Option<&str>, insecure| Endpoint {
            server: "https://room.example".into(),
            ca_data: ca.map(str::to_string),
            insecure,
        };
        let system_roots = render("r", "a", &endpoint(None, false), "t", "x");
        assert!(!system_roots.contains("insecure"), "{system_roots}");
        let parsed = Kubeconfig::from_yaml(&system_roots).unwrap();
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert!(cluster.certificate_authority_data.is_none());
        let insecure = render("r", "a", &endpoint(None, true), "t", "x");
        assert!(
            insecure.contains("insecure-skip-tls-verify: true"),
            "{insecure}"
        );
        let with_ca = render("r", "a", &endpoint(Some("Q0EK"), false), "t", "x");
        assert!(with_ca.contains("certificate-authority-data") && !with_ca.contains("insecure"));
        assert_ne!(
            issued_for(&endpoint(Some("Q0EK"), false), "uid"),
            issued_for(&endpoint(Some("Q0EK"), false), "uid2"),
            "another ServiceAccount"
        );
        assert_ne!(
            issued_for(&endpoint(Some("Q0EK"), false), "uid"),
            issued_for(&endpoint(Some("Q0EL"), false), "uid"),
            "another CA"
        );
    }

    #[test]
    fn a_server_given_replaces_the_instructors() {
        let kubeconfig = Kubeconfig::from_yaml(INSTRUCTOR).unwrap();
        let endpoint = endpoint(&kubeconfig, "kind-room", Some("https://room.example:6443"));
        assert_eq!(endpoint.unwrap().server, "https://room.example:6443");
        assert!(super::endpoint(&kubeconfig, "nope", None).is_err());
    }

    #[test]
    fn the_index_keeps_a_token_that_still_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::default();
        index.upsert(Entry {
            attendee: "b".into(),
            namespace: "b".into(),
            kubeconfig: "b.kubeconfig".into(),
            expires_at: String::new(),
            expires_unix: 1000,
            issued_for: "sa1".into(),
        });
        assert!(
            index.still_valid(dir.path(), "b", "sa1", 0, 10).is_none(),
            "no file"
        );
        std::fs::write(dir.path().join("b.kubeconfig"), "x").unwrap();
        assert!(index.still_valid(dir.path(), "b", "sa1", 0, 10).is_some());
        assert!(
            index.still_valid(dir.path(), "b", "sa1", 995, 10).is_none(),
            "expiring"
        );
        assert!(
            index.still_valid(dir.path(), "b", "sa2", 0, 10).is_none(),
            "another ServiceAccount, server or CA"
        );
        index.upsert(Entry {
            attendee: "a".into(),
            namespace: "a".into(),
            kubeconfig: "a.kubeconfig".into(),
            expires_at: String::new(),
            expires_unix: 1,
            issued_for: String::new(),
        });
        assert_eq!(index.attendees[0].attendee, "a");
        assert!(index.readme().contains("| b | b | b.kubeconfig |"));
    }
}
