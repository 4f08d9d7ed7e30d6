//! A workload an admission policy refuses: the API server's sentence
//! (`... is forbidden: ValidatingAdmissionPolicy 'P' with binding 'B' denied request: MSG`),
//! read from a refused apply or from the ReplicaSet's `FailedCreate` (the Deployment's
//! ReplicaFailure condition), turned into a finding that names the policy and its message.
//! Pure.

use super::{Cause, Certainty, Evidence, Finding};

/// One admission policy's refusal, as the API server words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub policy: String,
    pub binding: String,
    /// The policy's own message (its `messageExpression`).
    pub message: String,
}

const POLICY: &str = "ValidatingAdmissionPolicy '";
const BINDING: &str = "' with binding '";
const DENIED: &str = "' denied request: ";

/// The policy, binding and message of a ValidatingAdmissionPolicy refusal; None for any
/// other message.
pub fn parse_denial(text: &str) -> Option<Denial> {
    let (_, rest) = text.split_once(POLICY)?;
    let (policy, rest) = rest.split_once(BINDING)?;
    let (binding, message) = rest.split_once(DENIED)?;
    Some(Denial {
        policy: policy.to_string(),
        binding: binding.to_string(),
        message: message.trim().to_string(),
    })
}

/// `subject` (`deployment/NAME`) cannot make pods because an admission policy refuses them:
/// the finding, from the refusal's text (the ReplicaFailure condition's message).
pub fn refused_by_policy(subject: &str, text: &str) -> Option<Finding> {
    let denial = parse_denial(text)?;
    let fix = if denial.policy.starts_with("kindlab-") {
        "use an image the guardrail admits (a real tag from the lab's registry: `kindlab check` lists them), e.g. `kubectl apply -k` the workspace's overlay"
            .to_string()
    } else {
        format!(
            "change the workload so the policy admits it, or ask who manages ValidatingAdmissionPolicy {} (`kubectl get validatingadmissionpolicy {} -o yaml`)",
            denial.policy, denial.policy
        )
    };
    Some(Finding {
        subject: subject.to_string(),
        container: None,
        summary: format!(
            "admission policy {} refuses its pods: {}",
            denial.policy, denial.message
        ),
        evidence: vec![Evidence::new("cluster", text.trim().to_string())],
        cause: Cause::AdmissionRefused {
            policy: denial.policy,
            binding: denial.binding,
            message: denial.message,
        },
        certainty: Certainty::Certain,
        candidates: vec![],
        fix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSED: &str = "pods \"orders-api-7d9c-x2\" is forbidden: ValidatingAdmissionPolicy 'kindlab-no-latest' with binding 'kindlab-no-latest' denied request: image orders-api:latest uses the tag :latest, which moves (kindlab guardrail no-latest): name a real tag or pin a digest";

    #[test]
    fn a_policys_refusal_names_the_policy_and_its_message() {
        let finding = refused_by_policy("deployment/orders-api", REFUSED).unwrap();
        assert!(matches!(
            &finding.cause,
            Cause::AdmissionRefused { policy, message, .. }
                if policy == "kindlab-no-latest" && message.starts_with("image orders-api:latest")
        ));
        assert!(
            finding.summary.starts_with(
                "admission policy kindlab-no-latest refuses its pods: image orders-api:latest"
            ),
            "{}",
            finding.summary
        );
        assert_eq!(finding.kind().name(), "admission-refused");
    }

    #[test]
    fn other_refusals_are_not_a_policys() {
        assert_eq!(
            parse_denial("pods \"x\" is forbidden: exceeded quota: q, requested: cpu=2"),
            None
        );
        assert!(
            refused_by_policy("deployment/x", "admission webhook \"w\" denied the request")
                .is_none()
        );
    }
}
