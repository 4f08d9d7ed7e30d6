//! One kubelet or container-runtime message about a pull: `diagnose::message::read` (the
//! signal, the image and the registry it names) and `core` (the message without wrappers).
#![no_main]

use kindlab::diagnose::message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Events come from the API server as JSON strings: any Unicode, never invalid UTF-8.
    let Some(text) = kindlab_fuzz::text(data) else {
        return;
    };
    let reading = message::read(text);
    let core = message::core(text);
    assert!(core.len() <= text.len(), "{core:?}");
    let _ = reading;
});
