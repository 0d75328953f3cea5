//! Timelines: a recorder of slices (work on a resource), counters and instants in simulated time,
//! written as a Chrome/Perfetto JSON trace-event file (`sysim run --trace DIR`; open it in
//! ui.perfetto.dev or chrome://tracing).
//!
//! A family asks its [`crate::experiment::RunContext`] for a recorder (`ctx.tracer()`), writes into
//! it and hands it back in [`crate::experiment::RunOutput::trace`]. When tracing is off the recorder
//! is off: every call returns at its first test and nothing is stored (guard expensive labels with
//! [`Trace::is_on`]). A track is a name such as `"gpu/layers"`: the part before the first `/` is
//! the Perfetto process the track is grouped under, the whole name is the thread. A counter track
//! `"gpu/freq_mhz"` is counter `freq_mhz` of process `gpu`. The run's time series
//! ([`crate::experiment::RunOutput::series`]) become counter tracks too when the file is written.
//!
//! The size is bounded: after `cap_events` events further ones are dropped and counted, and the file
//! says so (an instant at the start of the timeline and `otherData.sysim_note`).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::experiment::SeriesPoint;

/// Events a recorder keeps by default (≈ 100 bytes each in the file, so ≈ 20 MB at most).
pub const DEFAULT_CAP_EVENTS: usize = 200_000;

/// What one recorded event is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventKind {
    /// Work on the track from `t_s` for `dur_s` seconds.
    Slice {
        /// Duration, seconds.
        dur_s: f64,
    },
    /// The counter named by the track takes `value` from `t_s` on.
    Counter {
        /// New value of the counter.
        value: f64,
    },
    /// A point event (a transaction, a decision) at `t_s`.
    Instant,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Index of its track in [`Trace::tracks`].
    pub track: usize,
    /// Label shown on the slice or instant (the counter's name for counters).
    pub name: String,
    /// Simulated start time, seconds since the run started.
    pub t_s: f64,
    /// Slice, counter sample or instant.
    pub kind: EventKind,
    /// Numeric details shown when the event is selected (e.g. tokens, bytes).
    pub args: Vec<(&'static str, f64)>,
}

/// A bounded recorder of one run's timeline; off (and free) unless the run was asked for a trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    on: bool,
    cap_events: usize,
    tracks: Vec<String>,
    index: HashMap<String, usize>,
    events: Vec<Event>,
    dropped: u64,
    notes: Vec<String>,
}

impl Trace {
    /// A recorder that records nothing.
    pub fn off() -> Self {
        Self::default()
    }

    /// A recorder keeping at most `cap_events` events.
    pub fn with_cap(cap_events: usize) -> Self {
        Self {
            on: true,
            cap_events,
            ..Self::default()
        }
    }

    /// Whether events are recorded (use it to skip building labels when off).
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Records `name` as work on `track` from `start_s` for `dur_s` seconds.
    pub fn slice(&mut self, track: &str, name: &str, start_s: f64, dur_s: f64) {
        self.slice_with(track, name, start_s, dur_s, &[]);
    }

    /// [`Trace::slice`] with numeric details `args`.
    pub fn slice_with(
        &mut self,
        track: &str,
        name: &str,
        start_s: f64,
        dur_s: f64,
        args: &[(&'static str, f64)],
    ) {
        self.push(track, name, start_s, EventKind::Slice { dur_s }, args);
    }

    /// Records that counter `track` (e.g. `"gpu/freq_mhz"`) is `value` from `t_s` on.
    pub fn counter(&mut self, track: &str, t_s: f64, value: f64) {
        self.push(track, "", t_s, EventKind::Counter { value }, &[]);
    }

    /// Adds `text` to what the timeline says about itself (e.g. a part it lacks): written like the
    /// cap note, into the file and on stderr.
    pub fn note(&mut self, text: impl Into<String>) {
        if self.on {
            self.notes.push(text.into());
        }
    }

    /// The cap note and the family's notes, in one text, if there is any.
    pub fn notes(&self) -> Option<String> {
        let all: Vec<String> = self
            .cap_note()
            .into_iter()
            .chain(self.notes.clone())
            .collect();
        (!all.is_empty()).then(|| all.join("; "))
    }

    /// Records point event `name` on `track` at `t_s`.
    pub fn instant(&mut self, track: &str, name: &str, t_s: f64, args: &[(&'static str, f64)]) {
        self.push(track, name, t_s, EventKind::Instant, args);
    }

    fn push(
        &mut self,
        track: &str,
        name: &str,
        t_s: f64,
        kind: EventKind,
        args: &[(&'static str, f64)],
    ) {
        if !self.on {
            return;
        }
        if self.events.len() >= self.cap_events {
            self.dropped += 1;
            return;
        }
        let track = match self.index.get(track) {
            Some(&i) => i,
            None => {
                self.tracks.push(track.to_owned());
                self.index.insert(track.to_owned(), self.tracks.len() - 1);
                self.tracks.len() - 1
            }
        };
        self.events.push(Event {
            track,
            name: name.to_owned(),
            t_s,
            kind,
            args: args.to_vec(),
        });
    }

    /// Track names in order of first use.
    pub fn tracks(&self) -> &[String] {
        &self.tracks
    }

    /// The recorded events in recording order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Events dropped because the cap was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Summed slice duration on tracks whose name starts with `prefix`, seconds.
    pub fn busy_s(&self, prefix: &str) -> f64 {
        self.events
            .iter()
            .filter(|e| self.tracks[e.track].starts_with(prefix))
            .map(|e| match e.kind {
                EventKind::Slice { dur_s } => dur_s,
                _ => 0.0,
            })
            .sum()
    }

    /// The note written when the cap was reached, if it was.
    pub fn cap_note(&self) -> Option<String> {
        (self.dropped > 0).then(|| {
            format!(
                "trace cap reached: kept the first {} events, dropped {} (the timeline ends early)",
                self.cap_events, self.dropped
            )
        })
    }

    /// The Chrome/Perfetto JSON trace-event document of this timeline plus `series` as counter
    /// tracks (series samples count against the cap), titled `title`. Times are microseconds of
    /// simulated time.
    /// A series whose `component/metric` names a counter the family recorded itself is left out:
    /// the exact track replaces the sampled one.
    pub fn to_chrome_json(&self, title: &str, series: &[SeriesPoint]) -> Value {
        let exact: std::collections::HashSet<usize> = self
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Counter { .. }))
            .map(|e| e.track)
            .collect();
        let mut all = self.clone();
        for p in series {
            let track = format!("{}/{}", p.component, p.metric);
            if !self.index.get(&track).is_some_and(|i| exact.contains(i)) {
                all.counter(&track, p.t_s, p.value);
            }
        }
        all.render(title)
    }

    fn render(&self, title: &str) -> Value {
        let mut processes: Vec<&str> = Vec::new();
        let mut out = Vec::with_capacity(self.events.len() + 2 * self.tracks.len() + 2);
        let mut threaded = vec![false; self.tracks.len()];
        for e in &self.events {
            threaded[e.track] |= !matches!(e.kind, EventKind::Counter { .. });
        }
        let mut track_ids = Vec::with_capacity(self.tracks.len());
        for (track, &threaded) in self.tracks.iter().zip(&threaded) {
            let process = track.split('/').next().unwrap_or(track);
            let pid = match processes.iter().position(|p| *p == process) {
                Some(i) => i + 1,
                None => {
                    processes.push(process);
                    out.push(
                        json!({"ph": "M", "name": "process_name", "pid": processes.len(),
                        "args": {"name": process}}),
                    );
                    out.push(json!({"ph": "M", "name": "process_sort_index",
                        "pid": processes.len(), "args": {"sort_index": processes.len()}}));
                    processes.len()
                }
            };
            let tid = track_ids.len() + 1;
            if threaded {
                // counter-only tracks are drawn under their process, not as an empty thread
                out.push(
                    json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                    "args": {"name": track}}),
                );
            }
            track_ids.push((pid, tid, track.strip_prefix(process).unwrap_or(track)));
        }
        for e in &self.events {
            let (pid, tid, rest) = track_ids[e.track];
            let ts = e.t_s * 1e6;
            let args: serde_json::Map<String, Value> = e
                .args
                .iter()
                .map(|&(k, v)| (k.to_owned(), json!(v)))
                .collect();
            out.push(match e.kind {
                EventKind::Slice { dur_s } => json!({"ph": "X", "name": e.name, "pid": pid,
                    "tid": tid, "ts": ts, "dur": dur_s * 1e6, "args": args}),
                EventKind::Instant => json!({"ph": "i", "s": "t", "name": e.name, "pid": pid,
                    "tid": tid, "ts": ts, "args": args}),
                EventKind::Counter { value } => {
                    let name = rest.trim_start_matches('/');
                    let name = if name.is_empty() {
                        self.tracks[e.track].as_str()
                    } else {
                        name
                    };
                    json!({"ph": "C", "name": name, "pid": pid, "ts": ts,
                        "args": {"value": value}})
                }
            });
        }
        let mut doc = json!({
            "displayTimeUnit": "ms",
            "otherData": {"title": title, "time": "simulated time (1 us in the file = 1 us simulated)"},
            "traceEvents": out,
        });
        if let Some(note) = self.notes() {
            doc["otherData"]["sysim_note"] = json!(note);
            if let Some(events) = doc["traceEvents"].as_array_mut() {
                events.push(
                    json!({"ph": "i", "s": "g", "name": note, "pid": 0, "tid": 0,
                    "ts": 0.0}),
                );
            }
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_off_recorder_keeps_nothing() {
        let mut t = Trace::off();
        t.slice("gpu/layers", "attn", 0.0, 1.0);
        t.counter("gpu/freq_mhz", 0.0, 848.0);
        assert!(t.events().is_empty() && t.tracks().is_empty() && t.dropped() == 0);
    }

    #[test]
    fn slices_counters_and_instants_render_as_trace_events() {
        let mut t = Trace::with_cap(DEFAULT_CAP_EVENTS);
        t.slice_with("gpu/layers", "attn", 0.5, 0.25, &[("tokens", 3.0)]);
        t.instant("chain/tx", "submit", 1.0, &[]);
        let series = [SeriesPoint {
            t_s: 0.0,
            component: "gpu".into(),
            metric: "freq_mhz".into(),
            value: 848.0,
        }];
        let doc = t.to_chrome_json("run 0", &series);
        let events = doc["traceEvents"].as_array().unwrap();
        let slice = events.iter().find(|e| e["ph"] == "X").unwrap();
        assert_eq!(slice["ts"], json!(500_000.0));
        assert_eq!(slice["dur"], json!(250_000.0));
        assert_eq!(slice["args"]["tokens"], json!(3.0));
        let counter = events.iter().find(|e| e["ph"] == "C").unwrap();
        assert_eq!(counter["name"], "freq_mhz");
        assert_eq!(
            counter["pid"], slice["pid"],
            "gpu counter sits in the gpu process"
        );
        let exact = t.to_chrome_json(
            "run 0",
            &[
                series[0].clone(),
                SeriesPoint {
                    component: "chain".into(),
                    metric: "base_fee_gwei".into(),
                    ..series[0].clone()
                },
            ],
        );
        let counters = |doc: &Value| {
            doc["traceEvents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["ph"] == "C")
                .count()
        };
        assert_eq!(counters(&exact), 2);
        let mut t2 = t.clone();
        t2.counter("gpu/freq_mhz", 0.0, 900.0);
        let replaced = t2.to_chrome_json("run 0", &series);
        assert_eq!(
            counters(&replaced),
            1,
            "the family's exact counter replaces the series"
        );
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["name"] == "process_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["gpu", "chain"]);
        assert!(doc["otherData"].get("sysim_note").is_none());
    }

    #[test]
    fn the_cap_drops_and_says_so() {
        let mut t = Trace::with_cap(3);
        for i in 0..5 {
            t.slice("cpu/layers", "l", f64::from(i), 0.5);
        }
        assert_eq!((t.events().len(), t.dropped()), (3, 2));
        assert!((t.busy_s("cpu") - 1.5).abs() < 1e-12);
        let doc = t.to_chrome_json("run 0", &[]);
        let note = doc["otherData"]["sysim_note"].as_str().unwrap();
        assert!(note.contains("dropped 2"), "{note}");
        let events = doc["traceEvents"].as_array().unwrap();
        assert!(events.iter().any(|e| e["name"] == note));
    }
}
