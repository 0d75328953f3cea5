//! Axis titles in words with units, and the bounds of bounded quantities, from column names.
//!
//! A column name carries its unit as a suffix (`mean_sojourn_s`, `decode_mj_per_token`) and
//! sometimes a statistic (`ttft_ms_mean`, `latency_s_p99`). [`axis_title`] looks the name up in a
//! table of metrics whose words a suffix rule would get wrong, and otherwise derives the title:
//! statistic in front, abbreviations spelled out, unit in parentheses — `ttft_ms_p50` →
//! "Median time to first token (ms)".

/// Metrics whose title is not what the suffix rules would give.
const TITLES: &[(&str, &str)] = &[
    ("t_s", "Simulated time (s)"),
    ("per_token_latency_ms", "Per-token latency (ms)"),
    ("mean_sojourn_s", "Mean sojourn time (s)"),
    ("mean_wait_s", "Mean waiting time (s)"),
    ("samoyeds_tokens_per_s", "Samoyeds throughput (tokens/s)"),
    ("samoyeds_tflops", "Samoyeds throughput (TFLOPS)"),
    ("decode_mj_per_token", "Decode energy (mJ/token)"),
    ("peak_device_bytes", "Peak device memory (bytes)"),
    ("comm_bytes", "Communication (bytes)"),
    ("total_gas", "Total gas"),
    ("gas_per_participant", "Gas per participant"),
    ("cost_usd", "Cost (USD)"),
    ("finality_s_mean", "Mean time to finality (s)"),
    ("accuracy_by_round", "Accuracy"),
    ("backdoor_success_rate", "Backdoor success rate"),
    ("backdoor_success_rate_by_round", "Backdoor success rate"),
    ("lost_norm_per_round", "Lost update norm per round"),
    ("nl_lut", "Non-linear LUTs"),
    ("arrival_rate", "Arrival rate (1/s)"),
    ("service_rate", "Service rate (1/s)"),
];

/// Unit suffixes, longest first so that `_mj` wins over `_j`.
const UNITS: &[(&str, &str)] = &[
    ("_per_s", "1/s"),
    ("_tflops", "TFLOPS"),
    ("_bytes", "bytes"),
    ("_usd", "USD"),
    ("_mhz", "MHz"),
    ("_ghz", "GHz"),
    ("_pct", "%"),
    ("_ms", "ms"),
    ("_us", "µs"),
    ("_ns", "ns"),
    ("_mj", "mJ"),
    ("_mw", "mW"),
    ("_gb", "GB"),
    ("_mb", "MB"),
    ("_s", "s"),
    ("_j", "J"),
    ("_w", "W"),
];

/// Statistic suffixes and the words put in front of the title.
const STATISTICS: &[(&str, &str)] = &[
    ("_mean", "Mean"),
    ("_p50", "Median"),
    ("_p90", "90th-percentile"),
    ("_p95", "95th-percentile"),
    ("_p99", "99th-percentile"),
    ("_max", "Maximum"),
    ("_min", "Minimum"),
];

/// Abbreviations spelled out (or capitalised) in titles.
const WORDS: &[(&str, &str)] = &[
    ("ttft", "time to first token"),
    ("tpot", "time per output token"),
    ("llm", "LLM"),
    ("gpu", "GPU"),
    ("fpga", "FPGA"),
    ("soc", "SoC"),
    ("dvfs", "DVFS"),
    ("hbm", "HBM"),
    ("moe", "MoE"),
    ("fl", "FL"),
    ("dash", "DASH"),
    ("frac", "fraction"),
];

/// The axis title of column `column`: from the table, else derived from its name (see the module
/// documentation). Dotted parameter paths (`workload.model.batch`) keep every part.
pub(super) fn axis_title(column: &str) -> String {
    if let Some((_, title)) = TITLES.iter().find(|(name, _)| *name == column) {
        return (*title).to_owned();
    }
    let mut rest = column.replace('.', "_");
    let statistic = strip_suffix(&mut rest, STATISTICS);
    let unit = strip_suffix(&mut rest, UNITS);
    let mut words: Vec<String> = rest
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            WORDS
                .iter()
                .find(|(short, _)| *short == w)
                .map_or_else(|| w.to_owned(), |(_, long)| (*long).to_owned())
        })
        .collect();
    if let Some(statistic) = statistic {
        words.insert(0, statistic.to_owned());
    }
    let mut title = capitalise(&words.join(" "));
    if title.is_empty() {
        title = column.to_owned();
    }
    match unit {
        Some(unit) => format!("{title} ({unit})"),
        None => title,
    }
}

/// Removes the first matching suffix of `table` from `name` (keeping at least one character of
/// name) and returns its replacement.
fn strip_suffix(name: &mut String, table: &[(&str, &'static str)]) -> Option<&'static str> {
    let (suffix, word) = table
        .iter()
        .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix))?;
    name.truncate(name.len() - suffix.len());
    Some(word)
}

/// `text` with its first letter in upper case.
fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Name parts of quantities that are fractions of a whole: a success, detection or hit rate, an
/// accuracy, a fraction, a share, a skip ratio, a utilisation. Rates per second are not among them.
const FRACTION_WORDS: &[&str] = &[
    "accuracy",
    "success_rate",
    "detection_rate",
    "hit_rate",
    "frac",
    "fraction",
    "share",
    "skip_ratio",
    "utilisation",
    "utilization",
];

/// The bounds `[lo, hi]` of column `column` when its name says it is a fraction and every observed
/// value lies in `[0, 1]` (a name alone does not decide: a mislabelled metric above 1 is unbounded).
pub(super) fn fraction_bounds(
    column: &str,
    values: impl IntoIterator<Item = f64>,
) -> Option<(f64, f64)> {
    let name = column.to_ascii_lowercase();
    let named = FRACTION_WORDS.iter().any(|w| name.contains(w)) && !name.ends_with("_per_s");
    (named && values.into_iter().all(|v| (0.0..=1.0).contains(&v))).then_some((0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_from_the_table_and_from_suffixes() {
        for (column, title) in [
            ("per_token_latency_ms", "Per-token latency (ms)"),
            ("t_s", "Simulated time (s)"),
            ("ttft_ms_mean", "Mean time to first token (ms)"),
            ("tpot_ms_mean", "Mean time per output token (ms)"),
            ("ttft_ms_p50", "Median time to first token (ms)"),
            ("energy_j", "Energy (J)"),
            ("fpga_nonlinear_ms", "FPGA nonlinear (ms)"),
            ("latency_s", "Latency (s)"),
            ("speedup_vs_gpu", "Speedup vs GPU"),
            ("workload.model.batch", "Workload model batch"),
            ("settlement.protocol", "Settlement protocol"),
            ("llm", "LLM"),
            ("final_accuracy", "Final accuracy"),
            ("budget_frac", "Budget fraction"),
            ("x", "X"),
            ("_s", "S"),
        ] {
            assert_eq!(axis_title(column), title, "{column}");
        }
    }

    #[test]
    fn fractions_are_bounded_only_when_named_so_and_observed_within_bounds() {
        assert_eq!(
            fraction_bounds("backdoor_success_rate", [0.0, 0.3, 1.0]),
            Some((0.0, 1.0))
        );
        assert_eq!(fraction_bounds("final_accuracy", [0.9]), Some((0.0, 1.0)));
        assert_eq!(fraction_bounds("final_accuracy", [0.9, 91.0]), None);
        assert_eq!(fraction_bounds("arrival_rate", [0.5]), None);
        assert_eq!(fraction_bounds("mean_sojourn_s", [0.5]), None);
        assert_eq!(fraction_bounds("samoyeds_tokens_per_s", [0.5]), None);
    }
}
