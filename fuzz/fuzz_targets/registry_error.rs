//! A registry's refusal: `STATUS BODY` (three digits, then the body), made into the OCI
//! client's error as that client does, then read by kindlab (`classify_error` in diagnose,
//! `is_not_found` in the registry client) and printed.
#![no_main]

use kindlab::diagnose::{ErrorMeaning, classify_error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 || !data[..3].iter().all(u8::is_ascii_digit) || data[0] == b'0' {
        return;
    }
    let status = data[..3]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let url = "http://localhost:5001/v2/orders-api/manifests/1.0";
    let Some(error) = kindlab_fuzz::registry_error(status, &data[3..], url) else {
        return;
    };
    let meaning = classify_error(&error);
    let not_found = kindlab::registry::is_not_found(&error);
    // What the registry client calls "no such tag", diagnose must not call a refusal.
    if not_found {
        assert!(
            matches!(
                meaning,
                ErrorMeaning::NoManifest | ErrorMeaning::NoRepository
            ),
            "{meaning:?} for {error:?}"
        );
    }
    let _ = error.to_string();
});
