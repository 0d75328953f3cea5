//! Scenario files: parsing, validation against the family's typed params, preset resolution, and
//! expansion of the sweep into the list of runs (the plan).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::InputError;
use crate::input;
use crate::locate::locate;
use crate::overrides::{Override, Relation};
use crate::sweep::{self, Axis};
use sim::experiment::{DynExperiment, PresetSlot, RunContext};
use sim::rng::run_seed;

/// Most runs a plan may have: each holds its resolved params (about a kilobyte), so a million
/// runs is already a gigabyte before anything runs.
pub const MAX_RUNS: u64 = 1_000_000;

/// The scenario file as written (see the README for its keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Output folder name (`out/<name>/`).
    pub name: String,
    /// Family, a key of the registry (`family:`; the older `model:` is accepted).
    #[serde(alias = "model")]
    pub family: String,
    /// Free text shown by `sysim list`.
    #[serde(default)]
    pub description: String,
    /// Scenario seed; each run's seed derives from (seed, replication, point).
    #[serde(default)]
    pub seed: u64,
    /// Replications of each sweep point (≥ 1).
    #[serde(default = "one")]
    pub replications: u32,
    /// Common random numbers: replication r of every sweep point gets the same seed (derived from
    /// (seed, replication) only), so points are compared on identical data and draws — a paired
    /// comparison with less variance. Off by default: every point has its own streams.
    #[serde(default)]
    pub common_random_numbers: bool,
    /// The family's params (checked by its typed `Params`).
    #[serde(default = "empty_map")]
    pub params: Value,
    /// Dotted paths into params → lists of values (cartesian product; `zip:` groups advance together).
    #[serde(default)]
    pub sweep: Map<String, Value>,
}

fn one() -> u32 {
    1
}

fn empty_map() -> Value {
    Value::Object(Map::new())
}

/// The set of families a scenario's `family:` may name.
pub struct Registry {
    families: Vec<Box<dyn DynExperiment>>,
}

impl Registry {
    /// A registry of the given families.
    pub fn new(families: Vec<Box<dyn DynExperiment>>) -> Self {
        Self { families }
    }

    /// The family called `name`.
    pub fn get(&self, name: &str) -> Option<&dyn DynExperiment> {
        self.families
            .iter()
            .find(|f| f.name() == name)
            .map(|f| f.as_ref())
    }

    /// All families, in registration order.
    pub fn families(&self) -> impl Iterator<Item = &dyn DynExperiment> {
        self.families.iter().map(|f| f.as_ref())
    }

    /// Comma-separated family names, for error messages.
    pub fn names(&self) -> String {
        self.families
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One run of the plan: its identity, fully resolved params, and the flattened param columns.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Run identity and seed.
    pub ctx: RunContext,
    /// Params with the sweep applied and presets resolved: what the family receives.
    pub params: Value,
    /// `(column, value)` per scalar param as the user wrote it (preset names, not their contents).
    pub columns: Vec<(String, Value)>,
}

/// A validated scenario: the resolved file and every run it expands to.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Path of the scenario file.
    pub path: PathBuf,
    /// The parsed file (with `--set` overrides and `--seed` applied).
    pub scenario: ScenarioFile,
    /// The `--set KEY=VALUE` overrides applied to the file, as written.
    pub overrides: Vec<String>,
    /// Number of sweep points.
    pub points: u64,
    /// All runs, in table order (point-major, replication-minor).
    pub runs: Vec<RunSpec>,
}

/// Reads, validates and expands scenario `path`. `seed` overrides the file's seed.
pub fn load(path: &Path, registry: &Registry, seed: Option<u64>) -> Result<Plan, InputError> {
    load_with(path, registry, seed, &[])
}

/// Reads scenario `path`, applies the `--set` `overrides` to the parsed file (in order, before
/// any check) and `seed`, then validates and expands it like [`load`]. An error about a key an
/// override set names the override instead of a position in the file.
pub fn load_with(
    path: &Path,
    registry: &Registry,
    seed: Option<u64>,
    overrides: &[Override],
) -> Result<Plan, InputError> {
    let src = input::read_yaml_file(path, "scenario file")?;
    let mut scenario: ScenarioFile = if overrides.is_empty() {
        parse_yaml(path, &src)?
    } else {
        let mut tree: Value = parse_yaml(path, &src)?;
        for o in overrides {
            o.apply(&mut tree)
                .map_err(|e| InputError::key(path, None, o.key.clone(), e.to_string()))?;
        }
        serde_path_to_error::deserialize(tree)
            .map_err(|e| {
                let key = e.path().to_string();
                let message = e.into_inner().to_string();
                let key = (key != ".").then_some(key);
                let position = key.as_deref().and_then(|k| locate(&src, k));
                InputError {
                    file: path.to_path_buf(),
                    position,
                    key,
                    message,
                }
            })
            .map_err(|e| attribute(e, overrides))?
    };
    if let Some(seed) = seed {
        scenario.seed = seed;
    }
    refuse_swept(path, &scenario, overrides)?;
    expand(path, &src, registry, scenario)
        .map(|plan| Plan {
            overrides: overrides.iter().map(|o| o.text.clone()).collect(),
            ..plan
        })
        .map_err(|e| attribute(e, overrides))
}

/// Refuses a `--set params.K=…` whose key the sweep sets at every point (it would be ignored).
fn refuse_swept(
    path: &Path,
    scenario: &ScenarioFile,
    overrides: &[Override],
) -> Result<(), InputError> {
    let Ok(axes) = sweep::axes(&scenario.sweep) else {
        return Ok(()); // a malformed sweep is reported, with its position, by `expand`
    };
    for o in overrides {
        let Some(key) = o.key.strip_prefix("params.") else {
            continue;
        };
        if let Some(swept) = swept_key(&axes, key) {
            return Err(InputError::key(
                path,
                None,
                o.key.clone(),
                format!(
                    "`--set {}` would be ignored: `sweep.{swept}` sets this key at every point; override `sweep.{swept}=[…]` instead",
                    o.text
                ),
            ));
        }
    }
    Ok(())
}

/// Names the override behind an error about a key it set (dropping the file position, which
/// points at the value it replaced) or below a key it set.
fn attribute(mut e: InputError, overrides: &[Override]) -> InputError {
    let Some(key) = e.key.clone() else { return e };
    let culprit = overrides
        .iter()
        .rev()
        .find_map(|o| o.concerns(&key).map(|r| (o, r)));
    if let Some((o, relation)) = culprit {
        if relation == Relation::Set {
            e.position = None;
        }
        e.message = format!("{} (value from `--set {}`)", e.message, o.text);
    }
    e
}

/// Validates and expands a parsed scenario (`src` is the file's text, for error positions).
fn expand(
    path: &Path,
    src: &str,
    registry: &Registry,
    scenario: ScenarioFile,
) -> Result<Plan, InputError> {
    let at = |key: &str| locate(src, key);
    if let Some(problem) = input::name_problem(&scenario.name) {
        return Err(InputError::key(path, at("name"), "name", problem));
    }
    let family = registry.get(&scenario.family).ok_or_else(|| {
        let key = if at("family").is_some() {
            "family"
        } else {
            "model"
        };
        InputError::key(
            path,
            at(key),
            key,
            format!(
                "unknown family `{}`; valid families: {}",
                scenario.family,
                registry.names()
            ),
        )
    })?;
    if scenario.replications == 0 {
        return Err(InputError::key(
            path,
            at("replications"),
            "replications",
            "must be ≥ 1, got 0",
        ));
    }
    if !scenario.params.is_object() {
        return Err(InputError::key(
            path,
            at("params"),
            "params",
            "expected a mapping of parameters",
        ));
    }
    let axes = sweep::axes(&scenario.sweep).map_err(|e| {
        let key = format!("sweep.{}", e.key);
        InputError::key(path, at(&key), key, e.message)
    })?;
    let runs_total = sweep::point_count(&axes)
        .and_then(|points| points.checked_mul(u64::from(scenario.replications)))
        .filter(|&n| n <= MAX_RUNS);
    let Some(runs_total) = runs_total else {
        return Err(InputError::key(
            path,
            at("replications"),
            "replications",
            format!(
                "sweep points × replications exceeds {MAX_RUNS} runs (the plan alone would not fit in memory); split the sweep into several scenarios"
            ),
        ));
    };
    let points = runs_total / u64::from(scenario.replications);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut runs = Vec::with_capacity(runs_total as usize);
    for point in 0..points {
        let assigned = sweep::point(&axes, point);
        let mut params = scenario.params.clone();
        for (key, value) in &assigned {
            sweep::set_path(&mut params, key, value.clone());
        }
        let locate_param = |key: &str| -> (String, Option<(usize, usize)>) {
            match swept_key(&axes, key) {
                Some(sweep_key) => (
                    format!("sweep.{sweep_key}"),
                    at(&format!("sweep.{sweep_key}")),
                ),
                None => {
                    let full = if key.is_empty() {
                        "params".to_owned()
                    } else {
                        format!("params.{key}")
                    };
                    let pos = at(&full);
                    (full, pos)
                }
            }
        };
        let columns = columns(&params, family.presets());
        let (resolved, files) =
            resolve_presets(params, family.presets(), dir, &locate_param, path)?;
        if let Err(rejections) = family.check(&resolved) {
            let r = &rejections[0];
            return Err(match in_preset_file(&files, &r.path) {
                Some((file, inner)) => {
                    let (slot_key, _) = locate_param(&file.slot);
                    InputError::key(
                        &file.path,
                        locate(&file.text, inner),
                        inner,
                        format!(
                            "{} (preset file of `{slot_key}` in {})",
                            r.message,
                            path.display()
                        ),
                    )
                }
                None => {
                    let (key, pos) = locate_param(&r.path);
                    InputError::key(path, pos, key, r.message.clone())
                }
            });
        }
        for replication in 0..scenario.replications {
            let run = point * u64::from(scenario.replications) + u64::from(replication);
            runs.push(RunSpec {
                ctx: RunContext {
                    run,
                    point,
                    replication,
                    seed: if scenario.common_random_numbers {
                        run_seed(scenario.seed, replication, 0)
                    } else {
                        run_seed(scenario.seed, replication, point)
                    },
                    trace_events: 0,
                },
                params: resolved.clone(),
                columns: columns.clone(),
            });
        }
    }
    Ok(Plan {
        path: path.to_path_buf(),
        scenario,
        overrides: Vec::new(),
        points,
        runs,
    })
}

/// The sweep key (`governor`, `zip.soc`) that sets params key `key` or one of its parents.
fn swept_key(axes: &[Axis], key: &str) -> Option<String> {
    axes.iter().find_map(|a| {
        a.keys
            .iter()
            .find(|k| key == k.as_str() || key.starts_with(&format!("{k}.")))
            .map(|k| {
                if a.zipped {
                    format!("zip.{k}")
                } else {
                    k.clone()
                }
            })
    })
}

/// Parses YAML text into `T`, mapping errors to file:line:column and the dotted key at fault.
/// Syntax errors are reported as "malformed YAML", numbers that are not finite (`.nan`, `.inf`)
/// by their key; type errors name the key.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(path: &Path, src: &str) -> Result<T, InputError> {
    let position = |e: &serde_norway::Error| e.location().map(|l| (l.line(), l.column()));
    match serde_norway::from_str::<serde_norway::Value>(src) {
        Err(e) => {
            return Err(InputError {
                file: path.to_path_buf(),
                position: position(&e),
                key: None,
                message: format!("malformed YAML: {}", strip_location(&e.to_string())),
            });
        }
        Ok(value) => input::check_finite(path, src, &value)?,
    }
    serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(src)).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_location(&inner.to_string());
        // serde_norway prefixes nested errors with their path; the key is printed on its own.
        let message = message
            .strip_prefix(&format!("{key}: "))
            .map_or(message.clone(), str::to_owned);
        InputError {
            file: path.to_path_buf(),
            position: position(&inner),
            key: (key != ".").then_some(key),
            message,
        }
    })
}

/// Drops serde_norway's " at line L column C…" suffix: the position is printed in front instead.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Flattens params into scalar columns; preset slots become one column (preset name or `inline`).
fn columns(params: &Value, presets: &[PresetSlot]) -> Vec<(String, Value)> {
    fn walk(prefix: &str, v: &Value, presets: &[PresetSlot], out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(map) if presets.iter().any(|p| p.key == prefix) => {
                let name = map
                    .get("name")
                    .cloned()
                    .unwrap_or_else(|| Value::String("inline".into()));
                out.push((prefix.to_owned(), name));
            }
            Value::Object(map) => {
                for (k, child) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, child, presets, out);
                }
            }
            Value::Array(_) => out.push((prefix.to_owned(), Value::String(v.to_string()))),
            scalar => out.push((prefix.to_owned(), scalar.clone())),
        }
    }
    let mut out = Vec::new();
    walk("", params, presets, &mut out);
    out
}

/// Maps a params key to the key to report (the sweep key when swept) and its position in the file.
type KeyLocator<'a> = dyn Fn(&str) -> (String, Option<(usize, usize)>) + 'a;

/// A preset read from a file, kept so that errors inside it name the file's line.
struct PresetFile {
    /// The params key of the slot (`soc`).
    slot: String,
    /// The preset file.
    path: PathBuf,
    /// Its text.
    text: String,
}

/// The preset file holding params key `key` (`soc.freq_mhz`) and the key inside it (`freq_mhz`).
fn in_preset_file<'a>(files: &'a [PresetFile], key: &'a str) -> Option<(&'a PresetFile, &'a str)> {
    files.iter().find_map(|f| {
        key.strip_prefix(f.slot.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .map(|inner| (f, inner))
    })
}

/// Replaces each preset slot's value (a built-in name or a path to a YAML file) by the preset's
/// contents; inline mappings are kept as they are. Also returns the preset files read.
fn resolve_presets(
    mut params: Value,
    presets: &[PresetSlot],
    dir: &Path,
    locate_param: &KeyLocator,
    scenario_path: &Path,
) -> Result<(Value, Vec<PresetFile>), InputError> {
    let mut files = Vec::new();
    for slot in presets {
        let Some(Value::String(choice)) = sweep::get_path(&params, slot.key) else {
            continue;
        };
        let choice = choice.clone();
        let resolved = if let Some((_, text)) = slot.builtin.iter().find(|(n, _)| *n == choice) {
            let builtin = PathBuf::from(format!("<built-in preset {choice}>"));
            parse_yaml::<Value>(&builtin, text)?
        } else if choice.ends_with(".yaml") || choice.ends_with(".yml") {
            let file = dir.join(&choice);
            let text = input::read_yaml_file(&file, "preset file").map_err(|e| {
                let (key, pos) = locate_param(slot.key);
                InputError::key(
                    scenario_path,
                    pos,
                    key,
                    format!("preset file {}: {}", file.display(), e.message),
                )
            })?;
            let value = parse_yaml::<Value>(&file, &text)?;
            files.push(PresetFile {
                slot: slot.key.to_owned(),
                path: file,
                text,
            });
            value
        } else {
            let (key, pos) = locate_param(slot.key);
            let valid: Vec<&str> = slot.builtin.iter().map(|(n, _)| *n).collect();
            return Err(InputError::key(
                scenario_path,
                pos,
                key,
                format!(
                    "unknown preset `{choice}`; valid presets: {} (or an inline mapping, or a path to a .yaml file)",
                    valid.join(", ")
                ),
            ));
        };
        sweep::set_path(&mut params, slot.key, resolved);
    }
    Ok((params, files))
}

/// A short reason for an I/O error, without the OS error code.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use schemars::JsonSchema;
    use sim::experiment::{Experiment, RunOutput};
    use sim::validate::{Checks, Validate};

    use super::*;

    /// A family whose `chip` param accepts presets, to test preset resolution.
    struct Chips;

    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct ChipParams {
        chip: Chip,
        load: f64,
    }

    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Chip {
        name: String,
        freq_mhz: f64,
    }

    impl Validate for ChipParams {
        fn validate(&self, c: &mut Checks) {
            c.positive("chip.freq_mhz", self.chip.freq_mhz);
        }
    }

    impl Experiment for Chips {
        type Params = ChipParams;
        const NAME: &'static str = "chips";
        const DESCRIPTION: &'static str = "test family";
        const PRESETS: &'static [PresetSlot] = &[PresetSlot {
            key: "chip",
            builtin: &[
                ("fast", "name: fast\nfreq_mhz: 3000\n"),
                ("slow", "name: slow\nfreq_mhz: 800\n"),
            ],
        }];
        fn run(
            &self,
            p: &ChipParams,
            _: &RunContext,
        ) -> Result<RunOutput, sim::experiment::RunError> {
            let mut out = RunOutput::default();
            out.metric("freq_mhz", p.chip.freq_mhz * p.load);
            Ok(out)
        }
    }

    fn load_text(dir: &Path, text: &str) -> Result<Plan, InputError> {
        let path = dir.join("s.yaml");
        fs::write(&path, text).unwrap();
        load(&path, &Registry::new(vec![Box::new(Chips)]), None)
    }

    fn load_set(dir: &Path, text: &str, sets: &[&str]) -> Result<Plan, InputError> {
        let path = dir.join("s.yaml");
        fs::write(&path, text).unwrap();
        let overrides: Vec<Override> = sets.iter().map(|s| s.parse().unwrap()).collect();
        load_with(
            &path,
            &Registry::new(vec![Box::new(Chips)]),
            None,
            &overrides,
        )
    }

    const BASE: &str = "name: t\nfamily: chips\nparams:\n  load: 1\n  chip: fast\n";

    #[test]
    fn overrides_replace_params_sweep_and_top_level_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = load_set(
            tmp.path(),
            BASE,
            &[
                "params.load=2",
                "sweep.chip=[slow, fast]",
                "replications=2",
                "seed=5",
            ],
        )
        .unwrap();
        assert_eq!(plan.runs.len(), 4);
        assert_eq!(plan.scenario.seed, 5);
        assert_eq!(plan.runs[0].params["load"], Value::from(2));
        assert_eq!(plan.runs[0].params["chip"]["freq_mhz"], Value::from(800));
        assert_eq!(
            plan.overrides,
            vec![
                "params.load=2",
                "sweep.chip=[slow, fast]",
                "replications=2",
                "seed=5"
            ]
        );
        assert!(
            load(
                &tmp.path().join("s.yaml"),
                &Registry::new(vec![Box::new(Chips)]),
                None
            )
            .unwrap()
            .overrides
            .is_empty()
        );
    }

    #[test]
    fn override_errors_name_the_key_and_the_override_not_a_file_position() {
        let tmp = tempfile::tempdir().unwrap();
        let e = load_set(tmp.path(), BASE, &["params.load=fast"]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("params.load"));
        assert_eq!(e.position, None);
        assert!(
            e.message.contains("invalid type")
                && e.message.contains("(value from `--set params.load=fast`)"),
            "{}",
            e.message
        );
        let e = load_set(tmp.path(), BASE, &["params.chip={name: x, freq_mhz: -1}"]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("params.chip.freq_mhz"));
        assert!(e.message.contains("--set params.chip="), "{}", e.message);
        let e = load_set(tmp.path(), BASE, &["replications=0"]).unwrap_err();
        assert_eq!((e.key.as_deref(), e.position), (Some("replications"), None));
        let e = load_set(tmp.path(), BASE, &["seed=-3"]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("seed"));
        let e = load_set(tmp.path(), BASE, &["sweep.chip=[medium]"]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sweep.chip"));
        assert!(
            e.message.contains("unknown preset `medium`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_unknown_param_from_an_override_is_blamed_on_it() {
        let tmp = tempfile::tempdir().unwrap();
        let e = load_set(tmp.path(), BASE, &["params.lode=3"]).unwrap_err();
        assert!(e.message.contains("unknown field `lode`"), "{}", e.message);
        assert!(e.message.contains("--set params.lode=3"), "{}", e.message);
    }

    #[test]
    fn file_errors_keep_their_position_when_overrides_touch_other_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let text = "name: t\nfamily: chips\nparams:\n  load: 1\n  chip: {name: x, freq_mhz: -1}\n";
        let e = load_set(tmp.path(), text, &["params.load=2"]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("params.chip.freq_mhz"));
        assert_eq!(e.position, Some((5, 19)));
        assert!(!e.message.contains("--set"), "{}", e.message);
    }

    #[test]
    fn overriding_a_swept_param_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let text = format!("{BASE}sweep:\n  load: [1, 2]\n");
        let e = load_set(tmp.path(), &text, &["params.load=3"]).unwrap_err();
        assert!(
            e.message.contains("`sweep.load` sets this key"),
            "{}",
            e.message
        );
        let plan = load_set(tmp.path(), &text, &["sweep.load=[3]"]).unwrap();
        assert_eq!(plan.runs.len(), 1);
    }

    #[test]
    fn named_inline_and_file_presets_resolve() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("mine.yaml"), "name: mine\nfreq_mhz: 1234\n").unwrap();
        let plan = load_text(
            tmp.path(),
            "name: t\nfamily: chips\nparams:\n  load: 1\n  chip: fast\nsweep:\n  chip: [fast, mine.yaml, {name: inl, freq_mhz: 5}]\n",
        )
        .unwrap();
        let freqs: Vec<f64> = plan
            .runs
            .iter()
            .map(|r| r.params["chip"]["freq_mhz"].as_f64().unwrap())
            .collect();
        assert_eq!(freqs, vec![3000.0, 1234.0, 5.0]);
        let names: Vec<&Value> = plan
            .runs
            .iter()
            .map(|r| &r.columns.iter().find(|c| c.0 == "chip").unwrap().1)
            .collect();
        assert_eq!(
            names,
            vec![
                &Value::from("fast"),
                &Value::from("mine.yaml"),
                &Value::from("inl")
            ]
        );
    }

    #[test]
    fn the_family_key_may_still_be_written_model() {
        let tmp = tempfile::tempdir().unwrap();
        let old = load_text(
            tmp.path(),
            "name: t\nmodel: chips\nparams:\n  load: 1\n  chip: fast\n",
        )
        .unwrap();
        assert_eq!(old.scenario.family, "chips");
        let e = load_text(
            tmp.path(),
            "name: t\nmodel: chipz\nparams:\n  load: 1\n  chip: fast\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("model"));
        assert_eq!(e.position, Some((2, 1)));
    }

    #[test]
    fn unknown_preset_lists_the_valid_names() {
        let tmp = tempfile::tempdir().unwrap();
        let e = load_text(
            tmp.path(),
            "name: t\nfamily: chips\nparams:\n  load: 1\n  chip: medium\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("params.chip"));
        assert_eq!(e.position, Some((5, 3)));
        assert!(
            e.message
                .contains("unknown preset `medium`; valid presets: fast, slow"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_preset_file_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let e = load_text(
            tmp.path(),
            "name: t\nfamily: chips\nparams:\n  load: 1\n  chip: gone.yaml\n",
        )
        .unwrap_err();
        assert!(
            e.message.contains("cannot read preset file") && e.message.contains("gone.yaml"),
            "{}",
            e.message
        );
    }

    #[test]
    fn range_errors_inside_a_preset_file_point_at_the_preset_file() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("mine.yaml"), "name: mine\nfreq_mhz: -5\n").unwrap();
        let e = load_text(
            tmp.path(),
            "name: t\nfamily: chips\nparams:\n  load: 1\n  chip: mine.yaml\n",
        )
        .unwrap_err();
        assert_eq!(e.file, tmp.path().join("mine.yaml"));
        assert_eq!(e.key.as_deref(), Some("freq_mhz"));
        assert_eq!(e.position, Some((2, 1)));
        assert!(
            e.message.contains("preset file of `params.chip`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_name_with_a_path_separator_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let e = load_text(
            tmp.path(),
            "name: ../../x\nfamily: chips\nparams:\n  load: 1\n  chip: fast\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("name"));
        assert_eq!(e.position, Some((1, 1)));
    }

    #[test]
    fn range_errors_inside_presets_name_the_nested_key() {
        let tmp = tempfile::tempdir().unwrap();
        let e = load_text(
            tmp.path(),
            "name: t\nfamily: chips\nparams:\n  load: 1\n  chip: {name: x, freq_mhz: -1}\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("params.chip.freq_mhz"));
        assert_eq!(e.position, Some((5, 19)));
    }

    #[test]
    fn runs_are_point_major_with_derived_seeds() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = load_text(
            tmp.path(),
            "name: t\nfamily: chips\nseed: 3\nreplications: 2\nparams:\n  load: 1\n  chip: slow\nsweep:\n  load: [1, 2]\n",
        )
        .unwrap();
        let ids: Vec<(u64, u64, u32)> = plan
            .runs
            .iter()
            .map(|r| (r.ctx.run, r.ctx.point, r.ctx.replication))
            .collect();
        assert_eq!(ids, vec![(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]);
        assert_eq!(plan.runs[2].ctx.seed, run_seed(3, 0, 1));
        assert_ne!(plan.runs[0].ctx.seed, plan.runs[2].ctx.seed);
    }

    #[test]
    fn common_random_numbers_share_seeds_across_points_not_replications() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = load_text(
            tmp.path(),
            "name: t\nfamily: chips\nseed: 3\nreplications: 2\ncommon_random_numbers: true\nparams:\n  load: 1\n  chip: slow\nsweep:\n  load: [1, 2]\n",
        )
        .unwrap();
        let seeds: Vec<u64> = plan.runs.iter().map(|r| r.ctx.seed).collect();
        assert_eq!(seeds[0], seeds[2]);
        assert_eq!(seeds[1], seeds[3]);
        assert_ne!(seeds[0], seeds[1]);
    }
}
