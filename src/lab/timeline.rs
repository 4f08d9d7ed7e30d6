//! Timing math for a lab run: marks in time, turned into phases relative to the break.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: String,
    pub detail: String,
    /// When the phase ended, in seconds after the break took effect (negative: before it).
    pub at_s: f64,
    /// How long the phase took.
    pub took_s: f64,
}

/// Named moments, in order. Each mark ends a phase that began at the previous mark.
#[derive(Debug, Clone)]
pub struct Timeline {
    start: Instant,
    /// The moment the lab's clock counts from (the break applied).
    zero: Option<Instant>,
    marks: Vec<(String, String, Instant)>,
}

impl Timeline {
    pub fn new(start: Instant) -> Timeline {
        Timeline {
            start,
            zero: None,
            marks: Vec::new(),
        }
    }

    pub fn mark(&mut self, name: impl Into<String>, detail: impl Into<String>, at: Instant) {
        self.marks.push((name.into(), detail.into(), at));
    }

    /// From now on, times are counted from `at`.
    pub fn set_zero(&mut self, at: Instant) {
        self.zero = Some(at);
    }

    /// Seconds from the zero to `at` (negative: before it).
    pub fn seconds_since_zero(&self, at: Instant) -> f64 {
        let zero = self.zero.unwrap_or(self.start);
        if at >= zero {
            at.duration_since(zero).as_secs_f64()
        } else {
            -zero.duration_since(at).as_secs_f64()
        }
    }

    /// Seconds from the zero to the first mark called `name`.
    pub fn since_zero(&self, name: &str) -> Option<f64> {
        self.marks
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, at)| round(self.seconds_since_zero(*at)))
    }

    pub fn phases(&self) -> Vec<Phase> {
        let mut previous = self.start;
        self.marks
            .iter()
            .map(|(name, detail, at)| {
                let took = at.saturating_duration_since(previous).as_secs_f64();
                previous = *at;
                Phase {
                    name: name.clone(),
                    detail: detail.clone(),
                    at_s: round(self.seconds_since_zero(*at)),
                    took_s: round(took),
                }
            })
            .collect()
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

fn round(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn phases_are_measured_between_marks_and_counted_from_the_break() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut timeline = Timeline::new(t0);
        timeline.mark("baseline", "healthy", at(500));
        timeline.mark("break", "image set", at(700));
        timeline.set_zero(at(700));
        timeline.mark("ErrImagePull", "pod x", at(2_700));
        timeline.mark("ImagePullBackOff", "pod x", at(4_200));
        timeline.mark("verify", "rollout complete", at(10_700));

        let phases = timeline.phases();
        let took: Vec<f64> = phases.iter().map(|p| p.took_s).collect();
        assert_eq!(took, vec![0.5, 0.2, 2.0, 1.5, 6.5]);
        let at_s: Vec<f64> = phases.iter().map(|p| p.at_s).collect();
        assert_eq!(at_s, vec![-0.2, 0.0, 2.0, 3.5, 10.0]);
        assert_eq!(timeline.since_zero("ErrImagePull"), Some(2.0));
        assert_eq!(timeline.since_zero("verify"), Some(10.0));
        assert_eq!(timeline.since_zero("missing"), None);
    }

    #[test]
    fn unix_ms_counts_milliseconds_from_the_epoch() {
        assert_eq!(
            unix_ms(UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_999)),
            1_700_000_000_123
        );
        assert_eq!(unix_ms(UNIX_EPOCH), 0);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
