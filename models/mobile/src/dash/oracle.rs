//! The oracle redundancy study: does the decoder have layers that can be skipped at all?
//!
//! On held-out windows (after the evaluation windows, so a set chosen here is scored on other
//! text), each layer `l` is skipped for every token (its output replaced by the
//! identity, and separately by the compensated output of [`super::compensate`], α or linear) and the
//! next-token distributions are compared with the unskipped model's (perplexity ratio, KL, top-1).
//! Then the `k` least harmful layers (ranked by that single-layer KL with compensation) are skipped
//! together for `k = 1 … greedy_max`, and contiguous spans of 2 and 4 layers at three depths. The
//! per-token oracle asks, for each scored position, whether some layer's all-token skip moves that
//! position's next-token distribution by less than `epsilon_kl` nats (a conservative estimate
//! of per-token slack: a skip by that token alone keeps the other tokens' states, which usually
//! changes the position less, so a per-token policy may find somewhat more).
//!
//! Skipping a layer for every token leaves no token to read its K/V, so the KV choice of
//! [`super::rollout`] does not matter here.

use decoder::Decoder;
use decoder::eval::Quality;
use decoder::skip::Baseline;

use super::compensate::{Compensation, Compensator};
use super::rollout::{lens, trajectory};
use super::score::compare;
use super::train::Evaluation;

/// Quality of one skip set, without and with compensation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pair {
    /// The skipped layers pass their input through.
    pub identity: Quality,
    /// The skipped layers give the compensated output (the run's `dash.compensation`).
    pub compensated: Quality,
}

/// What the oracle study measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Oracle {
    /// The unskipped model's quality on the same positions.
    pub base: Quality,
    /// Per layer: that layer skipped for every token.
    pub single: Vec<Pair>,
    /// Layers ranked from least to most harmful (single-layer KL with compensation).
    pub ranking: Vec<usize>,
    /// `greedy[k − 1]`: the `k` least harmful layers skipped together, with compensation.
    pub greedy: Vec<Quality>,
    /// Contiguous spans `(first layer, length, quality with compensation)`.
    pub spans: Vec<(usize, usize, Quality)>,
    /// Fraction of scored positions with some layer whose all-token skip (with compensation)
    /// costs that position less than `epsilon_kl` nats.
    pub token_skippable: f64,
    /// Mean number of such layers per scored position.
    pub token_cheap_layers: f64,
}

impl Oracle {
    /// Perplexity of `q` over the unskipped model's.
    pub fn ratio(&self, q: &Quality) -> f64 {
        q.perplexity() / self.base.perplexity().max(f64::MIN_POSITIVE)
    }

    /// The largest `k` whose greedy set keeps the perplexity ratio ≤ `max_ratio` (0: none).
    pub fn matched_k(&self, max_ratio: f64) -> usize {
        self.greedy
            .iter()
            .take_while(|q| self.ratio(q) <= max_ratio)
            .count()
    }
}

/// Starts of the contiguous spans: a sixth, half and two thirds of the depth.
fn span_starts(layers: usize) -> [usize; 3] {
    [layers / 6, layers / 2, 2 * layers / 3]
}

/// Final states of stacked windows of `lens` tokens whose unskipped trajectory is `traj` when the
/// layers flagged in `skip` are skipped by every token with compensation `comp`.
fn run_skipping(
    m: &Decoder,
    traj: &[Vec<f32>],
    lens: &[usize],
    skip: &[bool],
    comp: &Compensator,
) -> Vec<f32> {
    let Some(first) = skip.iter().position(|&s| s) else {
        return traj[traj.len() - 1].clone();
    };
    let mut prev = (first > 0).then(|| traj[first - 1].clone());
    let mut x = traj[first].clone();
    for (l, &s) in skip.iter().enumerate().skip(first) {
        let y = if s {
            comp.apply(l, &x, prev.as_deref())
        } else {
            m.layer_windows(l, &x, lens)
        };
        prev = Some(std::mem::replace(&mut x, y));
    }
    x
}

/// Runs the study over the windows of `base` with the fitted compensation `comp` (its mode is
/// the compensated side; the identity is the other); `greedy_max` sizes of the greedy set,
/// `epsilon_kl` the per-token threshold (nats).
pub fn study(
    m: &Decoder,
    base: &Baseline,
    comp: &Compensator,
    greedy_max: usize,
    epsilon_kl: f64,
) -> Result<Oracle, String> {
    let layers = m.config.layers;
    let n = lens(&base.windows);
    let traj = trajectory(m, &base.windows)?;
    let reference = &traj[layers];
    let identity = comp.with_mode(Compensation::None);
    let measure = |skip: &[bool], c: &Compensator| {
        let mut q = Quality::default();
        let x = run_skipping(m, &traj, &n, skip, c);
        let kls = compare(m, &base.windows, &x, reference, &mut q);
        // per scored position (a next token in its window)
        let scored: Vec<f64> = base
            .windows
            .iter()
            .flat_map(|w| (0..w.len()).map(move |p| p + 1 < w.len()))
            .zip(kls)
            .filter_map(|(s, k)| s.then_some(k))
            .collect();
        (q, scored)
    };
    let mut base_q = Quality::default();
    compare(m, &base.windows, reference, reference, &mut base_q);
    let mut single = Vec::with_capacity(layers);
    let mut cheap: Vec<usize> = Vec::new();
    for l in 0..layers {
        let mut skip = vec![false; layers];
        skip[l] = true;
        let (id_q, _) = measure(&skip, &identity);
        let (c_q, kls) = measure(&skip, comp);
        cheap.resize(kls.len(), 0);
        for (c, k) in cheap.iter_mut().zip(&kls) {
            *c += usize::from(*k < epsilon_kl);
        }
        single.push(Pair {
            identity: id_q,
            compensated: c_q,
        });
    }
    let mut ranking: Vec<usize> = (0..layers).collect();
    ranking.sort_by(|&a, &b| {
        single[a]
            .compensated
            .mean_kl()
            .total_cmp(&single[b].compensated.mean_kl())
    });
    let mut greedy = Vec::new();
    let mut skip = vec![false; layers];
    for &l in ranking.iter().take(greedy_max.min(layers)) {
        skip[l] = true;
        greedy.push(measure(&skip, comp).0);
    }
    let mut spans = Vec::new();
    for len in [2, 4] {
        for start in span_starts(layers) {
            if start + len <= layers {
                let skip: Vec<bool> = (0..layers)
                    .map(|l| (start..start + len).contains(&l))
                    .collect();
                spans.push((start, len, measure(&skip, comp).0));
            }
        }
    }
    let positions = cheap.len().max(1) as f64;
    Ok(Oracle {
        base: base_q,
        single,
        ranking,
        greedy,
        spans,
        token_skippable: cheap.iter().filter(|&&c| c > 0).count() as f64 / positions,
        token_cheap_layers: cheap.iter().sum::<usize>() as f64 / positions,
    })
}

/// The greedy skip set of size `k`: which layers it skips.
pub fn greedy_set(o: &Oracle, k: usize) -> Vec<bool> {
    let mut skip = vec![false; o.single.len()];
    for &l in o.ranking.iter().take(k) {
        skip[l] = true;
    }
    skip
}

/// A static skip set (`skip[l]`: every token skips layer `l`) run over the baseline's windows with
/// compensation `comp`, scored like a learned policy.
pub fn evaluate_set(
    m: &Decoder,
    base: &Baseline,
    skip: &[bool],
    comp: &Compensator,
) -> Result<Evaluation, String> {
    let layers = m.config.layers;
    let mut quality = Quality::default();
    let mut tokens = 0;
    for g in super::train::groups(&base.windows, 2048) {
        let ws = &base.windows[g.clone()];
        let n = lens(ws);
        let x = run_skipping(m, &trajectory(m, ws)?, &n, skip, comp);
        compare(m, ws, &x, &base.finals[g].concat(), &mut quality);
        tokens += n.iter().sum::<usize>();
    }
    let share = |s: bool| {
        if tokens == 0 {
            0.0
        } else {
            f64::from(u8::from(s))
        }
    };
    let layer_skip: Vec<f64> = skip.iter().map(|&s| share(s)).collect();
    Ok(Evaluation {
        skip_ratio: layer_skip.iter().sum::<f64>() / layers.max(1) as f64,
        layer_skip,
        quality,
        patterns: vec![skip.to_vec(); tokens],
    })
}

#[cfg(test)]
mod tests {
    use super::super::rollout::{Mode, rollout};
    use super::*;
    use decoder::Exact;

    /// A random 4-layer decoder (`name`: one temporary file per test, tests run in parallel).
    fn tiny(name: &str) -> (Decoder, decoder::Tokenizer) {
        super::super::tests::tiny_decoder(&format!("oracle-{name}"), 4, 5, "t")
    }

    /// α-compensation with the given factors.
    fn delta(alpha: &[f64]) -> Compensator {
        let mut c = Compensator::identity(alpha.len(), 32);
        c.alpha = alpha.to_vec();
        c.with_mode(Compensation::Delta)
    }

    #[test]
    fn an_all_token_skip_equals_the_rollout_that_skips_that_layer_for_every_token() {
        let (m, tok) = tiny("rollout");
        let windows = vec![tok.encode("abcd cdab abab dcba"), tok.encode("cd ab cd")];
        let n = lens(&windows);
        let traj = trajectory(&m, &windows).unwrap();
        let comp = delta(&[0.0, 0.4, -0.3, 0.7]);
        assert_eq!(run_skipping(&m, &traj, &n, &[false; 4], &comp), traj[4]);
        for l in 0..4 {
            let skip: Vec<bool> = (0..4).map(|j| j == l || j == 3).collect();
            for c in [comp.with_mode(Compensation::None), comp.clone()] {
                let mode = Mode {
                    asynchronous: false,
                    compensation: &c,
                    keep_features: false,
                };
                // the features' one-hot layer index says which layer is being decided
                let r = rollout(&m, &windows, mode, &mut |f| f[2 + l] == 1.0 || f[5] == 1.0);
                let r = r.unwrap();
                assert_eq!(run_skipping(&m, &traj, &n, &skip, &c), r.out, "{l}");
            }
        }
    }

    #[test]
    fn the_study_ranks_every_layer_and_its_greedy_set_scores_as_evaluated() {
        let (m, tok) = tiny("study");
        let windows: Vec<Vec<u32>> = ["abcd cdab abab dcba", "cdcd abab cdab", "ab cd ab cd ab"]
            .iter()
            .map(|t| tok.encode(t))
            .collect();
        let base = Baseline::compute(&m, windows, &Exact).unwrap();
        let comp = delta(&[0.0, 0.5, 0.5, 0.5]);
        let o = study(&m, &base, &comp, 3, 1e9).unwrap();
        assert_eq!(o.single.len(), 4);
        let mut r = o.ranking.clone();
        r.sort();
        assert_eq!(r, vec![0, 1, 2, 3]);
        assert_eq!(o.greedy.len(), 3);
        assert!(o.base.mean_kl().abs() < 1e-9);
        // every layer is cheaper than an infinite threshold for every position
        assert_eq!((o.token_skippable, o.token_cheap_layers), (1.0, 4.0));
        for k in 1..=3 {
            let e = evaluate_set(&m, &base, &greedy_set(&o, k), &comp).unwrap();
            assert!(
                (e.quality.nll_sum - o.greedy[k - 1].nll_sum).abs() < 1e-3,
                "k = {k}"
            );
            assert!((e.skip_ratio - k as f64 / 4.0).abs() < 1e-12);
        }
        let none = evaluate_set(&m, &base, &[false; 4], &comp).unwrap();
        assert!(none.quality.mean_kl() < 1e-6 && (o.ratio(&none.quality) - 1.0).abs() < 1e-4);
        assert!(o.single.iter().all(|s| s.identity.mean_kl() > 0.0));
    }
}
