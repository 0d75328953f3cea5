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
    use rayon::prelude::*;
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

    /// Every shipped scenario fits a 16 GiB machine running one run at a time, within the work
    /// bound: the resource estimates refuse only what no scenario here needs.
    #[test]
    fn every_scenario_passes_the_resource_check() {
        let registry = registry();
        for f in yaml_files(&root().join("scenarios")) {
            let plan = plan(&f);
            let family = registry.get(&plan.scenario.family).unwrap();
            sim_run::budget::check(&plan, family, 1, Some(16.0 * 1024f64.powi(3)))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Each built-in preset parses, and resolves in at least one family that offers its slot
    /// (substituted into that family's first scenario, it passes the family's checks): no preset
    /// is dead or broken. A family may reject another's preset on range grounds (sptc wants an MoE
    /// `llm`), which is a clear error, not a broken preset.
    #[test]
    fn every_builtin_preset_resolves() {
        let registry = registry();
        let scenarios: Vec<Plan> = yaml_files(&root().join("scenarios"))
            .iter()
            .map(|f| plan(f))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut verdicts: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for family in registry.families() {
            let first = scenarios
                .iter()
                .find(|p| p.scenario.family == family.name())
                .expect("every family has a scenario");
            for slot in family.presets() {
                for (name, text) in slot.builtin {
                    let parsed: Result<Value, _> = serde_norway::from_str(text);
                    assert!(
                        parsed.is_ok_and(|v| v.is_object()),
                        "preset {}={name} is not a YAML mapping",
                        slot.key
                    );
                    let mut scenario = first.scenario.clone();
                    scenario.sweep.retain(|k, _| !k.starts_with(slot.key));
                    set(&mut scenario.params, slot.key, Value::from(*name));
                    let path = dir.path().join(format!("{}-{name}.yaml", family.name()));
                    std::fs::write(&path, serde_json::to_string(&scenario).unwrap()).unwrap();
                    let verdict = match load(&path, &registry, None) {
                        Ok(_) => "ok".to_owned(),
                        Err(e) => format!("{}: {e}", family.name()),
                    };
                    verdicts.entry((slot.key, name)).or_default().push(verdict);
                }
            }
        }
        for ((slot, name), verdicts) in verdicts {
            assert!(
                verdicts.iter().any(|v| v == "ok"),
                "preset {slot}={name} resolves in no family: {verdicts:#?}"
            );
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
                .flat_map(|f| std::iter::once(f.scenario.clone()).chain(f.also.clone()))
                .chain(spec.claims.iter().filter_map(|c| c.scenario.clone()));
            for s in scenarios {
                assert!(
                    !plan(&root().join(&s)).runs.is_empty(),
                    "{}",
                    file.display()
                );
            }
        }
    }

    /// Each claim's metric is a column that the first run of its scenario matching the claim's
    /// `where` really emits.
    #[test]
    fn every_claim_metric_is_emitted_by_the_first_matching_run_of_its_scenario() {
        let registry = registry();
        let mut wanted: BTreeMap<(PathBuf, u64), BTreeSet<String>> = BTreeMap::new();
        let mut plans: BTreeMap<PathBuf, Plan> = BTreeMap::new();
        for (file, spec) in reports() {
            for claim in spec.claims.iter().filter(|c| !c.metric.is_empty()) {
                let Some(scenario) = &claim.scenario else {
                    continue;
                };
                let plan = plans
                    .entry(scenario.clone())
                    .or_insert_with(|| plan(&root().join(scenario)));
                let first = plan
                    .runs
                    .iter()
                    .find(|r| {
                        claim
                            .filter
                            .iter()
                            .all(|(k, v)| r.columns.iter().any(|(c, x)| c == k && same(x, v)))
                    })
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: claim {}: no run of {} matches its `where`",
                            file.display(),
                            claim.id,
                            scenario.display()
                        )
                    });
                wanted
                    .entry((scenario.clone(), first.ctx.run))
                    .or_default()
                    .extend(
                        std::iter::once(&claim.metric)
                            .chain(&claim.baseline_metric)
                            .cloned(),
                    );
            }
        }
        // Full-size runs, one per (scenario, run), on every core.
        wanted
            .into_par_iter()
            .for_each(|((scenario, run), metrics)| {
                let plan = &plans[&scenario];
                let family = registry.get(&plan.scenario.family).unwrap();
                let spec = &plan.runs[run as usize];
                let out = family
                    .run(&spec.params, &spec.ctx)
                    .unwrap_or_else(|e| panic!("{}: run {run}: {e}", scenario.display()));
                for m in metrics {
                    assert!(
                        out.get(&m).is_some(),
                        "{}: run {run} emits no metric `{m}`",
                        scenario.display()
                    );
                }
            });
    }

    /// Whether a param column's value equals a `where` value as written in a report (numbers
    /// compare as numbers).
    fn same(column: &Value, wanted: &Value) -> bool {
        match (column.as_f64(), wanted.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => column == wanted,
        }
    }
}
