//! The `supernode` scenarios load and validate (presets resolved, params checked), and — on
//! request (`--ignored`) — run and print the table the README quotes.

use std::path::PathBuf;

use sim::scenario::load;

fn scenarios() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/supernode");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_supernode_scenario_validates() {
    let registry = models::registry();
    let files = scenarios();
    assert!(files.len() >= 5);
    for f in files {
        let plan = load(&f, &registry, None).unwrap_or_else(|e| panic!("{}: {e:?}", f.display()));
        assert!(!plan.runs.is_empty());
    }
}

/// Runs every scenario and prints one line per run (`cargo test --release -p models --test
/// supernode_scenarios -- --ignored --nocapture`).
#[test]
#[ignore]
fn print_scenario_tables() {
    let registry = models::registry();
    let keys = [
        "latency_s",
        "per_token_latency_ms",
        "peak_device_bytes",
        "peak_frac_of_no_offload",
        "exposed_transfer_s",
        "h2d_bytes",
        "d2h_bytes",
        "compute_utilization",
    ];
    for f in scenarios() {
        let plan = load(&f, &registry, None).unwrap();
        let family = registry.get(&plan.scenario.family).unwrap();
        println!("== {}", f.file_name().unwrap().to_string_lossy());
        for spec in &plan.runs {
            let cols: Vec<String> = spec
                .columns
                .iter()
                .filter(|(k, _)| {
                    k.starts_with("llm")
                        || k.starts_with("strategy")
                        || k.starts_with("budget")
                        || k.contains("context")
                        || k.starts_with("accel")
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            match family.run(&spec.params, &spec.ctx) {
                Ok(out) => {
                    let m: Vec<String> = keys
                        .iter()
                        .filter_map(|k| {
                            out.metrics
                                .iter()
                                .find(|(n, _)| n == k)
                                .map(|(n, v)| format!("{n}={v:.4e}"))
                        })
                        .collect();
                    println!("{} | {}", cols.join(" "), m.join(" "));
                }
                Err(e) => println!("{} | ERROR {e}", cols.join(" ")),
            }
        }
    }
}
