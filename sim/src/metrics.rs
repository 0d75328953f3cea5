//! Metric recorders: counters, time-weighted gauges and latency histograms.
//!
//! All three are plain values (no engine dependency) that models keep in their state, so they are
//! serde-serializable for nexosim checkpoints. Simulated time is given as `f64` seconds since the
//! start of the run (see [`crate::engine::t_s`]). Each recorder can export itself as named scalar
//! metrics into a `Vec<(String, f64)>` (the shape of [`crate::experiment::RunOutput::metrics`]);
//! the caller passes a prefix that carries the unit (e.g. `sojourn_s`, `queue_len`), and the
//! recorder appends a statistic suffix (`_mean`, `_p50`, `_p99`, `_max`, …).

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A monotone event counter (number of jobs, bytes, retries, …); the unit is whatever is counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Current count.
    value: u64,
}

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self { value: 0 }
    }

    /// Adds one.
    pub fn incr(&mut self) {
        self.value = self.value.saturating_add(1);
    }

    /// Adds `n` (saturating at `u64::MAX`).
    pub fn add(&mut self, n: u64) {
        self.value = self.value.saturating_add(n);
    }

    /// Current count.
    pub const fn get(&self) -> u64 {
        self.value
    }

    /// Appends `(name, count)` to `out`.
    pub fn export(&self, name: &str, out: &mut Vec<(String, f64)>) {
        out.push((name.to_owned(), self.value as f64));
    }
}

/// A piecewise-constant level over simulated time (queue length, busy servers, bytes in use, power),
/// with its time integral, time average and maximum.
///
/// The level set at time `t_s` holds until the next [`set`](Self::set). Times are seconds since the
/// start of the run and must not decrease (an earlier time is treated as the last update time).
/// The integral is in *level-unit × seconds* (e.g. watts × s = joules).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeWeightedGauge {
    /// Time the observation window starts, seconds.
    start_t_s: f64,
    /// Time of the last level change, seconds.
    last_t_s: f64,
    /// Current level.
    level: f64,
    /// Integral of the level from `start_t_s` to `last_t_s`.
    integral: f64,
    /// Highest level seen since `start_t_s`.
    max: f64,
    /// Lowest level seen since `start_t_s`.
    min: f64,
}

impl Default for TimeWeightedGauge {
    fn default() -> Self {
        Self::new(0.0, 0.0)
    }
}

impl TimeWeightedGauge {
    /// A gauge whose window starts at `start_t_s` (seconds) with level `initial`.
    pub fn new(start_t_s: f64, initial: f64) -> Self {
        Self {
            start_t_s,
            last_t_s: start_t_s,
            level: initial,
            integral: 0.0,
            max: initial,
            min: initial,
        }
    }

    /// Restarts the observation window at `t_s` keeping the current level (drops the history, e.g.
    /// at the end of a warm-up period).
    pub fn reset(&mut self, t_s: f64) {
        *self = Self::new(t_s, self.level);
    }

    /// Sets the level to `value` from time `t_s` (seconds) on.
    pub fn set(&mut self, t_s: f64, value: f64) {
        self.advance(t_s);
        self.level = value;
        self.max = self.max.max(value);
        self.min = self.min.min(value);
    }

    /// Adds `delta` to the level at time `t_s` (seconds).
    pub fn add(&mut self, t_s: f64, delta: f64) {
        let level = self.level + delta;
        self.set(t_s, level);
    }

    /// Accumulates the integral up to `t_s` without changing the level.
    fn advance(&mut self, t_s: f64) {
        if t_s > self.last_t_s {
            self.integral += self.level * (t_s - self.last_t_s);
            self.last_t_s = t_s;
        }
    }

    /// Current level.
    pub fn level(&self) -> f64 {
        self.level
    }

    /// Start of the observation window, seconds.
    pub fn start_s(&self) -> f64 {
        self.start_t_s
    }

    /// Highest level since the window started.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// Lowest level since the window started.
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Integral of the level from the window start to `until_t_s` (level-unit × seconds); the
    /// current level is extended to `until_t_s` if that is after the last change.
    pub fn integral(&self, until_t_s: f64) -> f64 {
        let tail = (until_t_s - self.last_t_s).max(0.0);
        self.integral + self.level * tail
    }

    /// Time average of the level over `[start, until_t_s]`; the current level when the window is
    /// empty.
    pub fn mean(&self, until_t_s: f64) -> f64 {
        let span = until_t_s.max(self.last_t_s) - self.start_t_s;
        if span > 0.0 {
            self.integral(until_t_s) / span
        } else {
            self.level
        }
    }

    /// Appends `{prefix}_mean` (time average up to `until_t_s`) and `{prefix}_max` to `out`.
    pub fn export(&self, prefix: &str, until_t_s: f64, out: &mut Vec<(String, f64)>) {
        out.push((format!("{prefix}_mean"), self.mean(until_t_s)));
        out.push((format!("{prefix}_max"), self.max));
    }
}

/// Significant decimal digits kept by [`LatencyHistogram`] (relative error ≤ 0.1 %).
const SIGFIG: u8 = 3;

/// A distribution of durations (latency, sojourn, wait), recorded in seconds with nanosecond
/// resolution in an HDR histogram (3 significant digits).
///
/// Quantiles are within 0.1 % of the exact sample quantile; the mean, minimum and maximum are exact
/// (kept beside the histogram). Negative and NaN durations are recorded as 0.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    /// Counts per bucket, values in nanoseconds.
    hist: Histogram<u64>,
    /// Exact sum of the recorded durations, seconds.
    sum_s: f64,
    /// Exact smallest recorded duration, seconds (`+∞` when empty).
    min_s: f64,
    /// Exact largest recorded duration, seconds (0 when empty).
    max_s: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for LatencyHistogram {
    fn eq(&self, other: &Self) -> bool {
        self.hist == other.hist
            && self.sum_s == other.sum_s
            && self.min_s == other.min_s
            && self.max_s == other.max_s
    }
}

impl LatencyHistogram {
    /// An empty histogram (auto-resizing: any duration up to ~146 years).
    pub fn new() -> Self {
        Self {
            hist: Histogram::new(SIGFIG)
                .expect("3 significant digits is a valid HDR configuration"),
            sum_s: 0.0,
            min_s: f64::INFINITY,
            max_s: 0.0,
        }
    }

    /// Records one duration of `duration_s` seconds.
    pub fn record_s(&mut self, duration_s: f64) {
        self.record_n_s(duration_s, 1);
    }

    /// Records one duration of `duration_s` seconds (same as [`record_s`](Self::record_s)).
    pub fn record(&mut self, duration_s: f64) {
        self.record_n_s(duration_s, 1);
    }

    /// Records `n` occurrences of a duration of `duration_s` seconds.
    pub fn record_n_s(&mut self, duration_s: f64, n: u64) {
        if n == 0 {
            return;
        }
        let d = if duration_s.is_nan() {
            0.0
        } else {
            duration_s.max(0.0)
        };
        let ns = (d * 1e9).round() as u64; // saturates at u64::MAX for huge values
        self.record_ns(ns, n);
        self.sum_s += d * n as f64;
        self.min_s = self.min_s.min(d);
        self.max_s = self.max_s.max(d);
    }

    /// Records `n` samples of `ns` nanoseconds: auto-resizes, and clamps only values beyond the
    /// largest trackable one (~146 years).
    fn record_ns(&mut self, ns: u64, n: u64) {
        if self.hist.record_n(ns, n).is_err() {
            self.hist.saturating_record_n(ns, n);
        }
    }

    /// Number of recorded durations.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// Exact mean duration in seconds (0 when empty).
    pub fn mean_s(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.sum_s / n as f64,
        }
    }

    /// Exact sum of the recorded durations, seconds.
    pub fn sum_s(&self) -> f64 {
        self.sum_s
    }

    /// Exact largest recorded duration in seconds (0 when empty).
    pub fn max_s(&self) -> f64 {
        self.max_s
    }

    /// Exact smallest recorded duration in seconds (0 when empty).
    pub fn min_s(&self) -> f64 {
        if self.is_empty() { 0.0 } else { self.min_s }
    }

    /// Duration at quantile `q` ∈ [0, 1] in seconds (0 when empty), within 0.1 % and never above
    /// [`max_s`](Self::max_s).
    pub fn quantile_s(&self, q: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        let v = self.hist.value_at_quantile(q) as f64 * 1e-9;
        v.clamp(self.min_s, self.max_s)
    }

    /// Adds every sample of `other` to this histogram.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.is_empty() {
            return;
        }
        self.hist
            .add(&other.hist)
            .expect("auto-resizing histograms accept any addend");
        self.sum_s += other.sum_s;
        self.min_s = self.min_s.min(other.min_s);
        self.max_s = self.max_s.max(other.max_s);
    }

    /// Appends `{prefix}_mean`, `{prefix}_p50`, `{prefix}_p99` and `{prefix}_max` (seconds) to
    /// `out`; `prefix` names the quantity with its unit, e.g. `sojourn_s`.
    pub fn export(&self, prefix: &str, out: &mut Vec<(String, f64)>) {
        out.push((format!("{prefix}_mean"), self.mean_s()));
        out.push((format!("{prefix}_p50"), self.quantile_s(0.50)));
        out.push((format!("{prefix}_p99"), self.quantile_s(0.99)));
        out.push((format!("{prefix}_max"), self.max_s()));
    }

    /// Like [`export`](Self::export) but in milliseconds: `{prefix}_mean`, `_p50`, `_p99`, `_max`
    /// with every value × 1000; pass a prefix ending in `_ms`, e.g. `ttft_ms`.
    pub fn export_ms(&self, prefix: &str, out: &mut Vec<(String, f64)>) {
        out.push((format!("{prefix}_mean"), self.mean_s() * 1e3));
        out.push((format!("{prefix}_p50"), self.quantile_s(0.50) * 1e3));
        out.push((format!("{prefix}_p99"), self.quantile_s(0.99) * 1e3));
        out.push((format!("{prefix}_max"), self.max_s() * 1e3));
    }
}

/// Serialized form of [`LatencyHistogram`]: the recorded buckets as `(value_ns, count)` pairs plus
/// the exact side statistics. Rebuilding from the pairs reproduces the bucket counts exactly.
#[derive(Serialize, Deserialize)]
struct LatencyHistogramRepr {
    /// `(value_ns, count)` of every non-empty bucket, ascending.
    buckets: Vec<(u64, u64)>,
    /// Exact sum of the durations, seconds.
    sum_s: f64,
    /// Exact minimum, seconds (0 when empty).
    min_s: f64,
    /// Exact maximum, seconds (0 when empty).
    max_s: f64,
}

impl Serialize for LatencyHistogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let buckets = self
            .hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        LatencyHistogramRepr {
            buckets,
            sum_s: self.sum_s,
            // JSON has no infinity: store an empty histogram's minimum as 0.
            min_s: if self.is_empty() { 0.0 } else { self.min_s },
            max_s: self.max_s,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = LatencyHistogramRepr::deserialize(deserializer)?;
        let mut h = LatencyHistogram::new();
        for (value_ns, count) in repr.buckets {
            h.record_ns(value_ns, count);
        }
        h.sum_s = repr.sum_s;
        h.max_s = repr.max_s;
        h.min_s = if h.is_empty() {
            f64::INFINITY
        } else {
            repr.min_s
        };
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-12)
    }

    #[test]
    fn counter_adds_and_exports() {
        let mut c = Counter::new();
        c.incr();
        c.add(41);
        assert_eq!(c.get(), 42);
        c.add(u64::MAX);
        assert_eq!(c.get(), u64::MAX);
        let mut out = Vec::new();
        Counter::default().export("jobs", &mut out);
        assert_eq!(out, vec![("jobs".to_string(), 0.0)]);
        let back: Counter = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn gauge_integrates_piecewise_constant_level() {
        // level 2 on [0,1), 5 on [1,3), 0 on [3,4]
        let mut g = TimeWeightedGauge::new(0.0, 2.0);
        g.set(1.0, 5.0);
        g.set(3.0, 0.0);
        assert_eq!(g.integral(4.0), 2.0 + 10.0);
        assert_eq!(g.mean(4.0), 3.0);
        assert_eq!(g.max(), 5.0);
        assert_eq!(g.min(), 0.0);
        assert_eq!(g.level(), 0.0);
        // integral up to an earlier time than the last change still counts what was recorded
        assert_eq!(g.integral(3.0), 12.0);
        // add() is relative
        g.add(4.0, 1.5);
        g.add(5.0, -0.5);
        assert_eq!(g.integral(6.0), 12.0 + 1.5 + 1.0);
        let mut out = Vec::new();
        g.export("queue_len", 6.0, &mut out);
        assert_eq!(out[0].0, "queue_len_mean");
        assert_eq!(out[0].1, 14.5 / 6.0);
        assert_eq!(out[1], ("queue_len_max".to_string(), 5.0));
    }

    #[test]
    fn gauge_window_and_reset() {
        let mut g = TimeWeightedGauge::new(10.0, 1.0);
        assert_eq!(g.mean(10.0), 1.0); // empty window: current level
        g.set(12.0, 3.0);
        g.reset(12.0);
        assert_eq!(g.start_s(), 12.0);
        assert_eq!(g.mean(14.0), 3.0);
        assert_eq!(g.max(), 3.0);
        // going back in time does not create negative area
        g.set(11.0, 0.0);
        assert_eq!(g.integral(14.0), 0.0);
        let back: TimeWeightedGauge =
            serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn histogram_statistics() {
        let mut h = LatencyHistogram::new();
        assert_eq!(
            (h.count(), h.mean_s(), h.quantile_s(0.5), h.max_s()),
            (0, 0.0, 0.0, 0.0)
        );
        for i in 1..=1000 {
            h.record_s(i as f64 * 1e-3); // 1 ms … 1 s
        }
        assert_eq!(h.count(), 1000);
        assert!(close(h.mean_s(), 0.5005, 1e-12));
        assert!(close(h.quantile_s(0.5), 0.5, 1e-3), "{}", h.quantile_s(0.5));
        assert!(close(h.quantile_s(0.99), 0.99, 1e-3));
        assert_eq!(h.max_s(), 1.0);
        assert_eq!(h.min_s(), 1e-3);
        assert!(h.quantile_s(1.0) <= h.max_s());
        // nanosecond resolution at the small end
        let mut small = LatencyHistogram::new();
        small.record(17e-9);
        assert_eq!(small.quantile_s(0.5), 17e-9);
        // bad input is clamped, not a panic
        small.record_s(-1.0);
        small.record_s(f64::NAN);
        assert_eq!(small.count(), 3);
        assert_eq!(small.min_s(), 0.0);
    }

    #[test]
    fn histogram_roundtrips_exactly_through_serde() {
        let mut rng = crate::rng::stream(3, "metrics/test");
        let mut h = LatencyHistogram::new();
        for _ in 0..5000 {
            let x: f64 = rng.random::<f64>();
            h.record_s(-x.ln() * 0.02);
        }
        let json = serde_json::to_string(&h).unwrap();
        let back: LatencyHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(back.quantile_s(q), h.quantile_s(q));
        }
        assert_eq!(back.mean_s(), h.mean_s());
        let empty: LatencyHistogram =
            serde_json::from_str(&serde_json::to_string(&LatencyHistogram::new()).unwrap())
                .unwrap();
        assert_eq!(empty, LatencyHistogram::new());
    }

    #[test]
    fn histogram_merge_and_export() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record_n_s(0.010, 3);
        b.record_s(0.040);
        a.merge(&b);
        assert_eq!(a.count(), 4);
        assert!(close(a.mean_s(), 0.0175, 1e-12));
        let mut out = Vec::new();
        a.export("sojourn_s", &mut out);
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "sojourn_s_mean",
                "sojourn_s_p50",
                "sojourn_s_p99",
                "sojourn_s_max"
            ]
        );
        assert_eq!(out[3].1, 0.040);
        let mut ms = Vec::new();
        a.export_ms("ttft_ms", &mut ms);
        assert_eq!(ms[3], ("ttft_ms_max".to_string(), 40.0));
    }
}
