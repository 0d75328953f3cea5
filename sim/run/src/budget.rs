//! Bounded resources: before a plan runs, each run's [`ResourceEstimate`] is checked against the
//! machine's memory (times the runs that execute at once) and against a work bound no sweep
//! reaches on purpose; a plan beyond either is refused naming the param that drives it, unless the
//! user passes `--allow-large`.

use sim::estimate::{Part, ResourceEstimate};
use sim::experiment::DynExperiment;

use crate::error::InputError;
use crate::locate::locate;
use crate::scenario::Plan;

/// Work bound of a whole plan, elementary steps: ≈ 10⁸ s (three years) at the ≈ 10⁵–10⁶ events/s a
/// debug build sustains (`sysim bench`), days in a release build (estimated, not measured).
pub const MAX_PLAN_WORK_STEPS: f64 = 1e14;

/// Total memory of this machine in bytes (`MemTotal` of `/proc/meminfo`), when it can be read.
pub fn machine_memory_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Refuses `plan` when one run's memory times `concurrent` runs exceeds `memory_bytes` (if known),
/// or when the plan's total work exceeds [`MAX_PLAN_WORK_STEPS`]. The message names the params
/// key, its value in the offending run, and `--allow-large`.
pub fn check(
    plan: &Plan,
    family: &dyn DynExperiment,
    concurrent: usize,
    memory_bytes: Option<f64>,
) -> Result<(), InputError> {
    let mut total_work = 0.0;
    let mut heaviest: Option<(usize, Part)> = None;
    for (i, run) in plan.runs.iter().enumerate() {
        let estimate: ResourceEstimate = family.estimate(&run.params).map_err(|e| {
            InputError::file(&plan.path, format!("params.{}: {}", e.path, e.message))
        })?;
        total_work += estimate.work_steps();
        if heaviest.is_none_or(|(_, p)| estimate.work_steps() > p.amount)
            && let Some(driver) = estimate.work_driver()
        {
            heaviest = Some((
                i,
                Part {
                    key: driver.key,
                    amount: estimate.work_steps(),
                },
            ));
        }
        if let (Some(limit), Some(driver)) = (memory_bytes, estimate.memory_driver()) {
            let need = estimate.memory_bytes() * concurrent.max(1) as f64;
            if need > limit {
                return Err(refusal(
                    plan,
                    driver.key,
                    format!(
                        "run {i} would need ≈ {} of memory{}, mostly for this param (= {}); this machine has {}. Lower it (or --jobs), or pass --allow-large to run anyway",
                        bytes(estimate.memory_bytes()),
                        if concurrent > 1 {
                            format!(" (× {concurrent} runs at once = {})", bytes(need))
                        } else {
                            String::new()
                        },
                        value_at(&run.params, driver.key),
                        bytes(limit),
                    ),
                ));
            }
        }
    }
    if total_work > MAX_PLAN_WORK_STEPS
        && let Some((i, driver)) = heaviest
    {
        return Err(refusal(
            plan,
            driver.key,
            format!(
                "the plan would take ≈ {total_work:.1e} steps of work ({} runs; the heaviest, run {i}, ≈ {:.1e}, grows with this param = {}), beyond the bound of {MAX_PLAN_WORK_STEPS:.0e}; lower it, or pass --allow-large to run anyway",
                plan.runs.len(),
                driver.amount,
                value_at(&plan.runs[i].params, driver.key),
            ),
        ));
    }
    Ok(())
}

/// A refusal naming `params.<key>` of the plan's file, at its line when the key is written there.
fn refusal(plan: &Plan, key: &str, message: String) -> InputError {
    let dotted = format!("params.{key}");
    let position = std::fs::read_to_string(&plan.path)
        .ok()
        .and_then(|src| locate(&src, &dotted));
    InputError::key(&plan.path, position, dotted, message)
}

/// The value at dotted `key` in `params`, as JSON text (`?` when absent, e.g. a default).
fn value_at(params: &serde_json::Value, key: &str) -> String {
    let pointer = format!("/{}", key.replace('.', "/"));
    params
        .pointer(&pointer)
        .map_or_else(|| "(default)".to_owned(), ToString::to_string)
}

/// `bytes` with a binary unit.
fn bytes(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == UNITS.len() - 1 && value >= 1024.0 {
        return format!("{bytes:.1e} B");
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(512.0), "512.0 B");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(bytes(1e30), "1.0e30 B");
    }

    #[test]
    fn values_are_found_by_dotted_key() {
        let params = serde_json::json!({"workload": {"requests": 7}});
        assert_eq!(value_at(&params, "workload.requests"), "7");
        assert_eq!(value_at(&params, "workload.think_s"), "(default)");
    }

    #[test]
    fn this_machine_reports_its_memory() {
        if cfg!(target_os = "linux") {
            assert!(machine_memory_bytes().is_some_and(|b| b > 1e8));
        }
    }
}
