//! The one place that chooses between text and JSON: every verb returns a report that
//! renders itself as text (beside its data, in the verb's module) and serialises itself
//! as JSON; `show` prints whichever the user asked for and hands back the exit code.

use serde::Serialize;

use super::{Output, print_json};
use crate::exit;

/// What a verb found or did, as people and scripts read it.
pub trait Report: Serialize {
    /// The text for people: whole lines, each ending in a newline.
    fn text(&self) -> String;
    /// The exit code this outcome means (a finding is not a failure: see [`crate::exit`]).
    fn exit_code(&self) -> u8 {
        exit::OK
    }
}

/// Prints `report` on stdout as `output` asks and returns its exit code.
pub fn show<R: Report + ?Sized>(report: &R, output: Output) -> u8 {
    match output {
        Output::Json => print_json(report),
        Output::Text => print!("{}", report.text()),
    }
    report.exit_code()
}

/// A document that is its own format (a completion script, a man page), byte for byte on
/// stdout whatever `--output` says.
pub fn print_document(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

/// Lines joined as `Report::text` returns them: each with its newline.
pub fn lines<I, S>(lines: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    lines.into_iter().fold(String::new(), |mut text, line| {
        text.push_str(line.as_ref());
        text.push('\n');
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_each_with_a_newline_and_nothing_is_empty_text() {
        assert_eq!(lines(["a", "b"]), "a\nb\n");
        assert_eq!(lines(Vec::<String>::new()), "");
    }
}
