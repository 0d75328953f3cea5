//! Where two series of a line figure cross (a break-even point): the x at which the difference of
//! their plotted means changes sign, found by linear interpolation between the x values either
//! series has, in the units the figure is drawn in (log10 on a log axis, so the point lies where
//! the drawn lines meet), and reported in data units.

use serde::{Deserialize, Serialize};

/// A mark asked for on a figure (`marks:` in report files): where two series cross.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkSpec {
    /// The two series (values of the figure's series column) whose crossing is marked.
    pub crossing: [String; 2],
    /// Text drawn beside the mark and written with it; default "A = B".
    #[serde(default)]
    pub label: Option<String>,
}

impl MarkSpec {
    /// The label drawn and written: the given one, or "A = B".
    pub fn label(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| format!("{} = {}", self.crossing[0], self.crossing[1]))
    }
}

/// One point where the two series cross.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossPoint {
    /// x of the crossing, data units.
    pub x: f64,
    /// y of both series there, data units.
    pub y: f64,
    /// The series that is lower just right of the crossing (`None` when they stay equal).
    pub lower_after: Option<String>,
    /// (x, y) in plot units, where the mark is drawn.
    pub(super) plotted: (f64, f64),
}

/// The crossings of one mark's two series over the x range both cover.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    /// The mark's label.
    pub label: String,
    /// The two series.
    pub series: [String; 2],
    /// The x range both series cover, data units (`None`: they share no x).
    pub x_range: Option<(f64, f64)>,
    /// Every crossing, ascending in x.
    pub points: Vec<CrossPoint>,
    /// With no crossing, the series lower over the whole shared range.
    pub lower_throughout: Option<String>,
}

impl Crossing {
    /// One line of text: each crossing's x and y, or that there is none and which series is lower.
    pub fn describe(&self, x_name: &str) -> String {
        let [a, b] = &self.series;
        let Some((lo, hi)) = self.x_range else {
            return format!("{}: `{a}` and `{b}` share no {x_name} value", self.label);
        };
        if self.points.is_empty() {
            return format!(
                "{}: no crossing over {x_name} ∈ [{}, {}]; `{}` is lower throughout",
                self.label,
                significant(lo),
                significant(hi),
                self.lower_throughout.as_deref().unwrap_or("neither")
            );
        }
        let points: Vec<String> = self
            .points
            .iter()
            .map(|p| {
                let after = match &p.lower_after {
                    Some(s) => format!(", `{s}` lower beyond"),
                    None => String::new(),
                };
                format!(
                    "{x_name} ≈ {} (y ≈ {}{after})",
                    significant(p.x),
                    significant(p.y)
                )
            })
            .collect();
        format!("{}: {}", self.label, points.join("; "))
    }

    /// CSV rows `figure,label,series_a,series_b,x,y,lower_after,lower_throughout`: one per crossing, or
    /// one with empty x and y when there is none.
    pub fn csv_rows(&self, figure: &str) -> Vec<String> {
        let [a, b] = &self.series;
        let head = format!(
            "{},{},{},{}",
            quote(figure),
            quote(&self.label),
            quote(a),
            quote(b)
        );
        if self.points.is_empty() {
            let lower = self.lower_throughout.as_deref().unwrap_or("");
            return vec![format!("{head},,,,{}", quote(lower))];
        }
        self.points
            .iter()
            .map(|p| {
                let after = p.lower_after.as_deref().unwrap_or("");
                format!("{head},{},{},{},", p.x, p.y, quote(after))
            })
            .collect()
    }
}

/// The header of [`Crossing::csv_rows`].
pub const CSV_HEADER: &str = "figure,label,series_a,series_b,x,y,lower_after,lower_throughout";

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `v` with three significant digits, without trailing zeros (`1.23e6` from 10⁶ up).
pub fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let exponent = v.abs().log10().floor() as i32;
    if !(-3..6).contains(&exponent) {
        let text = format!("{v:.2e}");
        return match text.split_once('e') {
            Some((m, e)) => format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.')),
            None => text,
        };
    }
    let decimals = (2 - exponent).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The crossings of polylines `a` and `b` (ascending x, plot units) under `spec`; `to_data` maps a
/// plotted (x, y) back to data units.
pub(super) fn find(
    spec: &MarkSpec,
    a: &[(f64, f64)],
    b: &[(f64, f64)],
    to_data: impl Fn((f64, f64)) -> (f64, f64),
) -> Crossing {
    let [name_a, name_b] = spec.crossing.clone();
    let mut out = Crossing {
        label: spec.label(),
        series: [name_a.clone(), name_b.clone()],
        x_range: None,
        points: Vec::new(),
        lower_throughout: None,
    };
    let (Some(a0), Some(a1), Some(b0), Some(b1)) = (a.first(), a.last(), b.first(), b.last())
    else {
        return out;
    };
    let (lo, hi) = (a0.0.max(b0.0), a1.0.min(b1.0));
    if lo > hi {
        return out;
    }
    out.x_range = Some((to_data((lo, 0.0)).0, to_data((hi, 0.0)).0));
    let mut grid: Vec<f64> = a
        .iter()
        .chain(b)
        .map(|p| p.0)
        .filter(|x| (lo..=hi).contains(x))
        .collect();
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    let diff: Vec<f64> = grid.iter().map(|&x| interp(a, x) - interp(b, x)).collect();
    let lower = |d: f64| match d {
        d if d < 0.0 => Some(name_a.clone()),
        d if d > 0.0 => Some(name_b.clone()),
        _ => None,
    };
    // The sign just right of index i: the next nonzero difference.
    let after = |i: usize| diff[i + 1..].iter().copied().find(|d| *d != 0.0);
    for i in 0..grid.len() {
        let d = diff[i];
        if d == 0.0 && (i == 0 || diff[i - 1] != 0.0) {
            let at = (grid[i], interp(a, grid[i]));
            let (x, y) = to_data(at);
            out.points.push(CrossPoint {
                x,
                y,
                lower_after: after(i).and_then(lower),
                plotted: at,
            });
        } else if let Some(&next) = diff.get(i + 1)
            && d * next < 0.0
        {
            let x = grid[i] + (grid[i + 1] - grid[i]) * d / (d - next);
            let at = (x, interp(a, x));
            let (x, y) = to_data(at);
            out.points.push(CrossPoint {
                x,
                y,
                lower_after: lower(next),
                plotted: at,
            });
        }
    }
    if out.points.is_empty() {
        out.lower_throughout = diff.iter().copied().find(|d| *d != 0.0).and_then(lower);
    }
    out
}

/// The polyline through `points` (ascending x) at `x`, flat beyond its ends.
fn interp(points: &[(f64, f64)], x: f64) -> f64 {
    let i = points.partition_point(|p| p.0 < x);
    match (i.checked_sub(1).map(|j| points[j]), points.get(i)) {
        (_, Some(&(x1, y1))) if x1 == x => y1,
        (Some((x0, y0)), Some(&(x1, y1))) => y0 + (y1 - y0) * (x - x0) / (x1 - x0),
        (Some((_, y0)), None) => y0,
        (None, Some(&(_, y1))) => y1,
        (None, None) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(a: &str, b: &str) -> MarkSpec {
        MarkSpec {
            crossing: [a.into(), b.into()],
            label: Some("break-even".into()),
        }
    }

    #[test]
    fn a_crossing_is_interpolated_between_the_x_values_of_both_series() {
        // a rises 0 → 10 over x 0 … 10; b is flat at 4, sampled at other x: a = b at x = 4.
        let a = [(0.0, 0.0), (10.0, 10.0)];
        let b = [(1.0, 4.0), (5.0, 4.0), (9.0, 4.0)];
        let c = find(&mark("a", "b"), &a, &b, |p| p);
        assert_eq!(c.x_range, Some((1.0, 9.0)));
        assert_eq!(c.points.len(), 1);
        let p = &c.points[0];
        assert!(
            (p.x - 4.0).abs() < 1e-12 && (p.y - 4.0).abs() < 1e-12,
            "{p:?}"
        );
        assert_eq!(p.lower_after.as_deref(), Some("b"));
        assert_eq!(c.lower_throughout, None);
        assert_eq!(
            c.describe("participants"),
            "break-even: participants ≈ 4 (y ≈ 4, `b` lower beyond)"
        );
        assert_eq!(c.csv_rows("gas"), ["gas,break-even,a,b,4,4,b,".to_string()]);
    }

    #[test]
    fn on_log_axes_the_crossing_is_where_the_drawn_lines_meet() {
        // In log10 units: a from (1, 1) to (3, 3), b flat at 2 ⇒ x = 2 there, i.e. 100 in data units.
        let a = [(1.0, 1.0), (3.0, 3.0)];
        let b = [(1.0, 2.0), (3.0, 2.0)];
        let c = find(&mark("a", "b"), &a, &b, |(x, y)| {
            (10f64.powf(x), 10f64.powf(y))
        });
        assert!((c.points[0].x - 100.0).abs() < 1e-9, "{c:?}");
        assert_eq!(c.points[0].plotted, (2.0, 2.0));
        assert_eq!(c.x_range, Some((10.0, 1000.0)));
    }

    #[test]
    fn no_crossing_says_which_series_is_lower() {
        let a = [(10.0, 5.0), (100.0, 50.0)];
        let b = [(10.0, 6.0), (100.0, 70.0), (1000.0, 1.0)];
        let c = find(&mark("a", "b"), &a, &b, |p| p);
        assert!(c.points.is_empty());
        assert_eq!(c.lower_throughout.as_deref(), Some("a"));
        assert_eq!(
            c.describe("x"),
            "break-even: no crossing over x ∈ [10, 100]; `a` is lower throughout"
        );
        assert_eq!(c.csv_rows("f"), ["f,break-even,a,b,,,,a".to_string()]);
        let apart = find(&mark("a", "b"), &a, &[(200.0, 1.0)], |p| p);
        assert_eq!(apart.x_range, None);
        assert!(apart.describe("x").contains("share no x value"));
    }

    #[test]
    fn touching_and_repeated_crossings_are_each_reported_once() {
        // Equal at x = 1 and 2 (a run of zeros counts once), then crossing again between 3 and 4.
        let a = [(0.0, 0.0), (1.0, 1.0), (2.0, 1.0), (3.0, 2.0), (4.0, 0.0)];
        let b = [(0.0, 1.0), (4.0, 1.0)];
        let c = find(&mark("a", "b"), &a, &b, |p| p);
        let xs: Vec<f64> = c.points.iter().map(|p| p.x).collect();
        assert_eq!(xs, [1.0, 3.5]);
        assert_eq!(c.points[0].lower_after.as_deref(), Some("b"));
        assert_eq!(c.points[1].lower_after.as_deref(), Some("a"));
    }

    #[test]
    fn three_significant_digits() {
        assert_eq!(significant(412.345), "412");
        assert_eq!(significant(2.34567), "2.35");
        assert_eq!(significant(2.5e7), "2.5e7");
        assert_eq!(significant(100.0), "100");
        assert_eq!(significant(0.0), "0");
    }
}
