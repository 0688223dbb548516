//! The report's pictures, drawn as inline SVG: the run's timeline (its
//! phases, each service from running to ready, each test's executions) and
//! a test's duration over the runs in the history.

use std::fmt::Write;

use super::esc;
use crate::summary::{PytestSpan, RunTimeline};

const LABEL_W: f64 = 260.0;
const PLOT_W: f64 = 900.0;
const ROW_H: f64 = 18.0;

/// One lane of the timeline: its label, and its bars `(start, end, class,
/// tooltip)` in seconds since the run began.
struct Lane {
    id: String,
    label: String,
    bars: Vec<(f64, f64, &'static str, String)>,
    /// A mark (the moment a service was ready).
    mark: Option<f64>,
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "passed" => "pass",
        "failed" | "error" => "fail",
        "skipped" => "skip",
        _ => "unknown",
    }
}

/// Seconds since the run began, and when its last record ended.
struct Clock {
    started: f64,
    end: f64,
}

impl Clock {
    fn of(t: &RunTimeline) -> Clock {
        let end = t
            .phases
            .iter()
            .map(|p| p.end)
            .chain(t.tests.iter().filter_map(|s| s.test.end))
            .fold(t.started, f64::max);
        Clock {
            started: t.started,
            end,
        }
    }

    fn at(&self, x: f64) -> f64 {
        x - self.started
    }
}

/// Every lane, top to bottom: the phases, the services (in the order they
/// ran), each pass's pytest, each test.
fn lanes(t: &RunTimeline) -> Vec<Lane> {
    let clock = Clock::of(t);
    let at = |x: f64| clock.at(x);
    let mut lanes = vec![Lane {
        id: "phases".into(),
        label: "phases".into(),
        bars: t
            .phases
            .iter()
            .map(|p| {
                let tip = format!("{}: {:.1} s", p.name, p.end - p.start);
                (at(p.start), at(p.end), "phase", tip)
            })
            .collect(),
        mark: None,
    }];
    lanes.extend(service_lanes(t, &clock));
    lanes.extend(
        t.pytest
            .iter()
            .map(|p| pytest_lane(p, t.pytest.len() > 1, &clock)),
    );
    lanes.extend(test_lanes(t, &clock));
    lanes
}

fn service_lanes(t: &RunTimeline, clock: &Clock) -> Vec<Lane> {
    let mut services: Vec<_> = t.services.iter().filter(|s| s.running.is_some()).collect();
    services.sort_by(|a, b| {
        let key =
            |s: &crate::cluster::spec::ServiceSpan| (s.running.unwrap_or(0.0), s.service.clone());
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let at = |x: f64| clock.at(x);
    services
        .into_iter()
        .filter_map(|s| {
            let running = s.running?;
            let until = s.ready.unwrap_or(clock.end);
            let tip = match s.ready {
                Some(r) => format!(
                    "{}: running at {:.1} s, ready at {:.1} s",
                    s.service,
                    at(running),
                    at(r)
                ),
                None => format!("{}: running at {:.1} s", s.service, at(running)),
            };
            Some(Lane {
                id: format!("service:{}", s.service),
                label: s.service.clone(),
                bars: vec![(at(running), at(until), "service", tip)],
                mark: s.ready.map(at),
            })
        })
        .collect()
}

/// A pass's pytest: its collection, its wait for the cluster, its tests.
fn pytest_lane(p: &PytestSpan, several: bool, clock: &Clock) -> Lane {
    let at = |x: f64| clock.at(x);
    let collected = p.collected.unwrap_or(clock.end);
    let mut bars = vec![(
        at(p.started),
        at(collected),
        "collect",
        format!(
            "pass {}: pytest started and collected in {:.1} s",
            p.repeat,
            collected - p.started
        ),
    )];
    if let (Some(ready), Some(finished)) = (p.ready, p.finished) {
        if ready > collected + 0.05 {
            let tip = format!(
                "pass {}: waited {:.1} s for the cluster",
                p.repeat,
                ready - collected
            );
            bars.push((at(collected), at(ready), "wait", tip));
        }
        let tip = format!("pass {}: tests ran for {:.1} s", p.repeat, finished - ready);
        bars.push((at(ready), at(finished), "run", tip));
    }
    Lane {
        id: format!("pytest:{}", p.repeat),
        label: if several {
            format!("pytest, pass {}", p.repeat)
        } else {
            "pytest".into()
        },
        bars,
        mark: None,
    }
}

/// One lane per test, its executions in every pass on it.
fn test_lanes(t: &RunTimeline, clock: &Clock) -> Vec<Lane> {
    let mut ids: Vec<&str> = Vec::new();
    for s in &t.tests {
        if !ids.contains(&s.test.id.as_str()) {
            ids.push(&s.test.id);
        }
    }
    ids.into_iter()
        .map(|id| {
            let bars = t
                .tests
                .iter()
                .filter(|s| s.test.id == id)
                .map(|s| {
                    let end = s.test.end.unwrap_or(clock.end);
                    let tip = format!(
                        "{id} (repeat {}): {} in {:.2} s",
                        s.repeat,
                        s.test.outcome,
                        end - s.test.start
                    );
                    let class = outcome_class(&s.test.outcome);
                    (clock.at(s.test.start), clock.at(end), class, tip)
                })
                .collect();
            Lane {
                id: format!("test:{id}"),
                label: short_label(id.rsplit('/').next().unwrap_or(id)),
                bars,
                mark: None,
            }
        })
        .collect()
}

/// At most 40 characters, the end kept (a test's name is at its end).
fn short_label(s: &str) -> String {
    let n = s.chars().count();
    if n <= 40 {
        return s.to_string();
    }
    let tail: String = s.chars().skip(n - 39).collect();
    format!("…{tail}")
}

/// The whole run on one time axis.
pub fn timeline(t: &RunTimeline) -> String {
    let lanes = lanes(t);
    let span = lanes
        .iter()
        .flat_map(|l| l.bars.iter().map(|b| b.1))
        .fold(1.0, f64::max);
    let x = |s: f64| LABEL_W + (s.max(0.0) / span) * PLOT_W;
    let height = ROW_H * (lanes.len() as f64 + 1.5);
    let mut out = format!(
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" \
         viewBox=\"0 0 {} {height}\" role=\"img\" aria-label=\"timeline of the run\">\n",
        LABEL_W + PLOT_W + 10.0,
        LABEL_W + PLOT_W + 10.0
    );
    let step = nice_step(span);
    let mut tick = 0.0;
    while tick <= span {
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"0\" y2=\"{1:.1}\"/><text class=\"tick\" x=\"{0:.1}\" y=\"{2:.1}\">{3} s</text>",
            x(tick),
            height - ROW_H,
            height - 4.0,
            tick
        );
        tick += step;
    }
    for (i, lane) in lanes.iter().enumerate() {
        let y = i as f64 * ROW_H;
        let _ = writeln!(
            out,
            "<g class=\"lane\" data-lane=\"{}\"><text class=\"label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            esc(&lane.id),
            LABEL_W - 6.0,
            y + ROW_H * 0.7,
            esc(&lane.label)
        );
        for (a, b, class, tip) in &lane.bars {
            let width = (x(*b) - x(*a)).max(1.5);
            let _ = writeln!(
                out,
                "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
                x(*a),
                y + 2.0,
                ROW_H - 4.0,
                esc(tip)
            );
            // A phase's name on it, where it fits.
            let name = tip.split(':').next().unwrap_or("");
            if *class == "phase" && width > 7.0 * name.len() as f64 + 6.0 {
                let _ = writeln!(
                    out,
                    "<text class=\"on-bar\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    x(*a) + 3.0,
                    y + ROW_H * 0.7,
                    esc(name)
                );
            }
        }
        if let Some(m) = lane.mark {
            let _ = writeln!(
                out,
                "<line class=\"ready\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\"/>",
                x(m),
                y + 1.0,
                y + ROW_H - 1.0
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// A tick spacing that gives five to ten ticks over `span` seconds.
fn nice_step(span: f64) -> f64 {
    for step in [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0] {
        if span / step <= 10.0 {
            return step;
        }
    }
    1200.0
}

/// A test's median duration over the runs in the history, one point per
/// run (the last is this one), as a small chart.
pub fn history_chart(points: &[(String, Option<f64>)]) -> String {
    let (w, h, pad) = (160.0, 36.0, 4.0);
    let max = points
        .iter()
        .filter_map(|p| p.1)
        .fold(0.0, f64::max)
        .max(1e-9);
    let n = points.len().max(2) as f64 - 1.0;
    let xy = |i: usize, v: f64| {
        (
            pad + (i as f64 / n) * (w - 2.0 * pad),
            h - pad - (v / max) * (h - 2.0 * pad),
        )
    };
    let timed: Vec<(usize, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.1.map(|v| (i, v)))
        .collect();
    let mut out = format!(
        "<svg class=\"history\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" data-points=\"{}\">",
        timed.len()
    );
    let line: Vec<String> = timed
        .iter()
        .map(|&(i, v)| {
            let (x, y) = xy(i, v);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = write!(out, "<polyline points=\"{}\"/>", line.join(" "));
    for &(i, v) in &timed {
        let (x, y) = xy(i, v);
        let _ = write!(
            out,
            "<circle class=\"point\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\"><title>run {}: {v:.2} s</title></circle>",
            esc(&points[i].0)
        );
    }
    out.push_str("</svg>");
    out
}
