//! Next-token quality of skipped final states against the unskipped model's, over stacked token
//! windows: the LM head runs on chunks of rows (its 49,152 × 576 weights are packed once per chunk,
//! not once per window).

use decoder::eval::{Quality, argmax, log_softmax};
use decoder::{Decoder, Exact};

/// Rows of the LM head per matmul.
const HEAD_ROWS: usize = 512;

/// Adds every position with a next token in its window to `q` (final states `ours` against
/// `reference`, both stacked over `windows`) and returns every token's KL(reference ‖ ours) in
/// nats (the window's last token included).
pub fn compare(
    m: &Decoder,
    windows: &[Vec<u32>],
    ours: &[f32],
    reference: &[f32],
    q: &mut Quality,
) -> Vec<f64> {
    let (h, v) = (m.config.hidden, m.config.vocab);
    // per stacked row: the next token, when the window has one
    let next: Vec<Option<u32>> = windows
        .iter()
        .flat_map(|w| (0..w.len()).map(move |p| w.get(p + 1).copied()))
        .collect();
    let mut kls = Vec::with_capacity(next.len());
    for (c, targets) in next.chunks(HEAD_ROWS).enumerate() {
        let rows = c * HEAD_ROWS..c * HEAD_ROWS + targets.len();
        let o = m.logits(&ours[rows.start * h..rows.end * h], &Exact);
        let r = m.logits(&reference[rows.start * h..rows.end * h], &Exact);
        for (i, t) in targets.iter().enumerate() {
            let (oi, ri) = (&o[i * v..(i + 1) * v], &r[i * v..(i + 1) * v]);
            let (lo, lr) = (log_softmax(oi), log_softmax(ri));
            let k: f64 = lr.iter().zip(&lo).map(|(a, b)| a.exp() * (a - b)).sum();
            kls.push(k.max(0.0));
            if let Some(t) = t {
                q.tokens += 1;
                q.nll_sum -= lo[*t as usize];
                q.kl_sum += k;
                q.top1_agree += usize::from(argmax(oi) == argmax(ri));
            }
        }
    }
    kls
}

#[cfg(test)]
mod tests {
    use decoder::eval::{Quality, kl};

    #[test]
    fn the_chunked_comparison_equals_quality_add_position_by_position() {
        let (m, tok) = super::super::tests::tiny_decoder("score", 2, 2, "s");
        let windows = vec![tok.encode("abab cd"), tok.encode("cd ab ab")];
        let reference = super::super::rollout::trajectory(&m, &windows).unwrap();
        let (ours, reference) = (&reference[1], &reference[2]);
        let mut q = Quality::default();
        let kls = super::compare(&m, &windows, ours, reference, &mut q);
        let (o, r) = (
            m.logits(ours, &decoder::Exact),
            m.logits(reference, &decoder::Exact),
        );
        let v = m.config.vocab;
        let mut expected = Quality::default();
        let mut row = 0;
        for w in &windows {
            for p in 0..w.len() {
                let (oi, ri) = (&o[row * v..(row + 1) * v], &r[row * v..(row + 1) * v]);
                assert!((kls[row] - kl(ri, oi).max(0.0)).abs() < 1e-9);
                if p + 1 < w.len() {
                    expected.add(oi, ri, w[p + 1]);
                }
                row += 1;
            }
        }
        assert_eq!(kls.len(), row);
        assert_eq!(q.tokens, expected.tokens);
        assert!((q.nll_sum - expected.nll_sum).abs() < 1e-6);
        assert!((q.kl_sum - expected.kl_sum).abs() < 1e-6);
    }
}
