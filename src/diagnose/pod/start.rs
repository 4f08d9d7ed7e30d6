//! Containers that could not be created or started, and what their exit codes mean.

use super::*;

pub(super) fn cannot_start(
    facts: &PodFacts,
    subject: &str,
    name: &str,
    reason: &str,
    message: Option<&str>,
) -> Finding {
    let message = message.unwrap_or_default();
    let mut evidence = vec![Evidence::new(
        "container",
        format!("{name} is waiting: {reason}{}", colon(message)),
    )];
    evidence.extend(warnings(facts, Some(name)).into_iter().rev().take(2));
    let lower = message.to_lowercase();
    let fix = if lower.contains("executable file not found")
        || lower.contains("no such file or directory")
    {
        "the command does not exist in the image: fix the container's command/args, or the image"
            .to_string()
    } else if lower.contains("exec format error") {
        "the image's binary is built for another CPU architecture: build it for the node's platform"
            .to_string()
    } else {
        format!(
            "`kubectl describe pod -n {} {}` has the details",
            namespace(&facts.pod),
            pod_name(facts)
        )
    };
    finding(
        subject,
        name,
        Cause::ContainerCannotStart {
            container: name.to_string(),
            reason: reason.to_string(),
        },
        format!("container {name} cannot start: {reason}{}", colon(message)),
        evidence,
        fix,
    )
}

/// What an exit code usually means.
pub(super) fn exit_meaning(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "it finished successfully, but a long-running container must not exit",
        126 => "the command is not executable",
        127 => "the command was not found",
        128 => "invalid exit argument",
        134 => "aborted (SIGABRT)",
        137 => "killed (SIGKILL)",
        139 => "segmentation fault (SIGSEGV)",
        143 => "terminated (SIGTERM)",
        _ => return None,
    })
}
