//! `--set KEY=VALUE` overrides: applied to the parsed file before any check, typed by the family's
//! params, named in errors, and recorded in the manifest.

use polars::prelude::*;

use crate::common::{assert_ok, runs, stderr, sysim};

fn ints(df: &DataFrame, column: &str) -> Vec<i64> {
    df.column(column)
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect()
}

#[test]
fn overrides_change_params_sweep_and_replications_and_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let o = out.to_str().unwrap();
    let run = sysim(&[
        "run",
        "scenarios/quickstart.yaml",
        "--quiet",
        "--jobs",
        "1",
        "--out",
        o,
        "--set",
        "params.customers=400",
        "--set",
        "params.warmup_customers=0",
        "--set",
        "sweep.servers=[1, 2, 4]",
        "--set",
        "sweep.arrival_rate=[0.3]",
        "--set",
        "replications=2",
    ]);
    assert_ok(&run);
    let df = runs(&out);
    assert_eq!(df.height(), 6);
    assert_eq!(ints(&df, "servers"), [1, 1, 2, 2, 4, 4]);
    assert_eq!(ints(&df, "customers"), [400; 6]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["overrides"],
        serde_json::json!([
            "params.customers=400",
            "params.warmup_customers=0",
            "sweep.servers=[1, 2, 4]",
            "sweep.arrival_rate=[0.3]",
            "replications=2"
        ])
    );
    assert_eq!(manifest["scenario"]["replications"], 2);
    assert_eq!(manifest["scenario"]["params"]["customers"], 400);
}

#[test]
fn validate_accepts_overrides_and_counts_the_new_plan() {
    let v = sysim(&[
        "validate",
        "scenarios/quickstart.yaml",
        "--set",
        "sweep.servers=[1,2,4]",
        "--set",
        "replications=5",
    ]);
    assert_ok(&v);
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(
        text.contains("4 points") || text.contains("12 points"),
        "{text}"
    );
    assert!(text.contains("× 5 replications = 60 runs"), "{text}");
}

/// Each bad override: exit code 2, the message, and no results folder.
#[test]
fn bad_overrides_are_input_errors_naming_key_and_override() {
    let cases: &[(&str, &str)] = &[
        (
            "params.service_rate=fast",
            "scenarios/quickstart.yaml: key `params.service_rate`: invalid type: string \"fast\", expected f64 (value from `--set params.service_rate=fast`)",
        ),
        (
            "params.service_rate=-1",
            "scenarios/quickstart.yaml: key `params.service_rate`: must be a finite number > 0, got -1 (value from `--set params.service_rate=-1`)",
        ),
        (
            "params.servce_rate=2",
            "key `params.servce_rate`: unknown field `servce_rate`",
        ),
        (
            "params.arrival_rate=0.9",
            "`--set params.arrival_rate=0.9` would be ignored: `sweep.arrival_rate` sets this key at every point",
        ),
        (
            "sweep.servers=[]",
            "key `sweep.servers`: empty sweep list: give at least one value (value from `--set sweep.servers=[]`)",
        ),
        ("replications=0", "key `replications`: must be ≥ 1, got 0"),
        (
            "parms.x=1",
            "--set parms.x=1: unknown top-level key `parms`",
        ),
        ("params.x", "--set params.x: expected KEY=VALUE"),
        (
            "params.x=[1,",
            "--set params.x=[1,: value is not valid YAML",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (i, (set, expected)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("bad{i}"));
        let run = sysim(&[
            "run",
            "scenarios/quickstart.yaml",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
            "--set",
            set,
        ]);
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(2), "--set {set}: {err}");
        assert!(
            err.contains(expected),
            "--set {set}:\n{err}\nexpected: {expected}"
        );
        assert!(!out.exists(), "--set {set}: wrote {}", out.display());
    }
}
