//! Records the build's identity:
//! - the git commit (if any), written into result manifests;
//! - per workspace crate, a digest of the sources its runs are built from: the crate's own files,
//!   those of the workspace crates it depends on (transitively), `src/commands.rs` (the run path),
//!   the contracts' artifacts (embedded by `fl`), `Cargo.lock`, the compiler's version (not the profile: debug and release
//!   builds write the same tables, checked on a POLAR run). `report` keys its results cache by the
//!   digest of the family's crate, so a commit that changes no code of a family keeps that family's
//!   results, and an uncommitted edit does not keep them.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok());
    if let Some(c) = commit {
        println!("cargo:rustc-env=SYSIM_GIT_COMMIT={}", c.trim());
    }
    write_source_digests();
}

/// FNV-1a (64 bit) over `bytes`, continuing from `hash`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// FNV-1a's offset basis.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// A workspace member: its package name, folder and the workspace packages it depends on.
struct Member {
    dir: PathBuf,
    deps: Vec<String>,
}

/// Writes `$OUT_DIR/source_digests.rs`: `SOURCE_DIGESTS`, (crate name, hex digest) per member.
fn write_source_digests() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let manifest = fs::read_to_string(root.join("Cargo.toml")).expect("root Cargo.toml");
    let dirs = members(&manifest);
    let mut packages: BTreeMap<String, Member> = BTreeMap::new();
    for dir in &dirs {
        let text = fs::read_to_string(root.join(dir).join("Cargo.toml")).expect("member manifest");
        let name = package_name(&text).expect("member has a package name");
        println!("cargo:rerun-if-changed={dir}");
        packages.insert(
            name,
            Member {
                dir: root.join(dir),
                deps: dependency_names(&text),
            },
        );
    }
    let others: BTreeSet<PathBuf> = packages.values().map(|m| m.dir.clone()).collect();
    let own: BTreeMap<&str, u64> = packages
        .iter()
        .map(|(name, m)| (name.as_str(), folder_digest(&m.dir, &others)))
        .collect();
    let mut common = FNV_BASIS;
    for file in ["src/commands.rs", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={file}");
        common = fnv1a(common, &fs::read(root.join(file)).unwrap_or_default());
    }
    // The contracts' compiled artifacts, which `fl` embeds from outside its folder.
    println!("cargo:rerun-if-changed=contracts/artifacts");
    common = fnv1a(
        common,
        &folder_digest(&root.join("contracts/artifacts"), &others).to_le_bytes(),
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    common = fnv1a(common, &version);
    let mut out = String::from(
        "/// Per workspace crate (its Rust name), the digest of the sources its runs are built from.\n\
         pub const SOURCE_DIGESTS: &[(&str, &str)] = &[\n",
    );
    for name in packages.keys() {
        let mut closure = BTreeSet::new();
        collect(name, &packages, &mut closure);
        let mut hash = common;
        for dep in &closure {
            hash = fnv1a(hash, dep.as_bytes());
            hash = fnv1a(hash, &own[dep.as_str()].to_le_bytes());
        }
        let _ = writeln!(
            out,
            "    (\"{}\", \"{hash:016x}\"),",
            name.replace('-', "_")
        );
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("source_digests.rs");
    fs::write(dest, out).expect("write source digests");
}

/// `name` and every workspace package it depends on, transitively.
fn collect(name: &str, packages: &BTreeMap<String, Member>, into: &mut BTreeSet<String>) {
    if !into.insert(name.to_owned()) {
        return;
    }
    for dep in &packages[name].deps {
        if packages.contains_key(dep) {
            collect(dep, packages, into);
        }
    }
}

/// The folders in the root manifest's `members = [ … ]`.
fn members(manifest: &str) -> Vec<String> {
    let start = manifest.find("members").expect("workspace members");
    let list = &manifest[start..];
    let list = &list[list.find('[').expect("[")..list.find(']').expect("]")];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The `name = "…"` of a manifest's `[package]`.
fn package_name(manifest: &str) -> Option<String> {
    let package = &manifest[manifest.find("[package]")?..];
    let line = package
        .lines()
        .find(|l| l.trim_start().starts_with("name"))?;
    line.split('"').nth(1).map(str::to_owned)
}

/// The package names under `[dependencies]` and `[build-dependencies]` (what a run is built from;
/// dev-dependencies are not).
fn dependency_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]" || line == "[build-dependencies]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let key = line.split(['=', '.', ' ']).next().unwrap_or_default();
            names.push(key.to_owned());
        }
    }
    names
}

/// Digest of every file under `dir` (paths and contents, sorted by path), skipping hidden
/// folders, `target` and the folders of other members.
fn folder_digest(dir: &Path, others: &BTreeSet<PathBuf>) -> u64 {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                let skip = name.starts_with('.') || name == "target" || others.contains(&path);
                if !skip {
                    stack.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hash = FNV_BASIS;
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        hash = fnv1a(hash, rel.to_string_lossy().as_bytes());
        hash = fnv1a(hash, &fs::read(&f).unwrap_or_default());
    }
    hash
}
