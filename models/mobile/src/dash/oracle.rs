//! The oracle redundancy study: does the decoder have layers that can be skipped at all?
//!
//! On held-out windows (after the evaluation windows, so a set chosen here is scored on other
//! text), each layer `l` is skipped for every token (its output replaced by the
//! identity, and separately by the α-compensated output of [`super::compensate`]) and the
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

use decoder::eval::{Quality, kl};
use decoder::skip::Baseline;
use decoder::{Decoder, Exact};

use super::compensate::{self, Compensation};
use super::rollout::{layer_all, trajectory};
use super::train::Evaluation;

/// Quality of one skip set, both compensations.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pair {
    /// The skipped layers pass their input through.
    pub identity: Quality,
    /// The skipped layers give the α-compensated output.
    pub delta: Quality,
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

/// Final states of a window whose unskipped trajectory is `traj` when the layers flagged in
/// `skip` are skipped by every token with compensation `mode`.
fn run_skipping(
    m: &Decoder,
    traj: &[Vec<f32>],
    skip: &[bool],
    mode: Compensation,
    alpha: &[f64],
) -> Vec<f32> {
    let h = m.config.hidden;
    let Some(first) = skip.iter().position(|&s| s) else {
        return traj[traj.len() - 1].clone();
    };
    let mut prev = (first > 0).then(|| traj[first - 1].clone());
    let mut x = traj[first].clone();
    for (l, &s) in skip.iter().enumerate().skip(first) {
        let y = if s {
            let mut y = Vec::with_capacity(x.len());
            for (i, cur) in x.chunks(h).enumerate() {
                let p = prev.as_ref().map(|p| &p[i * h..(i + 1) * h]);
                y.extend(compensate::apply(mode, cur, p, alpha[l]));
            }
            y
        } else {
            layer_all(m, l, &x)
        };
        prev = Some(std::mem::replace(&mut x, y));
    }
    x
}

/// Adds the positions of one window to `q`, returning each position's KL.
fn score(m: &Decoder, ids: &[u32], x: &[f32], reference: &[f32], q: &mut Quality) -> Vec<f64> {
    let v = m.config.vocab;
    let ours = m.logits(x, &Exact);
    (0..ids.len().saturating_sub(1))
        .map(|p| {
            let (o, r) = (&ours[p * v..(p + 1) * v], &reference[p * v..(p + 1) * v]);
            q.add(o, r, ids[p + 1]);
            kl(r, o).max(0.0)
        })
        .collect()
}

/// Runs the study over the windows of `base` with compensation factors `alpha`; `greedy_max`
/// sizes of the greedy set, `epsilon_kl` the per-token threshold (nats).
pub fn study(
    m: &Decoder,
    base: &Baseline,
    alpha: &[f64],
    greedy_max: usize,
    epsilon_kl: f64,
) -> Result<Oracle, String> {
    let layers = m.config.layers;
    let windows: Vec<_> = base.windows.iter().zip(&base.finals).collect();
    let trajs = windows
        .iter()
        .map(|(w, _)| trajectory(m, w))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<Vec<f32>> = windows.iter().map(|(_, f)| m.logits(f, &Exact)).collect();
    let measure = |skip: &[bool], mode: Compensation| {
        let mut q = Quality::default();
        let mut kls = Vec::new();
        for (((ids, _), t), r) in windows.iter().zip(&trajs).zip(&refs) {
            let x = run_skipping(m, t, skip, mode, alpha);
            kls.extend(score(m, ids, &x, r, &mut q));
        }
        (q, kls)
    };
    let mut base_q = Quality::default();
    for ((ids, f), r) in windows.iter().zip(&refs) {
        score(m, ids, f, r, &mut base_q);
    }
    let mut single = Vec::with_capacity(layers);
    let mut cheap: Vec<usize> = Vec::new();
    for l in 0..layers {
        let mut skip = vec![false; layers];
        skip[l] = true;
        let (identity, _) = measure(&skip, Compensation::None);
        let (delta, kls) = measure(&skip, Compensation::Delta);
        cheap.resize(kls.len(), 0);
        for (c, k) in cheap.iter_mut().zip(&kls) {
            *c += usize::from(*k < epsilon_kl);
        }
        single.push(Pair { identity, delta });
    }
    let mut ranking: Vec<usize> = (0..layers).collect();
    ranking.sort_by(|&a, &b| {
        single[a]
            .delta
            .mean_kl()
            .total_cmp(&single[b].delta.mean_kl())
    });
    let mut greedy = Vec::new();
    let mut skip = vec![false; layers];
    for &l in ranking.iter().take(greedy_max.min(layers)) {
        skip[l] = true;
        greedy.push(measure(&skip, Compensation::Delta).0);
    }
    let mut spans = Vec::new();
    for len in [2, 4] {
        for start in span_starts(layers) {
            if start + len <= layers {
                let skip: Vec<bool> = (0..layers)
                    .map(|l| (start..start + len).contains(&l))
                    .collect();
                spans.push((start, len, measure(&skip, Compensation::Delta).0));
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
/// compensation `mode`, scored like a learned policy.
pub fn evaluate_set(
    m: &Decoder,
    base: &Baseline,
    skip: &[bool],
    mode: Compensation,
    alpha: &[f64],
) -> Result<Evaluation, String> {
    let layers = m.config.layers;
    let mut quality = Quality::default();
    let mut patterns = Vec::new();
    for (ids, fin) in base.windows.iter().zip(&base.finals) {
        let x = run_skipping(m, &trajectory(m, ids)?, skip, mode, alpha);
        score(m, ids, &x, &m.logits(fin, &Exact), &mut quality);
        patterns.extend(std::iter::repeat_n(skip.to_vec(), ids.len()));
    }
    let share = |s: bool| {
        if patterns.is_empty() {
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
        patterns,
    })
}

#[cfg(test)]
mod tests {
    use super::super::rollout::{Mode, rollout};
    use super::*;

    /// A random 4-layer decoder (`name`: one temporary file per test, tests run in parallel).
    fn tiny(name: &str) -> (Decoder, decoder::Tokenizer) {
        let path =
            std::env::temp_dir().join(format!("sysim-oracle-{name}-{}.gguf", std::process::id()));
        let c = decoder::Config {
            layers: 4,
            hidden: 32,
            heads: 2,
            kv_heads: 1,
            ffn: 64,
            vocab: 0,
            rope_theta: 10_000.0,
            rms_eps: 1e-5,
        };
        decoder::gguf::write_random(&path, &c, &["ab", "cd"], &mut sim::rng::stream(5, "t"))
            .unwrap();
        let m = Decoder::load(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        m
    }

    #[test]
    fn an_all_token_skip_equals_the_rollout_that_skips_that_layer_for_every_token() {
        let (m, tok) = tiny("rollout");
        let ids = tok.encode("abcd cdab abab dcba");
        let traj = trajectory(&m, &ids).unwrap();
        let alpha = [0.0, 0.4, -0.3, 0.7];
        assert_eq!(
            run_skipping(&m, &traj, &[false; 4], Compensation::Delta, &alpha),
            traj[4]
        );
        for l in 0..4 {
            let skip: Vec<bool> = (0..4).map(|j| j == l || j == 3).collect();
            for comp in [Compensation::None, Compensation::Delta] {
                let mode = Mode {
                    asynchronous: false,
                    compensation: comp,
                    alpha: &alpha,
                };
                // the features' one-hot layer index says which layer is being decided
                let r = rollout(&m, &ids, mode, &mut |f| f[2 + l] == 1.0 || f[5] == 1.0).unwrap();
                assert_eq!(run_skipping(&m, &traj, &skip, comp, &alpha), r.out, "{l}");
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
        let alpha = [0.0, 0.5, 0.5, 0.5];
        let o = study(&m, &base, &alpha, 3, 1e9).unwrap();
        assert_eq!(o.single.len(), 4);
        let mut r = o.ranking.clone();
        r.sort();
        assert_eq!(r, vec![0, 1, 2, 3]);
        assert_eq!(o.greedy.len(), 3);
        assert_eq!(o.base.mean_kl(), 0.0);
        // every layer is cheaper than an infinite threshold for every position
        assert_eq!((o.token_skippable, o.token_cheap_layers), (1.0, 4.0));
        for k in 1..=3 {
            let e = evaluate_set(&m, &base, &greedy_set(&o, k), Compensation::Delta, &alpha);
            let e = e.unwrap();
            assert_eq!(e.quality, o.greedy[k - 1], "k = {k}");
            assert!((e.skip_ratio - k as f64 / 4.0).abs() < 1e-12);
        }
        let none = evaluate_set(&m, &base, &[false; 4], Compensation::Delta, &alpha).unwrap();
        assert_eq!((none.quality.mean_kl(), o.ratio(&none.quality)), (0.0, 1.0));
        assert!(o.single.iter().all(|s| s.identity.mean_kl() > 0.0));
    }
}
