//! Next-token quality of skipped final states against the unskipped model's, over stacked token
//! windows: the LM head runs on chunks of rows (its 49,152 × 576 weights are packed once per chunk,
//! not once per window), and only once for rows no skip has moved.

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
        let (ours, reference) = (
            &ours[rows.start * h..rows.end * h],
            &reference[rows.start * h..rows.end * h],
        );
        // rows equal to the reference bit for bit (no skip reached them) have its distribution:
        // KL 0, the same top-1; only the others pay the LM head twice
        let row = |x: &[f32], i: usize| {
            x[i * h..(i + 1) * h]
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        let moved: Vec<usize> = (0..targets.len())
            .filter(|&i| row(ours, i) != row(reference, i))
            .collect();
        let r = m.logits(reference, &Exact);
        let gathered: Vec<f32> = moved
            .iter()
            .flat_map(|&i| ours[i * h..(i + 1) * h].iter().copied())
            .collect();
        let o = if moved.is_empty() {
            Vec::new()
        } else {
            m.logits(&gathered, &Exact)
        };
        let mut next_moved = moved.iter().enumerate().peekable();
        for (i, t) in targets.iter().enumerate() {
            let ri = &r[i * v..(i + 1) * v];
            let lr = log_softmax(ri);
            let (k, lo_t, agree) = match next_moved.next_if(|&(_, &j)| j == i) {
                Some((k, _)) => {
                    let oi = &o[k * v..(k + 1) * v];
                    let lo = log_softmax(oi);
                    let kl: f64 = lr.iter().zip(&lo).map(|(a, b)| a.exp() * (a - b)).sum();
                    (kl, t.map(|t| lo[t as usize]), argmax(oi) == argmax(ri))
                }
                None => (0.0, t.map(|t| lr[t as usize]), true),
            };
            kls.push(k.max(0.0));
            if let Some(lo_t) = lo_t {
                q.tokens += 1;
                q.nll_sum -= lo_t;
                q.kl_sum += k;
                q.top1_agree += usize::from(agree);
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
        // rows equal to the reference (one head, reused): KL 0, agreement, the reference's NLL
        let mut mixed = reference.clone();
        let h = m.config.hidden;
        mixed[..h].copy_from_slice(&ours[..h]);
        let mut q = Quality::default();
        let kls = super::compare(&m, &windows, &mixed, reference, &mut q);
        assert!((kls[0] - kl(&r[..v], &o[..v]).max(0.0)).abs() < 1e-9);
        assert!(kls[1..].iter().all(|&k| k == 0.0));
        let mut expected = Quality::default();
        let mut row = 0;
        for w in &windows {
            for p in 0..w.len() {
                let ri = &r[row * v..(row + 1) * v];
                let oi = if row == 0 { &o[..v] } else { ri };
                if p + 1 < w.len() {
                    expected.add(oi, ri, w[p + 1]);
                }
                row += 1;
            }
        }
        assert_eq!(
            (q.tokens, q.top1_agree),
            (expected.tokens, expected.top1_agree)
        );
        assert!((q.nll_sum - expected.nll_sum).abs() < 1e-6);
        assert!((q.kl_sum - expected.kl_sum).abs() < 1e-6);
    }
}
