//! Durations on the command line (`--timeout 5m`) and in lab files (`recoverWithin: 90s`):
//! `cli::parse_duration`. A duration it accepts is one the callers can wait for: they take
//! `Instant::now() + duration` as the deadline.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = kindlab_fuzz::text(data) else {
        return;
    };
    if let Ok(duration) = kindlab::cli::parse_duration(text) {
        assert!(
            std::time::Instant::now().checked_add(duration).is_some(),
            "{text:?} is accepted as {duration:?}, past any deadline"
        );
    }
});
