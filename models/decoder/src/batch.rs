//! Many token windows through one block at once: the windows' rows are stacked, so every linear
//! layer is one matmul over all of them (the weights are packed once per call rather than once per
//! window, which at 32-token windows cost as much as the multiply itself), while attention stays
//! causal within each window (each a fresh sequence from position 0, every token executing the
//! block). Exact operators only; the result equals [`Decoder::layer`] run window by window up to
//! the matmul's summation order.

use super::model::{Decoder, exact_rms_norm, exact_silu, exact_softmax, rope_table, rotate};

/// Offsets of the windows' first rows in the stacked matrix, and the total number of rows.
fn offsets(lens: &[usize]) -> (Vec<usize>, usize) {
    let mut at = Vec::with_capacity(lens.len());
    let mut total = 0;
    for &n in lens {
        at.push(total);
        total += n;
    }
    (at, total)
}

/// Rows of `x` RMS-normalised and scaled by `weight`.
fn norm_rows(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let mut out = x.to_vec();
    for row in out.chunks_mut(weight.len()) {
        exact_rms_norm(row, eps);
        for (v, w) in row.iter_mut().zip(weight) {
            *v *= w;
        }
    }
    out
}

impl Decoder {
    /// Block `layer` on windows of `lens` tokens stacked row by row in `x` (Σ lens rows of
    /// `hidden` values), every token executing it: the output rows.
    pub fn layer_windows(&self, layer: usize, x: &[f32], lens: &[usize]) -> Vec<f32> {
        let c = &self.config;
        let (d, hd, kvd) = (c.hidden, c.head_dim(), c.kv_dim());
        let (at, rows) = offsets(lens);
        assert_eq!(x.len(), rows * d, "one row per token of the windows");
        if rows == 0 {
            return Vec::new();
        }
        let b = &self.blocks[layer];
        let hn = norm_rows(x, &b.attn_norm, c.rms_eps);
        let (mut q, mut k, v) = (
            b.q.apply(&hn, rows),
            b.k.apply(&hn, rows),
            b.v.apply(&hn, rows),
        );
        let longest = lens.iter().copied().max().unwrap_or(0);
        let tables: Vec<_> = (0..longest)
            .map(|p| rope_table(p, hd, c.rope_theta))
            .collect();
        for (&start, &n) in at.iter().zip(lens) {
            for (p, (cos, sin)) in tables.iter().enumerate().take(n) {
                let r = start + p;
                for head in q[r * d..(r + 1) * d].chunks_mut(hd) {
                    rotate(head, cos, sin);
                }
                for head in k[r * kvd..(r + 1) * kvd].chunks_mut(hd) {
                    rotate(head, cos, sin);
                }
            }
        }
        let group = c.heads / c.kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut att = vec![0.0f32; rows * d];
        let mut scores = Vec::with_capacity(longest);
        for (&start, &n) in at.iter().zip(lens) {
            for t in 0..n {
                let r = start + t;
                for head in 0..c.heads {
                    let kvh = head / group;
                    let qh = &q[r * d + head * hd..r * d + (head + 1) * hd];
                    scores.clear();
                    scores.extend((start..=r).map(|j| {
                        let kh = &k[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd];
                        qh.iter().zip(kh).map(|(a, b)| a * b).sum::<f32>() * scale
                    }));
                    exact_softmax(&mut scores);
                    let out = &mut att[r * d + head * hd..r * d + (head + 1) * hd];
                    for (j, &s) in (start..=r).zip(&scores) {
                        let vh = &v[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd];
                        for (o, &vv) in out.iter_mut().zip(vh) {
                            *o += s * vv;
                        }
                    }
                }
            }
        }
        let mut h = x.to_vec();
        for (hv, ov) in h.iter_mut().zip(b.o.apply(&att, rows)) {
            *hv += ov;
        }
        let hn = norm_rows(&h, &b.ffn_norm, c.rms_eps);
        let mut g = b.gate.apply(&hn, rows);
        let u = b.up.apply(&hn, rows);
        for (gv, uv) in g.iter_mut().zip(&u) {
            *gv = exact_silu(*gv) * uv;
        }
        for (hv, dv) in h.iter_mut().zip(b.down.apply(&g, rows)) {
            *hv += dv;
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Config, Decoder, Exact, KvCache};

    #[test]
    fn stacked_windows_equal_the_layer_run_window_by_window() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("batch.gguf");
        let c = Config {
            layers: 2,
            hidden: 32,
            heads: 4,
            kv_heads: 2,
            ffn: 64,
            vocab: 0,
            rope_theta: 10_000.0,
            rms_eps: 1e-5,
        };
        crate::gguf::write_random(&path, &c, &["ab", "cd"], &mut sim::rng::stream(3, "batch"))
            .expect("write");
        let (m, tok) = Decoder::load(&path).expect("load");
        let windows: Vec<Vec<u32>> = ["abcd abab cdcd", "cd ab", "ababab cd ab cd ab"]
            .iter()
            .map(|t| tok.encode(t))
            .collect();
        let lens: Vec<usize> = windows.iter().map(Vec::len).collect();
        let mut stacked = Vec::new();
        for w in &windows {
            stacked.extend(m.embed(w).unwrap());
        }
        for l in 0..2 {
            let y = m.layer_windows(l, &stacked, &lens);
            let mut expected = Vec::new();
            let mut at = 0;
            for &n in &lens {
                let mut x = stacked[at * 32..(at + n) * 32].to_vec();
                let pos: Vec<usize> = (0..n).collect();
                let mut cache = KvCache::new(2);
                m.layer(l, &mut x, &pos, &vec![true; n], &mut cache, &Exact);
                expected.extend(x);
                at += n;
            }
            let diff = y
                .iter()
                .zip(&expected)
                .fold(0.0f32, |a, (p, q)| a.max((p - q).abs()));
            assert!(diff < 1e-4, "layer {l}: {diff}");
            stacked = y;
        }
        assert!(m.layer_windows(0, &[], &[]).is_empty());
    }
}
