//! Bad input gets a one-paragraph error naming file, line:column and key, exit code 2, and nothing written.

use crate::common::{root, stderr, sysim};

/// A valid scenario; each case below edits one line of it.
const GOOD: &str = "name: t
family: queue
seed: 1
replications: 2
params:
  arrival_rate: 0.5
  service_rate: 1.0
  customers: 100
sweep:
  servers: [1, 2]
";

struct Case {
    what: &'static str,
    yaml: String,
    expected: &'static str,
}

fn case(what: &'static str, from: &str, to: &str, expected: &'static str) -> Case {
    assert!(GOOD.contains(from), "{what}: `{from}` not in the template");
    Case {
        what,
        yaml: GOOD.replacen(from, to, 1),
        expected,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "malformed YAML",
            "  customers: 100",
            "  customers: [100",
            "S.yaml:9:6: malformed YAML: did not find expected ',' or ']'",
        ),
        case(
            "unknown top-level key",
            "seed: 1",
            "sed: 1",
            "S.yaml:3:1: key `sed`: unknown field `sed`, expected one of `name`, `family`, `model`, `description`, `seed`, `replications`, `common_random_numbers`, `params`, `sweep`",
        ),
        case(
            "unknown params key",
            "  customers: 100",
            "  customers: 100\n  custmers: 3",
            "S.yaml:9:3: key `params.custmers`: unknown field `custmers`, expected one of `arrival_rate`, `service_rate`, `servers`, `customers`, `warmup_customers`, `series_interval_s`",
        ),
        case(
            "wrong type",
            "  arrival_rate: 0.5",
            "  arrival_rate: fast",
            "S.yaml:6:3: key `params.arrival_rate`: invalid type: string \"fast\", expected f64",
        ),
        case(
            "negative rate",
            "  service_rate: 1.0",
            "  service_rate: -1.0",
            "S.yaml:7:3: key `params.service_rate`: must be a finite number > 0, got -1",
        ),
        case(
            "unknown family",
            "family: queue",
            "family: quux",
            "S.yaml:2:1: key `family`: unknown family `quux`; valid families: queue, mobile, supernode, fpga, sptc, fl, fl-lora, fl-personal, fl-backdoor",
        ),
        case(
            "empty sweep list",
            "  servers: [1, 2]",
            "  servers: []",
            "S.yaml:10:3: key `sweep.servers`: empty sweep list: give at least one value",
        ),
        case(
            "swept value of the wrong type",
            "  servers: [1, 2]",
            "  servers: [1, two]",
            "S.yaml:10:3: key `sweep.servers`: invalid type: string \"two\", expected u32",
        ),
        case(
            "unknown swept key",
            "  servers: [1, 2]",
            "  srvers: [1, 2]",
            "S.yaml:10:3: key `sweep.srvers`: unknown field `srvers`, expected one of `arrival_rate`, `service_rate`, `servers`, `customers`, `warmup_customers`, `series_interval_s`",
        ),
        case(
            "ragged zip group",
            "  servers: [1, 2]",
            "  zip:\n    servers: [1, 2]\n    arrival_rate: [0.5]",
            "S.yaml:12:5: key `sweep.zip.arrival_rate`: zip lists must have equal lengths: `servers` has 2, this one has 1",
        ),
        case(
            "zero replications",
            "replications: 2",
            "replications: 0",
            "S.yaml:4:1: key `replications`: must be ≥ 1, got 0",
        ),
        case(
            "replications of the wrong type",
            "replications: 2",
            "replications: two",
            "S.yaml:4:15: key `replications`: invalid type: string \"two\", expected u32",
        ),
        case(
            "missing required param",
            "  customers: 100\n",
            "",
            "S.yaml:5:1: key `params`: missing field `customers`",
        ),
        case(
            "impossible warm-up",
            "  customers: 100",
            "  customers: 100\n  warmup_customers: 100",
            "S.yaml:9:3: key `params.warmup_customers`: must be < customers (100), got 100",
        ),
        case(
            "missing name",
            "name: t\n",
            "",
            "S.yaml:1:1: missing field `name`",
        ),
    ]
}

#[test]
fn bad_scenarios_give_exact_errors_exit_2_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, c) in cases().iter().enumerate() {
        let file = tmp.path().join(format!("case{i}.yaml"));
        std::fs::write(&file, &c.yaml).unwrap();
        let out_dir = tmp.path().join(format!("out{i}"));
        let out = sysim(&[
            "run",
            file.to_str().unwrap(),
            "--quiet",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        let expected = format!(
            "error: {}\n",
            c.expected.replacen("S.yaml", file.to_str().unwrap(), 1)
        );
        let got = stderr(&out);
        if out.status.code() != Some(2) || got != expected || out_dir.exists() {
            failures.push(format!(
                "{}: exit {:?}, wrote output: {}\n  expected: {expected}  got:      {got}",
                c.what,
                out.status.code(),
                out_dir.exists()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn missing_file_and_unwritable_out_are_bad_input() {
    let out = sysim(&["run", "scenarios/nope.yaml", "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: scenarios/nope.yaml: cannot read scenario file: no such file or directory\n"
    );

    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "not a folder").unwrap();
    let bad_out = blocker.join("out");
    let out = sysim(&[
        "run",
        "scenarios/quickstart.yaml",
        "--quiet",
        "--out",
        bad_out.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(&format!(
            "error: {}: output folder is not writable",
            bad_out.display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_flags_are_bad_input() {
    for args in [
        vec!["run", "scenarios/quickstart.yaml", "--shard", "3/3"],
        vec!["run", "scenarios/quickstart.yaml", "--format", "xlsx"],
        vec!["schema", "quux"],
        vec!["frobnicate"],
    ] {
        let out = sysim(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let _ = root();
}
