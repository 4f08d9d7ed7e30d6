//! Step lines in the manner of kind's status: one line per step, a spinner while it runs,
//! `✓`/`✗` with the duration when it ends. When stderr is not a terminal (CI, pipes) the
//! same steps print as plain lines, so logs stay readable.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress printer for one command run. Cheap to clone; steps may run concurrently.
#[derive(Clone)]
pub struct Ui {
    multi: MultiProgress,
    interactive: bool,
}

impl Ui {
    pub fn new() -> Self {
        let interactive = std::io::stderr().is_terminal();
        let target = if interactive {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Ui {
            multi: MultiProgress::with_draw_target(target),
            interactive,
        }
    }

    /// Starts a step: a spinner on a terminal, a ` • title ...` line elsewhere.
    pub fn step(&self, title: impl Into<String>) -> Step {
        let title = title.into();
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(spinner_style());
        bar.set_prefix(title.clone());
        bar.enable_steady_tick(Duration::from_millis(100));
        if !self.interactive {
            eprintln!(" • {title} ...");
        }
        Step {
            bar,
            title,
            started: Instant::now(),
            interactive: self.interactive,
            done: false,
        }
    }

    /// A line that belongs to no step (a note, a warning), printed above the live steps.
    pub fn note(&self, line: impl AsRef<str>) {
        if self.interactive {
            self.multi.suspend(|| eprintln!("{}", line.as_ref()));
        } else {
            eprintln!("{}", line.as_ref());
        }
    }
}

impl Default for Ui {
    fn default() -> Self {
        Self::new()
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template(" {spinner} {prefix} {wide_msg:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        " {spinner} {prefix} [{bar:20}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} {wide_msg:.dim}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(" {spinner} {prefix} [{bar:20}] {pos}/{len} {wide_msg:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// One running step. Ends as a failure if dropped without `ok`, as kind's `defer End(false)`.
pub struct Step {
    bar: ProgressBar,
    title: String,
    started: Instant,
    interactive: bool,
    done: bool,
}

impl Step {
    /// Live detail shown after the title (the latest kind line, the build step).
    pub fn detail(&self, detail: impl Into<String>) {
        let detail = detail.into();
        tracing::debug!(step = %self.title, "{detail}");
        self.bar.set_message(detail);
    }

    /// Turns the spinner into a bar of `total` units (build steps, nodes).
    pub fn progress(&self, position: u64, total: u64) {
        if self.bar.length() != Some(total) {
            self.bar.set_style(bar_style());
            self.bar.set_length(total);
        }
        self.bar.set_position(position);
    }

    /// Turns the spinner into a byte bar with the rate (image export and load). The
    /// returned handle can be moved to the thread doing the I/O.
    pub fn bytes(&self, total: u64) -> ByteProgress {
        self.bar.set_style(bytes_style());
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.reset_eta();
        ByteProgress(self.bar.clone())
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the step as a success; `summary` says what it did (`created`, `reused`, ...).
    pub fn ok(mut self, summary: impl AsRef<str>) -> Duration {
        self.finish(true, summary.as_ref())
    }

    /// Ends the step as a failure.
    pub fn fail(mut self, summary: impl AsRef<str>) -> Duration {
        self.finish(false, summary.as_ref())
    }

    fn finish(&mut self, ok: bool, summary: &str) -> Duration {
        self.done = true;
        let took = self.started.elapsed();
        let mark = if ok { "✓" } else { "✗" };
        let summary = if summary.is_empty() {
            String::new()
        } else {
            format!(": {summary}")
        };
        let line = format!(
            " {mark} {}{summary} ({})",
            self.title,
            format_duration(took)
        );
        if self.interactive {
            self.bar.set_style(
                ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            self.bar.finish_with_message(line);
        } else {
            self.bar.finish_and_clear();
            eprintln!("{line}");
        }
        took
    }
}

/// A step's byte bar, for the thread that moves the bytes.
#[derive(Clone)]
pub struct ByteProgress(ProgressBar);

impl ByteProgress {
    pub fn set(&self, position: u64) {
        self.0.set_position(position);
    }

    pub fn position(&self) -> u64 {
        self.0.position()
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.done {
            self.finish(false, "");
        }
    }
}

/// `812 MB`, `1.2 GB`: decimal units, as `docker image ls` prints sizes.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// `0.4s`, `12.3s`, `2m05s`: short enough for a status line.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// A measured time in seconds, as `format_duration` prints it; `-` when not measured.
pub fn format_seconds(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() && s >= 0.0 => format_duration(Duration::from_secs_f64(s)),
        _ => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_short() {
        assert_eq!(format_seconds(Some(75.0)), "1m15s");
        assert_eq!(format_seconds(Some(2.25)), "2.2s");
        assert_eq!(format_seconds(None), "-");
        assert_eq!(format_duration(Duration::from_millis(420)), "0.4s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1_170_000_000), "1.2 GB");
        assert_eq!(format_bytes(48_300_000), "48 MB");
    }
}
