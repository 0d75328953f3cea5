//! Hostile input, table-driven: every case runs the `sysim` binary in a fresh folder and asserts
//! its exit code, a piece of its message, and — for every refused case — that nothing in the
//! folder was written or changed. Cases cover every family, the CLI, merge, plot, resume and
//! broken pipes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::root;

/// Every registered family (the registry test keeps this list honest).
const FAMILIES: [&str; 9] = [
    "queue",
    "mobile",
    "supernode",
    "fpga",
    "sptc",
    "fl",
    "fl-lora",
    "fl-personal",
    "fl-backdoor",
];

/// A small queue sweep that runs in well under a second: 4 runs, with a series table.
const SMALL: &str = "name: small
family: queue
seed: 7
replications: 2
params:
  arrival_rate: 0.5
  service_rate: 1.0
  customers: 300
  series_interval_s: 50
sweep:
  servers: [1, 2]
";

/// Runs `sysim` in `dir` with `args`.
fn sysim_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sysim"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the sysim binary runs")
}

/// Every file under `dir` (relative path → contents), to prove a refused command changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            if kind.is_dir() {
                out.insert(rel.join(""), Vec::new());
                walk(base, &path, out);
            } else if kind.is_file() {
                out.insert(rel, std::fs::read(&path).unwrap());
            } else {
                out.insert(rel, b"<special>".to_vec());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// One hostile case: files to create, optional preparation, the command, and what must come out.
struct Case {
    what: String,
    files: Vec<(&'static str, String)>,
    prepare: Option<fn(&Path)>,
    args: Vec<&'static str>,
    code: i32,
    message: String,
}

fn case(
    what: impl Into<String>,
    args: &[&'static str],
    code: i32,
    message: impl Into<String>,
) -> Case {
    Case {
        what: what.into(),
        files: Vec::new(),
        prepare: None,
        args: args.to_vec(),
        code,
        message: message.into(),
    }
}

impl Case {
    fn file(mut self, name: &'static str, text: impl Into<String>) -> Self {
        self.files.push((name, text.into()));
        self
    }

    fn prepare(mut self, f: fn(&Path)) -> Self {
        self.prepare = Some(f);
        self
    }
}

/// Runs the small scenario into `dir/<out>` (a valid results folder), in `format`.
fn small_run(dir: &Path, out: &str, format: &str) {
    std::fs::write(dir.join("small.yaml"), SMALL).unwrap();
    let o = sysim_in(
        dir,
        &[
            "run",
            "small.yaml",
            "--quiet",
            "--format",
            format,
            "--out",
            out,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn shards(dir: &Path, seed: &str) {
    std::fs::write(dir.join("small.yaml"), SMALL).unwrap();
    for (k, out) in [("0/2", "p0"), ("1/2", "p1")] {
        let o = sysim_in(
            dir,
            &[
                "run",
                "small.yaml",
                "--quiet",
                "--seed",
                seed,
                "--shard",
                k,
                "--out",
                out,
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

fn family_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for family in FAMILIES {
        let yaml = |params: &str| format!("name: h\nfamily: {family}\nparams:\n{params}\n");
        cases.push(
            case(
                format!("{family}: unknown params key"),
                &["run", "s.yaml"],
                2,
                "unknown field `bogus_key`",
            )
            .file("s.yaml", yaml("  bogus_key: 1")),
        );
        cases.push(
            case(
                format!("{family}: .nan"),
                &["run", "s.yaml"],
                2,
                "s.yaml:4:3: key `params.x`: must be a finite number, got NaN",
            )
            .file("s.yaml", yaml("  x: .nan")),
        );
        cases.push(
            case(
                format!("{family}: -.inf in a sweep"),
                &["run", "s.yaml"],
                2,
                "key `sweep.x[1]`: must be a finite number, got -inf",
            )
            .file(
                "s.yaml",
                format!("{}sweep:\n  x: [1, -.inf]\n", yaml("  x: 1")),
            ),
        );
        cases.push(
            case(
                format!("{family}: params not a mapping"),
                &["run", "s.yaml"],
                2,
                "key `params`: expected a mapping",
            )
            .file(
                "s.yaml",
                format!("name: h\nfamily: {family}\nparams: [1, 2]\n"),
            ),
        );
        cases.push(
            case(
                format!("{family}: name is a path"),
                &["run", "s.yaml"],
                2,
                "s.yaml:1:1: key `name`: `../../escape` is not a name",
            )
            .file("s.yaml", format!("name: ../../escape\nfamily: {family}\n")),
        );
        cases.push(
            case(
                format!("{family}: 1e9 replications"),
                &["run", "s.yaml"],
                2,
                "exceeds 1000000 runs",
            )
            .file(
                "s.yaml",
                format!("name: h\nfamily: {family}\nreplications: 1000000000\n"),
            ),
        );
    }
    cases
}

fn input_cases() -> Vec<Case> {
    let deep_flow = format!(
        "name: d\nfamily: queue\nparams: {{x: {}1{}}}\n",
        "[".repeat(200),
        "]".repeat(200)
    );
    let mut deep_block = String::from("name: d\nfamily: queue\nparams:\n");
    for i in 1..100 {
        deep_block.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
    }
    vec![
        case("scenario missing", &["run", "nope.yaml"], 2, "nope.yaml: cannot read scenario file: no such file or directory"),
        case("scenario is a folder", &["run", "."], 2, "not a regular file"),
        case("scenario is /dev/zero", &["run", "/dev/zero"], 2, "/dev/zero: cannot read scenario file: not a regular file"),
        case("scenario is a FIFO", &["run", "fifo.yaml"], 2, "not a regular file").prepare(|d| mkfifo(&d.join("fifo.yaml"))),
        case("scenario over 1 MiB", &["run", "big.yaml"], 2, "more than the 1048576 bytes")
            .file("big.yaml", format!("name: b\nfamily: queue\n#{}\n", "x".repeat(1 << 20))),
        case("scenario not UTF-8", &["run", "bin.yaml"], 2, "not UTF-8").prepare(|d| std::fs::write(d.join("bin.yaml"), [0xff, 0xfe, 0x00]).unwrap()),
        case("flow nesting 200 deep", &["run", "deep.yaml"], 2, "deep.yaml:3:1: YAML nested deeper than 64 levels").file("deep.yaml", deep_flow),
        case("block nesting 100 deep", &["run", "deep.yaml"], 2, "YAML nested deeper than 64 levels").file("deep.yaml", deep_block),
        case("sweep product overflows", &["run", "s.yaml"], 2, "exceeds 1000000 runs")
            .file("s.yaml", format!("name: w\nfamily: queue\nsweep:\n{}", (0..8).map(|i| format!("  a{i}: [{}]\n", (0..300).map(|v| v.to_string()).collect::<Vec<_>>().join(", "))).collect::<String>())),
        case("replications 0", &["run", "s.yaml"], 2, "key `replications`: must be ≥ 1").file("s.yaml", "name: z\nfamily: queue\nreplications: 0\n"),
        case("mobile series every 1e-12 s", &["run", "s.yaml"], 2, "key `params.series_interval_s`: must be ≥ 0.001")
            .file("s.yaml", "name: m\nfamily: mobile\nparams:\n  soc: pixel-7\n  llm: tinyllama-1.1b-q4\n  governor: stock\n  workload: {arrivals: closed, requests: 2, think_s: 1.0, max_response_tokens: 8}\n  series_interval_s: 1.0e-12\n"),
        case("mobile fixed governor with an unknown key", &["run", "s.yaml"], 2, "unknown field `turbo`")
            .file("s.yaml", "name: m\nfamily: mobile\nparams:\n  soc: pixel-7\n  llm: tinyllama-1.1b-q4\n  governor: {fixed: {cpu: 0, gpu: 0, mem: 0, turbo: 1}}\n"),
        case("preset file is a FIFO", &["run", "s.yaml"], 2, "not a regular file")
            .file("s.yaml", "name: m\nfamily: mobile\nparams:\n  soc: p.yaml\n")
            .prepare(|d| mkfifo(&d.join("p.yaml"))),
        case("preset file is a folder", &["run", "s.yaml"], 2, "not a regular file")
            .file("s.yaml", "name: m\nfamily: mobile\nparams:\n  soc: p.yaml\n")
            .prepare(|d| std::fs::create_dir(d.join("p.yaml")).unwrap()),
        case("preset file with .nan names the preset file", &["run", "s.yaml"], 2, "p.yaml:2:1: key `x[2]`: must be a finite number, got NaN")
            .file("s.yaml", "name: m\nfamily: mobile\nparams:\n  soc: p.yaml\n")
            .file("p.yaml", "name: x\nx: [1, 2, .nan]\n"),
        case("bad shard", &["run", "small.yaml", "--shard", "2/2"], 2, "expected K/N").file("small.yaml", SMALL),
        case("negative seed", &["run", "small.yaml", "--seed=-1"], 2, "invalid value '-1' for '--seed").file("small.yaml", SMALL),
        case("zero checkpoint interval", &["run", "small.yaml", "--checkpoint", "c", "--checkpoint-every", "0s"], 2, "expected a positive time").file("small.yaml", SMALL),
        case("unknown family in schema", &["schema", "nope"], 2, "unknown family `nope`"),
        case("unknown format", &["run", "small.yaml", "--format", "xlsx"], 2, "invalid value 'xlsx'").file("small.yaml", SMALL),
        case("plot of no folder", &["plot", "nowhere", "--x", "a", "--y", "b"], 2, "nowhere: no such folder"),
        case("merge of no folder", &["merge", "nowhere", "--out", "m"], 2, "nowhere: no such folder"),
    ]
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo");
}

fn folder_cases() -> Vec<Case> {
    vec![
        case(
            "plot a folder with a changed table",
            &["plot", "r", "--x", "servers", "--y", "mean_sojourn_s"],
            2,
            "r: runs.parquet has other contents",
        )
        .prepare(|d| {
            small_run(d, "r", "parquet");
            let p = d.join("r/runs.parquet");
            let mut bytes = std::fs::read(&p).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 1;
            std::fs::write(p, bytes).unwrap();
        }),
        case(
            "plot a folder with a truncated table",
            &["plot", "r", "--x", "servers", "--y", "mean_sojourn_s"],
            2,
            "bytes, the manifest says",
        )
        .prepare(|d| {
            small_run(d, "r", "csv");
            let p = d.join("r/runs.csv");
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(p, &bytes[..bytes.len() - 10]).unwrap();
        }),
        case(
            "plot a folder without manifest",
            &["plot", "r", "--x", "servers", "--y", "mean_sojourn_s"],
            2,
            "no manifest.json",
        )
        .prepare(|d| {
            small_run(d, "r", "parquet");
            std::fs::remove_file(d.join("r/manifest.json")).unwrap();
        }),
        case(
            "plot a folder with a stray table",
            &["plot", "r", "--x", "servers", "--y", "mean_sojourn_s"],
            2,
            "runs.csv is not listed in the manifest",
        )
        .prepare(|d| {
            small_run(d, "r", "parquet");
            std::fs::write(d.join("r/runs.csv"), "run\n0\n").unwrap();
        }),
        case(
            "plot a folder with a corrupt manifest",
            &["plot", "r", "--x", "servers", "--y", "mean_sojourn_s"],
            2,
            "not a manifest of this sysim",
        )
        .prepare(|d| {
            small_run(d, "r", "parquet");
            std::fs::write(d.join("r/manifest.json"), "{\"files\": [\"runs.parquet\"]}").unwrap();
        }),
        case(
            "plot a table listed but missing",
            &[
                "plot",
                "r",
                "--table",
                "series",
                "--x",
                "t_s",
                "--y",
                "in_system",
            ],
            2,
            "series.parquet is listed in the manifest but missing",
        )
        .prepare(|d| {
            small_run(d, "r", "parquet");
            std::fs::remove_file(d.join("r/series.parquet")).unwrap();
        }),
        case(
            "resume a folder of another scenario",
            &["run", "small.yaml", "--resume", "--out", "r", "--seed", "8"],
            2,
            "holds results of a different scenario",
        )
        .prepare(|d| small_run(d, "r", "parquet")),
        case(
            "resume a changed folder",
            &["run", "small.yaml", "--resume", "--out", "r"],
            2,
            "runs.csv has",
        )
        .prepare(|d| {
            small_run(d, "r", "csv");
            let p = d.join("r/runs.csv");
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(p, text.replacen(",0,", ",1,", 1)).unwrap();
        }),
        case(
            "resume a folder without manifest",
            &["run", "small.yaml", "--resume", "--out", "r"],
            2,
            "no manifest.json",
        )
        .prepare(|d| {
            small_run(d, "r", "csv");
            std::fs::remove_file(d.join("r/manifest.json")).unwrap();
        }),
        case(
            "run into a folder another process holds",
            &["run", "small.yaml", "--out", "r"],
            2,
            "another sysim process is writing this folder",
        )
        .file("small.yaml", SMALL)
        .prepare(|d| {
            std::fs::create_dir(d.join("r")).unwrap();
            std::mem::forget(sim_run::lock::lock(&d.join("r")).unwrap());
        }),
        case(
            "merge shards of different seeds",
            &["merge", "p0", "q1", "--out", "m"],
            2,
            "seed 4 vs 3",
        )
        .prepare(|d| {
            shards(d, "3");
            std::fs::rename(d.join("p1"), d.join("q1")).unwrap();
            shards(d, "4");
            std::fs::remove_dir_all(d.join("p1")).unwrap();
        }),
        case(
            "merge an incomplete shard set",
            &["merge", "p0", "--out", "m"],
            2,
            "incomplete set of shards: 2 of 4 runs",
        )
        .prepare(|d| shards(d, "3")),
        case(
            "merge a shard twice",
            &["merge", "p0", "p0", "p1", "--out", "m"],
            2,
            "duplicate run indices",
        )
        .prepare(|d| shards(d, "3")),
        case(
            "merge shards of another scenario",
            &["merge", "p0", "r", "--out", "m"],
            2,
            "not shards of one run",
        )
        .prepare(|d| {
            shards(d, "3");
            std::fs::write(
                d.join("other.yaml"),
                SMALL.replace("customers: 300", "customers: 301"),
            )
            .unwrap();
            let o = sysim_in(
                d,
                &[
                    "run",
                    "other.yaml",
                    "--quiet",
                    "--seed",
                    "3",
                    "--shard",
                    "1/2",
                    "--out",
                    "r",
                ],
            );
            assert!(o.status.success());
        }),
        case(
            "merge a changed shard",
            &["merge", "p0", "p1", "--out", "m"],
            2,
            "p1: runs.parquet has",
        )
        .prepare(|d| {
            shards(d, "3");
            let p = d.join("p1/runs.parquet");
            let mut bytes = std::fs::read(&p).unwrap();
            bytes.push(0);
            std::fs::write(p, bytes).unwrap();
        }),
        case(
            "merge into one of the shards",
            &["merge", "p0", "p1", "--out", "p0"],
            2,
            "is one of the input shards",
        )
        .prepare(|d| shards(d, "3")),
    ]
}

/// A plan beyond the machine's memory or the work bound, in every family: the shipped scenario
/// with one param (or the replications) made huge but in range; refused naming the param.
fn resource_cases() -> Vec<Case> {
    let scenario =
        |path: &str| std::fs::read_to_string(root().join("scenarios").join(path)).unwrap();
    let huge: [(&str, &str, &[&'static str], &str); 9] = [
        (
            "queue",
            "queue/mmc-erlang-c.yaml",
            &["--set", "params.customers=1000000000000000000"],
            "params.customers",
        ),
        (
            "mobile",
            "mobile/fuse-governors.yaml",
            &["--set", "params.workload.requests=1000000000000"],
            "params.workload.requests",
        ),
        (
            "supernode",
            "supernode/headline-inference.yaml",
            &["--set", "params.workload.batch=1000000000000"],
            "params.workload.batch",
        ),
        (
            "fpga",
            "fpga/quality-vs-bits.yaml",
            &[
                "--set",
                "params.quality.sentences=64",
                "--set",
                "replications=1000",
            ],
            "params.quality.sentences",
        ),
        (
            "sptc",
            "sptc/gpus.yaml",
            &[
                "--set",
                "params.workload.kernel={m: 65536, n: 65536, k: 65536}",
                "--set",
                "replications=100000",
            ],
            "params.workload.kernel.k",
        ),
        (
            "fl",
            "fl/settle-800.yaml",
            &[
                "--set",
                "params.participants=100000",
                "--set",
                "replications=1000",
            ],
            "params.participants",
        ),
        (
            "fl-lora",
            "fl/fedmomentum-methods.yaml",
            &["--set", "params.hidden=[100000, 100000]"],
            "params.hidden",
        ),
        (
            "fl-personal",
            "fl/pfednavi-methods.yaml",
            &["--set", "params.samples_per_client=1000000000000"],
            "params.samples_per_client",
        ),
        (
            "fl-backdoor",
            "fl/polar-defenses.yaml",
            &["--set", "params.clients=1000000000000"],
            "params.clients",
        ),
    ];
    let mut cases = Vec::new();
    for (family, path, set, key) in huge {
        let mut args = vec!["run", "s.yaml", "--out", "o"];
        args.extend_from_slice(set);
        cases.push(
            case(
                format!("{family}: a plan beyond the machine"),
                &args,
                2,
                format!("key `{key}`"),
            )
            .file("s.yaml", scenario(path)),
        );
    }
    // --allow-large skips the check: the run goes on to fail on its unwritable --out instead.
    cases.push(
        case(
            "--allow-large skips the resource check",
            &[
                "run",
                "s.yaml",
                "--allow-large",
                "--out",
                "o/x",
                "--set",
                "params.customers=1000000000000000000",
            ],
            2,
            "output folder is not writable",
        )
        .file("s.yaml", scenario("queue/mmc-erlang-c.yaml"))
        .file("o", ""),
    );
    cases
}

#[test]
fn hostile_inputs_are_refused_with_a_message_and_change_nothing() {
    let mut cases = family_cases();
    cases.extend(resource_cases());
    cases.extend(input_cases());
    cases.extend(folder_cases());
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let tmp = tempfile::tempdir().unwrap();
        for (name, text) in &c.files {
            std::fs::write(tmp.path().join(name), text).unwrap();
        }
        if let Some(prepare) = c.prepare {
            prepare(tmp.path());
        }
        let before = snapshot(tmp.path());
        let out = sysim_in(tmp.path(), &c.args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let after = snapshot(tmp.path());
        let problem = if out.status.code() != Some(c.code) {
            Some(format!("exit {:?}, expected {}", out.status.code(), c.code))
        } else if !stderr.contains(&c.message) {
            Some(format!("message lacks `{}`", c.message))
        } else if stderr.contains("panicked") {
            Some("panicked".into())
        } else if before != after {
            let changed: Vec<_> = after
                .keys()
                .chain(before.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .collect();
            Some(format!("changed {changed:?}"))
        } else {
            None
        };
        if let Some(p) = problem {
            failures.push(format!("{}: {p}\n    stderr: {}", c.what, stderr.trim()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases not handled:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_family_list_here_is_the_registry() {
    let names: Vec<String> = sysim::registry()
        .families()
        .map(|f| f.name().to_owned())
        .collect();
    assert_eq!(names, FAMILIES);
}

#[test]
fn every_schema_object_refuses_unknown_keys() {
    fn walk(v: &serde_json::Value, at: &str, bad: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if map.contains_key("properties")
                    && map.get("additionalProperties") != Some(&serde_json::Value::Bool(false))
                {
                    bad.push(at.to_owned());
                }
                for (k, child) in map {
                    walk(child, &format!("{at}/{k}"), bad);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{at}/{i}"), bad);
                }
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for family in sysim::registry().families() {
        walk(&family.schema(), family.name(), &mut bad);
    }
    assert!(
        bad.is_empty(),
        "objects without additionalProperties: false: {bad:?}"
    );
}

/// `sysim list | head -1`: the reader closes the pipe; sysim must end quietly, not panic.
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    for args in [&["list"][..], &["schema"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sysim"))
            .args(args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 8];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The pipe is closed here (stdout dropped), as `head` does.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// The folder is one unit: rerunning in another format or without series leaves no stale tables,
/// CSV folders read back (u64 seeds), `--jobs` far above the run count works, and merge writes a
/// manifest (and accepts `--quiet`).
#[test]
fn folders_stay_whole_across_reruns_formats_and_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    small_run(d, "r", "parquet");
    small_run(d, "r", "csv");
    let mut names: Vec<String> = std::fs::read_dir(d.join("r"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    assert_eq!(names, ["manifest.json", "runs.csv", "series.csv"]);

    let plot = sysim_in(
        d,
        &[
            "plot",
            "r",
            "--x",
            "servers",
            "--y",
            "mean_sojourn_s",
            "--out",
            "fig",
        ],
    );
    assert!(
        plot.status.success(),
        "{}",
        String::from_utf8_lossy(&plot.stderr)
    );
    let resume = sysim_in(
        d,
        &[
            "run",
            "small.yaml",
            "--quiet",
            "--resume",
            "--format",
            "csv",
            "--out",
            "r",
        ],
    );
    assert!(
        resume.status.success(),
        "{}",
        String::from_utf8_lossy(&resume.stderr)
    );

    let no_series = SMALL.replace("  series_interval_s: 50\n", "");
    std::fs::write(d.join("small.yaml"), no_series).unwrap();
    let o = sysim_in(
        d,
        &[
            "run",
            "small.yaml",
            "--quiet",
            "--jobs",
            "100000",
            "--format",
            "csv",
            "--out",
            "r",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !d.join("r/series.csv").exists(),
        "stale series table left behind"
    );
    sim_run::manifest::verify(&d.join("r")).unwrap();

    shards(d, "5");
    let o = sysim_in(
        d,
        &[
            "merge", "p0", "p1", "--quiet", "--format", "csv", "--out", "m",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty(), "--quiet prints nothing");
    let m = sim_run::manifest::verify(&d.join("m")).unwrap();
    assert_eq!((m.runs_written, m.shard, m.scenario.seed), (4, None, 5));
}
