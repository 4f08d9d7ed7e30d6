//! Errors and JSON for people and machines.

use std::error::Error as _;

use serde::Serialize;

use super::Output;
use crate::error::Error;

/// Prints an error as kindlab's users read it:
///
/// ```text
/// error: port 5001 is already in use by container "web"
///   caused by: ...
/// help: stop it (`docker stop web`) or set registry.port in kindlab.yaml
/// ```
///
/// With `--output json` the same fields go to stdout as one JSON object.
pub fn render_error(err: &Error, output: Output) {
    let chain: Vec<String> = std::iter::successors(err.source(), |e| (*e).source())
        .map(|e| e.to_string())
        .collect();
    let causes: Vec<String> = chain
        .iter()
        .enumerate()
        // thiserror's `transparent` repeats the message of the error it wraps; kube's API
        // error prints the server's whole Status after its message, which the next cause
        // (the message alone) says again.
        .filter(|(i, cause)| {
            **cause != err.to_string()
                && !(cause.contains(" (Status {")
                    && chain
                        .get(i + 1)
                        .is_some_and(|next| cause.contains(next.as_str())))
        })
        .map(|(_, cause)| cause.clone())
        .collect();
    let fix = err.fix();
    match output {
        Output::Json => {
            #[derive(Serialize)]
            struct ErrorDoc<'a> {
                error: &'a str,
                causes: &'a [String],
                fix: Option<&'a str>,
                exit_code: u8,
            }
            let message = err.to_string();
            print_json(&ErrorDoc {
                error: &message,
                causes: &causes,
                fix: fix.as_deref(),
                exit_code: err.exit_code(),
            });
        }
        Output::Text => {
            eprintln!("error: {err}");
            for cause in &causes {
                eprintln!("  caused by: {cause}");
            }
            if let Some(fix) = fix {
                eprintln!("help: {fix}");
            }
        }
    }
}

/// Pretty JSON on stdout. Serialising kindlab's own plain structs cannot fail; if it ever
/// did, saying so on stderr beats printing half a document.
pub fn print_json<T: Serialize + ?Sized>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode JSON output: {e}"),
    }
}
