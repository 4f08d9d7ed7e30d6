//! Probes that keep failing: what the probe asks, what the container answers.

use super::*;

/// The probe as configured, e.g. `httpGet :8080/healthz every 10s, 3 failures`.
pub(crate) fn describe_probe(probe: &Probe) -> String {
    let port = |p: &IntOrString| match p {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    let check = if let Some(http) = &probe.http_get {
        format!(
            "httpGet {}:{}{}",
            http.scheme
                .as_deref()
                .filter(|s| *s != "HTTP")
                .map(|s| format!("{s} "))
                .unwrap_or_default(),
            port(&http.port),
            http.path.as_deref().unwrap_or("/")
        )
    } else if let Some(tcp) = &probe.tcp_socket {
        format!("tcpSocket :{}", port(&tcp.port))
    } else if let Some(exec) = &probe.exec {
        format!(
            "exec {:?}",
            exec.command.clone().unwrap_or_default().join(" ")
        )
    } else if let Some(grpc) = &probe.grpc {
        format!("grpc :{}", grpc.port)
    } else {
        "(no handler)".to_string()
    };
    format!(
        "{check} every {}s, failing after {}",
        probe.period_seconds.unwrap_or(10),
        probe.failure_threshold.unwrap_or(3)
    )
}

pub(super) fn probe_failing(
    facts: &PodFacts,
    subject: &str,
    name: &str,
    kind: &str,
    probe: &Probe,
    events: &[&EventFact],
) -> Finding {
    let ns = namespace(&facts.pod);
    let check = describe_probe(probe);
    let last = events
        .iter()
        .rev()
        .find(|e| e.reason == "Unhealthy")
        .or(events.last());
    let mut evidence = vec![Evidence::new(
        "spec",
        format!("{kind} probe of {name}: {check}"),
    )];
    for e in events.iter().rev().take(2) {
        evidence.push(Evidence::new("event", event_line(e)));
    }
    let detail = last
        .map(|e| {
            e.message
                .split_once(": ")
                .map_or(e.message.as_str(), |(_, d)| d)
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    // The handler, without the timing: `httpGet :8080/healthz`.
    let handler = check.split(" every ").next().unwrap_or(&check).to_string();
    let summary = match kind {
        "liveness" => format!(
            "container {name} is restarted because its liveness probe ({handler}) fails{}",
            colon(&detail)
        ),
        _ => format!(
            "container {name} runs but its {kind} probe ({handler}) fails{}",
            colon(&detail)
        ),
    };
    let fix = format!(
        "make the probe's check pass (is the app listening on that port and path? `kubectl logs -n {ns} {} -c {name}`), or correct the probe{}",
        pod_name(facts),
        if kind == "liveness" {
            "; give a slow start more time with initialDelaySeconds or a startupProbe"
        } else {
            ""
        }
    );
    finding(
        subject,
        name,
        Cause::ProbeFailing {
            container: name.to_string(),
            probe: kind.to_string(),
            check,
        },
        summary,
        evidence,
        fix,
    )
}

pub(super) fn probe_finding(
    facts: &PodFacts,
    subject: &str,
    status: &ContainerStatus,
    spec: Option<&Container>,
) -> Option<Finding> {
    let name = status.name.as_str();
    for (kind, prefix) in [
        ("startup", "Startup probe failed"),
        ("readiness", "Readiness probe failed"),
    ] {
        let probe = match kind {
            "startup" => spec.and_then(|c| c.startup_probe.as_ref()),
            _ => spec.and_then(|c| c.readiness_probe.as_ref()),
        };
        let events: Vec<&EventFact> = facts
            .events
            .iter()
            .filter(|e| e.reason == "Unhealthy" && e.message.starts_with(prefix))
            .filter(|e| about(e, name) || e.field_path.is_none())
            .collect();
        if let Some(probe) = probe
            && !events.is_empty()
        {
            return Some(probe_failing(facts, subject, name, kind, probe, &events));
        }
    }
    None
}
