//! Same scenario and seed ⇒ identical tables, whatever the thread count or shard split.

use crate::common::{assert_ok, runs, sysim};

#[test]
fn jobs_and_shards_give_identical_runs_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    let scenario = "scenarios/quickstart.yaml";
    for (name, extra) in [("j1", vec!["--jobs", "1"]), ("j2", vec!["--jobs", "2"])] {
        let out_dir = dir(name);
        let mut args = vec!["run", scenario, "--quiet", "--out", out_dir.as_str()];
        args.extend(extra);
        assert_ok(&sysim(&args));
    }
    let j1 = std::fs::read(tmp.path().join("j1/runs.parquet")).unwrap();
    let j2 = std::fs::read(tmp.path().join("j2/runs.parquet")).unwrap();
    assert_eq!(j1, j2, "runs.parquet differs between --jobs 1 and --jobs 2");

    let mut parts = Vec::new();
    for k in 0..3 {
        let part = dir(&format!("part{k}"));
        let shard = format!("{k}/3");
        assert_ok(&sysim(&[
            "run", scenario, "--quiet", "--shard", &shard, "--out", &part,
        ]));
        parts.push(part);
    }
    let merged = dir("merged");
    let mut args = vec!["merge"];
    args.extend(parts.iter().map(String::as_str));
    args.extend(["--out", merged.as_str()]);
    assert_ok(&sysim(&args));
    let full = runs(&tmp.path().join("j1"));
    let union = runs(&tmp.path().join("merged"));
    assert_eq!(full.shape(), union.shape());
    assert!(
        full.equals_missing(&union),
        "merged shards differ from the full run:\n{full}\n{union}"
    );
    let part0 = runs(&tmp.path().join("part0"));
    assert!(part0.height() < full.height() && part0.height() > 0);
}

#[test]
fn a_different_seed_changes_the_results() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a").to_string_lossy().into_owned();
    let b = tmp.path().join("b").to_string_lossy().into_owned();
    let s = "scenarios/quickstart.yaml";
    assert_ok(&sysim(&["run", s, "--quiet", "--out", &a]));
    assert_ok(&sysim(&["run", s, "--quiet", "--seed", "43", "--out", &b]));
    let (ra, rb) = (
        runs(tmp.path().join("a").as_path()),
        runs(tmp.path().join("b").as_path()),
    );
    assert!(
        !ra.column("mean_sojourn_s")
            .unwrap()
            .equals(rb.column("mean_sojourn_s").unwrap())
    );
}

#[test]
fn resume_runs_only_what_is_missing_and_equals_a_full_run() {
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("part");
    let full = tmp.path().join("full");
    let s = "scenarios/quickstart.yaml";
    let p = part.to_str().unwrap();
    assert_ok(&sysim(&["run", s, "--quiet", "--shard", "0/2", "--out", p]));
    let out = sysim(&["run", s, "--resume", "--out", p]);
    assert_ok(&out);
    assert!(
        crate::common::stderr(&out).contains("resume: kept 12 finished runs, ran 12"),
        "{}",
        crate::common::stderr(&out)
    );
    assert_ok(&sysim(&[
        "run",
        s,
        "--quiet",
        "--out",
        full.to_str().unwrap(),
    ]));
    assert!(runs(&part).equals_missing(&runs(&full)));
    // Results of another scenario are not silently mixed in.
    let out = sysim(&[
        "run",
        "scenarios/queue/mmc-erlang-c.yaml",
        "--quiet",
        "--resume",
        "--out",
        p,
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        crate::common::stderr(&out)
    );
}
