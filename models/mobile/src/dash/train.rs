//! Training and greedy evaluation of the scorer on the real decoder.
//!
//! MDP per token: state = features of the token's hidden state before layer `l`; action = execute
//! or skip; reward of a skip = 1/L (compute saved) − λ·d, where d = 1 − cos(compensated output,
//! true output) after the final RMSNorm's gain is the differential reward of the compensation
//! mechanism; at the end of the episode the token's final quality loss −λ·KL(unskipped ‖ skipped)
//! of its next-token distribution (LM head on the final state, nats), the quantity evaluated.
//! REINFORCE with the return-to-go, a per-layer batch baseline (mean return of the sentence's
//! tokens at that layer), advantages divided by their root-mean-square over the episode, and the
//! gradient clipped to unit norm; one update per sentence.

use rand::Rng as _;
use sim::rng::Rng;

use decoder::eval::{Quality, kl};
use decoder::skip::Baseline;
use decoder::{Decoder, Exact};

use super::features;
use super::params::DashParams;
use super::policy::Scorer;
use super::rollout::{Mode, Rollout, rollout};

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

/// What the greedy policy does on held-out windows.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Skipped token-layers over all token-layers.
    pub skip_ratio: f64,
    /// Fraction of tokens skipping each layer.
    pub layer_skip: Vec<f64>,
    /// Next-token quality with skipping (perplexity on the text; KL and top-1 against the
    /// unskipped model).
    pub quality: Quality,
    /// Skip decisions per token (window after window), per decoder layer.
    pub patterns: Vec<Vec<bool>>,
}

fn mode<'a>(p: &DashParams, alpha: &'a [f64]) -> Mode<'a> {
    Mode {
        asynchronous: p.asynchronous,
        compensation: p.compensation,
        alpha,
    }
}

/// Per-token next-token KL(unskipped ‖ skipped) of an episode whose unskipped final states are
/// `final_ref` (nats).
fn next_token_kl(m: &Decoder, r: &Rollout, final_ref: &[f32]) -> Vec<f64> {
    let v = m.config.vocab;
    let (ours, reference) = (m.logits(&r.out, &Exact), m.logits(final_ref, &Exact));
    ours.chunks(v.max(1))
        .zip(reference.chunks(v.max(1)))
        .map(|(o, q)| kl(q, o).max(0.0))
        .collect()
}

/// Per-token returns-to-go of an episode with per-token terminal losses `terminal`: `g[i][l]`.
fn returns(r: &Rollout, terminal: &[f64], lambda: f64) -> Vec<Vec<f64>> {
    r.decisions
        .iter()
        .zip(terminal)
        .map(|(ds, t)| {
            let layers = ds.len().max(1) as f64;
            let terminal = -lambda * t;
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

/// Trains the scorer on token `windows` whose unskipped final states are `finals`, with
/// compensation factors `alpha`.
pub fn train(
    m: &Decoder,
    windows: &[Vec<u32>],
    finals: &[Vec<f32>],
    alpha: Vec<f64>,
    p: &DashParams,
    rng: &mut Rng,
) -> Result<Trained, String> {
    let layers = m.config.layers;
    let mut scorer = Scorer::new(features::len(layers), layers, p.initial_skip);
    let mut mean_return = Vec::with_capacity(p.epochs);
    for _ in 0..p.epochs {
        let (mut sum, mut count) = (0.0, 0usize);
        for (ids, fin) in windows.iter().zip(finals) {
            let s = scorer.clone();
            let r = rollout(m, ids, mode(p, &alpha), &mut |f| {
                rng.random::<f64>() < s.p_skip(f)
            })?;
            let g = returns(&r, &next_token_kl(m, &r, fin), p.lambda);
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
    Ok(Trained {
        scorer,
        alpha,
        mean_return,
    })
}

/// Runs the greedy policy over the baseline's windows and scores it against the cached unskipped
/// run.
pub fn evaluate(
    m: &Decoder,
    base: &Baseline,
    t: &Trained,
    p: &DashParams,
) -> Result<Evaluation, String> {
    let (layers, v) = (m.config.layers, m.config.vocab);
    let mut quality = Quality::default();
    let mut per_layer = vec![0usize; layers];
    let mut patterns = Vec::new();
    for (ids, fin) in base.windows.iter().zip(&base.finals) {
        let r = rollout(m, ids, mode(p, &t.alpha), &mut |f| t.scorer.skip(f))?;
        let (ours, reference) = (m.logits(&r.out, &Exact), m.logits(fin, &Exact));
        for q in 0..ids.len().saturating_sub(1) {
            quality.add(
                &ours[q * v..(q + 1) * v],
                &reference[q * v..(q + 1) * v],
                ids[q + 1],
            );
        }
        for ds in &r.decisions {
            let pat: Vec<bool> = ds.iter().map(|d| d.skip).collect();
            for (c, s) in per_layer.iter_mut().zip(&pat) {
                *c += usize::from(*s);
            }
            patterns.push(pat);
        }
    }
    let tokens = patterns.len().max(1) as f64;
    Ok(Evaluation {
        skip_ratio: per_layer.iter().sum::<usize>() as f64 / (tokens * layers.max(1) as f64),
        layer_skip: per_layer.iter().map(|&c| c as f64 / tokens).collect(),
        quality,
        patterns,
    })
}
