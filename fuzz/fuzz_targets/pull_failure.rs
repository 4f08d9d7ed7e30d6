//! A failing pull, messages and the registry's answer: `diagnose::classify_pull_failure`,
//! then the finding printed as text and as JSON. The input format is
//! `kindlab_fuzz::pull_failure`'s (lines of messages, plus `image:`, `reason:`, `registry:`...).
#![no_main]

use kindlab::diagnose::{Diagnosis, classify_pull_failure, render_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = kindlab_fuzz::text(data) else {
        return;
    };
    let (failure, registry) = kindlab_fuzz::pull_failure(text);
    let finding = classify_pull_failure(&failure, registry.as_ref());
    let diagnosis = Diagnosis {
        target: "deployment/fuzz".into(),
        namespace: "default".into(),
        healthy: false,
        checked: vec![failure.subject.clone()],
        findings: vec![finding],
    };
    let _ = render_text(&diagnosis);
    let _ = serde_json::to_string(&diagnosis);
});
