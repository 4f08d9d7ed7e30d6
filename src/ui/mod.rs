//! Everything kindlab prints: step lines with spinners and bars (indicatif lives only here),
//! tables, JSON, and rendered errors. Progress goes to stderr; results go to stdout, so
//! `--output json` stays machine-readable while people still see progress.

mod render;
mod report;
mod status;

pub use render::{print_json, render_error};
pub use report::{Report, lines, print_document, show};
pub use status::{ByteProgress, Step, Ui, format_bytes, format_duration, format_seconds};

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Output {
    /// Lines and tables for people.
    #[default]
    Text,
    /// One JSON document for machines.
    Json,
}
