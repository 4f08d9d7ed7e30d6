//! Lab files (`labs/*.yaml`, or a file the user names): `lab::parse`, and the JSON that
//! `lab show --output json` prints of a lab that parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = kindlab_fuzz::text(data) else {
        return;
    };
    match kindlab::lab::parse(text, "lab.yaml") {
        Ok(spec) => {
            let _ = serde_json::to_string(&spec);
        }
        Err(e) => {
            let _ = (e.to_string(), e.fix(), e.exit_code());
        }
    }
});
