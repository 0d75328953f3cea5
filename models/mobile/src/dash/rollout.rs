//! One teacher-forced pass of a batch of token windows through the real decoder under a skip
//! policy (one MDP episode per token): before layer `l` every token's scorer sees its features and
//! chooses execute or skip; a skipped token's output is the compensated approximation. What the
//! skips cost is measured at the end, on the next-token distribution ([`super::train`]).
//!
//! The windows' rows are stacked and every layer runs on all of them at once
//! ([`decoder::Decoder::layer_windows`]); attention stays within each window.
//!
//! KV entries of skipped tokens (our choice; the paper's text available here does not say): a
//! token that skips layer `l` still projects its key and value at `l` from the state it enters `l`
//! with, so later tokens attend to every position at every layer (as CALM's state propagation
//! does); the phone charges those K/V projections ([`super::phone`]).
//!
//! Synchronous policy: the decision for layer `l` sees the state entering `l` (x_l, x_{l−1}).
//! Asynchronous policy: it is evaluated while layer `l − 1` computes, so it sees only the state
//! one layer earlier (x_{l−1}, x_{l−2}); layers 0 and 1 both see the embedding.

use decoder::Decoder;

use super::compensate::{Compensator, Fit};
use super::features;

/// One decision of one token.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Scorer input (empty when the rollout was asked not to keep it).
    pub features: Vec<f64>,
    /// Whether the layer was skipped.
    pub skip: bool,
}

/// An episode of a batch of windows: decisions per token per layer and the final hidden states.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// `decisions[token][layer]`, tokens of the windows in order.
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
    pub compensation: &'a Compensator,
    /// Keep every decision's features (training needs them; evaluation does not).
    pub keep_features: bool,
}

/// Token counts of `windows`.
pub fn lens(windows: &[Vec<u32>]) -> Vec<usize> {
    windows.iter().map(Vec::len).collect()
}

/// The windows' token embeddings, stacked.
fn embed(m: &Decoder, windows: &[Vec<u32>]) -> Result<Vec<f32>, String> {
    let mut x = Vec::with_capacity(windows.iter().map(Vec::len).sum::<usize>() * m.config.hidden);
    for w in windows {
        x.extend(m.embed(w)?);
    }
    Ok(x)
}

/// Hidden states of an unskipped run of the stacked `windows`: element `l` is the state after `l`
/// layers (0: embedding).
pub fn trajectory(m: &Decoder, windows: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, String> {
    let n = lens(windows);
    let mut t = vec![embed(m, windows)?];
    for l in 0..m.config.layers {
        let y = m.layer_windows(l, &t[l], &n);
        t.push(y);
    }
    Ok(t)
}

/// Final states of an unskipped run of the stacked `windows`, feeding every layer's
/// (before, input, output) states to `fit` when given.
pub fn unskipped(
    m: &Decoder,
    windows: &[Vec<u32>],
    mut fit: Option<&mut Fit>,
) -> Result<Vec<f32>, String> {
    let n = lens(windows);
    let mut x = embed(m, windows)?;
    let mut before: Option<Vec<f32>> = None;
    for l in 0..m.config.layers {
        let y = m.layer_windows(l, &x, &n);
        if let Some(f) = fit.as_deref_mut() {
            f.add(l, before.as_deref(), &x, &y);
        }
        before = Some(std::mem::replace(&mut x, y));
    }
    Ok(x)
}

/// Runs the stacked `windows` through `m`, asking `decide(features)` for every token and layer
/// (tokens in order within a layer, layers in order).
pub fn rollout(
    m: &Decoder,
    windows: &[Vec<u32>],
    mode: Mode,
    decide: &mut dyn FnMut(&[f64]) -> bool,
) -> Result<Rollout, String> {
    let (layers, h) = (m.config.layers, m.config.hidden);
    let n = lens(windows);
    let tokens: usize = n.iter().sum();
    // the states entering layers l − 2, l − 1 and l
    let mut older: Option<Vec<f32>> = None;
    let mut prev: Option<Vec<f32>> = None;
    let mut cur = embed(m, windows)?;
    let mut decisions: Vec<Vec<Decision>> = vec![Vec::with_capacity(layers); tokens];
    for l in 0..layers {
        // asynchronous: the state one layer earlier (layer 0 and 1 both see the embedding)
        let (seen, seen_prev) = if mode.asynchronous && l > 0 {
            (prev.as_deref(), older.as_deref())
        } else {
            (Some(cur.as_slice()), prev.as_deref())
        };
        let seen = seen.unwrap_or(&cur);
        let mut skip = vec![false; tokens];
        for (i, sk) in skip.iter_mut().enumerate() {
            let f = features::features(
                &seen[i * h..(i + 1) * h],
                seen_prev.map(|p| &p[i * h..(i + 1) * h]),
                l,
                layers,
            );
            *sk = decide(&f);
            decisions[i].push(Decision {
                features: if mode.keep_features { f } else { Vec::new() },
                skip: *sk,
            });
        }
        let mut y = m.layer_windows(l, &cur, &n);
        let idx: Vec<usize> = (0..tokens).filter(|&i| skip[i]).collect();
        if !idx.is_empty() {
            let gather = |x: &[f32]| -> Vec<f32> {
                idx.iter()
                    .flat_map(|&i| x[i * h..(i + 1) * h].iter().copied())
                    .collect()
            };
            let p = prev.as_deref().map(gather);
            let comp = mode.compensation.apply(l, &gather(&cur), p.as_deref());
            for (k, &i) in idx.iter().enumerate() {
                y[i * h..(i + 1) * h].copy_from_slice(&comp[k * h..(k + 1) * h]);
            }
        }
        older = prev.take();
        prev = Some(std::mem::replace(&mut cur, y));
    }
    Ok(Rollout {
        decisions,
        out: cur,
    })
}
