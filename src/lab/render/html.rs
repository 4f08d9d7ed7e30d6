//! The report an instructor shows: a room's (or one attendee's) lab sessions as one
//! self-contained HTML page: per lab the median times, per session a row, and a timeline
//! chart (inline SVG) of break -> symptom -> fix on one time axis. No script, no external
//! file: it opens anywhere, offline, and prints.

use std::fmt::Write as _;

use serde::Serialize;

use crate::lab::session::SessionReport;

/// What the page shows, also printed as JSON (`-o json`).
#[derive(Debug, Clone, Serialize)]
pub struct RoomReport {
    pub title: String,
    pub sessions: Vec<SessionReport>,
    pub labs: Vec<LabSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabSummary {
    pub lab: String,
    pub title: String,
    pub attempts: usize,
    pub fixed: usize,
    pub solved_with_help: usize,
    pub median_time_to_symptoms_s: Option<f64>,
    pub median_time_to_fix_s: Option<f64>,
    pub hints_used: u32,
}

/// Groups sessions by lab, in the order they first appear.
pub fn summarise(title: &str, mut sessions: Vec<SessionReport>) -> RoomReport {
    sessions.sort_by(|a, b| {
        (&a.lab, &a.attendee, &a.started_at).cmp(&(&b.lab, &b.attendee, &b.started_at))
    });
    let mut labs: Vec<LabSummary> = Vec::new();
    for s in &sessions {
        if labs.iter().any(|l| l.lab == s.lab) {
            continue;
        }
        let of: Vec<&SessionReport> = sessions.iter().filter(|x| x.lab == s.lab).collect();
        labs.push(LabSummary {
            lab: s.lab.clone(),
            title: s.title.clone(),
            attempts: of.len(),
            fixed: of.iter().filter(|x| x.time_to_fix_s.is_some()).count(),
            solved_with_help: of.iter().filter(|x| x.solved_with_help).count(),
            median_time_to_symptoms_s: median(of.iter().filter_map(|x| x.time_to_symptoms_s)),
            median_time_to_fix_s: median(of.iter().filter_map(|x| x.time_to_fix_s)),
            hints_used: of.iter().map(|x| x.hints_used).sum(),
        });
    }
    RoomReport {
        title: title.to_string(),
        sessions,
        labs,
    }
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Text as HTML: the five characters that matter escaped.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A round step for the time axis: about six ticks over `max` seconds.
fn tick_step(max: f64) -> f64 {
    let rough = (max / 6.0).max(1.0);
    [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|s| *s >= rough)
    .unwrap_or(3600.0)
}

/// The timeline: one row per session, from the break (0) to the symptom and to the fix.
fn timeline_svg(sessions: &[SessionReport]) -> String {
    const LABEL: f64 = 260.0;
    const WIDTH: f64 = 640.0;
    const ROW: f64 = 26.0;
    let max = sessions
        .iter()
        .filter_map(|s| s.time_to_fix_s.or(s.time_to_symptoms_s))
        .fold(10.0_f64, f64::max);
    let step = tick_step(max);
    let axis_max = (max / step).ceil() * step;
    let x = |t: f64| LABEL + t / axis_max * WIDTH;
    let height = 40.0 + ROW * sessions.len() as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="timeline" width="{w}" height="{height}" viewBox="0 0 {w} {height}">"#,
        w = LABEL + WIDTH + 20.0
    );
    let mut t = 0.0;
    while t <= axis_max + 0.001 {
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" y1="16" x2="{0:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{0:.1}" y="12" font-size="10" text-anchor="middle" fill="#666">{2}</text>"##,
            x(t),
            height - 4.0,
            crate::ui::format_seconds(Some(t))
        );
        t += step;
    }
    for (i, s) in sessions.iter().enumerate() {
        let y = 24.0 + ROW * i as f64;
        let _ = write!(
            svg,
            r##"<text x="4" y="{:.1}" font-size="12" fill="#222">{} · {}</text>"##,
            y + 13.0,
            esc(&s.attendee),
            esc(&s.lab)
        );
        let symptom = s.time_to_symptoms_s.unwrap_or(0.0);
        let _ = write!(
            svg,
            r##"<rect class="detect" x="{:.1}" y="{y:.1}" width="{:.1}" height="16" fill="#f0a030"><title>break to symptom: {}</title></rect>"##,
            x(0.0),
            (x(symptom) - x(0.0)).max(1.0),
            crate::ui::format_seconds(s.time_to_symptoms_s)
        );
        match s.time_to_fix_s {
            Some(fix) => {
                let color = if s.solved_with_help {
                    "#7a9cc6"
                } else {
                    "#3a9a5b"
                };
                let _ = write!(
                    svg,
                    r##"<rect class="fix" x="{:.1}" y="{y:.1}" width="{:.1}" height="16" fill="{color}"><title>symptom to fix: {}</title></rect>"##,
                    x(symptom),
                    (x(fix) - x(symptom)).max(1.0),
                    crate::ui::format_seconds(Some(fix - symptom))
                );
            }
            None => {
                let _ = write!(
                    svg,
                    r##"<rect class="open" x="{:.1}" y="{y:.1}" width="{:.1}" height="16" fill="none" stroke="#c33" stroke-dasharray="4 3"><title>not fixed</title></rect>"##,
                    x(symptom),
                    (x(axis_max) - x(symptom)).max(1.0)
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The whole page.
pub fn render(report: &RoomReport) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.1em; margin-top: 2em; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 4px 10px; border-bottom: 1px solid #eee; text-align: left; }}
th {{ background: #f6f6f6; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.legend span {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 14px; vertical-align: middle; }}
</style></head><body>
<h1>{title}</h1>
<p>{n} lab session(s), {labs} lab(s). Times are counted from the moment the lab broke the target.</p>
"#,
        title = esc(&report.title),
        n = report.sessions.len(),
        labs = report.labs.len()
    );
    html.push_str("<h2>Labs</h2>\n<table><tr><th>Lab</th><th>Attempts</th><th>Fixed</th><th>With help</th><th>Median time to symptom</th><th>Median time to fix</th><th>Hints</th></tr>\n");
    for l in &report.labs {
        let _ = writeln!(
            html,
            r#"<tr><td>{} <small>({})</small></td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            esc(&l.title),
            esc(&l.lab),
            l.attempts,
            l.fixed,
            l.solved_with_help,
            crate::ui::format_seconds(l.median_time_to_symptoms_s),
            crate::ui::format_seconds(l.median_time_to_fix_s),
            l.hints_used
        );
    }
    html.push_str("</table>\n<h2>Timeline</h2>\n<p class=\"legend\"><span style=\"background:#f0a030\"></span>break to symptom<span style=\"background:#3a9a5b\"></span>symptom to fix<span style=\"background:#7a9cc6\"></span>fixed with <code>lab solve</code><span style=\"border:1px dashed #c33\"></span>not fixed</p>\n");
    html.push_str(&timeline_svg(&report.sessions));
    html.push_str("\n<h2>Sessions</h2>\n<table><tr><th>Attendee</th><th>Lab</th><th>Target</th><th>State</th><th>Started</th><th>Time to symptom</th><th>Time to fix</th><th>Hints</th><th>Checks</th></tr>\n");
    for s in &report.sessions {
        let _ = writeln!(
            html,
            r#"<tr class="session"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            esc(&s.attendee),
            esc(&s.lab),
            esc(&s.target),
            esc(&s.state),
            esc(&s.started_at),
            crate::ui::format_seconds(s.time_to_symptoms_s),
            crate::ui::format_seconds(s.time_to_fix_s),
            s.hints_used,
            s.checks
        );
    }
    html.push_str("</table>\n<p><small>Made by kindlab.</small></p>\n</body></html>\n");
    html
}

/// `kindlab lab report`: the page written; as JSON what it shows.
pub struct Written {
    pub path: std::path::PathBuf,
    pub room: RoomReport,
}

impl Serialize for Written {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.room.serialize(serializer)
    }
}

impl crate::ui::Report for Written {
    fn text(&self) -> String {
        format!(
            "wrote {} ({} session(s), {} lab(s))\n",
            self.path.display(),
            self.room.sessions.len(),
            self.room.labs.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(
        attendee: &str,
        lab: &str,
        symptoms: Option<f64>,
        fix: Option<f64>,
    ) -> SessionReport {
        SessionReport {
            lab: lab.into(),
            title: format!("{lab} title"),
            attendee: attendee.into(),
            target: "Deployment dev/orders-api".into(),
            context: "kind-kindlab".into(),
            state: if fix.is_some() { "fixed" } else { "broken" }.into(),
            started_at: "2026-12-01T10:00:00Z".into(),
            broken_at: "2026-12-01T10:00:01Z".into(),
            symptoms_at: None,
            fixed_at: None,
            time_to_symptoms_s: symptoms,
            time_to_fix_s: fix,
            hints_used: 1,
            solved_with_help: false,
            checks: 2,
            commits: vec![],
            reverts: vec![],
        }
    }

    #[test]
    fn labs_are_summarised_with_medians() {
        let report = summarise(
            "Room 1",
            vec![
                session("ada", "bad-image-tag", Some(1.0), Some(60.0)),
                session("bob", "bad-image-tag", Some(2.0), Some(120.0)),
                session("cy", "bad-image-tag", Some(3.0), None),
                session("ada", "oom-killed", Some(1.5), Some(30.0)),
            ],
        );
        assert_eq!(report.labs.len(), 2);
        let bad = &report.labs[0];
        assert_eq!((bad.attempts, bad.fixed), (3, 2));
        assert_eq!(bad.median_time_to_symptoms_s, Some(2.0));
        assert_eq!(bad.median_time_to_fix_s, Some(90.0));
        assert_eq!(bad.hints_used, 3);
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_names() {
        let report = summarise(
            "Room <1>",
            vec![
                session(
                    "<script>alert(1)</script>",
                    "bad-image-tag",
                    Some(1.0),
                    Some(60.0),
                ),
                session("bob", "oom-killed", Some(2.0), None),
            ],
        );
        let html = render(&report);
        assert!(!html.contains("<script>"), "names are escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("<title>Room &lt;1&gt;</title>"));
        assert!(
            !html.contains("src=") && !html.contains("href="),
            "no external resources"
        );
        assert_eq!(html.matches("class=\"session\"").count(), 2);
        assert_eq!(html.matches("class=\"detect\"").count(), 2);
        assert_eq!(html.matches("class=\"fix\"").count(), 1);
        assert_eq!(html.matches("class=\"open\"").count(), 1);
        assert!(html.contains("1m00s"), "{html}");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(10.0), 2.0);
        assert_eq!(tick_step(100.0), 30.0);
        assert_eq!(tick_step(1000.0), 300.0);
    }
}
