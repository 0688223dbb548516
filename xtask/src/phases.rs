//! The phase timer: each step of a command timed, one line when it ends,
//! a live line on a terminal meanwhile (live.rs), and the seconds kept in
//! order for `summary.json`.

use std::fmt;
use std::time::Instant;

use anyhow::Result;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::unix_now;
use crate::ui::Ui;

/// Seconds spent in each phase, in the order they ran. In JSON a map from
/// `<phase>_s` to seconds (two decimals), every phase that ran; when each
/// began and ended is kept beside it ([`Phases::spans`], the report's
/// timeline).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Phases(pub Vec<(String, f64)>, Vec<Span>);

/// When a phase began and ended (Unix seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub name: String,
    pub start: f64,
    pub end: f64,
}

impl Phases {
    /// Time `f` as phase `name` and print one line when it ends; on a
    /// terminal a live line shows what the phase is doing meanwhile.
    pub fn time<T>(&mut self, name: &str, ui: Ui, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.timed(name, ui, !ui.quiet && !ui.verbose, f)
    }

    /// [`Phases::time`] for a phase whose own output streams to the
    /// terminal (the tests): no live line over it.
    pub fn time_streaming<T>(
        &mut self,
        name: &str,
        ui: Ui,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.timed(name, ui, false, f)
    }

    fn timed<T>(
        &mut self,
        name: &str,
        ui: Ui,
        live: bool,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let start = Instant::now();
        let began = unix_now();
        let live = crate::live::Live::start(name, live);
        let out = f();
        drop(live);
        let secs = start.elapsed().as_secs_f64();
        self.0.push((name.to_string(), secs));
        self.1.push(Span {
            name: name.to_string(),
            start: began,
            end: began + secs,
        });
        if !ui.quiet {
            let mark = if out.is_ok() { "done" } else { "FAILED" };
            eprintln!("{}", crate::ui::step_line(name, secs, mark));
        }
        out
    }

    /// A phase timed by its caller (one that happened only sometimes),
    /// that ended now.
    pub fn record(&mut self, name: &str, secs: f64) {
        self.0.push((name.to_string(), secs));
        let end = unix_now();
        self.1.push(Span {
            name: name.to_string(),
            start: end - secs,
            end,
        });
    }

    /// Phases given as seconds alone (no spans: a summary read back, a test).
    pub fn of(list: Vec<(String, f64)>) -> Phases {
        Phases(list, Vec::new())
    }

    /// When each timed phase began and ended, in the order they ran.
    pub fn spans(&self) -> &[Span] {
        &self.1
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
    }
}

impl Serialize for Phases {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, secs) in &self.0 {
            map.serialize_entry(&format!("{name}_s"), &((secs * 100.0).round() / 100.0))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Phases {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Phases, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Phases;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map from `<phase>_s` to seconds")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Phases, A::Error> {
                let mut phases = Vec::new();
                while let Some((key, secs)) = map.next_entry::<String, f64>()? {
                    let name = key.strip_suffix("_s").unwrap_or(&key).to_string();
                    phases.push((name, secs));
                }
                Ok(Phases::of(phases))
            }
        }
        d.deserialize_map(InOrder)
    }
}
