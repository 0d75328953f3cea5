//! One teacher-forced pass of a token window through the real decoder under a skip policy (one MDP
//! episode per token): before layer `l` every token's scorer sees its features and chooses execute
//! or skip; a skipped token's output is the compensated approximation, and the deviation of that
//! approximation from the layer's true output is recorded (the differential reward's quality term).
//! The deviation is measured as the LM head sees a state: after the final RMSNorm, whose row scale
//! cancels in a cosine but whose per-dimension gain does not (SmolLM2's residual stream carries a
//! few very large dimensions that the raw cosine is blind past and the final norm's gain damps).
//!
//! KV entries of skipped tokens (our choice; the paper's text available here does not say): a
//! token that skips layer `l` still projects its key and value at `l` from the state it enters `l`
//! with, so later tokens attend to every position at every layer (as CALM's state propagation
//! does); the phone charges those K/V projections ([`super::phone`]).
//!
//! Synchronous policy: the decision for layer `l` sees the state entering `l` (x_l, x_{l−1}).
//! Asynchronous policy: it is evaluated while layer `l − 1` computes, so it sees only the state
//! one layer earlier (x_{l−1}, x_{l−2}); layers 0 and 1 both see the embedding.

use decoder::{Decoder, Exact, KvCache};

use super::compensate::{self, Compensation};
use super::features::{self, cosine};

/// `a` weighted per dimension by the final RMSNorm gain `g` (its row scale cancels in a cosine).
fn as_head_sees(a: &[f32], g: &[f32]) -> Vec<f32> {
    a.iter().zip(g).map(|(x, w)| x * w).collect()
}

/// One decision of one token.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Scorer input.
    pub features: Vec<f64>,
    /// Whether the layer was skipped.
    pub skip: bool,
    /// 1 − cosine between the compensated and the true layer output, both weighted per dimension
    /// by the final RMSNorm's gain (0 when executed).
    pub deviation: f64,
}

/// An episode: decisions per token per layer and the final hidden states.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// `decisions[token][layer]`.
    pub decisions: Vec<Vec<Decision>>,
    /// Final hidden states before the last RMSNorm, tokens × hidden.
    pub out: Vec<f32>,
}

/// How decisions are taken and compensated.
#[derive(Debug, Clone, Copy)]
pub struct Mode<'a> {
    /// Asynchronous (one-layer-stale) features.
    pub asynchronous: bool,
    /// Compensation of skipped layers.
    pub compensation: Compensation,
    /// Compensation factor per layer.
    pub alpha: &'a [f64],
}

/// Output of decoder layer `l` for the window's states `x` (every token executes it; one fresh
/// KV cache, positions from 0).
pub fn layer_all(m: &Decoder, l: usize, x: &[f32]) -> Vec<f32> {
    let n = x.len() / m.config.hidden.max(1);
    let positions: Vec<usize> = (0..n).collect();
    let mut cache = KvCache::new(m.config.layers);
    let mut y = x.to_vec();
    m.layer(l, &mut y, &positions, &vec![true; n], &mut cache, &Exact);
    y
}

/// Hidden states of an unskipped run: element `l` is the state after `l` layers (0: embedding).
pub fn trajectory(m: &Decoder, ids: &[u32]) -> Result<Vec<Vec<f32>>, String> {
    let mut t = vec![m.embed(ids)?];
    for l in 0..m.config.layers {
        let y = layer_all(m, l, &t[l]);
        t.push(y);
    }
    Ok(t)
}

/// Runs `ids` through `m`, asking `decide(features)` for every token and layer.
pub fn rollout(
    m: &Decoder,
    ids: &[u32],
    mode: Mode,
    decide: &mut dyn FnMut(&[f64]) -> bool,
) -> Result<Rollout, String> {
    let (layers, h) = (m.config.layers, m.config.hidden);
    let n = ids.len();
    let mut states = vec![m.embed(ids)?];
    let mut decisions: Vec<Vec<Decision>> = vec![Vec::with_capacity(layers); n];
    let row = |x: &[f32], i: usize| x[i * h..(i + 1) * h].to_vec();
    for l in 0..layers {
        let s = if mode.asynchronous {
            l.saturating_sub(1)
        } else {
            l
        };
        let mut skip = vec![false; n];
        for (i, sk) in skip.iter_mut().enumerate() {
            let cur = &states[s][i * h..(i + 1) * h];
            let prev = (s > 0).then(|| &states[s - 1][i * h..(i + 1) * h]);
            let f = features::features(cur, prev, l, layers);
            *sk = decide(&f);
            decisions[i].push(Decision {
                features: f,
                skip: *sk,
                deviation: 0.0,
            });
        }
        let mut y = layer_all(m, l, &states[l]);
        for (i, _) in skip.iter().enumerate().filter(|(_, s)| **s) {
            let cur = row(&states[l], i);
            let prev = (l > 0).then(|| row(&states[l - 1], i));
            let c = compensate::apply(mode.compensation, &cur, prev.as_deref(), mode.alpha[l]);
            let dst = &mut y[i * h..(i + 1) * h];
            let (c_n, t_n) = (as_head_sees(&c, &m.norm), as_head_sees(dst, &m.norm));
            decisions[i][l].deviation = (1.0 - cosine(&c_n, &t_n)).max(0.0);
            dst.copy_from_slice(&c);
        }
        states.push(y);
    }
    Ok(Rollout {
        decisions,
        out: states.pop().unwrap_or_default(),
    })
}
