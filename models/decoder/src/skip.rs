//! Teacher-forced evaluation of per-token layer skipping on real text: every window runs layer by
//! layer over all its tokens at once; before each layer a decision function sees the tokens' real
//! hidden states and chooses which tokens execute it. The unmodified model's final hidden states
//! are cached ([`Baseline`]) so a sweep pays only the LM head for the reference distributions.

use super::eval::Quality;
use super::model::{Decoder, KvCache, Ops};

/// The unmodified model's run over a set of token windows, cached.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The token windows (each a fresh sequence from position 0).
    pub windows: Vec<Vec<u32>>,
    /// Per window, the final hidden states before the last RMSNorm (rows × hidden).
    pub finals: Vec<Vec<f32>>,
}

impl Baseline {
    /// Runs the unmodified model over `windows`.
    pub fn compute(m: &Decoder, windows: Vec<Vec<u32>>, ops: &dyn Ops) -> Result<Self, String> {
        let finals = windows
            .iter()
            .map(|w| run(m, w, &mut |_, _, _| {}, ops).map(|(x, _)| x))
            .collect::<Result<_, _>>()?;
        Ok(Self { windows, finals })
    }

    /// The unmodified model's own quality (perplexity; KL 0, top-1 agreement 1) from the cache.
    pub fn quality(&self, m: &Decoder, ops: &dyn Ops) -> Quality {
        let v = m.config.vocab;
        let mut q = Quality::default();
        for (w, fin) in self.windows.iter().zip(&self.finals) {
            let logits = m.logits(fin, ops);
            for p in 0..w.len().saturating_sub(1) {
                let row = &logits[p * v..(p + 1) * v];
                q.add(row, row, w[p + 1]);
            }
        }
        q
    }

    /// Tokens scored (every position but each window's last predicts a next token).
    pub fn scored_tokens(&self) -> usize {
        self.windows.iter().map(|w| w.len().saturating_sub(1)).sum()
    }
}

/// A decision function: `(layer, hidden rows of the window, run flags)`; it clears the flag of each
/// token that skips `layer` (all flags start set). A skipped token keeps its hidden state, may be
/// changed by the function itself (compensation), and leaves no KV entry at that layer.
pub type Decide<'a> = dyn FnMut(usize, &mut [f32], &mut [bool]) + 'a;

/// Runs one window with per-token skipping: the final hidden states and the skip mask
/// (`skipped[layer][token]`).
pub fn run(
    m: &Decoder,
    ids: &[u32],
    decide: &mut Decide<'_>,
    ops: &dyn Ops,
) -> Result<(Vec<f32>, Vec<Vec<bool>>), String> {
    let n = ids.len();
    let mut x = m.embed(ids)?;
    let positions: Vec<usize> = (0..n).collect();
    let mut cache = KvCache::new(m.config.layers);
    let mut skipped = Vec::with_capacity(m.config.layers);
    for l in 0..m.config.layers {
        let mut flags = vec![true; n];
        decide(l, &mut x, &mut flags);
        m.layer(l, &mut x, &positions, &flags, &mut cache, ops);
        skipped.push(flags.iter().map(|r| !r).collect());
    }
    Ok((x, skipped))
}

/// Quality of a skipping policy over the baseline's windows, and how many tokens skipped each
/// layer.
pub fn score(
    m: &Decoder,
    base: &Baseline,
    decide: &mut Decide<'_>,
    ops: &dyn Ops,
) -> Result<(Quality, Vec<usize>), String> {
    let v = m.config.vocab;
    let mut q = Quality::default();
    let mut per_layer = vec![0usize; m.config.layers];
    for (w, fin) in base.windows.iter().zip(&base.finals) {
        let (x, skipped) = run(m, w, decide, ops)?;
        for (count, s) in per_layer.iter_mut().zip(&skipped) {
            *count += s.iter().filter(|&&b| b).count();
        }
        let (ours, reference) = (m.logits(&x, ops), m.logits(fin, ops));
        for p in 0..w.len().saturating_sub(1) {
            q.add(
                &ours[p * v..(p + 1) * v],
                &reference[p * v..(p + 1) * v],
                w[p + 1],
            );
        }
    }
    Ok((q, per_layer))
}
