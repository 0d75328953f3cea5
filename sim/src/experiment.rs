//! The `Experiment` trait every model family implements, and its type-erased form for the registry.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkpoint::Checkpointer;
use crate::estimate::ResourceEstimate;
use crate::rng::{self, Rng};
use crate::trace::Trace;
use crate::validate::{Checks, ParamError, Validate};

/// One time-series sample recorded by a model (a row of `series.parquet`).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// Simulated time of the sample, seconds since the run started.
    pub t_s: f64,
    /// Component that recorded it (e.g. `"gpu"`, `"link/0"`).
    pub component: String,
    /// Metric name with its unit (e.g. `"power_w"`).
    pub metric: String,
    /// Sample value.
    pub value: f64,
}

/// Everything one run produces: scalar metrics (a row of `runs.parquet`) and an optional time series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutput {
    /// Scalar metrics in the order the family emits them; names carry their unit (`_s`, `_j`, …).
    pub metrics: Vec<(String, f64)>,
    /// Time-series samples; empty when the family records none.
    pub series: Vec<SeriesPoint>,
    /// The run's timeline (off unless the run was asked for one, [`RunContext::trace`]).
    pub trace: Trace,
}

impl RunOutput {
    /// Appends scalar metric `name`.
    pub fn metric(&mut self, name: impl Into<String>, value: f64) -> &mut Self {
        self.metrics.push((name.into(), value));
        self
    }

    /// The value of scalar metric `name`, if the run recorded it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }

    /// Appends one time-series sample.
    pub fn sample(&mut self, t_s: f64, component: &str, metric: &str, value: f64) {
        self.series.push(SeriesPoint {
            t_s,
            component: component.to_owned(),
            metric: metric.to_owned(),
            value,
        });
    }
}

/// Identity of one run inside a scenario, and the source of its random streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunContext {
    /// Global run index (row order of the result tables).
    pub run: u64,
    /// Sweep-point index.
    pub point: u64,
    /// Replication index within the point.
    pub replication: u32,
    /// Seed of this run, derived from (scenario seed, replication, point).
    pub seed: u64,
    /// Events the run's timeline may keep (`sysim run --trace DIR`); 0: no timeline. See
    /// [`RunContext::tracer`].
    pub trace_events: usize,
}

impl RunContext {
    /// The context of a lone run (run 0 of point 0, replication 0) with `seed`: for tests and tools
    /// that run one simulation outside a plan.
    pub const fn single(seed: u64) -> Self {
        Self {
            run: 0,
            point: 0,
            replication: 0,
            seed,
            trace_events: 0,
        }
    }

    /// This context with timeline recording on, default cap (for tests and tools).
    pub const fn traced(self) -> Self {
        Self {
            trace_events: crate::trace::DEFAULT_CAP_EVENTS,
            ..self
        }
    }

    /// Whether the run records a timeline.
    pub const fn is_traced(&self) -> bool {
        self.trace_events > 0
    }

    /// The run's timeline recorder: on when the run was asked for a trace, off (free) otherwise.
    pub fn tracer(&self) -> Trace {
        if self.is_traced() {
            Trace::with_cap(self.trace_events)
        } else {
            Trace::off()
        }
    }

    /// The random stream of component `path` for this run.
    pub fn rng(&self, path: &str) -> Rng {
        rng::stream(self.seed, path)
    }
}

/// A failure while running a model (not bad input): the run's row records it and the exit code is 1.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The nexosim engine reported an error (deadlock, panic in a model, …).
    #[error("simulation engine: {0}")]
    Engine(String),
    /// The model reached a state it cannot continue from (e.g. out of memory under strategy `none`).
    #[error("{0}")]
    Model(String),
    /// A checkpoint file of the run could not be read or written.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The run's checkpoint file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl From<nexosim::simulation::ExecutionError> for RunError {
    fn from(e: nexosim::simulation::ExecutionError) -> Self {
        RunError::Engine(e.to_string())
    }
}

impl From<nexosim::simulation::SimulationError> for RunError {
    fn from(e: nexosim::simulation::SimulationError) -> Self {
        RunError::Engine(e.to_string())
    }
}

/// A built-in preset slot: the dotted params key that accepts a preset, and the named presets for it.
#[derive(Debug, Clone, Copy)]
pub struct PresetSlot {
    /// Dotted path into params (e.g. `"soc"`).
    pub key: &'static str,
    /// `(name, YAML text)` of each built-in preset, embedded from `models/presets/`.
    pub builtin: &'static [(&'static str, &'static str)],
}

/// A model family: typed parameters and a function that runs one simulation.
pub trait Experiment: Send + Sync + 'static {
    /// The family's parameters (`deny_unknown_fields`).
    type Params: DeserializeOwned + Serialize + JsonSchema + Validate;
    /// The `family:` string of scenarios that use this family.
    const NAME: &'static str;
    /// One line on what the family simulates.
    const DESCRIPTION: &'static str;
    /// Params keys that accept a named, inline or file preset.
    const PRESETS: &'static [PresetSlot] = &[];
    /// Runs one simulation with `params`.
    fn run(&self, params: &Self::Params, ctx: &RunContext) -> Result<RunOutput, RunError>;
    /// Memory and work one run with `params` is expected to need (checked before a plan runs).
    /// The default knows nothing and refuses nothing.
    fn estimate(&self, params: &Self::Params) -> ResourceEstimate {
        let _ = params;
        ResourceEstimate::default()
    }
    /// Whether [`Experiment::run_checkpointed`] really saves and restores engine state.
    const CHECKPOINTS: bool = false;
    /// Why a family without checkpoints has none, for the message that refuses `--checkpoint`.
    const NO_CHECKPOINTS_WHY: &'static str = "its runs save no state";
    /// Runs one simulation, saving its state through `ckpt` and continuing from a saved state when
    /// one exists. The result must equal [`Experiment::run`]'s. Families that set
    /// [`Experiment::CHECKPOINTS`] override it; the default runs without checkpoints.
    fn run_checkpointed(
        &self,
        params: &Self::Params,
        ctx: &RunContext,
        ckpt: &Checkpointer,
    ) -> Result<RunOutput, RunError> {
        let _ = ckpt;
        self.run(params, ctx)
    }
}

/// A family with its params type erased, as stored in the registry.
pub trait DynExperiment: Send + Sync {
    /// The `family:` string.
    fn name(&self) -> &'static str;
    /// One line on what the family simulates.
    fn description(&self) -> &'static str;
    /// Params keys that accept presets.
    fn presets(&self) -> &'static [PresetSlot];
    /// JSON Schema of the params, for editors.
    fn schema(&self) -> serde_json::Value;
    /// Type-checks and range-checks resolved params without running.
    fn check(&self, params: &serde_json::Value) -> Result<(), Vec<ParamError>>;
    /// Runs one simulation with resolved params (already checked).
    fn run(&self, params: &serde_json::Value, ctx: &RunContext) -> Result<RunOutput, RunError>;
    /// Resource estimate of one run with resolved params (already checked).
    fn estimate(&self, params: &serde_json::Value) -> Result<ResourceEstimate, ParamError>;
    /// Whether the family saves and restores checkpoints.
    fn checkpoints(&self) -> bool;
    /// Why the family has no checkpoints (meaningless when it has).
    fn no_checkpoints_why(&self) -> &'static str;
    /// Runs one simulation with checkpoints through `ckpt`.
    fn run_checkpointed(
        &self,
        params: &serde_json::Value,
        ctx: &RunContext,
        ckpt: &Checkpointer,
    ) -> Result<RunOutput, RunError>;
    /// The Rust name of the crate that defines the family (`fl` for `fl::learn::…`): what its
    /// runs are built from, for caches keyed by source.
    fn crate_name(&self) -> &'static str;
}

fn typed<P: DeserializeOwned>(params: &serde_json::Value) -> Result<P, ParamError> {
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        ParamError {
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

impl<E: Experiment> DynExperiment for E {
    fn name(&self) -> &'static str {
        E::NAME
    }
    fn description(&self) -> &'static str {
        E::DESCRIPTION
    }
    fn presets(&self) -> &'static [PresetSlot] {
        E::PRESETS
    }
    fn schema(&self) -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(E::Params)).unwrap_or_default()
    }
    fn check(&self, params: &serde_json::Value) -> Result<(), Vec<ParamError>> {
        let p: E::Params = typed(params).map_err(|r| vec![r])?;
        let errors = Checks::of(&p);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
    fn run(&self, params: &serde_json::Value, ctx: &RunContext) -> Result<RunOutput, RunError> {
        let p: E::Params =
            typed(params).map_err(|r| RunError::Model(format!("params: {}", r.message)))?;
        Experiment::run(self, &p, ctx)
    }
    fn estimate(&self, params: &serde_json::Value) -> Result<ResourceEstimate, ParamError> {
        Ok(Experiment::estimate(self, &typed(params)?))
    }
    fn checkpoints(&self) -> bool {
        E::CHECKPOINTS
    }
    fn no_checkpoints_why(&self) -> &'static str {
        E::NO_CHECKPOINTS_WHY
    }
    fn run_checkpointed(
        &self,
        params: &serde_json::Value,
        ctx: &RunContext,
        ckpt: &Checkpointer,
    ) -> Result<RunOutput, RunError> {
        let p: E::Params =
            typed(params).map_err(|r| RunError::Model(format!("params: {}", r.message)))?;
        Experiment::run_checkpointed(self, &p, ctx, ckpt)
    }
    fn crate_name(&self) -> &'static str {
        let path = std::any::type_name::<E>();
        path.split("::").next().unwrap_or(path)
    }
}
