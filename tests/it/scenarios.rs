//! Every committed scenario validates, and the quickstart writes the three result files.

use crate::common::{assert_ok, root, sysim};

fn scenario_files() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                out.push(
                    p.strip_prefix(root())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("scenarios"), &mut out);
    out.sort();
    out
}

#[test]
fn every_scenario_validates() {
    let files = scenario_files();
    assert!(files.len() >= 2);
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = sysim(&args);
    assert_ok(&out);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("ok ")).count(),
        files.len()
    );
}

#[test]
fn quickstart_writes_tables_and_a_figure_can_be_drawn() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("q");
    let d = dir.to_str().unwrap();
    assert_ok(&sysim(&[
        "run",
        "scenarios/quickstart.yaml",
        "--quiet",
        "--out",
        d,
    ]));
    for f in ["runs.parquet", "series.parquet", "manifest.json"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["runs_total"], 24);
    assert_eq!(manifest["scenario"]["family"], "queue");
    let runs = crate::common::runs(&dir);
    assert_eq!(runs.height(), 24);
    for col in [
        "run",
        "replication",
        "seed",
        "servers",
        "arrival_rate",
        "mean_sojourn_s",
        "sojourn_s_p99",
        "error",
    ] {
        assert!(runs.column(col).is_ok(), "column {col} missing");
    }
    let stem = tmp.path().join("fig");
    let out = sysim(&[
        "plot",
        d,
        "--x",
        "arrival_rate",
        "--y",
        "mean_sojourn_s",
        "--series",
        "servers",
        "--out",
        stem.to_str().unwrap(),
    ]);
    assert_ok(&out);
    assert!(tmp.path().join("fig.png").is_file() && tmp.path().join("fig.svg").is_file());
}

#[test]
fn csv_format_writes_the_same_tables_as_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    assert_ok(&sysim(&[
        "run",
        "scenarios/quickstart.yaml",
        "--quiet",
        "--format",
        "csv",
        "--out",
        d,
    ]));
    let csv = std::fs::read_to_string(tmp.path().join("runs.csv")).unwrap();
    assert!(csv.starts_with("run,replication,seed,"));
    assert_eq!(csv.lines().count(), 25);
    assert!(tmp.path().join("series.csv").is_file());
}

#[test]
fn list_and_schema_describe_the_families() {
    let out = sysim(&["list"]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("queue"));
    let out = sysim(&["schema", "queue"]);
    assert_ok(&out);
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(schema["properties"]["arrival_rate"].is_object());
}
