//! FUSE's unified governor, offline part: profile (CPU, GPU, memory) OPP triples per prompt-length
//! range and phase by running the engine's step cost model at each pinned triple over several prompt
//! lengths spread across the range, then choose per range and phase the triple with the lowest mean
//! latency whose energy per token does not exceed a target (by default what the stock governors
//! spend on the same lengths). Plain functions, no engine.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::cost::{CostModel, Phase, StepWork};
use super::soc::Domain;

/// FUSE tunables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FuseParams {
    /// Upper bounds (exclusive) of the prompt-length ranges, tokens, increasing; FUSE uses 5 ranges.
    pub range_bounds: Vec<u64>,
    /// Prompt lengths profiled per range, spread evenly across it (the open last range is profiled
    /// over `[last bound, 2 × last bound)`).
    pub lengths_per_range: u64,
    /// Decode tokens profiled per range (and generated per calibration request).
    pub decode_profile_tokens: u64,
    /// Profile every `decode_profile_stride`-th decode token (context grows in between).
    pub decode_profile_stride: u64,
    /// Energy-per-token budget as a multiple of the stock governors' (1 = iso-energy).
    pub energy_budget: f64,
}

impl Default for FuseParams {
    fn default() -> Self {
        Self {
            range_bounds: vec![64, 128, 256, 512],
            lengths_per_range: 3,
            decode_profile_tokens: 128,
            decode_profile_stride: 32,
            energy_budget: 1.0,
        }
    }
}

impl Validate for FuseParams {
    fn validate(&self, c: &mut Checks) {
        if self.range_bounds.first().is_some_and(|&b| b < 2)
            || self.range_bounds.windows(2).any(|w| w[1] <= w[0])
        {
            c.fail("range_bounds", "must be strictly increasing and ≥ 2");
        }
        c.at_least("lengths_per_range", self.lengths_per_range, 1);
        c.at_least("decode_profile_tokens", self.decode_profile_tokens, 1);
        c.at_least("decode_profile_stride", self.decode_profile_stride, 1);
        c.positive("energy_budget", self.energy_budget);
    }
}

impl FuseParams {
    /// The prompt lengths profiled for each range: `lengths_per_range` points at the centres of
    /// equal slices of the range (`[1, b₀)`, `[b₀, b₁)`, …, `[b_last, 2·b_last)`).
    pub fn profile_prompts(&self) -> Vec<Vec<u64>> {
        let mut edges = vec![1];
        edges.extend(&self.range_bounds);
        let last = *edges.last().unwrap_or(&1);
        edges.push(2 * last.max(1));
        let n = self.lengths_per_range.max(1);
        edges
            .windows(2)
            .map(|w| {
                let (lo, span) = (w[0] as f64, (w[1] - w[0]) as f64);
                let mut v: Vec<u64> = (0..n)
                    .map(|k| (lo + span * (k as f64 + 0.5) / n as f64).floor() as u64)
                    .map(|p| p.clamp(w[0], w[1] - 1))
                    .collect();
                v.dedup();
                v
            })
            .collect()
    }

    /// The range a prompt of `prompt` tokens falls in.
    pub fn range_of(&self, prompt: u64) -> usize {
        self.range_bounds.iter().filter(|&&b| prompt >= b).count()
    }
}

/// Latency and energy of one phase at one triple (per token for decode, whole prefill otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// OPP indices (cpu, gpu, mem).
    pub triple: [usize; 3],
    /// TTFT (prefill) or TPOT (decode), seconds.
    pub latency_s: f64,
    /// Energy per token, joules (per prompt token for prefill).
    pub energy_per_token_j: f64,
}

/// The step work one profiling measurement replays: a prefill of `prompt` tokens, or decode tokens
/// sampled every `stride` over `tokens` tokens after it.
pub fn profile_steps(
    cost: &CostModel,
    phase: Phase,
    prompt: u64,
    tokens: u64,
    stride: u64,
) -> (Vec<StepWork>, u64) {
    match phase {
        Phase::Prefill => (cost.prefill_steps(prompt), prompt),
        Phase::Decode => {
            let samples: Vec<u64> = (0..tokens).step_by(stride as usize).collect();
            let steps = samples
                .iter()
                .flat_map(|&k| cost.decode_steps(prompt + k))
                .collect();
            (steps, samples.len() as u64)
        }
    }
}

/// Profiles, at `triple`, the measurement `sets` (each: steps covering `per` tokens, one per
/// prompt length): mean latency per prompt (prefill) or per token (decode), energy per token.
pub fn profile(
    cost: &CostModel,
    phase: Phase,
    sets: &[(Vec<StepWork>, u64)],
    triple: [usize; 3],
) -> Profile {
    let (mut t, mut e, mut per) = (0.0, 0.0, 0u64);
    for (steps, n) in sets {
        let (ts, es) = cost.run_steps(steps, triple);
        t += ts;
        e += es;
        per += n;
    }
    let per = per.max(1) as f64;
    let latency_s = match phase {
        Phase::Prefill => t / sets.len().max(1) as f64,
        Phase::Decode => t / per,
    };
    Profile {
        triple,
        latency_s,
        energy_per_token_j: e / per,
    }
}

/// Every (cpu, gpu, mem) OPP triple of the SoC.
pub fn full_grid(cost: &CostModel) -> Vec<[usize; 3]> {
    let n = Domain::ALL.map(|d| cost.soc.domain(d).len());
    let mut v = Vec::with_capacity(n[0] * n[1] * n[2]);
    for c in 0..n[0] {
        for g in 0..n[1] {
            for m in 0..n[2] {
                v.push([c, g, m]);
            }
        }
    }
    v
}

/// The fastest profile whose energy per token is ≤ `budget_j` (ties: less energy); when none fits,
/// the least-energy one. `None` only for an empty grid.
pub fn choose(profiles: &[Profile], budget_j: f64) -> Option<Profile> {
    let better = |a: &Profile, b: &Profile| {
        a.latency_s < b.latency_s
            || (a.latency_s == b.latency_s && a.energy_per_token_j < b.energy_per_token_j)
    };
    let feasible = profiles
        .iter()
        .filter(|p| p.energy_per_token_j <= budget_j)
        .fold(None::<Profile>, |best, p| match best {
            Some(b) if !better(p, &b) => Some(b),
            _ => Some(*p),
        });
    feasible.or_else(|| {
        profiles
            .iter()
            .copied()
            .min_by(|a, b| a.energy_per_token_j.total_cmp(&b.energy_per_token_j))
    })
}

/// Profiles every triple of `grid` for one phase over the prompt lengths `prompts` and chooses
/// under `budget_j`; returns the choice and the number of profiled triples.
pub fn search(
    cost: &CostModel,
    fp: &FuseParams,
    phase: Phase,
    prompts: &[u64],
    budget_j: f64,
    grid: &[[usize; 3]],
) -> (Option<Profile>, usize) {
    let sets: Vec<(Vec<StepWork>, u64)> = prompts
        .iter()
        .map(|&p| {
            profile_steps(
                cost,
                phase,
                p,
                fp.decode_profile_tokens,
                fp.decode_profile_stride,
            )
        })
        .collect();
    let profiles: Vec<Profile> = grid
        .iter()
        .map(|&t| profile(cost, phase, &sets, t))
        .collect();
    (choose(&profiles, budget_j), profiles.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: [usize; 3], l: f64, e: f64) -> Profile {
        Profile {
            triple: t,
            latency_s: l,
            energy_per_token_j: e,
        }
    }

    #[test]
    fn choose_takes_the_fastest_within_budget_else_the_cheapest() {
        let v = [
            p([0, 0, 0], 3.0, 1.0),
            p([1, 1, 1], 1.0, 5.0),
            p([2, 0, 1], 2.0, 2.0),
        ];
        assert_eq!(choose(&v, 2.5).unwrap().triple, [2, 0, 1]);
        assert_eq!(choose(&v, 10.0).unwrap().triple, [1, 1, 1]);
        assert_eq!(choose(&v, 0.5).unwrap().triple, [0, 0, 0]);
        assert!(choose(&[], 1.0).is_none());
    }

    #[test]
    fn profiled_prompts_spread_inside_their_ranges() {
        let f = FuseParams::default();
        let p = f.profile_prompts();
        assert_eq!(p[0], vec![11, 32, 53]);
        assert_eq!(p[1], vec![74, 96, 117]);
        assert_eq!(p[4], vec![597, 768, 938]);
        for (i, v) in p.iter().enumerate() {
            assert!(v.iter().all(|&x| f.range_of(x) == i), "range {i}: {v:?}");
        }
        let one = FuseParams {
            lengths_per_range: 1,
            ..FuseParams::default()
        };
        assert_eq!(one.profile_prompts().concat(), vec![32, 96, 192, 384, 768]);
    }
}
