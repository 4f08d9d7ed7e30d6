//! The rules, each defined once as CEL over one image reference `i`. [`policy`] renders
//! them into ValidatingAdmissionPolicies; [`evaluate`] runs the same text with a CEL
//! interpreter. The CEL stays in the subset both sides implement the same way: `has`,
//! `map`, `filter`, `all`, `exists`, `size`, `startsWith`, `endsWith`, `contains`,
//! `matches` (RE2 and Rust's regex agree on the patterns used here), `+` on strings and
//! lists, and the conditional.
//!
//! [`policy`]: super::policy
//! [`evaluate`]: super::evaluate

use serde::Serialize;

/// The kinds the policies match (their `matchConstraints`).
pub const GUARDED_KINDS: [&str; 7] = [
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Images only from the lab's registry and the allowed list.
    Registry,
    /// No `:latest`, no untagged image.
    NoLatest,
    /// Digest-pinned images in namespaces marked production.
    DigestInProduction,
}

impl Rule {
    pub const ALL: [Rule; 3] = [Rule::Registry, Rule::NoLatest, Rule::DigestInProduction];

    /// The rule's name in messages, kindlab.yaml and object names (`kindlab-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::Registry => "registry",
            Rule::NoLatest => "no-latest",
            Rule::DigestInProduction => "digest-in-production",
        }
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The policy's and the binding's name.
    pub fn object_name(self) -> String {
        format!("kindlab-{}", self.name())
    }

    /// CEL: true when the image reference `i` keeps the rule. `variables.allowed` is the
    /// list of registry prefixes (the registry rule only).
    pub fn keeps(self) -> &'static str {
        match self {
            Rule::Registry => "variables.allowed.exists(p, i.startsWith(p))",
            // A digest pins the content whatever the tag says; otherwise the last path part
            // must carry a tag (a colon after the last slash: `host:5001/x` has none), and
            // not `latest`.
            Rule::NoLatest => {
                "i.contains('@') || (i.matches(':[^/:@]+$') && !i.endsWith(':latest'))"
            }
            Rule::DigestInProduction => "i.matches('@sha256:[0-9a-f]{64}$')",
        }
    }

    /// CEL: the message for the first image `variables.bad[0]` that breaks the rule. It names
    /// the image, the rule and the fix.
    pub fn message(self) -> &'static str {
        match self {
            Rule::Registry => {
                "'image ' + variables.bad[0] + ' is not from the lab registry (kindlab guardrail registry; allowed: ' + variables.allowedText + '): push it there and name it so'"
            }
            Rule::NoLatest => {
                "'image ' + variables.bad[0] + (variables.bad[0].endsWith(':latest') ? ' uses the tag :latest' : ' has no tag') + ', which moves (kindlab guardrail no-latest): name a real tag or pin a digest'"
            }
            Rule::DigestInProduction => {
                "'image ' + variables.bad[0] + ' is not pinned by digest in a production namespace (kindlab guardrail digest-in-production): use name@sha256:... (`kindlab pin`)'"
            }
        }
    }

    /// The message when the expression above cannot be evaluated (the API server falls
    /// back to it).
    pub fn fallback_message(self) -> &'static str {
        match self {
            Rule::Registry => "an image is not from the lab registry (kindlab guardrail registry)",
            Rule::NoLatest => "an image uses :latest or no tag (kindlab guardrail no-latest)",
            Rule::DigestInProduction => {
                "an image is not pinned by digest in a production namespace (kindlab guardrail digest-in-production)"
            }
        }
    }
}

/// CEL: the pod spec of a Pod, a CronJob, or anything with a pod template.
pub const POD_SPEC: &str = "object.kind == 'Pod' ? object.spec : (object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : object.spec.template.spec)";

/// CEL: every image the pod spec runs: init, regular and ephemeral containers.
pub const IMAGES: &str = "(has(variables.spec.initContainers) ? variables.spec.initContainers.map(c, c.image) : []) + variables.spec.containers.map(c, c.image) + (has(variables.spec.ephemeralContainers) ? variables.spec.ephemeralContainers.map(c, c.image) : [])";

/// One row of the table both test suites run: an image under a rule, admitted or not.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub rule: Rule,
    pub image: &'static str,
    /// Where the image runs: `containers` or `initContainers`.
    pub list: &'static str,
    pub admitted: bool,
}

/// The registry the table's workspace pushes to, and the one other registry it allows.
pub const CASES_REGISTRY: &str = "localhost:5001";
pub const CASES_ALLOWED: &str = "registry.k8s.io";

const DIGEST: &str = "@sha256:4c1e997385b8fb4ad4d1d3c7e5af7ff3f882e04d6ebd7d2a5c2e6d1e0ee4c8d2";

macro_rules! case {
    ($rule:ident, $image:expr, $list:expr, $admitted:expr) => {
        Case {
            rule: Rule::$rule,
            image: $image,
            list: $list,
            admitted: $admitted,
        }
    };
}

/// The one table: `kindlab check`'s unit tests evaluate it locally, the integration tests
/// send it to a real API server; both must reach the same verdicts.
pub const CASES: &[Case] = &[
    case!(
        Registry,
        "localhost:5001/orders-api:1.0",
        "containers",
        true
    ),
    case!(Registry, "registry.k8s.io/pause:3.10", "containers", true),
    case!(Registry, "orders-api:1.0", "containers", false),
    case!(
        Registry,
        "docker.io/library/busybox:1.36",
        "initContainers",
        false
    ),
    // A host that merely starts like the lab's is another registry.
    case!(
        Registry,
        "localhost:50010/orders-api:1.0",
        "containers",
        false
    ),
    case!(
        NoLatest,
        "localhost:5001/orders-api:1.0",
        "containers",
        true
    ),
    case!(
        NoLatest,
        "localhost:5001/orders-api:latest",
        "containers",
        false
    ),
    case!(NoLatest, "localhost:5001/orders-api", "containers", false),
    case!(NoLatest, "orders-api", "initContainers", false),
    case!(
        NoLatest,
        "localhost:5001/orders-api:latest-fix",
        "containers",
        true
    ),
    case!(
        NoLatest,
        concat!(
            "localhost:5001/orders-api:latest",
            "@sha256:4c1e997385b8fb4ad4d1d3c7e5af7ff3f882e04d6ebd7d2a5c2e6d1e0ee4c8d2"
        ),
        "containers",
        true
    ),
    case!(
        DigestInProduction,
        concat!(
            "localhost:5001/orders-api",
            "@sha256:4c1e997385b8fb4ad4d1d3c7e5af7ff3f882e04d6ebd7d2a5c2e6d1e0ee4c8d2"
        ),
        "containers",
        true
    ),
    case!(
        DigestInProduction,
        "localhost:5001/orders-api:1.0",
        "containers",
        false
    ),
    case!(
        DigestInProduction,
        "localhost:5001/orders-api:1.0",
        "initContainers",
        false
    ),
];

/// The digest the table uses, for tests that build their own references.
pub fn case_digest() -> &'static str {
    DIGEST
}
