//! The MoE router: a top-k softmax gate run on synthetic token hidden states. Hidden states are
//! drawn i.i.d. N(0, I) in a `dim`-wide router space (a projection of the model's hidden width, so
//! routing costs O(tokens·experts·dim)); gate weights are N(0, 1/dim); expert imbalance comes from
//! a per-expert logit bias ln(rank^(−skew)) over a random popularity order (skew 0: balanced;
//! skew s: Zipf(s) popularity of experts). The output is the real token→expert assignment the
//! kernels then execute.

use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

/// Router knobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RouterParams {
    /// Width of the router space the synthetic hidden states live in.
    pub dim: usize,
    /// Zipf exponent of expert popularity (0: balanced).
    pub skew: f64,
}

impl Default for RouterParams {
    fn default() -> Self {
        Self { dim: 32, skew: 0.5 }
    }
}

impl Validate for RouterParams {
    fn validate(&self, c: &mut Checks) {
        c.between("dim", self.dim, 1, 4096);
        c.within("skew", self.skew, 0.0, 10.0);
    }
}

/// Token→expert assignment of one MoE layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// Tokens routed to each expert, ascending.
    pub per_expert: Vec<Vec<u32>>,
}

impl Routing {
    /// Routed tokens per expert.
    pub fn counts(&self) -> Vec<usize> {
        self.per_expert.iter().map(Vec::len).collect()
    }

    /// Largest expert load over the mean load (1 = balanced).
    pub fn imbalance(&self) -> f64 {
        let c = self.counts();
        let mean = c.iter().sum::<usize>() as f64 / c.len().max(1) as f64;
        if mean == 0.0 {
            1.0
        } else {
            *c.iter().max().unwrap_or(&0) as f64 / mean
        }
    }
}

/// Routes `tokens` tokens to `top_k` of `experts` experts.
pub fn route(
    tokens: usize,
    experts: usize,
    top_k: usize,
    p: &RouterParams,
    rng: &mut Rng,
) -> Routing {
    let dim = p.dim;
    let scale = 1.0 / (dim as f64).sqrt();
    let gate: Vec<f64> = (0..experts * dim)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            z * scale
        })
        .collect::<Vec<f64>>();
    let mut order: Vec<usize> = (0..experts).collect();
    order.shuffle(rng);
    let mut bias = vec![0.0; experts];
    for (rank, &e) in order.iter().enumerate() {
        bias[e] = -p.skew * ((rank + 1) as f64).ln();
    }
    let mut per_expert = vec![Vec::new(); experts];
    let mut h = vec![0.0f64; dim];
    let mut logits: Vec<(f64, usize)> = Vec::with_capacity(experts);
    for t in 0..tokens {
        h.iter_mut().for_each(|x| *x = StandardNormal.sample(rng));
        logits.clear();
        for e in 0..experts {
            let w = &gate[e * dim..(e + 1) * dim];
            logits.push((
                w.iter().zip(&h).map(|(a, b)| a * b).sum::<f64>() + bias[e],
                e,
            ));
        }
        // Top-k by logit (softmax is monotone; its weights only scale the outputs).
        logits.select_nth_unstable_by(top_k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, e) in &logits[..top_k] {
            per_expert[e].push(t as u32);
        }
    }
    Routing { per_expert }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_goes_to_exactly_k_distinct_experts() {
        let mut rng = sim::rng::stream(1, "t");
        let r = route(500, 8, 2, &RouterParams::default(), &mut rng);
        assert_eq!(r.counts().iter().sum::<usize>(), 1000);
        let mut seen = vec![0; 500];
        for list in &r.per_expert {
            assert!(list.windows(2).all(|w| w[0] < w[1]));
            list.iter().for_each(|&t| seen[t as usize] += 1);
        }
        assert!(seen.iter().all(|&s| s == 2));
    }

    #[test]
    fn skew_increases_imbalance_and_is_deterministic() {
        let run = |skew: f64| {
            let mut rng = sim::rng::stream(3, "t");
            route(4000, 16, 2, &RouterParams { dim: 16, skew }, &mut rng)
        };
        assert!(run(2.0).imbalance() > run(0.0).imbalance() + 0.5);
        assert_eq!(run(1.0), run(1.0));
    }
}
