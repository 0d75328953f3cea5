//! Phases of an execution: the time to the first token (a request's prefill) and the mean decode
//! token, read from the end times of the operators that end a token ([`Op::ends_token`]).
//!
//! [`Op::ends_token`]: super::graph::Op::ends_token

use super::graph::{Graph, OpId};

/// Durations of an execution and of its phases, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phases {
    /// The whole execution.
    pub total_s: f64,
    /// Start to the end of the first token (`None` without tokens).
    pub first_token_s: Option<f64>,
    /// Mean time between the ends of consecutive later tokens (`None` with fewer than two).
    pub decode_token_s: Option<f64>,
}

impl Phases {
    /// From the end times of the token-ending operators, in execution order, and the total time.
    pub fn from_token_ends(ends_s: &[f64], total_s: f64) -> Self {
        let decode_token_s = match ends_s {
            [first, .., last] => Some((last - first) / (ends_s.len() - 1) as f64),
            _ => None,
        };
        Self {
            total_s,
            first_token_s: ends_s.first().copied(),
            decode_token_s,
        }
    }

    /// Of operators executed in `order` whose end times (by operator id) are `end_s`.
    pub fn of_order(g: &Graph, order: &[OpId], end_s: &[f64]) -> Self {
        let ends: Vec<f64> = order
            .iter()
            .filter(|&&o| g.ops[o].ends_token())
            .map(|&o| end_s[o])
            .collect();
        let total = order.iter().map(|&o| end_s[o]).fold(0.0, f64::max);
        Self::from_token_ends(&ends, total)
    }

    /// Without transfers: the operators of `order` back to back, taking `op_time_s` (by id).
    pub fn transfer_free(g: &Graph, order: &[OpId], op_time_s: &[f64]) -> Self {
        let mut end_s = vec![0.0; g.ops.len()];
        let mut now = 0.0;
        for &o in order {
            now += op_time_s[o];
            end_s[o] = now;
        }
        Self::of_order(g, order, &end_s)
    }

    /// The largest ratio of `self` to `base`: end to end and, when `per_phase`, also the first
    /// token and the mean decode token.
    pub fn worst_ratio(&self, base: &Self, per_phase: bool) -> f64 {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => a / b,
            _ => 0.0,
        };
        let mut worst = ratio(Some(self.total_s), Some(base.total_s));
        if per_phase {
            worst = worst
                .max(ratio(self.first_token_s, base.first_token_s))
                .max(ratio(self.decode_token_s, base.decode_token_s));
        }
        worst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::TensorKind;

    /// prefill (2 s) + lm_head, then two decode tokens of 1 s each
    fn request() -> (Graph, Vec<f64>) {
        let mut g = Graph::default();
        let a = g.tensor("a", 1, TensorKind::Activation, false);
        g.op("prefill", 1.0, vec![], vec![a], vec![]);
        g.op("lm_head", 1.0, vec![a], vec![], vec![]);
        g.op("s0.lm_head", 1.0, vec![a], vec![], vec![]);
        g.op("s1.lm_head", 1.0, vec![a], vec![], vec![]);
        (g, vec![1.5, 0.5, 1.0, 1.0])
    }

    #[test]
    fn phases_split_the_first_token_from_the_decode_tokens() {
        let (g, t) = request();
        let p = Phases::transfer_free(&g, &[0, 1, 2, 3], &t);
        assert_eq!(p.total_s, 4.0);
        assert_eq!(p.first_token_s, Some(2.0));
        assert_eq!(p.decode_token_s, Some(1.0));
        let one = Phases::from_token_ends(&[3.0], 3.0);
        assert_eq!(one.decode_token_s, None);
    }

    #[test]
    fn the_worst_ratio_sees_a_slow_decode_that_the_total_hides() {
        let (g, t) = request();
        let base = Phases::transfer_free(&g, &[0, 1, 2, 3], &t);
        // decode tokens twice as slow: end to end 6/4, per token 2/1
        let slow = Phases::of_order(&g, &[0, 1, 2, 3], &[1.5, 2.0, 4.0, 6.0]);
        assert!((slow.worst_ratio(&base, false) - 1.5).abs() < 1e-12);
        assert!((slow.worst_ratio(&base, true) - 2.0).abs() < 1e-12);
    }
}
