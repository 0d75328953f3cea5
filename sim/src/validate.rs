//! Range checks that serde's typing cannot express: the one [`Validate`] signature every params
//! struct (and every nested part of one) implements, and [`Checks`], which collects the violations
//! with the dotted path of each offending key.
//!
//! A part checks its own fields by name (`c.positive("rate", self.rate)`) and its nested parts with
//! [`Checks::part`]; the path of the part is prepended automatically, so the loader can point at the
//! line of the scenario file (`params.soc.gpu.levels`). A number that is not finite (NaN, ±∞) fails
//! every numeric check.

use std::fmt::Display;

/// A parameter that is out of its valid range (or of the wrong type), found before running.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamError {
    /// Dotted path of the offending key, relative to `params` (e.g. `"arrival_rate"`,
    /// `"workload.requests"`; `""` for the params table itself).
    pub path: String,
    /// What was expected, in one sentence (e.g. `"must be a finite number > 0, got -1"`).
    pub message: String,
}

/// Range checks of a params value or of a nested part of one.
pub trait Validate {
    /// Records in `c` every violated constraint, naming fields relative to `self`.
    fn validate(&self, c: &mut Checks);
}

impl<T: Validate> Validate for Option<T> {
    fn validate(&self, c: &mut Checks) {
        if let Some(v) = self {
            v.validate(c);
        }
    }
}

/// The violations found so far, and the dotted path of the part being checked.
#[derive(Debug, Default)]
pub struct Checks {
    path: String,
    errors: Vec<ParamError>,
}

impl Checks {
    /// Checks of a params value at its root.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the checks of `params` and returns every violation.
    pub fn of(params: &impl Validate) -> Vec<ParamError> {
        let mut c = Self::new();
        params.validate(&mut c);
        c.errors
    }

    /// The dotted path of `field` of the part being checked (`""`: the part itself).
    pub fn path_of(&self, field: &str) -> String {
        match (self.path.is_empty(), field.is_empty()) {
            (true, _) => field.to_owned(),
            (false, true) => self.path.clone(),
            (false, false) => format!("{}.{field}", self.path),
        }
    }

    /// Records that `field` violates a constraint, described by `message`.
    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        let path = self.path_of(field);
        self.errors.push(ParamError {
            path,
            message: message.into(),
        });
    }

    /// Checks nested part `field` (`""`: a part flattened into this one).
    pub fn part(&mut self, field: &str, part: &(impl Validate + ?Sized)) {
        let outer = std::mem::take(&mut self.path);
        self.path = match (outer.is_empty(), field.is_empty()) {
            (true, _) => field.to_owned(),
            (false, true) => outer.clone(),
            (false, false) => format!("{outer}.{field}"),
        };
        part.validate(self);
        self.path = outer;
    }

    /// `v` must be finite.
    pub fn finite(&mut self, field: &str, v: f64) {
        if !v.is_finite() {
            self.fail(field, format!("must be a finite number, got {v}"));
        }
    }

    /// `v` must be finite and > 0.
    pub fn positive(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.fail(field, format!("must be a finite number > 0, got {v}"));
        }
    }

    /// `v` must be finite and ≥ 0.
    pub fn non_negative(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && v >= 0.0) {
            self.fail(field, format!("must be a finite number ≥ 0, got {v}"));
        }
    }

    /// `v` must be a fraction: finite and in [0, 1].
    pub fn fraction(&mut self, field: &str, v: f64) {
        self.within(field, v, 0.0, 1.0);
    }

    /// `v` must be finite and in [`lo`, `hi`].
    pub fn within(&mut self, field: &str, v: f64, lo: f64, hi: f64) {
        if !(v.is_finite() && (lo..=hi).contains(&v)) {
            self.fail(field, format!("must be in [{lo}, {hi}], got {v}"));
        }
    }

    /// `v` must be ≥ `min` (counts, sizes).
    pub fn at_least<T: PartialOrd + Display>(&mut self, field: &str, v: T, min: T) {
        if v < min {
            self.fail(field, format!("must be ≥ {min}, got {v}"));
        }
    }

    /// `v` must be in [`lo`, `hi`] (counts, sizes).
    pub fn between<T: PartialOrd + Display>(&mut self, field: &str, v: T, lo: T, hi: T) {
        if v < lo || v > hi {
            self.fail(field, format!("must be in [{lo}, {hi}], got {v}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(check: impl Fn(&mut Checks)) -> Vec<String> {
        let mut c = Checks::new();
        check(&mut c);
        c.errors
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect()
    }

    #[test]
    fn no_numeric_check_accepts_a_number_that_is_not_finite() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(messages(|c| c.finite("x", v)).len(), 1);
            assert_eq!(messages(|c| c.positive("x", v)).len(), 1);
            assert_eq!(messages(|c| c.non_negative("x", v)).len(), 1);
            assert_eq!(messages(|c| c.fraction("x", v)).len(), 1);
            assert_eq!(messages(|c| c.within("x", v, -1e300, 1e300)).len(), 1);
        }
    }

    #[test]
    fn bounds_are_inclusive_where_the_name_says_so() {
        assert_eq!(messages(|c| c.positive("x", 0.0)).len(), 1);
        assert!(messages(|c| c.non_negative("x", 0.0)).is_empty());
        assert!(messages(|c| c.fraction("x", 1.0)).is_empty());
        assert_eq!(messages(|c| c.fraction("x", 1.0 + 1e-12)).len(), 1);
        assert!(messages(|c| c.at_least("n", 3u64, 3)).is_empty());
        assert_eq!(
            messages(|c| c.between("n", 11u32, 1, 10)),
            ["n: must be in [1, 10], got 11"]
        );
    }

    struct Rate(f64);
    impl Validate for Rate {
        fn validate(&self, c: &mut Checks) {
            c.positive("rate", self.0);
        }
    }

    struct Outer {
        inner: Rate,
        opt: Option<Rate>,
    }
    impl Validate for Outer {
        fn validate(&self, c: &mut Checks) {
            c.part("inner", &self.inner);
            c.part("opt", &self.opt);
            c.at_least("", 0, 1);
        }
    }

    #[test]
    fn nested_parts_report_full_dotted_paths() {
        let bad = Outer {
            inner: Rate(-1.0),
            opt: Some(Rate(f64::NAN)),
        };
        let mut c = Checks::new();
        c.part("top", &bad);
        let paths: Vec<_> = c.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["top.inner.rate", "top.opt.rate", "top"]);
        let fine = Outer {
            inner: Rate(1.0),
            opt: None,
        };
        assert_eq!(
            Checks::of(&fine).len(),
            1,
            "only the root's own check fails"
        );
    }
}
