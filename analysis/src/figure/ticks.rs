//! Axis ticks at "nice" numbers (1, 2, 2.5, 5 × 10ᵏ) and their labels.

/// About this many ticks per numeric axis.
const TARGET_TICKS: f64 = 5.0;

/// Ticks inside `[lo, hi]` at a nice step, each with its label.
pub(super) fn nice_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return vec![(lo, format_number(lo))];
    }
    let raw = span / TARGET_TICKS;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    // The tolerance keeps an end tick that float division puts a hair outside the range.
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let largest = lo.abs().max(hi.abs());
    let scientific = !(1e-3..1e6).contains(&largest);
    let decimals = decimals(step);
    (first..=last)
        .map(|k| {
            let v = k as f64 * step;
            let label = match (scientific, k) {
                (true, 0) => "0".to_string(),
                (true, _) => scientific_label(v, step),
                (false, _) => format!("{v:.decimals$}"),
            };
            (v, label)
        })
        .collect()
}

/// The shortest label of a value used as a category: `8`, `0.25`, `1e-7`.
pub(super) fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Decimal places that show every multiple of `step` exactly.
fn decimals(step: f64) -> usize {
    (0..12)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(12)
}

/// `v` in scientific notation with as many mantissa digits as the multiples of `step` need and no
/// trailing zeros: `1.5e6`, `2e6`, `3e-4`.
fn scientific_label(v: f64, step: f64) -> String {
    let exponent = v.abs().log10().floor();
    let digits = decimals(step / 10f64.powf(exponent));
    let text = format!("{v:.digits$e}");
    match text.split_once('e') {
        Some((mantissa, exp)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exp}")
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(lo: f64, hi: f64) -> Vec<String> {
        nice_ticks(lo, hi).into_iter().map(|t| t.1).collect()
    }

    #[test]
    fn nice_steps_and_labels() {
        assert_eq!(labels(0.0, 10.0), ["0", "2", "4", "6", "8", "10"]);
        assert_eq!(labels(-1.0, 1.0), ["-1.0", "-0.5", "0.0", "0.5", "1.0"]);
        assert_eq!(
            labels(-0.05, 1.05),
            ["0.00", "0.25", "0.50", "0.75", "1.00"]
        );
        assert_eq!(labels(0.13, 0.61), ["0.2", "0.3", "0.4", "0.5", "0.6"]);
        assert_eq!(labels(0.0, 3.0e6), ["0", "1e6", "2e6", "3e6"]);
        assert_eq!(labels(0.0, 1.6e6), ["0", "5e5", "1e6", "1.5e6"]);
        assert_eq!(labels(1e-4, 5e-4), ["1e-4", "2e-4", "3e-4", "4e-4", "5e-4"]);
        assert_eq!(labels(2.0, 2.0), ["2"]);
    }

    #[test]
    fn category_numbers() {
        assert_eq!(format_number(8.0), "8");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(-3.0), "-3");
    }
}
