//! Guardrails: the lab text's fourth prevention, "admission policies that reject `:latest`
//! in prod or unknown tags", as Kubernetes' own ValidatingAdmissionPolicies (no controller).
//!
//! Each rule is defined once, as CEL, in [`rules`]. The same text is rendered into the
//! cluster's policies ([`policy`]) and evaluated locally on the rendered overlay by
//! `kindlab check` ([`evaluate`]), so CI and the API server cannot disagree. [`CASES`] is
//! the one table both the unit tests and the integration tests against a real API server
//! run. What CEL cannot do (ask a registry whether a tag exists) stays in `kindlab check`.

pub mod evaluate;
pub mod policy;
pub mod reconcile;
pub mod rules;

use serde::Serialize;

pub use evaluate::{Finding, evaluate_objects};
pub use policy::{Desired, Scope, scope_of};
pub use reconcile::{GuardrailStep, Seen, observe, plan};
pub use rules::{CASES, Case, Rule};

/// What a rule does when an image breaks it: the binding's `validationActions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Off,
    /// Admitted, with the message as a warning (kubectl prints `Warning: ...`).
    Warn,
    /// Refused with the message.
    Deny,
}

impl Mode {
    pub fn parse(word: &str) -> Option<Mode> {
        match word {
            "off" => Some(Mode::Off),
            "warn" => Some(Mode::Warn),
            "deny" => Some(Mode::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Warn => "warn",
            Mode::Deny => "deny",
        }
    }
}

/// `guardrails:` of kindlab.yaml, validated. Everything is off unless named.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuardrailSettings {
    /// Images only from the lab's registry and `allowed_registries`.
    pub registry: Mode,
    /// No `:latest` and no untagged images.
    pub no_latest: Mode,
    /// Digest-pinned images in namespaces labelled [`PRODUCTION_LABEL`]`=true`.
    pub digest_in_production: Mode,
    /// Other registries (or path prefixes) images may come from, e.g. `registry.k8s.io`.
    pub allowed_registries: Vec<String>,
}

impl GuardrailSettings {
    pub fn mode(&self, rule: Rule) -> Mode {
        match rule {
            Rule::Registry => self.registry,
            Rule::NoLatest => self.no_latest,
            Rule::DigestInProduction => self.digest_in_production,
        }
    }

    pub fn any_on(&self) -> bool {
        Rule::ALL.iter().any(|r| self.mode(*r) != Mode::Off)
    }

    /// The rules that are on, with their mode.
    pub fn enabled(&self) -> Vec<(Rule, Mode)> {
        Rule::ALL
            .iter()
            .map(|r| (*r, self.mode(*r)))
            .filter(|(_, m)| *m != Mode::Off)
            .collect()
    }
}

/// A namespace with this label set to `true` is production: the digest rule applies there.
pub const PRODUCTION_LABEL: &str = "dev.kindlab.production";
/// Label on every policy and binding kindlab makes: the rule it carries.
pub const RULE_LABEL: &str = "dev.kindlab.guardrail";
/// Label on every policy and binding kindlab makes: the workspace that made it (only that
/// workspace changes or removes it).
pub const WORKSPACE_LABEL: &str = "dev.kindlab.workspace";

/// Whether `entry` can be an allowed registry: a host or path prefix, written so it can sit
/// inside a CEL string literal unchanged.
pub fn valid_allowed_registry(entry: &str) -> bool {
    !entry.is_empty()
        && entry.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_' | ':' | '/')
        })
        && !entry.starts_with('/')
}

#[derive(Debug, thiserror::Error)]
pub enum GuardrailError {
    #[error("{kind} {name} exists and this workspace did not make it")]
    NotOurs { kind: String, name: String },
    #[error("the cluster refused to {action} {kind} {name}: {message}")]
    Api {
        action: &'static str,
        kind: String,
        name: String,
        message: String,
    },
    /// Reading the cluster's admission policies failed (a refusal names the permission).
    #[error(transparent)]
    List(#[from] crate::k8s::K8sError),
    #[error("the guardrail rule {rule} cannot be evaluated: {message}")]
    Cel { rule: String, message: String },
}

impl GuardrailError {
    pub fn exit_code(&self) -> u8 {
        match self {
            GuardrailError::NotOurs { .. } => crate::exit::CONFLICT,
            GuardrailError::Api { .. } => crate::exit::FAILED,
            GuardrailError::List(e) => e.exit_code(),
            GuardrailError::Cel { .. } => crate::exit::BAD_INPUT,
        }
    }

    pub fn fix(&self) -> Option<String> {
        Some(match self {
            GuardrailError::NotOurs { kind, name } => format!(
                "kindlab never changes what this workspace did not make: remove it (`kubectl delete {} {name}`) or turn that rule off in kindlab.yaml",
                kind.to_lowercase()
            ),
            GuardrailError::List(e) if e.refusal().is_some() => return e.fix(),
            GuardrailError::Api { .. } | GuardrailError::List(_) => {
                "admission policies need Kubernetes v1.30 or newer and a user who may manage them (cluster-admin)".into()
            }
            GuardrailError::Cel { .. } => return None,
        })
    }
}

crate::error::failure_from_inherent!(GuardrailError);
