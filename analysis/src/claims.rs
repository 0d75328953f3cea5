//! Claims: a paper's headline numbers beside ours, as evidence a reviewer can check.
//!
//! A claim (one entry of `claims:` in `reports/<paper>.yaml`) has a **kind** — `evidence` (a headline
//! result of the paper, measured by our simulation of its mechanism; the only kind counted),
//! `calibration` (a figure constants were fitted to; shown, never counted) or `check` (theory, an
//! invariant, or a constraint the algorithm enforces) — a **band** taken from the paper
//! (`band_source` names where; moving it needs a `band_note`), and an expression over a scenario's
//! runs table:
//!
//! - `stat: value`: the mean of `metric` over the rows matching `where`;
//! - `ratio` (a/b), `change_pct` ((a/b − 1)·100), `difference` (a − b) or `points` ((a − b)·100):
//!   the `where` rows (a) against the rows where `baseline` overrides `where` (b);
//! - `over: COLUMN` (or a list of columns) with `reduce: max|min|mean`: the same per group, reduced.
//!
//! Every figure is computed **per replication** first — a run of the `where` rows is paired with the
//! baseline run of the same replication (scenarios with `common_random_numbers: true` give them the
//! same seed), the groups of `over` are reduced within the replication — and then summarised over
//! replications: `n`, the mean, and a two-sided 95 % Student-t interval (unknown when n < 2) — or,
//! with `summary: median`, the median and the distribution-free interval of a sign test (the order
//! statistics `[x₍ₖ₎, x₍ₙ₋ₖ₊₁₎]` covering the median with probability ≥ 95 %; unknown when n < 6),
//! for figures whose seeds span orders of magnitude, where one seed sets the mean.
//!
//! A **direction** claim (`direction: true`: "better than", "fewer rounds than") is in band only when
//! its whole interval lies in the band; its band excludes the no-effect value (0 for differences, 1
//! for ratios, or `no_effect`), which may sit on a band edge as an open end: `(0, 100]`. Its sides must
//! share seeds, and with n < 2 — or replications that all give the same figure, i.e. runs that do
//! not depend on the seed — it is never in band. Any other claim is in band when its mean is.
//!
//! **Censoring** (`censor: { above: X }`): a metric value above X (a number or the row's value of a
//! column, e.g. `network.rounds`) means the run ended before reaching the target; the value is the
//! model's sentinel (rounds + 1), a lower bound of the truth. A figure with a censored side is a bound
//! (`≥ x` or `≤ x`), never a number: it is out of band when the bound lies beyond the band, and
//! undecided otherwise — except in a direction claim whose censored side can only push the figure
//! further into the band (the baseline never reached the target): there the interval is computed
//! with the sentinels, which understates the effect, and decides.
//!
//! **Equal resources** (`equal: [{ metric, tolerance_pct }]`): the two sides of a comparison must
//! agree on these metrics (bits per weight, density, …) within the tolerance, or the claim is
//! undecided; `differs:` states in words what a comparison does not hold equal.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AnalysisError, Result};
use crate::report::select;

/// What a claim is evidence of.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ClaimKind {
    /// A headline result of the paper, measured by our simulation of its mechanism (counted).
    Evidence,
    /// A figure that constants were fitted to: shown beside the paper, never counted.
    Calibration,
    /// Theory, an invariant, or a constraint the algorithm enforces.
    Check,
}

impl fmt::Display for ClaimKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClaimKind::Evidence => "evidence",
            ClaimKind::Calibration => "calibration",
            ClaimKind::Check => "check",
        })
    }
}

/// How a claim's simulated figure is computed from the selected rows.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Mean of the metric over the `where` rows.
    #[default]
    Value,
    /// Mean over `where` rows divided by the mean over `baseline` rows.
    Ratio,
    /// log₁₀ of [`Stat::Ratio`] per replication, so its mean and interval are those of the
    /// geometric mean ratio: for ratios that span orders of magnitude across seeds (e.g. one
    /// diverged run), where an arithmetic mean is one seed's figure.
    LogRatio,
    /// (ratio − 1) × 100.
    ChangePct,
    /// Mean over `where` rows minus the mean over `baseline` rows, in the metric's unit.
    Difference,
    /// [`Stat::Difference`] × 100: percentage points between two fractions.
    Points,
}

impl Stat {
    /// The figure that means "no effect": 1 for a ratio, 0 for the differences, none for a value.
    pub fn no_effect(self) -> Option<f64> {
        match self {
            Stat::Value => None,
            Stat::Ratio => Some(1.0),
            Stat::LogRatio | Stat::ChangePct | Stat::Difference | Stat::Points => Some(0.0),
        }
    }

    fn compares(self) -> bool {
        self != Stat::Value
    }
}

/// How per-group values are combined when `over` is set.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Reduce {
    /// Arithmetic mean over groups.
    #[default]
    Mean,
    /// Largest group value ("up to …").
    Max,
    /// Smallest group value.
    Min,
}

/// How the per-replication figures are summarised.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Summary {
    /// Their mean, with a two-sided 95 % Student-t interval.
    #[default]
    Mean,
    /// Their median, with the order-statistic interval of a two-sided sign test at 5 %.
    Median,
}

/// The column(s) a claim is computed per group of: one name, or a list (e.g. every shape axis).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Over {
    /// One column.
    One(String),
    /// Several columns: a group is one combination of their values.
    Many(Vec<String>),
}

impl Over {
    /// The column names.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Over::One(c) => vec![c.as_str()],
            Over::Many(cs) => cs.iter().map(String::as_str).collect(),
        }
    }
}

/// A number, or the name of a column whose value in the same row is used.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Threshold {
    /// A fixed number.
    Number(f64),
    /// A column of the runs table (e.g. `network.rounds`).
    Column(String),
}

/// How a "not reached" value appears in the metric.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Censor {
    /// A value above this means the run ended before reaching the target; the value written is the
    /// model's sentinel (e.g. rounds + 1), the smallest the true value could be.
    pub above: Threshold,
}

/// A resource both sides of a comparison must hold equal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Equal {
    /// Metric column holding the resource (e.g. `weight_compression`, `density`).
    pub metric: String,
    /// Largest relative difference, in percent of the larger side, that still counts as equal.
    #[serde(default = "default_tolerance_pct")]
    pub tolerance_pct: f64,
}

fn default_tolerance_pct() -> f64 {
    5.0
}

/// A paper's headline claim and the expression over our results that corresponds to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    /// Short id.
    pub id: String,
    /// `evidence`, `calibration` or `check`.
    pub kind: ClaimKind,
    /// The claim in words.
    pub text: String,
    /// The paper's figure as the paper states it (e.g. `−7.0 to −16.9 %`).
    pub paper: String,
    /// Band `[low, high]` in which our figure counts as reproducing the claim.
    pub band: [f64; 2],
    /// Where the band comes from (paper figure, table or text; theory for a check).
    #[serde(default)]
    pub band_source: String,
    /// Why the band differs from the paper's figure, when it was moved (shown in the report).
    #[serde(default)]
    pub band_note: Option<String>,
    /// Unit of the simulated figure.
    #[serde(default)]
    pub unit: String,
    /// Scenario file, relative to the repository root (absent while the claim is `pending`).
    #[serde(default)]
    pub scenario: Option<PathBuf>,
    /// Why the claim is not simulated yet (e.g. the family is not built); it is then listed, not evaluated.
    #[serde(default)]
    pub pending: Option<String>,
    /// Metric column.
    #[serde(default)]
    pub metric: String,
    /// Rows to use (column → value).
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Value>,
    /// Overrides of `where` selecting the baseline rows (for the comparing stats).
    #[serde(default)]
    pub baseline: Option<BTreeMap<String, Value>>,
    /// The baseline's metric, when it is another column than `metric`: two figures of the same
    /// runs compared (two arms measured inside one run); without `baseline`, the baseline rows are
    /// the `where` rows themselves.
    #[serde(default)]
    pub baseline_metric: Option<String>,
    /// What to compute.
    #[serde(default)]
    pub stat: Stat,
    /// Compute per value (or combination of values) of these columns, then reduce.
    #[serde(default)]
    pub over: Option<Over>,
    /// How to reduce per-group values.
    #[serde(default)]
    pub reduce: Reduce,
    /// How to summarise the per-replication figures: `mean` (default) or `median`.
    #[serde(default)]
    pub summary: Summary,
    /// A direction claim ("better than"): in band only when its whole paired interval is.
    #[serde(default)]
    pub direction: bool,
    /// The figure meaning "no effect", for a direction claim over a `value` that is itself a
    /// within-run comparison (a speedup: 1).
    #[serde(default)]
    pub no_effect: Option<f64>,
    /// How a "not reached" value appears in the metric.
    #[serde(default)]
    pub censor: Option<Censor>,
    /// Resources both sides of the comparison must hold equal.
    #[serde(default)]
    pub equal: Vec<Equal>,
    /// What the comparison does not hold equal, in words (shown in the report).
    #[serde(default)]
    pub differs: Option<String>,
}

impl ClaimSpec {
    /// The figure meaning "no effect" for this claim, if it has one.
    pub fn null_value(&self) -> Option<f64> {
        self.no_effect.or(self.stat.no_effect())
    }

    /// Rules that need no data: a band source, a sane band, a direction claim's band excluding
    /// "no effect", resources only on comparisons.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let id = &self.id;
        if self.band_source.trim().is_empty() {
            return Err(format!(
                "claim `{id}`: `band_source` is required (where the band comes from: a paper figure, table or text)"
            ));
        }
        if !(self.band[0].is_finite() && self.band[1].is_finite() && self.band[0] <= self.band[1]) {
            return Err(format!(
                "claim `{id}`: band [{}, {}] must be two finite numbers, low ≤ high",
                self.band[0], self.band[1]
            ));
        }
        if self.pending.is_none() && (self.metric.is_empty() || self.scenario.is_none()) {
            return Err(format!(
                "claim `{id}`: `scenario` and `metric` are required unless the claim is `pending`"
            ));
        }
        if self.stat.compares() && self.baseline.is_none() && self.baseline_metric.is_none() {
            return Err(format!(
                "claim `{id}`: stat `{:?}` compares with `baseline` or `baseline_metric`, both missing",
                self.stat
            ));
        }
        if self.baseline.is_none() && self.baseline_metric.as_ref() == Some(&self.metric) {
            return Err(format!(
                "claim `{id}`: `baseline_metric` is `metric` and no `baseline` selects other rows: it would compare a figure with itself"
            ));
        }
        if !self.stat.compares() && (self.baseline.is_some() || self.baseline_metric.is_some()) {
            return Err(format!(
                "claim `{id}`: `baseline` or `baseline_metric` is set but `stat: value` does not compare"
            ));
        }
        if !self.equal.is_empty() && !self.stat.compares() {
            return Err(format!(
                "claim `{id}`: `equal` needs a comparison (a `baseline`)"
            ));
        }
        if self.direction {
            let Some(null) = self.null_value() else {
                return Err(format!(
                    "claim `{id}`: a direction claim over `stat: value` needs `no_effect` (the value meaning no effect, e.g. 1 for a speedup)"
                ));
            };
            if self.band[0] < null && null < self.band[1] {
                return Err(format!(
                    "claim `{id}`: a direction claim's band must exclude no effect ({null}); [{}, {}] contains it",
                    self.band[0], self.band[1]
                ));
            }
        }
        Ok(())
    }

    /// Rejects a claim over scenario `scenario` whose metric is one of `inputs` (its param columns
    /// and the key columns `run`, `replication`, `seed`, `error`): an input is not a result.
    pub fn validate_inputs(
        &self,
        scenario: &Path,
        inputs: &BTreeSet<String>,
    ) -> std::result::Result<(), String> {
        if self.pending.is_some() || self.scenario.as_deref() != Some(scenario) {
            return Ok(());
        }
        for metric in std::iter::once(&self.metric).chain(&self.baseline_metric) {
            if inputs.contains(metric) {
                return Err(format!(
                    "claim `{}`: metric `{metric}` is an input of {} (a param or key column), not a result",
                    self.id,
                    scenario.display()
                ));
            }
        }
        Ok(())
    }

    fn band_text(&self) -> String {
        let null = if self.direction {
            self.null_value()
        } else {
            None
        };
        let open = |edge: f64| null.is_some_and(|n| n == edge);
        format!(
            "{}{}, {}{}",
            if open(self.band[0]) { "(" } else { "[" },
            self.band[0],
            self.band[1],
            if open(self.band[1]) { ")" } else { "]" }
        )
    }

    /// Whether `x` lies in the band (a direction claim's no-effect edge is open).
    fn contains(&self, x: f64) -> bool {
        let null = if self.direction {
            self.null_value()
        } else {
            None
        };
        x >= self.band[0] && x <= self.band[1] && null.is_none_or(|n| x != n)
    }
}

/// What a censored figure is: exact, or a bound of the truth.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The figure itself.
    #[default]
    Exact,
    /// The truth is at least the figure (`≥ x`).
    AtLeast,
    /// The truth is at most the figure (`≤ x`).
    AtMost,
    /// Censored in both directions: nothing can be said.
    Unknown,
}

impl Bound {
    fn flip(self) -> Bound {
        match self {
            Bound::AtLeast => Bound::AtMost,
            Bound::AtMost => Bound::AtLeast,
            b => b,
        }
    }

    /// The bound of a sum (or mean, max, min) of figures with these bounds.
    fn combine(bounds: impl IntoIterator<Item = Bound>) -> Bound {
        let mut out = Bound::Exact;
        for b in bounds {
            out = match (out, b) {
                (x, Bound::Exact) => x,
                (Bound::Exact, y) => y,
                (x, y) if x == y => x,
                _ => Bound::Unknown,
            };
        }
        out
    }
}

/// A figure with its censoring.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Est {
    v: f64,
    bound: Bound,
}

/// The verdict on a claim.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// In band (a direction claim: its whole interval).
    InBand,
    /// Outside the band (a direction claim: its whole interval; a bound: beyond the band).
    OutOfBand,
    /// Cannot be decided from what we have: no interval, an interval across a band edge, a
    /// censored bound inside the band, unequal resources, unpaired seeds.
    Undecided,
    /// Not computed (pending, no table, an unknown column, no rows).
    NotComputed,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::InBand => "in band",
            Verdict::OutOfBand => "out of band",
            Verdict::Undecided => "undecided",
            Verdict::NotComputed => "not computed",
        })
    }
}

/// A resource held equal (or not) between the two sides of a comparison.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EqualResult {
    /// Metric column.
    pub metric: String,
    /// Mean over the `where` rows.
    pub value: f64,
    /// Mean over the baseline rows.
    pub baseline: f64,
    /// Whether they agree within the tolerance.
    pub held: bool,
}

/// A claim checked against our results (a row of `claims.json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClaimResult {
    /// Paper id.
    pub paper: String,
    /// Claim id.
    pub id: String,
    /// `evidence`, `calibration` or `check`.
    pub kind: ClaimKind,
    /// The claim in words.
    pub text: String,
    /// The paper's figure.
    pub paper_value: String,
    /// Accepted band.
    pub band: [f64; 2],
    /// The band as written in the report, `(` / `)` marking an open no-effect edge.
    pub band_text: String,
    /// Where the band comes from.
    pub band_source: String,
    /// Why the band was moved, if it was.
    pub band_note: Option<String>,
    /// Whether this is a direction claim (its whole interval must lie in the band).
    pub direction: bool,
    /// Our figure (mean or median over replications, as `summary` says; with `bound` set, a
    /// bound), when it could be computed.
    pub simulated: Option<f64>,
    /// How `simulated` and `ci95` summarise the replications.
    pub summary: Summary,
    /// Whether `simulated` is a bound because a side was censored.
    pub bound: Bound,
    /// Replications the figure is computed over.
    pub n: usize,
    /// Replications with a censored side.
    pub censored: usize,
    /// Two-sided 95 % interval over replications (Student-t of the mean, or the sign test's of the
    /// median); none when n < 2 (median: n < 6) or censored — except a direction claim whose
    /// censored figures point into the band, whose interval then takes them at their sentinel
    /// values (a conservative interval).
    pub ci95: Option<[f64; 2]>,
    /// For a comparison: whether every pair shares its seed (common random numbers).
    pub paired: Option<bool>,
    /// Resources the comparison holds equal, with both sides' values.
    pub equal: Vec<EqualResult>,
    /// What the comparison does not hold equal.
    pub differs: Option<String>,
    /// Unit of `simulated`.
    pub unit: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the verdict is what it is when it is not plain (undecided, not computed).
    pub reason: Option<String>,
    /// Whether the verdict is `in_band`.
    pub in_band: bool,
    /// Why the figure could not be computed, if so.
    pub problem: Option<String>,
}

/// Everything computed about a claim before the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Per-replication figures, in replication order, with their replication index.
    per_replication: Vec<(u64, Est)>,
    /// Whether all pairs share seeds (comparisons only).
    pub paired: Option<bool>,
    /// Resources held equal.
    pub equal: Vec<EqualResult>,
    /// How the figures are summarised.
    pub summary: Summary,
}

impl Evaluation {
    /// Number of replications.
    pub fn n(&self) -> usize {
        self.per_replication.len()
    }

    /// The figure: mean or median over replications, as `summary` says (NaN if any figure is).
    pub fn center(&self) -> f64 {
        match self.summary {
            Summary::Mean => self.mean(),
            Summary::Median => median(&self.values()),
        }
    }

    fn mean(&self) -> f64 {
        let n = self.n().max(1) as f64;
        self.per_replication.iter().map(|(_, e)| e.v).sum::<f64>() / n
    }

    /// The censoring of the mean.
    pub fn bound(&self) -> Bound {
        Bound::combine(self.per_replication.iter().map(|(_, e)| e.bound))
    }

    /// Replications with a censored figure.
    pub fn censored(&self) -> usize {
        self.per_replication
            .iter()
            .filter(|(_, e)| e.bound != Bound::Exact)
            .count()
    }

    /// The per-replication figures.
    pub fn values(&self) -> Vec<f64> {
        self.per_replication.iter().map(|(_, e)| e.v).collect()
    }

    /// Two-sided 95 % interval of [`Evaluation::center`]; none when it has too few figures or any
    /// figure is censored.
    pub fn ci95(&self) -> Option<[f64; 2]> {
        if self.bound() != Bound::Exact {
            return None;
        }
        self.sentinel_ci95()
    }

    /// The interval with censored figures taken at their sentinel values; none when n < 2 (a
    /// median's: when no order statistics cover it with 95 %).
    fn sentinel_ci95(&self) -> Option<[f64; 2]> {
        if self.summary == Summary::Median {
            return sign_test_interval(&self.values());
        }
        if self.n() < 2 {
            return None;
        }
        let v = self.values();
        let n = v.len() as f64;
        let mean = self.mean();
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let half = crate::summary::ci95_half_width(v.len() as u32, sd);
        Some([mean - half, mean + half])
    }
}

/// One side's cell: the rows of one group in one replication.
#[derive(Debug, Default, Clone)]
struct Cell {
    sum: f64,
    count: usize,
    bound: Bound,
    seeds: BTreeSet<u64>,
}

impl Cell {
    fn est(&self) -> Est {
        Est {
            v: self.sum / self.count as f64,
            bound: self.bound,
        }
    }
}

/// Rows of one side, by (group, replication), groups in order of first appearance.
struct Side {
    groups: Vec<String>,
    cells: BTreeMap<(usize, u64), Cell>,
}

fn f64_column(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    crate::summary::require_column(df, name)?;
    let c = df.column(name)?;
    if !c.dtype().is_primitive_numeric() && c.dtype() != &DataType::Boolean {
        return Err(AnalysisError::NotNumeric {
            column: name.to_string(),
            dtype: c.dtype().to_string(),
        });
    }
    Ok(c.cast(&DataType::Float64)?.f64()?.iter().collect())
}

fn u64_column(df: &DataFrame, name: &str) -> Result<Option<Vec<Option<u64>>>> {
    if df.column(name).is_err() {
        return Ok(None);
    }
    Ok(Some(
        df.column(name)?
            .cast(&DataType::UInt64)?
            .u64()?
            .iter()
            .collect(),
    ))
}

fn group_keys(df: &DataFrame, over: &[&str]) -> Result<Vec<String>> {
    let mut keys = vec![String::new(); df.height()];
    for name in over {
        crate::summary::require_column(df, name)?;
        for (k, v) in keys
            .iter_mut()
            .zip(df.column(name)?.as_materialized_series().iter())
        {
            if !k.is_empty() {
                k.push_str(", ");
            }
            k.push_str(&format!("{name}={}", v.to_string().trim_matches('"')));
        }
    }
    Ok(keys)
}

/// The figures of `metric` in the rows `df`, by group of `over` and replication.
fn side(df: &DataFrame, claim: &ClaimSpec, metric: &str, over: &[&str]) -> Result<Side> {
    let values = f64_column(df, metric)?;
    let reps = u64_column(df, "replication")?;
    let seeds = u64_column(df, "seed")?;
    let keys = group_keys(df, over)?;
    let limits: Option<Vec<Option<f64>>> = match claim.censor.as_ref().map(|c| &c.above) {
        None => None,
        Some(Threshold::Number(x)) => Some(vec![Some(*x); df.height()]),
        Some(Threshold::Column(c)) => Some(f64_column(df, c)?),
    };
    let mut out = Side {
        groups: Vec::new(),
        cells: BTreeMap::new(),
    };
    for (i, v) in values.iter().enumerate() {
        let Some(v) = *v else { continue };
        let g = match out.groups.iter().position(|k| *k == keys[i]) {
            Some(g) => g,
            None => {
                out.groups.push(keys[i].clone());
                out.groups.len() - 1
            }
        };
        let rep = reps.as_ref().and_then(|r| r[i]).unwrap_or(0);
        let cell = out.cells.entry((g, rep)).or_default();
        cell.sum += v;
        cell.count += 1;
        let censored = limits
            .as_ref()
            .and_then(|l| l[i])
            .is_some_and(|limit| v > limit);
        if censored {
            cell.bound = Bound::combine([cell.bound, Bound::AtLeast]);
        }
        if let Some(s) = seeds.as_ref().and_then(|s| s[i]) {
            cell.seeds.insert(s);
        }
    }
    if out.cells.is_empty() {
        return Err(AnalysisError::Empty(format!(
            "no rows with a value of `{metric}` match {}",
            describe(df, claim)
        )));
    }
    Ok(out)
}

fn describe(_df: &DataFrame, claim: &ClaimSpec) -> String {
    serde_json::to_string(&claim.filter).unwrap_or_default()
}

fn compare(stat: Stat, a: Est, b: Est) -> Est {
    let v = match stat {
        Stat::Value => a.v,
        Stat::Ratio => a.v / b.v,
        Stat::LogRatio => (a.v / b.v).log10(),
        Stat::ChangePct => (a.v / b.v - 1.0) * 100.0,
        Stat::Difference => a.v - b.v,
        Stat::Points => (a.v - b.v) * 100.0,
    };
    let bound = if stat == Stat::Value {
        a.bound
    } else {
        Bound::combine([a.bound, b.bound.flip()])
    };
    Est { v, bound }
}

fn reduce(how: Reduce, values: &[Est]) -> Est {
    let bound = Bound::combine(values.iter().map(|e| e.bound));
    let v = match how {
        Reduce::Mean => values.iter().map(|e| e.v).sum::<f64>() / values.len() as f64,
        Reduce::Max => values.iter().map(|e| e.v).fold(f64::NEG_INFINITY, f64::max),
        Reduce::Min => values.iter().map(|e| e.v).fold(f64::INFINITY, f64::min),
    };
    Est { v, bound }
}

/// The median of `v`; NaN if `v` is empty or holds a NaN.
fn median(v: &[f64]) -> f64 {
    if v.is_empty() || v.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The distribution-free 95 % interval of the median of `v`: `[x₍ₖ₎, x₍ₙ₋ₖ₊₁₎]` (order statistics,
/// 1-based) for the largest k with 2·P(Bin(n, ½) ≤ k − 1) ≤ 0.05 — the values a two-sided sign
/// test at 5 % does not reject. None when no k qualifies (n < 6) or a figure is NaN.
fn sign_test_interval(v: &[f64]) -> Option<[f64; 2]> {
    if v.iter().any(|x| x.is_nan()) {
        return None;
    }
    let n = v.len();
    // P(Bin(n, ½) ≤ j) by its terms C(n, i)/2ⁿ, each from the last in f64 (n is a replication count).
    let mut term = 0.5f64.powi(i32::try_from(n).ok()?);
    let mut below = 0.0;
    let mut k = 0;
    for i in 0..n / 2 {
        below += term;
        if 2.0 * below > 0.05 {
            break;
        }
        k = i + 1;
        term *= (n - i) as f64 / (i + 1) as f64;
    }
    if k == 0 {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some([s[k - 1], s[n - k]])
}

fn mean_of(df: &DataFrame, metric: &str) -> Result<f64> {
    let v: Vec<f64> = f64_column(df, metric)?.into_iter().flatten().collect();
    if v.is_empty() {
        return Err(AnalysisError::Empty(format!(
            "no rows with a value of `{metric}` match"
        )));
    }
    Ok(v.iter().sum::<f64>() / v.len() as f64)
}

/// Computes `claim` over the runs table `df`: per replication (paired with the baseline run of
/// the same replication, reduced over `over` groups), ready for [`Evaluation::mean`] and
/// [`Evaluation::ci95`].
pub fn evaluate(df: &DataFrame, claim: &ClaimSpec) -> Result<Evaluation> {
    let over: Vec<&str> = claim.over.as_ref().map(Over::columns).unwrap_or_default();
    let rows_a = select(df, &claim.filter)?;
    let a = side(&rows_a, claim, &claim.metric, &over)?;
    let mut b = None;
    let mut equal = Vec::new();
    if claim.stat.compares() {
        let mut base = claim.filter.clone();
        base.extend(claim.baseline.clone().unwrap_or_default());
        let rows_b = select(df, &base)?;
        let metric_b = claim.baseline_metric.as_ref().unwrap_or(&claim.metric);
        b = Some(side(&rows_b, claim, metric_b, &over)?);
        for e in &claim.equal {
            let (va, vb) = (mean_of(&rows_a, &e.metric)?, mean_of(&rows_b, &e.metric)?);
            let scale = va.abs().max(vb.abs());
            let held = scale == 0.0 || (va - vb).abs() / scale * 100.0 <= e.tolerance_pct;
            equal.push(EqualResult {
                metric: e.metric.clone(),
                value: va,
                baseline: vb,
                held,
            });
        }
    }
    let reps: BTreeSet<u64> = a.cells.keys().map(|(_, r)| *r).collect();
    let mut per_replication = Vec::new();
    let mut paired = b.as_ref().map(|_| true);
    for &rep in &reps {
        let mut values = Vec::new();
        for (g, key) in a.groups.iter().enumerate() {
            let label = || {
                if key.is_empty() {
                    format!("replication {rep}")
                } else {
                    format!("{key}, replication {rep}")
                }
            };
            let ca = a
                .cells
                .get(&(g, rep))
                .ok_or_else(|| AnalysisError::Empty(format!("no `where` row of {}", label())))?;
            let est = match &b {
                None => ca.est(),
                Some(b) => {
                    let cb = b
                        .groups
                        .iter()
                        .position(|k| k == key)
                        .and_then(|gb| b.cells.get(&(gb, rep)))
                        .ok_or_else(|| {
                            AnalysisError::Empty(format!("no baseline row of {}", label()))
                        })?;
                    let seeds: BTreeSet<u64> = ca.seeds.union(&cb.seeds).copied().collect();
                    if seeds.len() > 1 {
                        paired = Some(false);
                    }
                    compare(claim.stat, ca.est(), cb.est())
                }
            };
            values.push(est);
        }
        per_replication.push((rep, reduce(claim.reduce, &values)));
    }
    Ok(Evaluation {
        per_replication,
        paired,
        equal,
        summary: claim.summary,
    })
}

fn verdict_of(claim: &ClaimSpec, e: &Evaluation) -> (Verdict, Option<String>) {
    let mean = e.center();
    if !mean.is_finite() {
        return (
            Verdict::NotComputed,
            Some(format!("not a finite number: {mean}")),
        );
    }
    if let Some(bad) = e.equal.iter().find(|q| !q.held) {
        return (
            Verdict::Undecided,
            Some(format!(
                "resources not held equal: `{}` {} vs {} (baseline)",
                bad.metric,
                fmt_num(bad.value),
                fmt_num(bad.baseline)
            )),
        );
    }
    let censored = format!("censored in {} of {} replications", e.censored(), e.n());
    match e.bound() {
        Bound::Exact => {}
        Bound::AtLeast if mean > claim.band[1] => return (Verdict::OutOfBand, Some(censored)),
        Bound::AtMost if mean < claim.band[0] => return (Verdict::OutOfBand, Some(censored)),
        b @ (Bound::AtLeast | Bound::AtMost) => {
            if conservative(claim, b) {
                // Each censored figure is at most (at least) its sentinel, on the band's side of
                // no effect: the interval of the sentinels understates the effect.
                return match e.sentinel_ci95() {
                    Some([lo, hi]) if lo != hi && claim.contains(lo) && claim.contains(hi) => (
                        Verdict::InBand,
                        Some(format!(
                            "{censored}, counted at their sentinel: the effect is at least this"
                        )),
                    ),
                    Some(_) => (
                        Verdict::Undecided,
                        Some(format!(
                            "{censored}; even counted at their sentinel the interval is not inside the band"
                        )),
                    ),
                    None => (
                        Verdict::Undecided,
                        Some(format!("{censored}; no interval with n = {}", e.n())),
                    ),
                };
            }
            return (
                Verdict::Undecided,
                Some(format!("{censored}: a bound inside the band")),
            );
        }
        Bound::Unknown => {
            return (
                Verdict::Undecided,
                Some(format!("{censored}, on both sides")),
            );
        }
    }
    if !claim.direction {
        return if claim.contains(mean) {
            (Verdict::InBand, None)
        } else {
            (Verdict::OutOfBand, None)
        };
    }
    let Some([lo, hi]) = e.ci95() else {
        return (
            Verdict::Undecided,
            Some(format!("no interval with n = {}", e.n())),
        );
    };
    if e.paired == Some(false) {
        return (
            Verdict::Undecided,
            Some("sides do not share seeds (no common_random_numbers): not paired".into()),
        );
    }
    if lo == hi {
        return (
            Verdict::Undecided,
            Some(format!(
                "all {} replications gave the same figure: the runs do not depend on the seed, so the interval measures no sampling variation",
                e.n()
            )),
        );
    }
    if claim.contains(lo) && claim.contains(hi) {
        (Verdict::InBand, None)
    } else if hi < claim.band[0] || lo > claim.band[1] {
        (Verdict::OutOfBand, None)
    } else {
        (
            Verdict::Undecided,
            Some("the interval crosses a band edge".into()),
        )
    }
}

/// Whether a direction claim's censored figure, bounded in direction `b`, points away from no
/// effect into the band (e.g. "fewer rounds" when the baseline never reached the target): then the
/// sentinel values understate the effect and their interval is a conservative one.
fn conservative(claim: &ClaimSpec, b: Bound) -> bool {
    let Some(null) = claim.null_value().filter(|_| claim.direction) else {
        return false;
    };
    match b {
        Bound::AtMost => claim.band[1] <= null,
        Bound::AtLeast => claim.band[0] >= null,
        _ => false,
    }
}

/// Checks `claim` over `df`, turning failures into a result with `problem` set.
pub fn check(paper: &str, df: Option<&DataFrame>, claim: &ClaimSpec) -> ClaimResult {
    let outcome = match (&claim.pending, df) {
        (Some(why), _) => Err(AnalysisError::Empty(format!("not simulated yet: {why}"))),
        (None, None) => Err(AnalysisError::Empty(
            "the scenario produced no table".into(),
        )),
        (None, Some(df)) => evaluate(df, claim),
    };
    let mut r = ClaimResult {
        paper: paper.to_owned(),
        id: claim.id.clone(),
        kind: claim.kind,
        text: claim.text.clone(),
        paper_value: claim.paper.clone(),
        band: claim.band,
        band_text: claim.band_text(),
        band_source: claim.band_source.clone(),
        band_note: claim.band_note.clone(),
        direction: claim.direction,
        simulated: None,
        summary: claim.summary,
        bound: Bound::Exact,
        n: 0,
        censored: 0,
        ci95: None,
        paired: None,
        equal: Vec::new(),
        differs: claim.differs.clone(),
        unit: claim.unit.clone(),
        verdict: Verdict::NotComputed,
        reason: None,
        in_band: false,
        problem: None,
    };
    match outcome {
        Err(e) => {
            r.problem = Some(e.to_string());
            r.reason = r.problem.clone();
        }
        Ok(e) => {
            let (verdict, reason) = verdict_of(claim, &e);
            let mean = e.center();
            r.simulated = mean.is_finite().then_some(mean);
            r.bound = e.bound();
            r.n = e.n();
            r.censored = e.censored();
            r.ci95 = e.ci95().or_else(|| {
                (r.bound != Bound::Exact && conservative(claim, r.bound))
                    .then(|| e.sentinel_ci95())
                    .flatten()
            });
            r.paired = e.paired;
            r.equal = e.equal;
            r.verdict = verdict;
            if verdict == Verdict::NotComputed {
                r.problem = reason.clone();
            }
            r.reason = reason;
        }
    }
    r.in_band = r.verdict == Verdict::InBand;
    r
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        format!("{v:.3e}")
    } else {
        format!("{v:.3}")
    }
}

impl ClaimResult {
    /// Our figure with its unit and censoring: `1.491 ×`, `≥ 8.000 ×`, `— (why)`.
    pub fn figure(&self) -> String {
        let Some(v) = self.simulated else {
            return format!("— ({})", self.problem.as_deref().unwrap_or("n/a"));
        };
        let prefix = match self.bound {
            Bound::Exact => "",
            Bound::AtLeast => "≥ ",
            Bound::AtMost => "≤ ",
            Bound::Unknown => "? ",
        };
        format!("{prefix}{} {}", fmt_num(v), self.unit)
            .trim_end()
            .to_owned()
    }

    /// The interval as text: `[a, b]`, or why there is none.
    pub fn interval(&self) -> String {
        match (self.ci95, self.simulated) {
            (None, None) => "—".into(),
            (Some([lo, hi]), _) if self.bound != Bound::Exact => format!(
                "[{}, {}] (censored runs at their sentinel)",
                fmt_num(lo),
                fmt_num(hi)
            ),
            (Some([lo, hi]), _) if self.summary == Summary::Median => {
                format!("[{}, {}] (median; sign test)", fmt_num(lo), fmt_num(hi))
            }
            (Some([lo, hi]), _) => format!("[{}, {}]", fmt_num(lo), fmt_num(hi)),
            (None, Some(_)) if self.bound != Bound::Exact => "— (censored)".into(),
            (None, Some(_)) => format!("— (n = {})", self.n),
        }
    }

    /// The verdict with its reason.
    pub fn verdict_text(&self) -> String {
        match (&self.reason, self.verdict) {
            (_, Verdict::NotComputed) => "not computed".into(),
            (Some(why), v) => format!("{v} ({why})"),
            (None, v) => v.to_string(),
        }
    }
}

/// How many claims of each kind there are and how many are in band.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Evidence claims in band (the headline count).
    pub evidence_in_band: usize,
    /// Evidence claims.
    pub evidence: usize,
    /// Calibration claims in band (shown, never counted).
    pub calibration_in_band: usize,
    /// Calibration claims.
    pub calibration: usize,
    /// Checks in band.
    pub check_in_band: usize,
    /// Checks.
    pub check: usize,
}

impl Counts {
    /// Counts over `results`.
    pub fn of(results: &[ClaimResult]) -> Counts {
        let mut c = Counts::default();
        for r in results {
            let (total, inside) = match r.kind {
                ClaimKind::Evidence => (&mut c.evidence, &mut c.evidence_in_band),
                ClaimKind::Calibration => (&mut c.calibration, &mut c.calibration_in_band),
                ClaimKind::Check => (&mut c.check, &mut c.check_in_band),
            };
            *total += 1;
            *inside += usize::from(r.in_band);
        }
        c
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "evidence {} of {} in band; calibration {} ({} in band, not counted); checks {} ({} hold)",
            self.evidence_in_band,
            self.evidence,
            self.calibration,
            self.calibration_in_band,
            self.check,
            self.check_in_band
        )
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown table of claim results (used by each paper's page and by the repository README),
/// followed by the band notes and the stated differences.
pub fn claims_table(results: &[ClaimResult]) -> String {
    let mut md = String::from(
        "| paper | kind | claim | paper's figure | band (source) | sysim | n | 95 % CI | verdict |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut notes = String::new();
    for r in results {
        let mut band = format!("{} ({})", r.band_text, r.band_source);
        if let Some(note) = &r.band_note {
            band.push_str(" ¹");
            notes.push_str(&format!(
                "- ¹ {} / {}: band moved — {}\n",
                r.paper,
                r.id,
                cell(note)
            ));
        }
        if let Some(d) = &r.differs {
            notes.push_str(&format!(
                "- {} / {}: not held equal — {}\n",
                r.paper,
                r.id,
                cell(d)
            ));
        }
        for q in &r.equal {
            notes.push_str(&format!(
                "- {} / {}: `{}` {} vs {} (baseline): {}\n",
                r.paper,
                r.id,
                q.metric,
                fmt_num(q.value),
                fmt_num(q.baseline),
                if q.held { "held equal" } else { "NOT equal" }
            ));
        }
        md.push_str(&format!(
            "| {} | {}{} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.paper,
            r.kind,
            if r.direction { " (direction)" } else { "" },
            cell(&r.text),
            cell(&r.paper_value),
            cell(&band),
            cell(&r.figure()),
            r.n,
            r.interval(),
            cell(&r.verdict_text()),
        ));
    }
    if !notes.is_empty() {
        md.push('\n');
        md.push_str(&notes);
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame() -> DataFrame {
        df!(
            "gov" => ["stock", "fuse", "stock", "fuse"],
            "llm" => ["a", "a", "b", "b"],
            "replication" => [0u32, 0, 0, 0],
            "seed" => [1u64, 1, 1, 1],
            "tpot_ms" => [100.0, 70.0, 200.0, 160.0],
        )
        .unwrap()
    }

    fn claim(stat: Stat, over: Option<&str>, reduce: Reduce) -> ClaimSpec {
        ClaimSpec {
            id: "c".into(),
            kind: ClaimKind::Evidence,
            text: "t".into(),
            paper: "p".into(),
            band: [-35.0, -20.0],
            band_source: "paper Fig. 1".into(),
            band_note: None,
            unit: "%".into(),
            scenario: Some("s.yaml".into()),
            pending: None,
            metric: "tpot_ms".into(),
            filter: BTreeMap::from([("gov".into(), json!("fuse"))]),
            baseline: (stat != Stat::Value)
                .then(|| BTreeMap::from([("gov".into(), json!("stock"))])),
            baseline_metric: None,
            stat,
            over: over.map(|o| Over::One(o.to_owned())),
            reduce,
            summary: Summary::Mean,
            direction: false,
            no_effect: None,
            censor: None,
            equal: Vec::new(),
            differs: None,
        }
    }

    fn value(df: &DataFrame, c: &ClaimSpec) -> f64 {
        evaluate(df, c).unwrap().center()
    }

    #[test]
    fn change_pct_per_group_and_reduced() {
        let df = frame();
        // Pooled: fuse mean 115 vs stock 150 → −23.33 %.
        let pooled = value(&df, &claim(Stat::ChangePct, None, Reduce::Mean));
        assert!((pooled - (115.0 / 150.0 - 1.0) * 100.0).abs() < 1e-9);
        // Per llm: a −30 %, b −20 %.
        let min = value(&df, &claim(Stat::ChangePct, Some("llm"), Reduce::Min));
        let mean = value(&df, &claim(Stat::ChangePct, Some("llm"), Reduce::Mean));
        assert!((min + 30.0).abs() < 1e-9 && (mean + 25.0).abs() < 1e-9);
        let r = check(
            "fuse",
            Some(&df),
            &claim(Stat::ChangePct, Some("llm"), Reduce::Mean),
        );
        assert!(r.in_band && r.problem.is_none());
        assert_eq!((r.n, r.ci95, r.paired), (1, None, Some(true)));
        assert_eq!(r.interval(), "— (n = 1)");
    }

    #[test]
    fn over_several_columns_takes_the_extreme_over_every_combination() {
        let df = df!(
            "m" => [1, 1, 2, 2],
            "n" => [1, 2, 1, 2],
            "speedup" => [1.0, 3.8, 2.0, 2.1],
        )
        .unwrap();
        let mut c = claim(Stat::Value, None, Reduce::Max);
        c.metric = "speedup".into();
        c.filter.clear();
        c.over = Some(Over::Many(vec!["m".into(), "n".into()]));
        assert_eq!(value(&df, &c), 3.8);
        // One column pools the other first: max over m of the mean over n.
        c.over = Some(Over::One("m".into()));
        assert!((value(&df, &c) - 2.4).abs() < 1e-12);
    }

    #[test]
    fn unknown_columns_and_empty_selections_are_problems_not_panics() {
        let df = frame();
        let mut c = claim(Stat::Value, None, Reduce::Mean);
        c.metric = "nope".into();
        let r = check("x", Some(&df), &c);
        assert!(!r.in_band && r.problem.is_some());
        assert_eq!(r.verdict, Verdict::NotComputed);
        let mut c = claim(Stat::Value, None, Reduce::Mean);
        c.filter = BTreeMap::from([("gov".into(), json!("none"))]);
        assert!(check("x", Some(&df), &c).problem.is_some());
    }

    #[test]
    fn difference_points_ratio_and_value() {
        let df = frame();
        let d = value(&df, &claim(Stat::Difference, None, Reduce::Mean));
        assert!((d - (115.0 - 150.0)).abs() < 1e-9);
        let p = value(&df, &claim(Stat::Points, None, Reduce::Mean));
        assert!((p - (115.0 - 150.0) * 100.0).abs() < 1e-9);
        let v = value(&df, &claim(Stat::Value, None, Reduce::Mean));
        assert!((v - 115.0).abs() < 1e-9);
        let r = value(&df, &claim(Stat::Ratio, None, Reduce::Mean));
        assert!((r - 115.0 / 150.0).abs() < 1e-9);
    }

    /// One replication per entry of `logs`, with common random numbers: method a at 1, method b
    /// at 10^log.
    fn log_ratio_frame(logs: &[f64]) -> DataFrame {
        let reps: Vec<u32> = (0..logs.len() as u32).flat_map(|r| [r, r]).collect();
        df!(
            "method" => logs.iter().flat_map(|_| ["a", "b"]).collect::<Vec<_>>(),
            "replication" => reps.clone(),
            "seed" => reps.iter().map(|&r| u64::from(r) + 10).collect::<Vec<u64>>(),
            "acc" => logs.iter().flat_map(|l| [1.0, 10f64.powf(*l)]).collect::<Vec<f64>>(),
        )
        .unwrap()
    }

    /// The sign test's interval is the order statistics a binomial(n, ½) leaves 95 % between.
    #[test]
    fn the_median_interval_is_the_sign_tests() {
        let v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(sign_test_interval(&v), Some([2.0, 9.0]));
        assert_eq!(sign_test_interval(&v[..6]), Some([5.0, 10.0]));
        assert_eq!(sign_test_interval(&v[..5]), None);
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        // P(Bin(20, ½) ≤ 5) = 0.0207, ≤ 6: 0.0577.
        assert_eq!(sign_test_interval(&twenty), Some([6.0, 15.0]));
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[1.0, f64::NAN]).is_nan() && median(&[]).is_nan());
    }

    /// FlexLoRA's step gain over FedMomentum's (log₁₀ per seed, fedmomentum-methods at 32891cc):
    /// above zero in every seed, but two diverged seeds widen the t interval across zero; the
    /// median's interval stays on the side every seed is on.
    #[test]
    fn a_direction_every_seed_shows_is_in_band_by_its_median() {
        let logs = [1.45, 1.57, 2.48, 1.73, 1.88, 25.16, 1.43, 2.00, 1.59, 8.16];
        let df = log_ratio_frame(&logs);
        let mut c = better(Stat::LogRatio, [0.0, 30.0]);
        let by_mean = check("p", Some(&df), &c);
        assert!(by_mean.ci95.unwrap()[0] < 0.0, "{by_mean:?}");
        assert_eq!(by_mean.verdict, Verdict::Undecided);
        c.summary = Summary::Median;
        let by_median = check("p", Some(&df), &c);
        assert_eq!(by_median.verdict, Verdict::InBand, "{by_median:?}");
        assert!((by_median.simulated.unwrap() - (1.73 + 1.88) / 2.0).abs() < 1e-9);
        let [lo, hi] = by_median.ci95.unwrap();
        assert!(
            (lo - 1.45).abs() < 1e-9 && (hi - 8.16).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert!(by_median.interval().ends_with("(median; sign test)"));
        // Two seeds of ten on the other side: a sign test does not reject a zero median (8 of 10,
        // p = 0.11), and the interval [x₍₂₎, x₍₉₎] reaches below zero.
        let mut flipped = logs;
        flipped[0] = -1.0;
        flipped[6] = -2.0;
        let two_below = check("p", Some(&log_ratio_frame(&flipped)), &c);
        assert_eq!(two_below.verdict, Verdict::Undecided, "{two_below:?}");
    }

    /// One seed 10⁶ times better makes the mean ratio that seed's figure and its interval reach
    /// below no effect; the log ratio's interval stays on the side every seed is on.
    #[test]
    fn a_log_ratio_is_the_geometric_mean_and_one_huge_seed_does_not_swamp_it() {
        let logs = [2.0, 2.2, 2.5, 2.1, 6.0];
        let df = log_ratio_frame(&logs);
        let e = evaluate(&df, &better(Stat::LogRatio, [0.0, 30.0])).unwrap();
        for (x, want) in e.values().iter().zip(logs) {
            assert!((x - want).abs() < 1e-9, "{x} vs {want}");
        }
        assert!((e.center() - logs.iter().sum::<f64>() / 5.0).abs() < 1e-9);
        let ratio = check("p", Some(&df), &better(Stat::Ratio, [1.0, 1e30]));
        assert!(ratio.ci95.unwrap()[0] < 1.0, "{ratio:?}");
        assert_eq!(ratio.verdict, Verdict::Undecided);
        let log = check("p", Some(&df), &better(Stat::LogRatio, [0.0, 30.0]));
        assert_eq!(log.verdict, Verdict::InBand, "{log:?}");
    }

    /// Three replications, common random numbers: method b against a per seed.
    fn paired_frame() -> DataFrame {
        df!(
            "method" => ["a", "b", "a", "b", "a", "b"],
            "replication" => [0u32, 0, 1, 1, 2, 2],
            "seed" => [10u64, 10, 11, 11, 12, 12],
            "acc" => [0.50, 0.53, 0.60, 0.64, 0.70, 0.72],
            "rounds" => [10.0, 8.0, 21.0, 9.0, 12.0, 21.0],
            "network.rounds" => [20.0, 20.0, 20.0, 20.0, 20.0, 20.0],
        )
        .unwrap()
    }

    fn better(stat: Stat, band: [f64; 2]) -> ClaimSpec {
        let mut c = claim(stat, None, Reduce::Mean);
        c.metric = "acc".into();
        c.filter = BTreeMap::from([("method".into(), json!("b"))]);
        c.baseline = Some(BTreeMap::from([("method".into(), json!("a"))]));
        c.band = band;
        c.direction = true;
        c
    }

    #[test]
    fn paired_interval_matches_a_hand_computation() {
        let df = paired_frame();
        let c = better(Stat::Points, [0.0, 100.0]);
        let e = evaluate(&df, &c).unwrap();
        // Paired differences in points: 3, 4, 2 → mean 3, sd 1, t(0.975; 2) = 4.302653.
        let v = e.values();
        assert_eq!(v.len(), 3);
        for (x, want) in v.iter().zip([3.0, 4.0, 2.0]) {
            assert!((x - want).abs() < 1e-9, "{x} vs {want}");
        }
        let [lo, hi] = e.ci95().unwrap();
        let half = 4.302_653 / 3f64.sqrt();
        assert!((lo - (3.0 - half)).abs() < 1e-5 && (hi - (3.0 + half)).abs() < 1e-5);
        assert_eq!(e.paired, Some(true));
        let r = check("p", Some(&df), &c);
        // [0.516, 5.484] lies in (0, 100].
        assert_eq!(r.verdict, Verdict::InBand, "{r:?}");
        assert_eq!(r.band_text, "(0, 100]");
        // The same data with a band that starts at 1 point: the interval crosses the edge.
        let r = check("p", Some(&df), &better(Stat::Points, [1.0, 100.0]));
        assert_eq!(r.verdict, Verdict::Undecided);
    }

    /// Two metrics of the same rows: the `where` rows' `metric` against their `baseline_metric`,
    /// paired by replication; the same figures as the two-rows comparison they transcribe.
    #[test]
    fn a_baseline_metric_compares_two_figures_of_the_same_runs() {
        let arms = df!(
            "method" => ["b", "b", "b"],
            "replication" => [0u32, 1, 2],
            "seed" => [10u64, 11, 12],
            "acc" => [0.53, 0.64, 0.72],
            "acc_before" => [0.50, 0.60, 0.70],
        )
        .unwrap();
        let mut c = better(Stat::Points, [0.0, 100.0]);
        c.baseline = None;
        c.baseline_metric = Some("acc_before".into());
        assert_eq!(c.validate(), Ok(()));
        let e = evaluate(&arms, &c).unwrap();
        let two_rows = evaluate(&paired_frame(), &better(Stat::Points, [0.0, 100.0])).unwrap();
        assert_eq!(e.values(), two_rows.values());
        assert_eq!(e.paired, Some(true));
        assert_eq!(check("p", Some(&arms), &c).verdict, Verdict::InBand);
        // Not the metric itself on the same rows (a figure compared with itself).
        let mut itself = c.clone();
        itself.baseline_metric = Some("acc".into());
        assert!(itself.validate().is_err());
        // A baseline metric is still an input check's business, and needs a comparing stat.
        let inputs = BTreeSet::from(["acc_before".to_owned()]);
        assert!(c.validate_inputs(Path::new("s.yaml"), &inputs).is_err());
        c.stat = Stat::Value;
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_direction_claim_without_an_interval_is_never_in_band() {
        let df = paired_frame();
        let one = select(&df, &BTreeMap::from([("replication".into(), json!(0))])).unwrap();
        let r = check("p", Some(&one), &better(Stat::Points, [0.0, 100.0]));
        assert_eq!((r.n, r.ci95), (1, None));
        assert_eq!(r.simulated.map(|v| (v * 1e9).round() / 1e9), Some(3.0));
        assert!(!r.in_band);
        assert_eq!(r.verdict, Verdict::Undecided);
        assert!(r.reason.unwrap().contains("n = 1"));
        // Unpaired seeds: never in band either.
        let mut df = df.clone();
        df.with_column(Column::new("seed".into(), [1u64, 2, 3, 4, 5, 6]))
            .unwrap();
        let r = check("p", Some(&df), &better(Stat::Points, [0.0, 100.0]));
        assert_eq!((r.paired, r.verdict), (Some(false), Verdict::Undecided));
        // Replications that all give the same figure measure no sampling variation.
        let same = df!(
            "method" => ["a", "b", "a", "b"],
            "replication" => [0u32, 0, 1, 1],
            "seed" => [1u64, 1, 2, 2],
            "acc" => [0.5, 0.6, 0.5, 0.6],
        )
        .unwrap();
        let r = check("p", Some(&same), &better(Stat::Points, [0.0, 100.0]));
        assert_eq!(r.verdict, Verdict::Undecided);
        assert!(r.reason.unwrap().contains("do not depend on the seed"));
    }

    #[test]
    fn a_direction_band_must_exclude_no_effect() {
        let c = better(Stat::ChangePct, [-5.0, 100.0]);
        assert!(c.validate().unwrap_err().contains("exclude no effect"));
        assert!(better(Stat::ChangePct, [0.0, 100.0]).validate().is_ok());
        let mut v = better(Stat::Ratio, [0.9, 2.0]);
        assert!(v.validate().is_err());
        v.band = [1.0, 2.0];
        assert!(v.validate().is_ok());
        let mut s = claim(Stat::Value, None, Reduce::Mean);
        s.direction = true;
        s.band = [1.0, 3.0];
        assert!(s.validate().unwrap_err().contains("no_effect"));
        s.no_effect = Some(1.0);
        assert!(s.validate().is_ok());
        let mut s = claim(Stat::Value, None, Reduce::Mean);
        s.band_source = " ".into();
        assert!(s.validate().unwrap_err().contains("band_source"));
    }

    #[test]
    fn a_metric_that_is_an_input_column_is_rejected() {
        let mut c = claim(Stat::Value, None, Reduce::Mean);
        c.metric = "participants".into();
        let inputs: BTreeSet<String> = ["run", "replication", "seed", "error", "participants"]
            .map(String::from)
            .into();
        let err = c.validate_inputs(Path::new("s.yaml"), &inputs).unwrap_err();
        assert!(err.contains("`participants` is an input"), "{err}");
        // Claims over other scenarios are not this scenario's business.
        assert!(c.validate_inputs(Path::new("t.yaml"), &inputs).is_ok());
        c.metric = "replication".into();
        assert!(c.validate_inputs(Path::new("s.yaml"), &inputs).is_err());
        c.metric = "total_gas".into();
        assert!(c.validate_inputs(Path::new("s.yaml"), &inputs).is_ok());
    }

    #[test]
    fn a_censored_side_renders_as_a_bound() {
        let df = paired_frame();
        // Rounds of a over rounds of b per seed: 10/8, 21/9 (a never reached: ≥), 12/21 (b never: ≤).
        let mut c = better(Stat::Ratio, [1.1, 2.0]);
        c.metric = "rounds".into();
        c.filter = BTreeMap::from([("method".into(), json!("a"))]);
        c.baseline = Some(BTreeMap::from([("method".into(), json!("b"))]));
        c.direction = false;
        c.censor = Some(Censor {
            above: Threshold::Column("network.rounds".into()),
        });
        c.unit = "×".into();
        // Both directions censored: nothing can be said.
        let r = check("p", Some(&df), &c);
        assert_eq!(r.bound, Bound::Unknown);
        assert_eq!(r.verdict, Verdict::Undecided);
        // Only the first two seeds: a is censored once, the ratio is a lower bound.
        let two = select(&df, &BTreeMap::from([("network.rounds".into(), json!(20))]))
            .unwrap()
            .head(Some(4));
        let r = check("p", Some(&two), &c);
        assert_eq!((r.bound, r.censored, r.ci95), (Bound::AtLeast, 1, None));
        let want = (10.0 / 8.0 + 21.0 / 9.0) / 2.0;
        assert!((r.simulated.unwrap() - want).abs() < 1e-9);
        assert_eq!(r.figure(), format!("≥ {want:.3} ×"));
        assert_eq!(r.interval(), "— (censored)");
        // ≥ 1.79 lies inside [1.1, 2]: undecided; beyond the band it is out.
        assert_eq!(r.verdict, Verdict::Undecided);
        c.band = [1.1, 1.5];
        let r = check("p", Some(&two), &c);
        assert_eq!(r.verdict, Verdict::OutOfBand);
        // A fixed sentinel works the same.
        c.censor = Some(Censor {
            above: Threshold::Number(20.0),
        });
        assert_eq!(check("p", Some(&two), &c).bound, Bound::AtLeast);
    }

    #[test]
    fn a_censored_baseline_counts_at_its_sentinel_in_a_direction_claim() {
        // "Fewer rounds than a": a never reaches the target (20 rounds) in replication 1.
        let df = df!(
            "method" => ["a", "b", "a", "b", "a", "b", "a", "b"],
            "replication" => [0u32, 0, 1, 1, 2, 2, 3, 3],
            "seed" => [1u64, 1, 2, 2, 3, 3, 4, 4],
            "rounds" => [10.0, 8.0, 21.0, 9.0, 11.0, 7.0, 12.0, 8.0],
            "network.rounds" => [20.0; 8],
        )
        .unwrap();
        let mut c = better(Stat::ChangePct, [-100.0, 0.0]);
        c.metric = "rounds".into();
        c.censor = Some(Censor {
            above: Threshold::Column("network.rounds".into()),
        });
        let r = check("p", Some(&df), &c);
        assert_eq!((r.bound, r.censored), (Bound::AtMost, 1));
        let v = [
            -20.0,
            (9.0 / 21.0 - 1.0) * 100.0,
            (7.0 / 11.0 - 1.0) * 100.0,
            (8.0 / 12.0 - 1.0) * 100.0,
        ];
        let mean = v.iter().sum::<f64>() / 4.0;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        let half = 3.182_446 * sd / 2.0;
        let [lo, hi] = r.ci95.unwrap();
        assert!((lo - (mean - half)).abs() < 1e-4 && (hi - (mean + half)).abs() < 1e-4);
        assert_eq!(r.verdict, Verdict::InBand, "{r:?}");
        assert!(r.figure().starts_with("≤ "));
        assert!(r.interval().contains("sentinel"));
        // The same claim, but now b (the side claimed faster) never reaches the target in
        // replication 1: its truth could undo the effect, so the bound decides nothing.
        let swapped = df!(
            "method" => ["a", "b", "a", "b", "a", "b", "a", "b"],
            "replication" => [0u32, 0, 1, 1, 2, 2, 3, 3],
            "seed" => [1u64, 1, 2, 2, 3, 3, 4, 4],
            "rounds" => [10.0, 8.0, 19.0, 21.0, 11.0, 7.0, 12.0, 8.0],
            "network.rounds" => [20.0; 8],
        )
        .unwrap();
        let r = check("p", Some(&swapped), &c);
        assert_eq!(
            (r.bound, r.verdict, r.ci95),
            (Bound::AtLeast, Verdict::Undecided, None)
        );
    }

    #[test]
    fn unequal_resources_leave_a_claim_undecided() {
        let df = df!(
            "method" => ["rtn", "spec", "rtn", "spec"],
            "replication" => [0u32, 0, 1, 1],
            "seed" => [1u64, 1, 2, 2],
            "cos" => [0.70, 0.85, 0.72, 0.86],
            "compression" => [7.9, 1.7, 7.9, 1.7],
        )
        .unwrap();
        let mut c = better(Stat::ChangePct, [0.0, 100.0]);
        c.metric = "cos".into();
        c.filter = BTreeMap::from([("method".into(), json!("spec"))]);
        c.baseline = Some(BTreeMap::from([("method".into(), json!("rtn"))]));
        c.equal = vec![Equal {
            metric: "compression".into(),
            tolerance_pct: 5.0,
        }];
        let r = check("p", Some(&df), &c);
        assert_eq!(r.verdict, Verdict::Undecided, "{r:?}");
        assert!(!r.equal[0].held);
        assert!(claims_table(&[r]).contains("NOT equal"));
    }

    #[test]
    fn counts_separate_the_kinds() {
        let df = frame();
        let mut rs = Vec::new();
        for kind in [
            ClaimKind::Evidence,
            ClaimKind::Calibration,
            ClaimKind::Check,
        ] {
            let mut c = claim(Stat::ChangePct, None, Reduce::Mean);
            c.kind = kind;
            rs.push(check("x", Some(&df), &c));
        }
        rs[0].in_band = false;
        let c = Counts::of(&rs);
        assert_eq!((c.evidence, c.evidence_in_band), (1, 0));
        assert_eq!((c.calibration, c.check, c.check_in_band), (1, 1, 1));
        assert!(c.to_string().starts_with("evidence 0 of 1 in band"));
    }
}
