//! Checkpoint and resume of long runs: a run killed by a real signal midway continues from its last
//! checkpoint, and its tables equal an uninterrupted run's. Every family that saves checkpoints is
//! interrupted at a checkpoint (the hidden `--checkpoint-exit-after N` exits as if killed right
//! after the N-th one) and resumed, on one and two threads; the others refuse the flag and say why.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{assert_ok, runs, stderr, sysim};

/// A queue run long enough to be killed after its first checkpoint (≈ 107,000 simulated seconds,
/// checkpoints every 5,000 s), short enough for a debug build.
const LONG_RUN: &str = "name: ckpt-test\nfamily: queue\nseed: 3\nreplications: 1\nparams:\n  service_rate: 1.0\n  customers: 150000\n  warmup_customers: 1000\n  arrival_rate: 1.4\n  servers: 2\n";

fn checkpoint_files(dir: &Path) -> usize {
    checkpoint_names(dir).len()
}

/// Names of the checkpoint files in `dir`, sorted.
fn checkpoint_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "ckpt"))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        },
    );
    names.sort();
    names
}

/// The bytes of `file` in results folder `dir` (empty when absent).
fn table_bytes(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_default()
}

/// How one family's scenario is interrupted and resumed.
struct Interrupted<'a> {
    /// The scenario's YAML text.
    yaml: &'a str,
    /// `--checkpoint-every`.
    every: &'a str,
    /// The checkpoint after which the first invocation exits.
    exit_after: &'a str,
    /// A checkpoint file that must be present when it has exited (a stage's file, say).
    expect_file: Option<&'a str>,
    /// Whether both invocations write timelines, compared with the uninterrupted run's.
    traces: bool,
}

/// Runs the scenario uninterrupted, then, for one and two threads, with checkpoints and exiting
/// right after checkpoint `exit_after` (status 137, no tables), then resumes it from the folder:
/// its `runs.parquet` and `series.parquet` equal the uninterrupted run's byte for byte (and its
/// timelines, when asked), and no checkpoint file is left.
fn resumed_equals_uninterrupted(case: &Interrupted) {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("s.yaml");
    std::fs::write(&scenario, case.yaml).unwrap();
    let s = scenario.to_str().unwrap();
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let mut full = vec!["run", s, "--quiet", "--jobs", "2"];
    let (full_out, full_trace) = (path("full"), path("full-trace"));
    full.extend(["--out", &full_out]);
    if case.traces {
        full.extend(["--trace", &full_trace]);
    }
    assert_ok(&sysim(&full));
    for jobs in ["1", "2"] {
        let (out, ck, trace) = (
            path(&format!("out-{jobs}")),
            path(&format!("ck-{jobs}")),
            path(&format!("trace-{jobs}")),
        );
        let mut first = vec![
            "run",
            s,
            "--quiet",
            "--jobs",
            jobs,
            "--out",
            &out,
            "--checkpoint",
            &ck,
            "--checkpoint-every",
            case.every,
            "--checkpoint-exit-after",
            case.exit_after,
        ];
        if case.traces {
            first.extend(["--trace", &trace]);
        }
        let killed = sysim(&first);
        assert_eq!(
            killed.status.code(),
            Some(137),
            "jobs {jobs}: the run should stop at checkpoint {} (it ended first?): {}",
            case.exit_after,
            stderr(&killed)
        );
        assert!(!Path::new(&out).join("runs.parquet").exists());
        let saved = checkpoint_names(Path::new(&ck));
        assert!(!saved.is_empty(), "jobs {jobs}: no checkpoint left");
        if let Some(f) = case.expect_file.filter(|_| jobs == "1") {
            assert!(saved.iter().any(|n| n == f), "{saved:?} lacks {f}");
        }
        let mut resume = vec!["run", s, "--jobs", jobs, "--out", &out, "--resume", &ck];
        if case.traces {
            resume.extend(["--trace", &trace]);
        }
        let resumed = sysim(&resume);
        assert_ok(&resumed);
        assert!(
            stderr(&resumed).contains("checkpoint: continuing"),
            "{}",
            stderr(&resumed)
        );
        assert_eq!(
            checkpoint_files(Path::new(&ck)),
            0,
            "finished runs drop their checkpoints"
        );
        for table in ["runs.parquet", "series.parquet"] {
            assert!(
                table_bytes(Path::new(&out), table) == table_bytes(Path::new(&full_out), table),
                "jobs {jobs}: the resumed {table} differs from the uninterrupted one"
            );
        }
        if case.traces {
            for f in std::fs::read_dir(&full_trace).unwrap() {
                let name = f.unwrap().file_name();
                assert!(
                    std::fs::read(Path::new(&trace).join(&name)).ok()
                        == std::fs::read(Path::new(&full_trace).join(&name)).ok(),
                    "jobs {jobs}: the resumed timeline {name:?} differs"
                );
            }
        }
    }
}

#[test]
fn a_mobile_run_interrupted_at_a_checkpoint_resumes_to_the_same_tables_and_timelines() {
    // Pixel 7 under its stock governors (schedutil, quickstep, ALT-DVFS + memlat on their tickers)
    // and pinned at the top: 3 ShareGPT requests of ≤ 8 tokens, ≈ 10 s simulated each.
    resumed_equals_uninterrupted(&Interrupted {
        yaml: "name: ck-mobile\nfamily: mobile\nseed: 4\nparams:\n  soc: pixel-7\n  llm: tinyllama-1.1b-q4\n  governor: stock\n  workload: { requests: 3, max_response_tokens: 8 }\n  series_interval_s: 0.5\nsweep:\n  governor: [stock, performance]\n",
        every: "1s",
        exit_after: "2",
        expect_file: Some("run-0.ckpt"),
        traces: true,
    });
}

#[test]
fn a_mobile_run_resumed_from_an_untraced_checkpoint_says_what_its_timeline_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(
        path("s.yaml"),
        "name: ck-mobile-note\nfamily: mobile\nseed: 4\nparams:\n  soc: pixel-7\n  llm: tinyllama-1.1b-q4\n  governor: performance\n  workload: { requests: 2, max_response_tokens: 8 }\n",
    )
    .unwrap();
    let (s, out, ck, trace) = (path("s.yaml"), path("out"), path("ck"), path("trace"));
    let killed = sysim(&[
        "run",
        &s,
        "--quiet",
        "--out",
        &out,
        "--checkpoint",
        &ck,
        "--checkpoint-every",
        "1s",
        "--checkpoint-exit-after",
        "1",
    ]);
    assert_eq!(killed.status.code(), Some(137), "{}", stderr(&killed));
    let resumed = sysim(&[
        "run", &s, "--quiet", "--out", &out, "--resume", &ck, "--trace", &trace,
    ]);
    assert_ok(&resumed);
    let why = "resumed from a checkpoint written without --trace";
    assert!(stderr(&resumed).contains(why), "{}", stderr(&resumed));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&trace).join("run-00000.json")).unwrap())
            .unwrap();
    let note = doc["otherData"]["sysim_note"].as_str().unwrap_or_default();
    assert!(note.contains(why), "{note}");
}

#[test]
fn a_supernode_run_interrupted_while_serving_a_trace_resumes_to_the_same_tables() {
    // Llama-3.2-1B on a 910C serving 4 traced requests; the exit falls in the serving stage.
    let tmp = tempfile::tempdir().unwrap();
    let reqs = tmp.path().join("reqs.csv");
    std::fs::write(
        &reqs,
        "arrival_s,prompt_tokens,output_tokens\n0,256,3\n0.0001,128,2\n5,512,4\n5.1,64,2\n",
    )
    .unwrap();
    let yaml = format!(
        "name: ck-supernode\nfamily: supernode\nparams:\n  accel: ascend-910c\n  fabric: cloudmatrix384-ub\n  llm: llama-3.2-1b-q4\n  workload: {{ kind: request, prompt_tokens: 256, batch: 1, decode_steps: 2 }}\n  strategy: hyperoffload\n  budget_frac: 0.8\n  request_trace: {{ file: {} }}\nsweep:\n  strategy: [reactive, hyperoffload]\n",
        reqs.display()
    );
    resumed_equals_uninterrupted(&Interrupted {
        yaml: &yaml,
        every: "0.5ms",
        exit_after: SUPERNODE_EXIT_AFTER,
        expect_file: Some("run-0.serve.ckpt"),
        traces: false,
    });
}

/// The checkpoint of the supernode test's first run that falls in its serving stage (the device's
/// execution of the scenario's own request writes the ones before).
const SUPERNODE_EXIT_AFTER: &str = "14";

#[test]
fn an_fl_run_interrupted_between_rounds_resumes_to_the_same_tables() {
    // 12 participants, 4 rounds of real logistic-regression training, then settlement on the chain.
    resumed_equals_uninterrupted(&Interrupted {
        yaml: "name: ck-fl\nfamily: fl\nseed: 2\nparams:\n  participants: 12\n  data: { partition: iid }\n  network: { rounds: 4, deadline_s: 60, server_ingress_mbps: 100 }\nsweep:\n  settlement.protocol: [onchain, commit-challenge]\n",
        every: "1s",
        exit_after: "1",
        expect_file: Some("run-0.ckpt"),
        traces: false,
    });
}

#[test]
fn an_fl_run_whose_coordinator_waits_for_the_chain_resumes_to_the_same_tables() {
    // The chain is co-simulated: a resumed run rebuilds its revm state by replaying the saved
    // rounds. Here the chain feeds back (the coordinator waits for each commitment, disputes
    // during training, a congested start), so any difference in the rebuilt state would move
    // the later rounds.
    resumed_equals_uninterrupted(&Interrupted {
        yaml: "name: ck-fl-cosim\nfamily: fl\nseed: 4\nparams:\n  participants: 10\n  data: { partition: iid }\n  network: { rounds: 5, deadline_s: 60, server_ingress_mbps: 100 }\n  settlement: { protocol: commit-challenge, dishonest_prob: 0.7, watcher_delay_s: 5, commit_wait_max_s: 900 }\n  chain: { congestion: [[0, 150]], background_sd: 0.2 }\n",
        every: "1s",
        exit_after: "2",
        expect_file: Some("run-0.ckpt"),
        traces: true,
    });
}

#[test]
fn a_killed_run_resumes_from_its_checkpoint_and_equals_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("long.yaml");
    std::fs::write(&scenario, LONG_RUN).unwrap();
    let (s, ckpt) = (scenario.to_str().unwrap(), tmp.path().join("ckpt"));
    let (killed, full) = (tmp.path().join("killed"), tmp.path().join("full"));

    let mut child = Command::new(env!("CARGO_BIN_EXE_sysim"))
        .args(["run", s, "--quiet", "--out", killed.to_str().unwrap()])
        .args([
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--checkpoint-every",
            "5000s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sysim starts");
    let started = Instant::now();
    while checkpoint_files(&ckpt) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before its first checkpoint was seen"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint written"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL delivered"); // a real signal, not a cooperative stop
    child.wait().unwrap();
    assert!(
        !killed.join("runs.parquet").exists(),
        "a killed run leaves no tables"
    );
    assert_eq!(checkpoint_files(&ckpt), 1);

    let out = sysim(
        &["run", s, "--out", killed.to_str().unwrap()]
            .into_iter()
            .chain(["--resume", ckpt.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains("checkpoint: continuing 1 run from its last checkpoint"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        checkpoint_files(&ckpt),
        0,
        "finished runs drop their checkpoint"
    );

    assert_ok(&sysim(&[
        "run",
        s,
        "--quiet",
        "--out",
        full.to_str().unwrap(),
    ]));
    assert!(runs(&killed).equals_missing(&runs(&full)));
}

#[test]
fn a_resume_with_trace_says_which_kept_runs_have_no_timeline() {
    // Run 0 (2,000 customers, no checkpoint due) finishes and is journaled; run 1 stops at its
    // first checkpoint. The resume traces run 1 whole and names run 0 as untraced.
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("s.yaml");
    std::fs::write(
        &scenario,
        "name: ck-note\nfamily: queue\nseed: 3\nparams:\n  service_rate: 1.0\n  arrival_rate: 1.4\n  servers: 2\nsweep:\n  customers: [2000, 20000]\n",
    )
    .unwrap();
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let (s, out, ck, trace) = (path("s.yaml"), path("out"), path("ck"), path("trace"));
    let killed = sysim(&[
        "run",
        &s,
        "--quiet",
        "--jobs",
        "1",
        "--out",
        &out,
        "--checkpoint",
        &ck,
        "--checkpoint-every",
        "5000s",
        "--checkpoint-exit-after",
        "1",
    ]);
    assert_eq!(killed.status.code(), Some(137), "{}", stderr(&killed));
    assert_eq!(checkpoint_names(Path::new(&ck)), ["run-1.ckpt"]);
    let resumed = sysim(&[
        "run", &s, "--quiet", "--jobs", "1", "--out", &out, "--resume", &ck, "--trace", &trace,
    ]);
    assert_ok(&resumed);
    assert!(
        stderr(&resumed)
            .contains("no timeline for 1 of the runs this resume kept as finished (runs 0)"),
        "{}",
        stderr(&resumed)
    );
    let trace = Path::new(&trace);
    assert!(trace.join("run-00001.json").is_file());
    assert!(!trace.join("run-00000.json").exists());
    let note = std::fs::read_to_string(trace.join("RESUMED.txt")).unwrap();
    assert!(note.contains("(runs 0)"), "{note}");
}

#[test]
fn checkpoint_flags_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("ck");
    let ck = ck.to_str().unwrap();
    // --checkpoint needs an interval with a unit.
    let out = sysim(&["run", "scenarios/quickstart.yaml", "--checkpoint", ck]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = sysim(&[
        "run",
        "scenarios/quickstart.yaml",
        "--checkpoint",
        ck,
        "--checkpoint-every",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("with a unit"), "{}", stderr(&out));
    // Resuming from a folder that holds no checkpoints names it.
    let out = sysim(&["run", "scenarios/quickstart.yaml", "--resume", ck]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a checkpoint folder"),
        "{}",
        stderr(&out)
    );
    // A family without checkpoint support says so, and why, naming the families that do.
    for (scenario, family, why) in [
        ("scenarios/sptc/gpus.yaml", "sptc", "short batched numerics"),
        (
            "scenarios/fpga/boards.yaml",
            "fpga",
            "no event loop to save",
        ),
        (
            "scenarios/fl/polar-defenses.yaml",
            "fl-backdoor",
            "not serialised",
        ),
    ] {
        let out = sysim(&[
            "run",
            scenario,
            "--checkpoint",
            ck,
            "--checkpoint-every",
            "1s",
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("family `{family}` does not save checkpoints"))
                && err.contains(why)
                && err.contains("families that do: queue, mobile, supernode, fl"),
            "{err}"
        );
    }
}
