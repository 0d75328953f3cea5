//! The registry: every family sysim knows, in one list (the order `sysim list` shows them).
//! Adding a family is adding its crate to Cargo.toml and one line here; the tests in
//! `tests/it/registry.rs` check the whole list.

use sim_run::scenario::Registry;

/// Every family sysim knows.
pub fn registry() -> Registry {
    Registry::new(vec![
        Box::new(queue::QueueExperiment),
        Box::new(mobile::MobileExperiment),
        Box::new(supernode::SupernodeExperiment),
        Box::new(fpga::FpgaExperiment),
        Box::new(sptc::SptcExperiment),
        Box::new(fl::FlExperiment),
        Box::new(fl::learn::lora::LoraExperiment),
        Box::new(fl::learn::personal::PersonalExperiment),
        Box::new(fl::learn::backdoor::BackdoorExperiment),
    ])
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use analysis::report::ReportSpec;
    use serde_json::Value;
    use sim_run::scenario::{Plan, load};

    use super::registry;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Every `*.yaml` under `dir`, sorted.
    fn yaml_files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "yaml") {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    fn plan(path: &Path) -> Plan {
        load(path, &registry(), None).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn family_names_are_unique() {
        let registry = registry();
        let names: Vec<_> = registry.families().map(|f| f.name()).collect();
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn every_family_has_a_scenario_and_every_scenario_validates() {
        let mut per_family: BTreeMap<String, usize> = BTreeMap::new();
        for f in yaml_files(&root().join("scenarios")) {
            *per_family.entry(plan(&f).scenario.family).or_default() += 1;
        }
        for family in registry().families() {
            assert!(
                per_family.contains_key(family.name()),
                "family `{}` has no scenario under scenarios/",
                family.name()
            );
        }
    }

    /// Each built-in preset of each slot, substituted into the family's first scenario, passes
    /// the family's checks.
    #[test]
    fn every_builtin_preset_resolves_in_its_family() {
        let registry = registry();
        let scenarios = yaml_files(&root().join("scenarios"));
        for family in registry.families() {
            let first = scenarios
                .iter()
                .map(|f| plan(f))
                .find(|p| p.scenario.family == family.name())
                .expect("every family has a scenario");
            let dir = tempfile::tempdir().unwrap();
            for slot in family.presets() {
                for (name, _) in slot.builtin {
                    let mut scenario = first.scenario.clone();
                    scenario.sweep.retain(|k, _| !k.starts_with(slot.key));
                    set(&mut scenario.params, slot.key, Value::from(*name));
                    let path = dir.path().join(format!("{}-{name}.yaml", slot.key));
                    let text = serde_json::to_string(&scenario).unwrap();
                    std::fs::write(&path, text).unwrap();
                    if let Err(e) = load(&path, &registry, None) {
                        panic!("family {}: preset {}={name}: {e}", family.name(), slot.key);
                    }
                }
            }
        }
    }

    fn set(params: &mut Value, dotted: &str, value: Value) {
        let mut at = params;
        let mut keys = dotted.split('.').peekable();
        while let Some(k) = keys.next() {
            if keys.peek().is_none() {
                at[k] = value;
                return;
            }
            at = &mut at[k];
        }
    }

    fn reports() -> Vec<(PathBuf, ReportSpec)> {
        yaml_files(&root().join("reports"))
            .into_iter()
            .map(|f| {
                let text = std::fs::read_to_string(&f).unwrap();
                let spec = serde_norway::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                (f, spec)
            })
            .collect()
    }

    #[test]
    fn every_report_parses_and_names_scenarios_that_validate() {
        let reports = reports();
        assert!(reports.len() >= 10);
        for (file, spec) in reports {
            let scenarios = spec
                .figures
                .iter()
                .map(|f| f.scenario.clone())
                .chain(spec.claims.iter().filter_map(|c| c.scenario.clone()));
            for s in scenarios {
                assert!(!plan(&root().join(&s)).runs.is_empty(), "{}", file.display());
            }
        }
    }

    /// Each claim's metric is a column the first run of its scenario really emits.
    #[test]
    fn every_claim_metric_is_emitted_by_the_first_run_of_its_scenario() {
        let registry = registry();
        let mut wanted: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
        for (_, spec) in reports() {
            for claim in &spec.claims {
                if let Some(s) = claim.scenario.as_ref().filter(|_| !claim.metric.is_empty()) {
                    wanted.entry(s.clone()).or_default().insert(claim.metric.clone());
                }
            }
        }
        for (scenario, metrics) in wanted {
            let plan = plan(&root().join(&scenario));
            let family = registry.get(&plan.scenario.family).unwrap();
            let first = &plan.runs[0];
            let out = family
                .run(&first.params, &first.ctx)
                .unwrap_or_else(|e| panic!("{}: first run: {e}", scenario.display()));
            for m in metrics {
                assert!(
                    out.get(&m).is_some(),
                    "{}: the first run emits no metric `{m}`",
                    scenario.display()
                );
            }
        }
    }
}
