//! `sysim schema`: every shipped scenario is valid against the scenario-file schema and bad files
//! are not, checked by an independent validator (Python `jsonschema`, draft 2020-12, installed by
//! `scripts/test-tools.sh`; the test prints a note and skips when it is absent).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{assert_ok, root, sysim};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(p);
        }
    }
}

/// The validator: reads the schema and `name<TAB>json` lines, prints `name<TAB>ok|error message`.
const VALIDATE: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
for line in open(sys.argv[2]):
    name, doc = line.rstrip("\n").split("\t", 1)
    errors = sorted(v.iter_errors(json.loads(doc)), key=lambda e: list(e.path))
    print(name + "\t" + ("ok" if not errors else errors[0].message.replace("\n", " ")))
"#;

fn validator_available() -> bool {
    Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn shipped_scenarios_pass_and_bad_files_fail_an_independent_validator() {
    if !validator_available() {
        println!(
            "note: SKIPPED schema check: python3 with jsonschema not found (run scripts/test-tools.sh)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let schema = sysim(&["schema"]);
    assert_ok(&schema);
    let schema_path = tmp.path().join("scenario.schema.json");
    std::fs::write(&schema_path, &schema.stdout).unwrap();

    let mut files = Vec::new();
    yaml_files(&root().join("scenarios"), &mut files);
    files.sort();
    assert!(files.len() > 30, "found {} scenarios", files.len());
    let mut lines = String::new();
    for f in &files {
        let v: serde_json::Value =
            serde_norway::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        lines.push_str(&format!("good:{}\t{v}\n", f.display()));
    }
    let bad = [
        (
            "unknown top-level key",
            r#"{"name":"t","family":"queue","sed":1}"#,
        ),
        ("unknown family", r#"{"name":"t","family":"qeue"}"#),
        ("no family", r#"{"name":"t"}"#),
        (
            "unknown params key",
            r#"{"name":"t","family":"queue","params":{"custmers":3}}"#,
        ),
        (
            "wrong params type",
            r#"{"name":"t","family":"queue","params":{"arrival_rate":"fast"}}"#,
        ),
        (
            "replications 0",
            r#"{"name":"t","family":"queue","replications":0}"#,
        ),
        (
            "sweep not a list",
            r#"{"name":"t","family":"queue","sweep":{"servers":3}}"#,
        ),
        (
            "empty sweep list",
            r#"{"name":"t","family":"queue","sweep":{"servers":[]}}"#,
        ),
        (
            "preset a number",
            r#"{"name":"t","family":"mobile","params":{"soc":3}}"#,
        ),
    ];
    for (what, doc) in bad {
        lines.push_str(&format!("bad:{what}\t{doc}\n"));
    }
    let docs = tmp.path().join("docs.tsv");
    std::fs::write(&docs, lines).unwrap();
    let out = Command::new("python3")
        .args(["-c", VALIDATE])
        .arg(&schema_path)
        .arg(&docs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    let mut wrong = Vec::new();
    for line in report.lines() {
        let (name, verdict) = line.split_once('\t').unwrap();
        let good = name.starts_with("good:");
        if good != (verdict == "ok") {
            wrong.push(format!("{name}: {verdict}"));
        }
    }
    assert_eq!(report.lines().count(), files.len() + bad.len());
    assert!(
        wrong.is_empty(),
        "schema disagrees with sysim:\n{}",
        wrong.join("\n")
    );
}
