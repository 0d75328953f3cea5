//! The Slurm launcher, run locally for every array index with Slurm's variables set, then merged,
//! equals a single run row for row.

use std::process::Command;

use crate::common::{assert_ok, root, runs, sysim};

#[test]
fn slurm_array_parts_merge_to_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = tmp.path().join("shards");
    let count = 3;
    for index in 0..count {
        let out = Command::new("bash")
            .arg("deploy/slurm.sbatch")
            .current_dir(root())
            .env("SCENARIO", "scenarios/quickstart.yaml")
            .env("OUT", &shards)
            .env("SYSIM", env!("CARGO_BIN_EXE_sysim"))
            .env("SLURM_ARRAY_TASK_ID", index.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", count.to_string())
            .env("SLURM_CPUS_PER_TASK", "1")
            .output()
            .unwrap();
        assert_ok(&out);
    }
    let merged = tmp.path().join("merged");
    let pattern = shards.join("part-*");
    assert_ok(&sysim(&[
        "merge",
        pattern.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]));
    let single = tmp.path().join("single");
    assert_ok(&sysim(&[
        "run",
        "scenarios/quickstart.yaml",
        "--quiet",
        "--out",
        single.to_str().unwrap(),
    ]));
    let (a, b) = (runs(&single), runs(&merged));
    assert!(
        a.equals_missing(&b),
        "merged Slurm parts differ from the single run"
    );
}
