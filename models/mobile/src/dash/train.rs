//! Training and evaluation of the scorer on the real small transformer.
//!
//! MDP per token: state = features of the token's hidden state before layer `l`; action = execute
//! or skip; reward of a skip = 1/L (compute saved) − λ·d, where d = 1 − cos(compensated output,
//! true output) is the differential reward of the compensation mechanism; at the end of the
//! episode the token's final quality loss −λ·(1 − cos(final state, unskipped final state)).
//! REINFORCE with the return-to-go, a per-layer batch baseline (mean return of the sentence's
//! tokens at that layer), advantages divided by their root-mean-square over the episode, and the
//! gradient clipped to unit norm; one update per sentence.

use rand::Rng as _;
use sim::rng::Rng;

use super::compensate::{self, Compensation};
use super::features::{self, cosine, mean_pool};
use super::params::DashParams;
use super::policy::Scorer;
use super::rollout::{Mode, Rollout, rollout};
use super::stack::LayerStack;

/// A trained policy with its compensation factors.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The scorer.
    pub scorer: Scorer,
    /// Compensation factor per layer (zeros without delta compensation).
    pub alpha: Vec<f64>,
    /// Mean episode return per epoch (per token, reward units of "layers saved / L").
    pub mean_return: Vec<f64>,
}

/// What the greedy policy does on held-out sentences.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Skipped token-layers over all token-layers.
    pub skip_ratio: f64,
    /// Mean over sentences of the cosine between the mean-pooled outputs with and without skipping.
    pub quality_cosine: f64,
    /// Mean over tokens of the cosine between final hidden states with and without skipping.
    pub token_cosine: f64,
    /// Skip decisions per token (sentence after sentence), per layer of the small model.
    pub patterns: Vec<Vec<bool>>,
}

fn mode<'a>(p: &DashParams, alpha: &'a [f64]) -> Mode<'a> {
    Mode {
        asynchronous: p.asynchronous,
        compensation: p.compensation,
        alpha,
    }
}

/// Per-token returns-to-go of an episode: `g[i][l]`.
fn returns(r: &Rollout, final_ref: &[f32], hidden: usize, lambda: f64) -> Vec<Vec<f64>> {
    r.decisions
        .iter()
        .enumerate()
        .map(|(i, ds)| {
            let layers = ds.len().max(1) as f64;
            let row = |x: &[f32]| x[i * hidden..(i + 1) * hidden].to_vec();
            let terminal = -lambda * (1.0 - cosine(&row(&r.out), &row(final_ref))).max(0.0);
            let mut g = vec![0.0; ds.len()];
            let mut acc = terminal;
            for (l, d) in ds.iter().enumerate().rev() {
                if d.skip {
                    acc += 1.0 / layers - lambda * d.deviation;
                }
                g[l] = acc;
            }
            g
        })
        .collect()
}

/// Trains the scorer on `sentences` (token ids) whose unskipped trajectories are `refs`.
pub fn train(
    stack: &dyn LayerStack,
    sentences: &[Vec<u32>],
    refs: &[Vec<Vec<f32>>],
    p: &DashParams,
    rng: &mut Rng,
) -> Trained {
    let layers = stack.layers();
    let alpha = match p.compensation {
        Compensation::Delta => compensate::fit_alpha(refs, layers),
        Compensation::None => vec![0.0; layers],
    };
    let mut scorer = Scorer::new(features::len(layers), layers, p.initial_skip);
    let mut mean_return = Vec::with_capacity(p.epochs);
    for _ in 0..p.epochs {
        let (mut sum, mut count) = (0.0, 0usize);
        for (ids, traj) in sentences.iter().zip(refs) {
            let s = scorer.clone();
            let r = rollout(stack, ids, mode(p, &alpha), &mut |f| {
                rng.random::<f64>() < s.p_skip(f)
            });
            let g = returns(&r, &traj[layers], stack.hidden(), p.lambda);
            let baseline: Vec<f64> = (0..layers)
                .map(|l| g.iter().map(|gi| gi[l]).sum::<f64>() / g.len().max(1) as f64)
                .collect();
            // advantages normalised by their spread over the episode (scale-free in λ)
            let adv: Vec<Vec<f64>> = g
                .iter()
                .map(|gi| gi.iter().zip(&baseline).map(|(a, b)| a - b).collect())
                .collect();
            let n = (r.decisions.len() * layers).max(1) as f64;
            let var = adv.iter().flatten().map(|a| a * a).sum::<f64>() / n;
            let spread = var.sqrt().max(1e-9);
            let mut grad = vec![0.0; scorer.w.len()];
            for ((ds, gi), ai) in r.decisions.iter().zip(&g).zip(&adv) {
                for (d, a) in ds.iter().zip(ai) {
                    for (x, b) in grad.iter_mut().zip(s.grad_log(&d.features, d.skip)) {
                        *x += a / spread * b;
                    }
                }
                sum += gi.first().copied().unwrap_or(0.0);
                count += 1;
            }
            let norm = grad.iter().map(|x| (x / n) * (x / n)).sum::<f64>().sqrt();
            let scale = p.learning_rate / n / norm.max(1.0);
            for (w, gr) in scorer.w.iter_mut().zip(&grad) {
                *w += scale * gr;
            }
        }
        mean_return.push(sum / count.max(1) as f64);
    }
    Trained {
        scorer,
        alpha,
        mean_return,
    }
}

/// Runs the greedy policy over `sentences` and compares with the unskipped trajectories `refs`.
pub fn evaluate(
    stack: &dyn LayerStack,
    sentences: &[Vec<u32>],
    refs: &[Vec<Vec<f32>>],
    t: &Trained,
    p: &DashParams,
) -> Evaluation {
    let (layers, h) = (stack.layers(), stack.hidden());
    let (mut skipped, mut total, mut qsum, mut tsum, mut ntok) = (0usize, 0usize, 0.0, 0.0, 0usize);
    let mut patterns = Vec::new();
    for (ids, traj) in sentences.iter().zip(refs) {
        let r = rollout(stack, ids, mode(p, &t.alpha), &mut |f| t.scorer.skip(f));
        let fin = &traj[layers];
        qsum += cosine(&mean_pool(&r.out, h), &mean_pool(fin, h));
        for (i, ds) in r.decisions.iter().enumerate() {
            let pat: Vec<bool> = ds.iter().map(|d| d.skip).collect();
            skipped += pat.iter().filter(|s| **s).count();
            total += pat.len();
            tsum += cosine(&r.out[i * h..(i + 1) * h], &fin[i * h..(i + 1) * h]);
            ntok += 1;
            patterns.push(pat);
        }
    }
    Evaluation {
        skip_ratio: skipped as f64 / total.max(1) as f64,
        quality_cosine: qsum / sentences.len().max(1) as f64,
        token_cosine: tsum / ntok.max(1) as f64,
        patterns,
    }
}
