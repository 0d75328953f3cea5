//! Resource estimates: what one run will need, worked out from its params alone before it runs, so
//! that a plan that would exhaust the machine (or never end) is refused with the param to blame.
//!
//! An estimate is a sum of parts, each tied to the dotted params key that drives it; the largest
//! part names the key. Amounts are orders of magnitude (the family's dominant data structures and
//! event counts), not measurements: they exist to catch 1e9 where 1e4 was meant.

/// One part of an estimate: an amount and the params key it grows with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Part {
    /// Dotted params key (e.g. `"workload.requests"`).
    pub key: &'static str,
    /// Bytes (memory) or elementary steps (work).
    pub amount: f64,
}

/// Peak memory and total work of one run, each as a sum of parts. The default is an empty
/// estimate (nothing known, nothing refused).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceEstimate {
    memory: Vec<Part>,
    work: Vec<Part>,
}

impl ResourceEstimate {
    /// Adds `bytes` of memory that grow with `key`.
    pub fn memory(mut self, key: &'static str, bytes: f64) -> Self {
        self.memory.push(Part { key, amount: bytes });
        self
    }

    /// Adds `steps` of work (simulated events, multiply-adds) that grow with `key`.
    pub fn work(mut self, key: &'static str, steps: f64) -> Self {
        self.work.push(Part { key, amount: steps });
        self
    }

    /// Adds `bytes_each ×` the product of `factors`, keyed by the largest factor (the one most
    /// likely mistyped).
    pub fn memory_product(self, bytes_each: f64, factors: &[(&'static str, f64)]) -> Self {
        let (key, amount) = product(bytes_each, factors);
        self.memory(key, amount)
    }

    /// Adds `steps_each ×` the product of `factors`, keyed by the largest factor.
    pub fn work_product(self, steps_each: f64, factors: &[(&'static str, f64)]) -> Self {
        let (key, amount) = product(steps_each, factors);
        self.work(key, amount)
    }

    /// Peak memory, bytes.
    pub fn memory_bytes(&self) -> f64 {
        self.memory.iter().map(|p| p.amount).sum()
    }

    /// Total work, elementary steps.
    pub fn work_steps(&self) -> f64 {
        self.work.iter().map(|p| p.amount).sum()
    }

    /// The largest memory part.
    pub fn memory_driver(&self) -> Option<Part> {
        largest(&self.memory)
    }

    /// The largest work part.
    pub fn work_driver(&self) -> Option<Part> {
        largest(&self.work)
    }
}

fn product(each: f64, factors: &[(&'static str, f64)]) -> (&'static str, f64) {
    let key = factors
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or("", |f| f.0);
    (key, each * factors.iter().map(|f| f.1).product::<f64>())
}

fn largest(parts: &[Part]) -> Option<Part> {
    parts
        .iter()
        .copied()
        .max_by(|a, b| a.amount.total_cmp(&b.amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_and_the_largest_names_the_key() {
        let e = ResourceEstimate::default()
            .memory("a", 10.0)
            .memory("b", 30.0)
            .work("c", 1e9);
        assert_eq!(e.memory_bytes(), 40.0);
        assert_eq!(e.memory_driver().map(|p| p.key), Some("b"));
        assert_eq!(e.work_steps(), 1e9);
        assert_eq!(ResourceEstimate::default().memory_driver(), None);
        let p =
            ResourceEstimate::default().work_product(2.0, &[("rounds", 10.0), ("clients", 1e6)]);
        assert_eq!(
            p.work_driver(),
            Some(Part {
                key: "clients",
                amount: 2e7
            })
        );
    }
}
