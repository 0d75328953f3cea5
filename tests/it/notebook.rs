//! The notebook page (`docs/notebook.md`) works: a small quickstart sweep is run into Parquet and
//! CSV folders, and every Python block on the page runs against them. The standard-library block
//! always runs; a block needing pyarrow, polars or pandas is skipped, with a note, where that
//! package does not import.

use std::path::Path;
use std::process::Command;

use crate::common::{assert_ok, root, sysim};

/// The page's Python blocks, in order.
fn python_blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in page.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```python") => current = Some(Vec::new()),
            (Some(block), "```") => {
                blocks.push(block.join("\n"));
                current = None;
            }
            (Some(block), _) => block.push(line),
            (None, _) => {}
        }
    }
    blocks
}

/// The third-party package a block imports first (`None`: the standard library suffices).
fn package(block: &str) -> Option<&'static str> {
    ["pyarrow", "polars", "pandas"]
        .into_iter()
        .find(|p| block.contains(&format!("import {p}")))
}

fn python(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("python3")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("python3 runs")
}

/// Runs a small quickstart sweep into `<dir>/out/quickstart` in `format`.
fn quickstart(dir: &Path, format: &str) {
    let out = dir.join("out/quickstart");
    let scenario = root().join("scenarios/quickstart.yaml");
    assert_ok(&sysim(&[
        "run",
        scenario.to_str().unwrap(),
        "--quiet",
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
        "--set",
        "params.customers=2000",
        "--set",
        "params.warmup_customers=100",
    ]));
}

#[test]
fn the_notebook_examples_run_on_a_real_run() {
    let page = std::fs::read_to_string(root().join("docs/notebook.md")).unwrap();
    let blocks = python_blocks(&page);
    assert!(blocks.len() >= 4, "{} Python blocks", blocks.len());
    let tmp = tempfile::tempdir().unwrap();
    let (parquet, csv) = (tmp.path().join("parquet"), tmp.path().join("csv"));
    quickstart(&parquet, "parquet");
    quickstart(&csv, "csv");
    let mut ran_stdlib = false;
    for block in &blocks {
        let dir = if block.contains("runs.csv") {
            &csv
        } else {
            &parquet
        };
        if let Some(p) = package(block)
            && !python(&["-c", &format!("import {p}")], dir)
                .status
                .success()
        {
            eprintln!("note: Python package {p} is absent; its notebook example did not run");
            continue;
        }
        let out = python(&["-c", block], dir);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "notebook block failed:\n{block}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.trim().is_empty() && !text.contains("NaN") && !text.contains("nan"),
            "{text}"
        );
        if package(block).is_none() {
            // 2 server counts × 4 rates, 3 replications each
            assert_eq!(text.matches(" n 3").count(), 8, "{text}");
            ran_stdlib = true;
        }
    }
    assert!(ran_stdlib, "the standard-library block ran");
}
