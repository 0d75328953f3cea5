//! Command-line arguments (clap).

use std::path::PathBuf;
use std::time::Duration;

use analysis::Kind;
use analysis::report::TableName;
use clap::{Args, Parser, Subcommand};
use sim_run::overrides::Override;
use sim_run::runner::Shard;
use sim_run::table::Format;

/// sysim — a discrete-event simulator of the computer systems of ten recent papers.
#[derive(Debug, Parser)]
#[command(name = "sysim", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (a sweep when the file has one) and write its result tables.
    #[command(
        after_help = "Examples:\n  sysim run scenarios/quickstart.yaml --jobs 2 --out out/quick\n  sysim run scenarios/quickstart.yaml --set params.arrival_rate=0.9 --set sweep.servers=[1,2,4]\n  sysim run scenarios/quickstart.yaml --shard 0/3 --out out/part0\n  sysim run scenarios/queue/long-run.yaml --checkpoint ckpt --checkpoint-every 20000s   # killed?\n  sysim run scenarios/queue/long-run.yaml --resume ckpt                                 # continues each run where it stopped\n  sysim run scenarios/quickstart.yaml --trace traces                                    # traces/run-00000.json → ui.perfetto.dev"
    )]
    Run {
        /// Scenario YAML file.
        file: PathBuf,
        /// Output folder (default `out/<scenario name>/`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override a key of the file (repeatable; the value is YAML), e.g. `--set params.arrival_rate=0.9`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
        /// Worker threads (default: all cores).
        #[arg(long, default_value_t = 0)]
        jobs: usize,
        /// Run only part K of N (0-based), e.g. `--shard 1/4`.
        #[arg(long)]
        shard: Option<Shard>,
        /// Table format.
        #[arg(long, value_enum, default_value_t = Format::Parquet)]
        format: Format,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Keep the successful runs already in the output folder and run only the missing or failed
        /// ones; with a checkpoint folder (`--resume DIR`), unfinished runs continue from their last
        /// checkpoint there.
        #[arg(long, value_name = "DIR", num_args = 0..=1)]
        resume: Option<Option<PathBuf>>,
        /// Save every run's state into this folder periodically (families queue, mobile,
        /// supernode and fl; the others refuse the flag and say why).
        #[arg(long, value_name = "DIR", requires = "checkpoint_every")]
        checkpoint: Option<PathBuf>,
        /// Simulated time between checkpoints: a number with a unit, e.g. `500ms`, `30s`, `10min`, `2h`.
        #[arg(long, value_name = "TIME", value_parser = parse_sim_time, requires = "checkpoint")]
        checkpoint_every: Option<Duration>,
        /// Test hook: exit with status 137, as if killed, right after the N-th checkpoint any run
        /// writes.
        #[arg(long, value_name = "N", hide = true, value_parser = clap::value_parser!(u64).range(1..))]
        checkpoint_exit_after: Option<u64>,
        /// Run a plan whose estimated memory exceeds this machine's, or whose work is beyond bound.
        #[arg(long)]
        allow_large: bool,
        /// Write one Chrome/Perfetto timeline per run into this folder (`run-00000.json`, …; open
        /// it in ui.perfetto.dev): slices for work on each modelled resource, counter tracks.
        #[arg(long, value_name = "DIR")]
        trace: Option<PathBuf>,
        /// Events each timeline keeps at most; the rest are dropped with a note in the file and on
        /// stderr (default 200000, ≈ 20 MB).
        #[arg(long, value_name = "N", requires = "trace", default_value_t = sim::trace::DEFAULT_CAP_EVENTS as u64, value_parser = clap::value_parser!(u64).range(1..))]
        trace_max_events: u64,
    },
    /// Check scenario files without running them.
    #[command(
        after_help = "Examples:\n  sysim validate scenarios/*.yaml scenarios/*/*.yaml\n  sysim validate scenarios/quickstart.yaml --set replications=5"
    )]
    Validate {
        /// Scenario YAML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Override a key of each file (repeatable; the value is YAML), as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
    },
    /// List families, their presets, and the scenarios under `scenarios/`.
    #[command(after_help = "Example:\n  sysim list")]
    List,
    /// Print the JSON Schema of a whole scenario file (or of one family's params).
    #[command(
        after_help = "Examples:\n  sysim schema > scenario.schema.json   # then, first line of a scenario:\n  # yaml-language-server: $schema=../scenario.schema.json\n  sysim schema queue"
    )]
    Schema {
        /// Family name.
        family: Option<String>,
    },
    /// Draw a figure (PNG + SVG) from one or more results folders.
    #[command(
        after_help = "Examples:\n  sysim plot out/quickstart --x arrival_rate --y mean_sojourn_s --series servers --kind line\n  sysim plot out/fm --table series --x t_s --y accuracy --series method"
    )]
    Plot(PlotArgs),
    /// Combine shard folders into one results folder.
    #[command(after_help = "Example:\n  sysim merge out/part0 out/part1 out/part2 --out out/full")]
    Merge {
        /// Shard folders (or globs).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Table format.
        #[arg(long, value_enum, default_value_t = Format::Parquet)]
        format: Format,
        /// Print nothing on success.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run what each paper's figures and claims need (cached), draw the figures, check the claims.
    #[command(after_help = "Example:\n  sysim report all\n  sysim report queue --force")]
    Report {
        /// Paper id (a file stem under reports/), or `all`.
        #[arg(default_value = "all")]
        paper: String,
        /// Worker threads (default: all cores).
        #[arg(long, default_value_t = 0)]
        jobs: usize,
        /// Re-run scenarios even when cached results are current.
        #[arg(long)]
        force: bool,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Engine throughput: PHOLD on nexosim vs a hand-written binary-heap loop, in one run.
    #[command(after_help = "Example:\n  sysim bench --lps 1000 --events 1000000")]
    Bench {
        /// Logical processes.
        #[arg(long, default_value_t = 1000)]
        lps: usize,
        /// Events to process.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Parses a simulated duration with a unit (`ms`, `s`, `min`, `h`), e.g. `30s` or `1.5h`.
fn parse_sim_time(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("expected a positive time with a unit (ms, s, min, h), e.g. 30s, got `{text}`");
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    let scale_s = match unit.trim() {
        "ms" => 1e-3,
        "s" => 1.0,
        "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let seconds = value * scale_s;
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::parse_sim_time;
    use std::time::Duration;

    #[test]
    fn sim_times_need_a_unit_and_a_positive_value() {
        assert_eq!(parse_sim_time("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_sim_time("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_sim_time("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_sim_time("2min"), Ok(Duration::from_secs(120)));
        for bad in ["30", "0s", "-1s", "3 days", "s"] {
            assert!(parse_sim_time(bad).is_err(), "{bad}");
        }
    }
}

/// Arguments of `sysim plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Results folders (or globs of shard folders).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Column on the x axis (`t_s` for time with `--table series`).
    #[arg(long)]
    pub x: String,
    /// Column on the y axis; with `--table series`, the series metric.
    #[arg(long)]
    pub y: String,
    /// Column that splits the data into series.
    #[arg(long)]
    pub series: Option<String>,
    /// Figure kind.
    #[arg(long, value_enum, default_value_t = Kind::Line)]
    pub kind: Kind,
    /// Table to draw: `runs` (one row per run) or `series` (each point with its run's parameters).
    #[arg(long, value_enum, default_value_t = TableName::Runs)]
    pub table: TableName,
    /// Logarithmic x axis (line, scatter, CDF).
    #[arg(long)]
    pub x_log: bool,
    /// Logarithmic y axis (line, scatter).
    #[arg(long)]
    pub y_log: bool,
    /// Output path without extension (default `<first dir>/<y>_vs_<x>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Figure title.
    #[arg(long)]
    pub title: Option<String>,
}
