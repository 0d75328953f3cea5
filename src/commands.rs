//! One function per subcommand; each returns a [`CliError`] that decides the exit code.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sim_run::checkpoint::CheckpointPolicy;
use sim_run::error::InputError;
use sim_run::interrupt::Interrupt;
use sim_run::journal::Journal;
use sim_run::output::{self, Build};
use sim_run::overrides::Override;
use sim_run::runner::{self, RunOptions};
use sim_run::scenario::{self, Registry};

use analysis::report::TableName;

use crate::cli::{Cli, Command, PlotArgs};

/// Why a command failed: bad input (exit 2) or a failure while running (exit 1), or the reader
/// of standard output went away (`sysim list | head`: exit 0, nothing printed).
#[derive(Debug)]
pub enum CliError {
    /// Bad input: malformed or invalid files and flags.
    Input(String),
    /// Something failed while running (a run errored, a write failed).
    Failure(String),
    /// Standard output was closed by its reader; the command stops quietly.
    PipeClosed,
    /// SIGINT or SIGTERM stopped a sweep; the message says what was kept (exit 130).
    Interrupted(String),
}

impl CliError {
    /// Process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Failure(_) => 1,
            CliError::PipeClosed => 0,
            CliError::Interrupted(_) => 130,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Input(m) | CliError::Failure(m) | CliError::Interrupted(m) => f.write_str(m),
            CliError::PipeClosed => f.write_str("standard output closed"),
        }
    }
}

/// Writes one line to standard output; a closed pipe becomes [`CliError::PipeClosed`] (the
/// command stops quietly) instead of a panic, any other error a failure.
pub fn print_line(line: fmt::Arguments<'_>) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => CliError::PipeClosed,
            _ => CliError::Failure(format!("cannot write to standard output: {e}")),
        })
}

/// `println!` through [`print_line`], returning from the enclosing function on a closed pipe.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::commands::print_line(format_args!($($arg)*))?
    };
}
pub(crate) use say;

impl From<InputError> for CliError {
    fn from(e: InputError) -> Self {
        CliError::Input(e.to_string())
    }
}

/// The build identity written into manifests.
pub const BUILD: Build = Build {
    version: env!("CARGO_PKG_VERSION"),
    commit: option_env!("SYSIM_GIT_COMMIT"),
};

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    let registry = sysim::registry();
    match cli.command {
        Command::Run {
            file,
            out,
            seed,
            set,
            jobs,
            shard,
            format,
            quiet,
            resume,
            checkpoint,
            checkpoint_every,
            checkpoint_exit_after,
            allow_large,
            trace,
            trace_max_events,
        } => run(
            &registry,
            &file,
            out,
            (seed, &set),
            RunOptions {
                jobs,
                shard,
                quiet,
                checkpoint: None,
                interrupt: Interrupt::on_signals().map_err(|e| {
                    CliError::Failure(format!("cannot install the SIGINT handler: {e}"))
                })?,
                trace,
                trace_max_events: usize::try_from(trace_max_events).unwrap_or(usize::MAX),
            },
            Checkpointing {
                resume,
                dir: checkpoint,
                every: checkpoint_every,
                exit_after: checkpoint_exit_after,
            },
            RunFlags {
                format,
                allow_large,
            },
        ),
        Command::Validate { files, set } => validate(&registry, &files, &set),
        Command::List => list(&registry),
        Command::Schema { family } => schema(&registry, family.as_deref()),
        Command::Plot(args) => plot(args),
        Command::Merge {
            dirs,
            out,
            format,
            quiet,
        } => merge(&dirs, &out, format, quiet),
        Command::Bench { lps, events, seed } => bench(lps, events, seed),
        Command::Report {
            paper,
            jobs,
            force,
            quiet,
        } => crate::report::run(
            &registry,
            &paper,
            crate::report::ReportOptions { jobs, quiet, force },
        ),
    }
}

/// The run command's output format, and whether a plan beyond the machine may run anyway.
struct RunFlags {
    /// `--format`.
    format: sim_run::table::Format,
    /// `--allow-large`: skip the resource check.
    allow_large: bool,
}

/// The run command's resume and checkpoint flags.
struct Checkpointing {
    /// `--resume` (`Some(None)`) or `--resume DIR` (`Some(Some(DIR))`).
    resume: Option<Option<PathBuf>>,
    /// `--checkpoint DIR`.
    dir: Option<PathBuf>,
    /// `--checkpoint-every TIME`.
    every: Option<Duration>,
    /// `--checkpoint-exit-after N` (hidden test hook).
    exit_after: Option<u64>,
}

impl Checkpointing {
    /// The checkpoint policy for `plan`: a new (or same-plan) folder with `--checkpoint`, the folder's
    /// recorded interval with `--resume DIR` alone.
    fn policy(
        &self,
        plan: &scenario::Plan,
        registry: &Registry,
        family: &dyn sim::experiment::DynExperiment,
    ) -> Result<Option<CheckpointPolicy>, CliError> {
        let resume_dir = self.resume.as_ref().and_then(|r| r.as_ref());
        if self.dir.is_none() && resume_dir.is_none() {
            return Ok(None);
        }
        if !family.checkpoints() {
            let able: Vec<_> = registry
                .families()
                .filter(|f| f.checkpoints())
                .map(|f| f.name())
                .collect();
            return Err(CliError::Input(format!(
                "family `{}` does not save checkpoints: {}; drop --checkpoint/--resume DIR (families that do: {})",
                family.name(),
                family.no_checkpoints_why(),
                able.join(", ")
            )));
        }
        let key = sim_run::resume::plan_key(plan);
        let build = format!(
            "sysim {} ({})",
            BUILD.version,
            BUILD.commit.unwrap_or("commit unknown")
        );
        let policy = match (&self.dir, self.every, resume_dir) {
            (Some(dir), Some(every), _) => CheckpointPolicy::create(dir, every, &key, &build),
            (_, _, Some(dir)) => CheckpointPolicy::reopen(dir, &key, &build),
            _ => {
                return Err(CliError::Input(
                    "--checkpoint needs --checkpoint-every".to_owned(),
                ));
            }
        }
        .map_err(|e| CliError::Input(e.to_string()))?;
        Ok(Some(match self.exit_after {
            Some(n) => policy.exit_after(n),
            None => policy,
        }))
    }
}

fn run(
    registry: &Registry,
    file: &Path,
    out: Option<PathBuf>,
    (seed, overrides): (Option<u64>, &[Override]),
    mut opts: RunOptions,
    checkpointing: Checkpointing,
    RunFlags {
        format,
        allow_large,
    }: RunFlags,
) -> Result<(), CliError> {
    let plan = scenario::load_with(file, registry, seed, overrides)?;
    let family = registry
        .get(&plan.scenario.family)
        .ok_or_else(|| CliError::Input(format!("unknown family {}", plan.scenario.family)))?;
    if !allow_large {
        let at_once = runner::worker_threads(opts.jobs, plan.runs.len());
        sim_run::budget::check(
            &plan,
            family,
            at_once,
            sim_run::budget::machine_memory_bytes(),
        )?;
    }
    opts.checkpoint = checkpointing.policy(&plan, registry, family)?;
    if let Some(trace_dir) = &opts.trace {
        sim_run::output::prepare_dir(trace_dir)?;
    }
    let dir = out.unwrap_or_else(|| Path::new("out").join(&plan.scenario.name));
    let resume = checkpointing.resume.is_some();
    if let Some(policy) = opts.checkpoint.as_ref().filter(|_| !opts.quiet) {
        let saved = plan
            .runs
            .iter()
            .filter(|r| opts.shard.is_none_or(|s| s.contains(r.ctx.run)))
            .filter(|r| policy.has_saved(r.ctx.run))
            .count();
        if saved > 0 {
            let (runs, its) = if saved == 1 {
                ("run", "its")
            } else {
                ("runs", "their")
            };
            eprintln!(
                "checkpoint: continuing {saved} {runs} from {its} last checkpoint in {}",
                policy.dir.display()
            );
        }
    }
    let records = execute_into(registry, &plan, &dir, &opts, format, resume)?;
    let failed: Vec<_> = records.iter().filter(|r| r.outcome.is_err()).collect();
    match failed.first() {
        None => Ok(()),
        Some(first) => Err(CliError::Failure(format!(
            "{} of {} runs failed (their rows carry the error); first: run {}: {}",
            failed.len(),
            records.len(),
            first.spec.ctx.run,
            first
                .outcome
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default()
        ))),
    }
}

/// Runs `plan` (or its shard) and writes its results folder `dir`; prints a one-line summary.
pub fn execute_into(
    registry: &Registry,
    plan: &scenario::Plan,
    dir: &Path,
    opts: &RunOptions,
    format: sim_run::table::Format,
    resume: bool,
) -> Result<Vec<runner::RunRecord>, CliError> {
    output::prepare_dir(dir)?;
    let _lock = sim_run::lock::lock(dir).map_err(|e| CliError::Input(e.to_string()))?;
    let family = registry
        .get(&plan.scenario.family)
        .ok_or_else(|| CliError::Input(format!("unknown family {}", plan.scenario.family)))?;
    let ours = sim_run::resume::plan_key(plan);
    let journal_error = |e: sim_run::journal::JournalError| CliError::Input(e.to_string());
    let (journal, mut previous) = if resume {
        // The folder is verified before the journal is touched, so a refused resume changes nothing.
        let mut kept =
            sim_run::resume::completed(dir, plan).map_err(|e| CliError::Input(e.to_string()))?;
        let (journal, journaled) = Journal::reopen(dir, plan).map_err(journal_error)?;
        // After the stable sort below, dedup keeps the folder's row of a run that is in both.
        kept.extend(journaled);
        (journal, kept)
    } else {
        (
            Journal::create(dir, &ours).map_err(journal_error)?,
            Vec::new(),
        )
    };
    previous.retain(|r| opts.shard.is_none_or(|s| s.contains(r.spec.ctx.run)));
    previous.sort_by_key(|r| r.spec.ctx.run);
    previous.dedup_by_key(|r| r.spec.ctx.run);
    let done: Vec<u64> = previous.iter().map(|r| r.spec.ctx.run).collect();
    if let Some(trace_dir) = &opts.trace {
        // Printed even with --quiet: the trace folder is incomplete.
        if let Some(note) =
            sim_run::timeline::note_kept_runs(trace_dir, &done).map_err(CliError::Failure)?
        {
            eprintln!("trace: {note}");
        }
    }
    let started = Instant::now();
    let mut records = runner::execute(plan, family, opts, &done, Some(&journal))
        .map_err(|e| CliError::Failure(e.to_string()))?;
    if opts.interrupt.requested() {
        let planned = plan
            .runs
            .iter()
            .filter(|r| opts.shard.is_none_or(|s| s.contains(r.ctx.run)))
            .count();
        let kept = previous.len() + records.iter().filter(|r| r.outcome.is_ok()).count();
        return Err(CliError::Interrupted(format!(
            "interrupted: {kept} of {planned} runs finished and are kept in {} ({} finished in this session, runs in flight were let finish; no tables written); continue with the same command and --resume",
            journal.path().display(),
            records.len()
        )));
    }
    if !previous.is_empty() {
        if !opts.quiet {
            eprintln!(
                "resume: kept {} finished runs, ran {}",
                previous.len(),
                records.len()
            );
        }
        records.extend(previous);
        records.sort_by_key(|r| r.spec.ctx.run);
    }
    let wall_s = started.elapsed().as_secs_f64();
    let files = output::write_results(dir, plan, &records, format, opts.shard, wall_s, BUILD)
        .map_err(|e| CliError::Failure(format!("{}: cannot write results: {e}", dir.display())))?;
    journal.remove().map_err(|e| {
        CliError::Failure(format!("{}: cannot remove the journal: {e}", dir.display()))
    })?;
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if !opts.quiet {
        eprintln!(
            "{}: {} runs ({} failed) in {wall_s:.2} s → {} [{}]",
            plan.scenario.name,
            records.len(),
            records.iter().filter(|r| r.outcome.is_err()).count(),
            dir.display(),
            names.join(", ")
        );
    }
    Ok(records)
}

fn validate(
    registry: &Registry,
    files: &[PathBuf],
    overrides: &[Override],
) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for file in files {
        match scenario::load_with(file, registry, None, overrides) {
            Ok(plan) => say!(
                "ok {} ({}: {} points × {} replications = {} runs)",
                file.display(),
                plan.scenario.family,
                plan.points,
                plan.scenario.replications,
                plan.runs.len()
            ),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Input(errors.join("\nerror: ")))
    }
}

fn list(registry: &Registry) -> Result<(), CliError> {
    say!("families:");
    for f in registry.families() {
        say!("  {:<10} {}", f.name(), f.description());
        for slot in f.presets() {
            let names: Vec<&str> = slot.builtin.iter().map(|(n, _)| *n).collect();
            say!(
                "  {:<10}   presets for `{}`: {}",
                "",
                slot.key,
                names.join(", ")
            );
        }
    }
    let mut found = Vec::new();
    collect_yaml(Path::new("scenarios"), &mut found);
    found.sort();
    if !found.is_empty() {
        say!("scenarios:");
        for path in found {
            let summary = std::fs::read_to_string(&path)
                .ok()
                .and_then(|src| scenario::parse_yaml::<scenario::ScenarioFile>(&path, &src).ok())
                .map_or_else(
                    || "(does not parse: run `sysim validate`)".to_owned(),
                    |s| format!("[{}] {}", s.family, s.description),
                );
            say!("  {:<40} {summary}", path.display());
        }
    }
    Ok(())
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn schema(registry: &Registry, family: Option<&str>) -> Result<(), CliError> {
    let value = match family {
        Some(name) => sim_run::schema::params_schema(registry.get(name).ok_or_else(|| {
            CliError::Input(format!(
                "unknown family `{name}`; valid families: {}",
                registry.names()
            ))
        })?),
        None => sim_run::schema::scenario_schema(registry),
    };
    say!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
    Ok(())
}

fn plot(args: PlotArgs) -> Result<(), CliError> {
    let input = |e: analysis::AnalysisError| CliError::Input(e.to_string());
    let runs = analysis::load_runs(&args.dirs).map_err(input)?;
    let df = match args.table {
        TableName::Runs => runs,
        TableName::Series => analysis::load_series(&args.dirs)
            .and_then(|series| analysis::report::series_rows(&runs, &series, &args.y))
            .map_err(input)?,
    };
    let (x, y) = (args.x, args.y);
    let stem = args
        .out
        .unwrap_or_else(|| args.dirs[0].join(format!("{y}_vs_{x}")));
    let spec = analysis::PlotSpec {
        kind: args.kind,
        x,
        y,
        series: args.series,
        title: args.title,
        x_label: None,
        y_label: None,
        x_log: args.x_log,
        y_log: args.y_log,
        marks: Vec::new(),
    };
    let files = analysis::plot(&df, &spec, &stem).map_err(input)?;
    for f in files {
        say!("{}", f.display());
    }
    Ok(())
}

fn merge(
    dirs: &[PathBuf],
    out: &Path,
    format: sim_run::table::Format,
    quiet: bool,
) -> Result<(), CliError> {
    let summary = analysis::merge(dirs, out, format).map_err(|e| CliError::Input(e.to_string()))?;
    if quiet {
        return Ok(());
    }
    say!(
        "merged {} shards: {} runs, {} series rows → {}",
        summary.shards,
        summary.runs,
        summary.series_rows,
        out.display()
    );
    Ok(())
}

fn bench(lps: usize, events: u64, seed: u64) -> Result<(), CliError> {
    let cfg = sim_run::bench::PholdConfig {
        lps,
        events,
        seed,
        ..sim_run::bench::PholdConfig::default()
    };
    cfg.validate().map_err(CliError::Input)?;
    say!("{}", sim_run::bench::run(&cfg));
    Ok(())
}
