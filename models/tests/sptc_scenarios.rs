//! The `sptc` scenarios: every file validates and its first run succeeds; an ignored test runs them
//! all and prints the headline table (`cargo test -p models --test sptc_scenarios -- --ignored
//! --nocapture`, add `--release` for speed).

use std::path::PathBuf;

use sim::experiment::RunOutput;
use sim::scenario::{Plan, load};

fn scenarios() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/sptc");
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
    load(path, &models::registry(), None).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(plan: &Plan, i: usize) -> RunOutput {
    let registry = models::registry();
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

fn get(out: &RunOutput, name: &str) -> f64 {
    out.metrics
        .iter()
        .find(|(n, _)| n == name)
        .map_or(f64::NAN, |m| m.1)
}

fn columns(p: &Plan, i: usize) -> String {
    p.runs[i]
        .columns
        .iter()
        .filter(|(c, _)| p.scenario.sweep.contains_key(c.as_str()))
        .map(|(c, v)| format!("{c}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
#[ignore = "report: runs every sptc scenario"]
fn sptc_headline_table() {
    for f in scenarios() {
        let p = plan(&f);
        println!("\n== {} ({} runs)", f.display(), p.runs.len());
        let mut best = (0.0f64, String::new());
        for i in 0..p.runs.len() {
            let out = run(&p, i);
            let cols = columns(&p, i);
            let line = if get(&out, "samoyeds_time_s").is_finite() {
                let s = get(&out, "speedup_samoyeds_vs_best");
                if s > best.0 {
                    best = (s, cols.clone());
                }
                format!(
                    "TFLOPS dense {:.1} w24 {:.1} mb {:.1} samoyeds {:.1} | speedup vs dense {:.2} vs w24 {:.2} vs best {:.2}",
                    get(&out, "dense_tflops"),
                    get(&out, "weight_sparse_tflops"),
                    get(&out, "activation_sparse_tflops"),
                    get(&out, "samoyeds_tflops"),
                    get(&out, "speedup_samoyeds_vs_dense"),
                    get(&out, "speedup_samoyeds_vs_weight_sparse"),
                    s
                )
            } else {
                format!(
                    "moe× dense {:.2} w24 {:.2} mb {:.2} | layer× best {:.2} | tok/s samoyeds {:.0} | max batch d {} w {} mb {} s {} | gain vs d {:.2} vs mb {:.2} | imb {:.2}",
                    get(&out, "moe_speedup_samoyeds_vs_dense"),
                    get(&out, "moe_speedup_samoyeds_vs_weight_sparse"),
                    get(&out, "moe_speedup_samoyeds_vs_activation_sparse"),
                    get(&out, "layer_speedup_samoyeds_vs_best"),
                    get(&out, "samoyeds_tokens_per_s"),
                    get(&out, "dense_max_batch"),
                    get(&out, "weight_sparse_max_batch"),
                    get(&out, "activation_sparse_max_batch"),
                    get(&out, "samoyeds_max_batch"),
                    get(&out, "batch_gain_samoyeds_vs_dense"),
                    get(&out, "batch_gain_samoyeds_vs_activation_sparse"),
                    get(&out, "router_imbalance"),
                )
            };
            println!("{cols:<60} {line}");
        }
        if best.0 > 0.0 {
            println!(
                "max kernel speedup over the best baseline: {:.2}× at {}",
                best.0, best.1
            );
        }
    }
}
