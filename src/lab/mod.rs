//! Break/fix labs: each lab is data (`labs/*.yaml`, embedded at build time, or a file the
//! user names) run by one generic runner: break, detect, diagnose, fix, verify.

mod classify;
mod runner;
mod spec;

pub use classify::{Cause, Finding, classify};
pub use runner::{LabContext, run};
pub use spec::{LabError, LabSpec, builtin_labs, load_lab};
