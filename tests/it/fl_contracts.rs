//! The committed contract artifacts are exactly what the pinned solc produces from contracts/*.sol.
//!
//! Installs the pinned compiler with `npm ci --prefix contracts` when `contracts/node_modules` is
//! missing (needs Node ≥ 18, npm and access to the npm registry), recompiles into a temporary
//! directory and compares byte for byte. It fails — never skips — when it cannot check.

use std::process::Command;

use crate::common::root;

#[test]
fn committed_artifacts_match_a_fresh_solc_build() {
    let contracts = root().join("contracts");
    if !contracts.join("node_modules").join("solc").exists() {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&contracts)
            .status()
            .expect("`npm` must be installed to check the contract artifacts");
        assert!(st.success(), "`npm ci --prefix contracts` failed");
    }
    let out = tempfile::tempdir().unwrap();
    let st = Command::new("node")
        .arg(contracts.join("compile.js"))
        .arg("--out")
        .arg(out.path())
        .status()
        .expect("`node` must be installed to check the contract artifacts");
    assert!(st.success(), "contracts/compile.js failed");
    let mut names: Vec<_> = std::fs::read_dir(contracts.join("artifacts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        5,
        "three settlement contracts, the redeem verifier and the redeem contract: {names:?}"
    );
    for name in &names {
        let committed = std::fs::read(contracts.join("artifacts").join(name)).unwrap();
        let fresh = std::fs::read(out.path().join(name))
            .unwrap_or_else(|_| panic!("{name:?} was not produced by compile.js"));
        assert!(
            committed == fresh,
            "contracts/artifacts/{name:?} differs from a fresh build: run `node contracts/compile.js`"
        );
    }
    let fresh_count = std::fs::read_dir(out.path()).unwrap().count();
    assert_eq!(
        fresh_count,
        names.len(),
        "compile.js produced artifacts that are not committed"
    );
}
