//! Checkpoint and resume of long runs: a run killed by a real signal midway continues from its last
//! checkpoint, and its tables equal an uninterrupted run's.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{assert_ok, runs, stderr, sysim};

/// A queue run long enough to be killed after its first checkpoint (≈ 107,000 simulated seconds,
/// checkpoints every 5,000 s), short enough for a debug build.
const LONG_RUN: &str = "name: ckpt-test\nfamily: queue\nseed: 3\nreplications: 1\nparams:\n  service_rate: 1.0\n  customers: 150000\n  warmup_customers: 1000\n  arrival_rate: 1.4\n  servers: 2\n";

fn checkpoint_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "ckpt"))
            .count()
    })
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
    // A family without checkpoint support says so.
    let out = sysim(&[
        "run",
        "scenarios/sptc/gpus.yaml",
        "--checkpoint",
        ck,
        "--checkpoint-every",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("does not save checkpoints"),
        "{}",
        stderr(&out)
    );
}
