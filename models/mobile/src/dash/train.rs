//! Training and greedy evaluation of the scorer on the real decoder.
//!
//! MDP per token: state = features of the token's hidden state before layer `l`; action = execute
//! or skip. The reward of a skip is the differential reward 1/L (compute saved) − λ·k, where k is
//! the skip's charge of the terminal quality losses KL(unskipped ‖ skipped) of the next-token
//! distributions (LM head on the final states, nats, the quantity evaluated) of its token and the
//! later tokens of its window, split among the window's skips by per-layer costs fitted on the
//! rollouts ([`super::credit`]); executing earns 0.
//! REINFORCE on these per-decision rewards with a per-layer batch baseline (mean reward of the
//! batch's tokens at that layer), Adam on the scorer's weights ([`super::adam`]); one update per
//! batch of `batch_windows` windows (run together, [`super::rollout`]).

use rand::Rng as _;
use sim::rng::Rng;

use decoder::Decoder;
use decoder::eval::Quality;
use decoder::skip::Baseline;

use super::adam::Adam;
use super::compensate::Compensator;
use super::credit::{Costs, LayerCosts, charges};
use super::features;
use super::params::DashParams;
use super::policy::Scorer;
use super::rollout::{Mode, lens, rollout};
use super::score::compare;

/// A trained policy with its compensation.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The scorer.
    pub scorer: Scorer,
    /// Compensation of skipped layers.
    pub compensation: Compensator,
    /// Mean episode return per epoch (per token: layers saved / L − λ·terminal KL charged to its
    /// skips).
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

impl Evaluation {
    /// Perplexity with skipping over `base`'s (the unskipped model's on the same positions).
    pub fn ratio(&self, base: &Quality) -> f64 {
        self.quality.perplexity() / base.perplexity().max(f64::MIN_POSITIVE)
    }

    /// The unskipped model on `tokens` tokens of `layers` layers with its quality `base`.
    pub fn unskipped(base: Quality, tokens: usize, layers: usize) -> Self {
        Self {
            skip_ratio: 0.0,
            layer_skip: vec![0.0; layers],
            quality: base,
            patterns: vec![vec![false; layers]; tokens],
        }
    }
}

/// Rows of stacked windows an evaluation pass runs at once (bounds memory; results do not
/// depend on it beyond the matmul's summation order, which is fixed).
const EVAL_ROWS: usize = 2048;

/// Consecutive groups of `windows` of about `rows` tokens each (at least one window per group).
pub fn groups(windows: &[Vec<u32>], rows: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut acc) = (0, 0);
    for (i, w) in windows.iter().enumerate() {
        if acc > 0 && acc + w.len() > rows {
            out.push(start..i);
            (start, acc) = (i, 0);
        }
        acc += w.len();
    }
    if start < windows.len() {
        out.push(start..windows.len());
    }
    out
}

/// Per-token, per-layer rewards of a rollout over windows of `lens` tokens with per-token terminal
/// losses `terminal` (nats), charged by `costs`: 1/L − λ·charge for a skip, 0 for an execution.
fn rewards(
    skips: &[Vec<bool>],
    lens: &[usize],
    terminal: &[f64],
    costs: &Costs,
    lambda: f64,
) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(skips.len());
    let mut at = 0;
    for &n in lens {
        let w = &skips[at..at + n];
        for (s, c) in w.iter().zip(charges(costs, w, &terminal[at..at + n])) {
            let layers = s.len().max(1) as f64;
            out.push(
                s.iter()
                    .zip(c)
                    .map(|(&s, k)| if s { 1.0 / layers - lambda * k } else { 0.0 })
                    .collect(),
            );
        }
        at += n;
    }
    out
}

/// Trains the scorer on token `windows` whose unskipped final states (stacked) are `finals`, with
/// compensation `compensation`, `p.batch_windows` windows per policy update.
pub fn train(
    m: &Decoder,
    windows: &[Vec<u32>],
    finals: &[f32],
    compensation: Compensator,
    p: &DashParams,
    rng: &mut Rng,
) -> Result<Trained, String> {
    let (layers, h) = (m.config.layers, m.config.hidden);
    let mut scorer = Scorer::new(features::len(layers), layers, p.initial_skip);
    let mut adam = Adam::new(scorer.w.len());
    let mut costs = LayerCosts::new(layers);
    let mut mean_return = Vec::with_capacity(p.epochs);
    let mode = Mode {
        asynchronous: p.asynchronous,
        compensation: &compensation,
        keep_features: true,
    };
    let mut offsets = Vec::with_capacity(windows.len() + 1);
    offsets.push(0usize);
    for w in windows {
        offsets.push(offsets[offsets.len() - 1] + w.len());
    }
    let per = p.batch_windows.max(1);
    for _ in 0..p.epochs {
        let (mut sum, mut count) = (0.0, 0usize);
        for (b, ws) in windows.chunks(per).enumerate() {
            let first = b * per;
            let fin = &finals[offsets[first] * h..offsets[first + ws.len()] * h];
            let s = scorer.clone();
            let r = rollout(m, ws, mode, &mut |f| rng.random::<f64>() < s.p_skip(f))?;
            let terminal = compare(m, ws, &r.out, fin, &mut Quality::default());
            let skips: Vec<Vec<bool>> = r
                .decisions
                .iter()
                .map(|ds| ds.iter().map(|d| d.skip).collect())
                .collect();
            let n = lens(ws);
            let mut at = 0;
            for &k in &n {
                costs.observe(&skips[at..at + k], &terminal[at..at + k]);
                at += k;
            }
            let g = rewards(&skips, &n, &terminal, &costs.costs(), p.lambda);
            let tokens = g.len().max(1) as f64;
            let baseline: Vec<f64> = (0..layers)
                .map(|l| g.iter().map(|gi| gi[l]).sum::<f64>() / tokens)
                .collect();
            let mut grad = vec![0.0; scorer.w.len()];
            for (ds, gi) in r.decisions.iter().zip(&g) {
                for ((d, r), b) in ds.iter().zip(gi).zip(&baseline) {
                    for (x, gl) in grad.iter_mut().zip(s.grad_log(&d.features, d.skip)) {
                        *x += (r - b) / tokens * gl;
                    }
                }
                sum += gi.iter().sum::<f64>();
                count += 1;
            }
            adam.ascend(&mut scorer.w, &grad, p.learning_rate);
        }
        mean_return.push(sum / count.max(1) as f64);
    }
    Ok(Trained {
        scorer,
        compensation,
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
    let layers = m.config.layers;
    let mode = Mode {
        asynchronous: p.asynchronous,
        compensation: &t.compensation,
        keep_features: false,
    };
    let mut quality = Quality::default();
    let mut per_layer = vec![0usize; layers];
    let mut patterns = Vec::new();
    for g in groups(&base.windows, EVAL_ROWS) {
        let ws = &base.windows[g.clone()];
        let r = rollout(m, ws, mode, &mut |f| t.scorer.skip(f))?;
        let fin: Vec<f32> = base.finals[g].concat();
        compare(m, ws, &r.out, &fin, &mut quality);
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
