//! The labels kindlab puts on what it creates, so it finds (and deletes) only its own things.

/// Present, with value `true`, on every container, network or image kindlab created.
pub const OWNED: &str = "dev.kindlab.owned";
/// What the object is for kindlab (`registry`, ...).
pub const ROLE: &str = "dev.kindlab.role";
/// The kind label on node containers: `io.x-k8s.kind.cluster=<cluster name>`.
pub const KIND_CLUSTER: &str = "io.x-k8s.kind.cluster";

pub const ROLE_REGISTRY: &str = "registry";

/// The label set for a new object with the given role.
pub fn owned(role: &str) -> std::collections::HashMap<String, String> {
    [
        (OWNED.to_string(), "true".to_string()),
        (ROLE.to_string(), role.to_string()),
    ]
    .into_iter()
    .collect()
}

/// True when a label map says kindlab created the object.
pub fn is_owned(labels: Option<&std::collections::HashMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(OWNED))
        .is_some_and(|v| v == "true")
}
