//! The `sptc` scenarios: every file validates and its first run succeeds in-process.

use std::path::PathBuf;

use sim::experiment::RunOutput;
use sim_run::scenario::{Plan, load};

fn scenarios() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/sptc");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/sptc exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn plan(path: &std::path::Path) -> Plan {
    load(path, &sysim::registry(), None).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(plan: &Plan, i: usize) -> RunOutput {
    let registry = sysim::registry();
    let family = registry.get("sptc").expect("registered");
    let spec = &plan.runs[i];
    family
        .run(&spec.params, &spec.ctx)
        .unwrap_or_else(|e| panic!("{}: run {i}: {e}", plan.path.display()))
}

#[test]
fn every_sptc_scenario_validates_and_its_first_run_succeeds() {
    let files = scenarios();
    assert!(files.len() >= 5);
    for f in &files {
        let p = plan(f);
        assert!(!run(&p, 0).metrics.is_empty(), "{}", f.display());
    }
}
