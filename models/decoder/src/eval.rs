//! Quality of a modified forward pass against the text and against the unmodified model:
//! negative log-likelihood (perplexity = exp of its mean), KL divergence of next-token
//! distributions, and top-1 agreement.

/// log-softmax of one logit row, in f64.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let m = logits.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)) as f64;
    let lse = logits
        .iter()
        .map(|&v| (v as f64 - m).exp())
        .sum::<f64>()
        .ln()
        + m;
    logits.iter().map(|&v| v as f64 - lse).collect()
}

/// −log p(target) under one logit row.
pub fn nll(logits: &[f32], target: u32) -> f64 {
    -log_softmax(logits)[target as usize]
}

/// KL(P‖Q) in nats between the next-token distributions of the reference logits `p` and the
/// modified logits `q`.
pub fn kl(p: &[f32], q: &[f32]) -> f64 {
    let (lp, lq) = (log_softmax(p), log_softmax(q));
    lp.iter().zip(&lq).map(|(a, b)| a.exp() * (a - b)).sum()
}

/// Index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best
}

/// Running totals of next-token quality over many positions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quality {
    /// Positions scored.
    pub tokens: usize,
    /// Sum of −log p(next token) (nats).
    pub nll_sum: f64,
    /// Sum of KL(reference ‖ modified) (nats).
    pub kl_sum: f64,
    /// Positions whose argmax equals the reference's.
    pub top1_agree: usize,
}

impl Quality {
    /// Adds one position: the modified logits, the reference logits and the true next token.
    pub fn add(&mut self, logits: &[f32], reference: &[f32], target: u32) {
        self.tokens += 1;
        self.nll_sum += nll(logits, target);
        self.kl_sum += kl(reference, logits);
        self.top1_agree += usize::from(argmax(logits) == argmax(reference));
    }
    /// exp(mean NLL).
    pub fn perplexity(&self) -> f64 {
        (self.nll_sum / self.tokens.max(1) as f64).exp()
    }
    /// Mean KL (nats per token).
    pub fn mean_kl(&self) -> f64 {
        self.kl_sum / self.tokens.max(1) as f64
    }
    /// Fraction of positions agreeing with the reference's top-1 token.
    pub fn top1(&self) -> f64 {
        self.top1_agree as f64 / self.tokens.max(1) as f64
    }
}
