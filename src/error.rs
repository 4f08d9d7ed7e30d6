//! Every failure a user can see, with the one-line fix and the exit code scripts rely on.
//!
//! Modules return their own typed errors and say, through [`Failure`], what fixes them and
//! which exit code they mean. This type gathers any of them at the binary edge, where
//! `ui::render` prints `error:` / `caused by:` / `help:` (or the same fields as JSON).
//! It names no module's error type, so every module may use it without an import circle.

use std::fmt;

use crate::exit;
use crate::interrupt::Interrupted;

/// What the binary edge needs of a module's error beyond its message and causes.
pub trait Failure: std::error::Error + Send + Sync + 'static {
    /// One line telling the user what to do next, if the module knows it.
    fn fix(&self) -> Option<String>;
    /// The exit code scripts see (one of [`crate::exit`]).
    fn exit_code(&self) -> u8;
}

/// Implements [`Failure`] for an error type whose inherent `fix()` and `exit_code()` say it.
macro_rules! failure_from_inherent {
    ($($error:ty),+ $(,)?) => {$(
        impl $crate::error::Failure for $error {
            fn fix(&self) -> Option<String> {
                <$error>::fix(self)
            }
            fn exit_code(&self) -> u8 {
                <$error>::exit_code(self)
            }
        }
    )+};
}
pub(crate) use failure_from_inherent;

#[derive(Debug)]
pub enum Error {
    /// A module's own error, as it reported it.
    Failed(Box<dyn Failure>),
    /// Stopped by a signal; callers that account for partial work match on it.
    Interrupted(Interrupted),
    /// Something was found unhealthy; nothing failed while looking.
    Unhealthy { what: String },
    /// The report could not be written where the user asked.
    Output {
        path: String,
        source: std::io::Error,
    },
}

impl<E: Failure> From<E> for Error {
    fn from(error: E) -> Self {
        Error::Failed(Box::new(error))
    }
}

impl From<Interrupted> for Error {
    fn from(interrupted: Interrupted) -> Self {
        Error::Interrupted(interrupted)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Failed(e) => e.fmt(f),
            Error::Interrupted(e) => e.fmt(f),
            Error::Unhealthy { what } => f.write_str(what),
            Error::Output { path, source } => write!(f, "cannot write {path}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    /// A module's error is shown as itself (its causes follow), as thiserror's
    /// `transparent` would.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Failed(e) => e.source(),
            Error::Interrupted(e) => e.source(),
            Error::Unhealthy { .. } => None,
            Error::Output { source, .. } => Some(source),
        }
    }
}

impl Error {
    /// The module's error this is, when it is a `T` (for callers that react to one kind of
    /// failure, as the lab does to an admission policy's refusal).
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        match self {
            Error::Failed(e) => {
                let e: &(dyn std::error::Error + 'static) = e.as_ref();
                e.downcast_ref::<T>()
            }
            _ => None,
        }
    }

    /// One line telling the user what to do next, if kindlab knows it.
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Failed(e) => e.fix(),
            Error::Interrupted(e) => e.fix(),
            Error::Unhealthy { .. } => Some("run `kindlab up` to repair the lab".into()),
            Error::Output { .. } => None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Failed(e) => e.exit_code(),
            Error::Interrupted(e) => e.exit_code(),
            Error::Unhealthy { .. } => exit::UNHEALTHY,
            Error::Output { .. } => exit::FAILED,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    impl Failure for Outer {
        fn fix(&self) -> Option<String> {
            Some("do this".into())
        }
        fn exit_code(&self) -> u8 {
            exit::CONFLICT
        }
    }

    #[test]
    fn a_module_error_keeps_its_message_causes_fix_and_code() {
        let err = Error::from(Outer(std::io::Error::other("inner")));
        assert_eq!(err.to_string(), "outer");
        assert_eq!(
            std::error::Error::source(&err).map(|s| s.to_string()),
            Some("inner".to_string())
        );
        assert_eq!(err.fix().as_deref(), Some("do this"));
        assert_eq!(err.exit_code(), exit::CONFLICT);
    }
}
