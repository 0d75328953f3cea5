//! Finished runs survive interruption: a sweep stopped by SIGINT (clean stop) or SIGKILL (no
//! warning) keeps the runs it finished in its journal, and `--resume` completes it with tables equal,
//! byte for byte, to an uninterrupted sweep's.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{assert_ok, stderr, sysim};

/// Sixteen queue runs of ≈ 0.1 s each in a debug build, one at a time: long enough to interrupt
/// midway, short enough for CI.
const SWEEP: &str = "name: journal-test\nfamily: queue\nseed: 11\nreplications: 16\nparams:\n  service_rate: 1.0\n  customers: 40000\n  warmup_customers: 100\n  arrival_rate: 1.4\n  servers: 2\n";

/// Bytes of the journal's header frame (16 bytes of frame head, 8 of magic, 16 of plan key).
const HEADER_BYTES: u64 = 40;

fn start(scenario: &str, out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sysim"))
        .args(["run", scenario, "--jobs", "1", "--quiet", "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sysim starts")
}

/// Waits until the journal in `out` holds at least one finished run.
fn wait_for_a_journaled_run(child: &mut Child, out: &Path) {
    let started = Instant::now();
    let journal = out.join("journal.bin");
    while std::fs::metadata(&journal).map_or(0, |m| m.len()) <= HEADER_BYTES {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before a run was journaled"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no run journaled"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Resumes the sweep into `out` and returns how many runs it kept.
fn resume(scenario: &str, out: &Path) -> usize {
    let out_dir = out.to_str().unwrap();
    let done = sysim(&["run", scenario, "--jobs", "1", "--out", out_dir, "--resume"]);
    assert_ok(&done);
    let text = stderr(&done);
    let kept = text
        .split("resume: kept ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume line in: {text}"));
    assert!(
        !out.join("journal.bin").exists(),
        "the journal is removed once the folder is written"
    );
    kept
}

#[test]
fn interrupted_sweeps_keep_their_finished_runs_and_resume_to_identical_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("sweep.yaml");
    std::fs::write(&scenario, SWEEP).unwrap();
    let s = scenario.to_str().unwrap();
    let full = tmp.path().join("full");
    assert_ok(&sysim(&[
        "run",
        s,
        "--quiet",
        "--out",
        full.to_str().unwrap(),
    ]));
    let expected = std::fs::read(full.join("runs.parquet")).unwrap();

    // SIGKILL: no chance to clean up; the journal alone keeps the finished runs.
    let killed = tmp.path().join("killed");
    let mut child = start(s, &killed);
    wait_for_a_journaled_run(&mut child, &killed);
    child.kill().expect("SIGKILL delivered");
    child.wait().unwrap();
    assert!(!killed.join("runs.parquet").exists());
    // A journal of this folder is refused by another scenario's --resume, and left as it was.
    let journal = killed.join("journal.bin");
    let before = std::fs::read(&journal).unwrap();
    let other = tmp.path().join("other.yaml");
    std::fs::write(&other, SWEEP.replace("seed: 11", "seed: 12")).unwrap();
    let refused = sysim(&[
        "run",
        other.to_str().unwrap(),
        "--out",
        killed.to_str().unwrap(),
        "--resume",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("journal of a different scenario"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read(&journal).unwrap(), before);
    // A record torn by a kill mid-write (its frame cut short after the length) is dropped.
    std::fs::write(
        &journal,
        [before.as_slice(), b"\x40\0\0\0\0\0\0\0torn"].concat(),
    )
    .unwrap();
    let kept = resume(s, &killed);
    assert!((1..16).contains(&kept), "kept {kept} of 16");
    assert_eq!(
        std::fs::read(killed.join("runs.parquet")).unwrap(),
        expected
    );

    // SIGINT: no new run starts, the run in flight finishes, the process says what it kept.
    let stopped = tmp.path().join("stopped");
    let mut child = start(s, &stopped);
    wait_for_a_journaled_run(&mut child, &stopped);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(
        text.contains("interrupted:") && text.contains("runs finished and are kept"),
        "{text}"
    );
    assert!(text.contains("--resume"), "{text}");
    assert!(
        !stopped.join("runs.parquet").exists(),
        "an interrupted sweep writes no tables"
    );
    let kept = resume(s, &stopped);
    assert!((1..16).contains(&kept), "kept {kept} of 16");
    assert!(
        text.contains(&format!("interrupted: {kept} of 16 runs")),
        "{text}"
    );
    assert_eq!(
        std::fs::read(stopped.join("runs.parquet")).unwrap(),
        expected
    );
}
