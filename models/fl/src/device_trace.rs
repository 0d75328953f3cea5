//! A user's device trace for FL participants (FedScale-style per-device capacity and availability):
//! CSV with a header naming `gflops`, `up_mbps`, `down_mbps` and optionally `latency_ms`,
//! `availability`, `dropout`, in any order (`#` comments). Participant `i` takes row
//! `i mod rows`; an absent optional column takes the device mix's value. Every error names the
//! file, line and column.

use std::path::Path;

use sim::table_csv::{self, At};

use super::devices::{DeviceMix, DeviceProfile};

const REQUIRED: [&str; 3] = ["gflops", "up_mbps", "down_mbps"];
const OPTIONAL: [&str; 3] = ["latency_ms", "availability", "dropout"];

/// Reads the trace at `path`; absent optional columns come from `mix`.
pub fn load(path: &Path, mix: &DeviceMix) -> Result<Vec<DeviceProfile>, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    parse(&text, mix).map_err(|(line, col, msg)| format!("{name}:{line}:{col}: {msg}"))
}

/// Parses trace text (see the module doc).
pub fn parse(text: &str, mix: &DeviceMix) -> Result<Vec<DeviceProfile>, At> {
    let mut out = Vec::new();
    for row in table_csv::parse(text, &REQUIRED, &OPTIONAL)? {
        let value = |k: usize, default: f64| row.f64(k).map(|v| v.unwrap_or(default));
        let fail = |k: usize, rule: &str, v: f64| {
            let names = [REQUIRED, OPTIONAL].concat();
            Err((
                row.line,
                row.column(k),
                format!("{} must be {rule}, got {v}", names[k]),
            ))
        };
        let mut speeds = [0.0; 3];
        for (k, s) in speeds.iter_mut().enumerate() {
            *s = value(k, 0.0)?;
            if !(s.is_finite() && *s > 0.0) {
                return fail(k, "> 0", *s);
            }
        }
        let latency_ms = value(3, mix.latency_ms)?;
        if !(latency_ms.is_finite() && latency_ms >= 0.0) {
            return fail(3, "≥ 0 ms", latency_ms);
        }
        let availability = value(4, mix.availability)?;
        if !(availability > 0.0 && availability <= 1.0) {
            return fail(4, "in (0, 1]", availability);
        }
        let dropout = value(5, mix.dropout)?;
        if !(0.0..=1.0).contains(&dropout) {
            return fail(5, "in [0, 1]", dropout);
        }
        out.push(DeviceProfile {
            flops_per_s: speeds[0] * 1e9,
            up_bytes_per_s: speeds[1] * 1e6 / 8.0,
            down_bytes_per_s: speeds[2] * 1e6 / 8.0,
            latency_s: latency_ms * 1e-3,
            availability,
            dropout,
            checkin_s_median: mix.checkin_s_median,
            checkin_sigma: mix.sigma,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_profiles_with_the_mix_filling_absent_columns() {
        let mix = DeviceMix::default();
        let p = parse(
            "# phones\ndown_mbps,gflops,up_mbps,dropout\n80,4,8,0.1\n",
            &mix,
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].flops_per_s, 4e9);
        assert_eq!(p[0].up_bytes_per_s, 1e6);
        assert_eq!(p[0].down_bytes_per_s, 1e7);
        assert_eq!(p[0].dropout, 0.1);
        assert_eq!(p[0].availability, mix.availability);
        assert_eq!(p[0].latency_s, mix.latency_ms * 1e-3);
    }

    #[test]
    fn bad_rows_name_line_and_column() {
        let mix = DeviceMix::default();
        let e = parse("gflops,up_mbps,down_mbps\n1,2,3\n1,0,3\n", &mix).unwrap_err();
        assert_eq!((e.0, e.1), (3, 3), "{e:?}");
        assert!(e.2.contains("up_mbps must be > 0"), "{e:?}");
        let e = parse("gflops,up_mbps,down_mbps,availability\n1,2,3,1.5\n", &mix).unwrap_err();
        assert_eq!((e.0, e.1), (2, 7), "{e:?}");
        let e = parse("gflops,up_mbps,down_mbps\n1,2,fast\n", &mix).unwrap_err();
        assert_eq!((e.0, e.1), (2, 5), "{e:?}");
        let e = load(Path::new("/nonexistent/devices.csv"), &mix).unwrap_err();
        assert!(
            e.starts_with("/nonexistent/devices.csv: cannot read"),
            "{e}"
        );
    }
}
