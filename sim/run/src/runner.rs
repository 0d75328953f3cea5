//! The runner: executes a plan's runs in parallel on rayon (one single-threaded nexosim simulation
//! per run), in a disjoint shard when asked, with a progress bar on stderr.

use std::io::IsTerminal;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::str::FromStr;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use sim::experiment::{DynExperiment, RunContext, RunOutput};
use sim::trace::DEFAULT_CAP_EVENTS;

use crate::checkpoint::CheckpointPolicy;
use crate::error::{RunFailure, RunnerError, ShardError};
use crate::interrupt::Interrupt;
use crate::journal::Journal;
use crate::scenario::{Plan, RunSpec};
use crate::table::KEY_COLUMNS;
use crate::timeline;

/// A disjoint part `index` of `count` of a plan: runs whose index is ≡ `index` (mod `count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Part number, 0-based.
    pub index: u64,
    /// Number of parts (≥ 1).
    pub count: u64,
}

impl Shard {
    /// Whether run `run` belongs to this part.
    pub fn contains(&self, run: u64) -> bool {
        run % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, ShardError> {
        let bad = || ShardError(s.to_owned());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// How to execute a plan.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Worker threads; 0 means all cores; never more than the runs to execute.
    pub jobs: usize,
    /// Run only this part of the plan.
    pub shard: Option<Shard>,
    /// No progress bar.
    pub quiet: bool,
    /// Save each run's state there periodically and continue from saved states (families whose
    /// `checkpoints()` is true; the caller refuses the others).
    pub checkpoint: Option<CheckpointPolicy>,
    /// Once requested, no further run starts; runs in flight finish (and are journaled).
    pub interrupt: Interrupt,
    /// Write each run's timeline into this (existing) folder (`--trace DIR`).
    pub trace: Option<PathBuf>,
    /// Events each timeline keeps at most (`--trace-max-events`; 0: the default).
    pub trace_max_events: usize,
}

/// What one run produced: its spec and either its output or the reason it failed.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// The run's identity, resolved params and param columns.
    pub spec: RunSpec,
    /// Metrics and series, or the error (or panic message) that stopped the run.
    pub outcome: Result<RunOutput, RunFailure>,
}

/// Runs the plan's runs (or the shard's part of them) except those listed in `done` (sorted run
/// indices, e.g. the successful runs of an interrupted sweep); records come back in run order.
/// Each successful run is appended to `journal` as it finishes. After an interrupt (or a journal
/// write error) no further run starts: the records are those of the runs that finished.
pub fn execute(
    plan: &Plan,
    family: &dyn DynExperiment,
    opts: &RunOptions,
    done: &[u64],
    journal: Option<&Journal>,
) -> Result<Vec<RunRecord>, RunnerError> {
    let specs: Vec<&RunSpec> = plan
        .runs
        .iter()
        .filter(|r| opts.shard.is_none_or(|s| s.contains(r.ctx.run)))
        .filter(|r| done.binary_search(&r.ctx.run).is_err())
        .collect();
    let bar = progress_bar(specs.len() as u64, opts.quiet);
    let jobs = worker_threads(opts.jobs, specs.len());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|source| RunnerError::ThreadPool { jobs, source })?;
    let journal_error = std::sync::Mutex::new(None);
    let announced = std::sync::Once::new();
    let records: Vec<Option<RunRecord>> = pool.install(|| {
        specs
            .par_iter()
            .map(|spec| {
                if opts.interrupt.requested() {
                    announced.call_once(|| {
                        bar.suspend(|| {
                            eprintln!(
                                "interrupted: starting no new runs; the runs in flight finish and are kept (interrupt again to stop at once)"
                            );
                        });
                    });
                    return None;
                }
                let ctx = RunContext {
                    trace_events: match (&opts.trace, opts.trace_max_events) {
                        (None, _) => 0,
                        (Some(_), 0) => DEFAULT_CAP_EVENTS,
                        (Some(_), n) => n,
                    },
                    ..spec.ctx
                };
                let run = || match &opts.checkpoint {
                    Some(policy) => {
                        family.run_checkpointed(&spec.params, &ctx, &policy.for_run(ctx.run))
                    }
                    None => family.run(&spec.params, &ctx),
                };
                let outcome = match catch_unwind(AssertUnwindSafe(run)) {
                    Ok(Ok(mut out)) => match trace_out(opts, family, spec, &mut out) {
                        Err(e) => Err(e),
                        Ok(()) => clashing_metric(&out, spec).map_or(Ok(out), Err),
                    },
                    Ok(Err(e)) => Err(RunFailure::Family(e.to_string())),
                    Err(panic) => Err(RunFailure::Panic(panic_message(&panic))),
                };
                let record = RunRecord {
                    spec: (*spec).clone(),
                    outcome,
                };
                if let Some(Err(source)) = journal.map(|j| j.append(&record))
                    && let Ok(mut first) = journal_error.lock()
                {
                    first.get_or_insert(source);
                    opts.interrupt.request();
                }
                bar.inc(1);
                Some(record)
            })
            .collect()
    });
    bar.finish_and_clear();
    if let Some(source) = journal_error.into_inner().ok().flatten() {
        return Err(RunnerError::Journal {
            path: journal.map(|j| j.path().to_owned()).unwrap_or_default(),
            source,
        });
    }
    Ok(records.into_iter().flatten().collect())
}

/// Writes the run's timeline when `--trace DIR` asked for it (a cap note goes to stderr).
fn trace_out(
    opts: &RunOptions,
    family: &dyn DynExperiment,
    spec: &RunSpec,
    out: &mut RunOutput,
) -> Result<(), RunFailure> {
    let Some(dir) = &opts.trace else {
        return Ok(());
    };
    match timeline::write(dir, family.name(), spec, out) {
        Ok(Some(note)) => {
            eprintln!("{note}");
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(RunFailure::Family(e)),
    }
}

/// Worker threads for `runs` runs when `jobs` were asked for (0: one per core): never more than
/// the runs (a thread per job would exhaust the machine for `--jobs 100000`), at least one.
pub fn worker_threads(jobs: usize, runs: usize) -> usize {
    let asked = if jobs == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        jobs
    };
    asked.min(runs).max(1)
}

/// Why `out` cannot become a row of the runs table: a metric named like a key or parameter column
/// (or twice), which would make the table's columns ambiguous.
fn clashing_metric(out: &RunOutput, spec: &RunSpec) -> Option<RunFailure> {
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in &out.metrics {
        if KEY_COLUMNS.contains(&name.as_str()) || spec.columns.iter().any(|(c, _)| c == name) {
            return Some(RunFailure::ClashingMetric(name.clone()));
        }
        if !seen.insert(name.as_str()) {
            return Some(RunFailure::DuplicateMetric(name.clone()));
        }
    }
    None
}

fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} runs  {elapsed_precise} elapsed, ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

#[cfg(test)]
mod tests {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use sim::experiment::{Experiment, RunContext, RunError};
    use sim::validate::{Checks, Validate};

    use super::*;
    use crate::scenario::{Registry, load};

    /// A family whose run errors when `mode` is 1, panics when it is 2, and records a metric named
    /// like its parameter when it is 3.
    struct Flaky;

    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct FlakyParams {
        mode: u32,
    }

    impl Validate for FlakyParams {
        fn validate(&self, _: &mut Checks) {}
    }

    impl Experiment for Flaky {
        type Params = FlakyParams;
        const NAME: &'static str = "flaky";
        const DESCRIPTION: &'static str = "test family";
        fn run(&self, p: &FlakyParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
            match p.mode {
                1 => Err(RunError::Model("mode 1 fails".into())),
                2 => panic!("mode 2 panics"),
                3 => {
                    let mut out = RunOutput::default();
                    out.metric("mode", 3.0);
                    Ok(out)
                }
                _ => {
                    let mut out = RunOutput::default();
                    out.metric("seed_mod_7", (ctx.seed % 7) as f64);
                    Ok(out)
                }
            }
        }
    }

    #[test]
    fn failed_and_panicking_runs_become_rows_and_the_rest_survive() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.yaml");
        std::fs::write(
            &path,
            "name: f\nfamily: flaky\nparams: {mode: 0}\nsweep:\n  mode: [0, 1, 2, 0, 3]\n",
        )
        .unwrap();
        let registry = Registry::new(vec![Box::new(Flaky)]);
        let plan = load(&path, &registry, None).unwrap();
        let opts = RunOptions {
            jobs: 2,
            shard: None,
            quiet: true,
            checkpoint: None,
            interrupt: Interrupt::default(),
            trace: None,
            trace_max_events: 0,
        };
        let records = execute(&plan, registry.get("flaky").unwrap(), &opts, &[], None).unwrap();
        let runs: Vec<u64> = records.iter().map(|r| r.spec.ctx.run).collect();
        assert_eq!(runs, vec![0, 1, 2, 3, 4]);
        assert!(records[0].outcome.is_ok() && records[3].outcome.is_ok());
        let failure = |i: usize| records[i].outcome.as_ref().unwrap_err().clone();
        assert_eq!(failure(1), RunFailure::Family("mode 1 fails".into()));
        assert_eq!(failure(2), RunFailure::Panic("mode 2 panics".into()));
        assert_eq!(failure(4), RunFailure::ClashingMetric("mode".into()));
    }

    #[test]
    fn journaled_runs_read_back_equal_and_an_interrupt_starts_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.yaml");
        std::fs::write(
            &path,
            "name: f\nfamily: flaky\nparams: {mode: 0}\nreplications: 3\nsweep:\n  mode: [0, 1]\n",
        )
        .unwrap();
        let registry = Registry::new(vec![Box::new(Flaky)]);
        let plan = load(&path, &registry, None).unwrap();
        let flaky = registry.get("flaky").unwrap();
        let opts = RunOptions {
            jobs: 2,
            quiet: true,
            ..RunOptions::default()
        };
        let journal = Journal::create(tmp.path(), &crate::resume::plan_key(&plan)).unwrap();
        let records = execute(&plan, flaky, &opts, &[], Some(&journal)).unwrap();
        drop(journal);
        let (_, mut back) = Journal::reopen(tmp.path(), &plan).unwrap();
        back.sort_by_key(|r| r.spec.ctx.run);
        let ok: Vec<_> = records.iter().filter(|r| r.outcome.is_ok()).collect();
        assert_eq!(back.len(), 3, "the three failed runs are not journaled");
        for (a, b) in ok.iter().zip(&back) {
            assert_eq!((a.spec.ctx.run, &a.outcome), (b.spec.ctx.run, &b.outcome));
        }
        opts.interrupt.request();
        assert!(execute(&plan, flaky, &opts, &[], None).unwrap().is_empty());
    }

    #[test]
    fn worker_threads_never_exceed_the_runs() {
        assert_eq!(worker_threads(100_000, 3), 3);
        assert_eq!(worker_threads(2, 3), 2);
        assert_eq!(worker_threads(4, 0), 1);
        assert!(worker_threads(0, 1_000_000) >= 1);
    }

    #[test]
    fn shards_partition_the_runs() {
        let parts: Vec<Shard> = (0..3).map(|k| format!("{k}/3").parse().unwrap()).collect();
        for run in 0..20 {
            assert_eq!(parts.iter().filter(|s| s.contains(run)).count(), 1);
        }
    }

    #[test]
    fn bad_shards_are_rejected() {
        for s in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(s.parse::<Shard>().is_err(), "{s}");
        }
    }
}
