//! The byte layouts of DASH's disk entries ([`super::disk`]): the unmodified model's reference
//! run, a trained scorer, a policy's evaluation and the oracle study. Every number is little
//! endian; every list carries its length; a decoder refuses bytes that do not hold exactly one
//! value of its layout (so the cache recomputes instead of reading garbage).

use decoder::eval::Quality;
use decoder::skip::Baseline;

use super::compensate::Compensator;
use super::oracle::{Oracle, Pair};
use super::policy::Scorer;
use super::train::{Evaluation, Trained};

/// Appends values to an entry's bytes.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend(v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn f64(&mut self, v: f64) {
        self.0.extend(v.to_le_bytes());
    }
    fn f64s(&mut self, v: &[f64]) {
        self.len(v.len());
        v.iter().for_each(|x| self.f64(*x));
    }
    fn quality(&mut self, q: &Quality) {
        self.len(q.tokens);
        self.f64(q.nll_sum);
        self.f64(q.kl_sum);
        self.len(q.top1_agree);
    }
}

/// Reads values back from an entry's bytes (`None` past the end).
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn word(&mut self) -> Option<[u8; 8]> {
        let (head, rest) = self.0.split_at_checked(8)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn u64(&mut self) -> Option<u64> {
        self.word().map(u64::from_le_bytes)
    }
    /// A length or count, refused when more than `limit` (so no length allocates past the bytes).
    fn len(&mut self, limit: usize) -> Option<usize> {
        usize::try_from(self.u64()?).ok().filter(|n| *n <= limit)
    }
    fn f64(&mut self) -> Option<f64> {
        self.word().map(f64::from_le_bytes)
    }
    fn f64s(&mut self) -> Option<Vec<f64>> {
        let n = self.len(self.0.len() / 8)?;
        (0..n).map(|_| self.f64()).collect()
    }
    fn quality(&mut self) -> Option<Quality> {
        Some(Quality {
            tokens: self.len(usize::MAX)?,
            nll_sum: self.f64()?,
            kl_sum: self.f64()?,
            top1_agree: self.len(usize::MAX)?,
        })
    }
    fn bools(&mut self, n: usize) -> Option<Vec<bool>> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        head.iter()
            .map(|b| match b {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            })
            .collect()
    }
    /// `v` when every byte was read.
    fn end<T>(&self, v: T) -> Option<T> {
        self.0.is_empty().then_some(v)
    }
}

/// The reference run's bytes: the quality, then the final states (f32); the windows are part of
/// the key.
pub fn encode_reference(run: &Baseline, quality: &Quality) -> Vec<u8> {
    let mut w = Writer::default();
    w.quality(quality);
    for f in run.finals.iter().flatten() {
        w.0.extend(f.to_le_bytes());
    }
    w.0
}

/// [`encode_reference`]'s bytes back into the run over `windows` (`None` unless they hold exactly
/// one hidden state of `hidden` values per token).
pub fn decode_reference(
    b: &[u8],
    windows: &[Vec<u32>],
    hidden: usize,
) -> Option<(Baseline, Quality)> {
    let mut r = Reader(b);
    let quality = r.quality()?;
    let tokens: usize = windows.iter().map(Vec::len).sum();
    if r.0.len() != 4 * tokens * hidden {
        return None;
    }
    let mut values =
        r.0.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let finals = windows
        .iter()
        .map(|w| values.by_ref().take(w.len() * hidden).collect())
        .collect();
    let run = Baseline {
        windows: windows.to_vec(),
        finals,
    };
    Some((run, quality))
}

/// A trained scorer's bytes: its weights, then its mean return per epoch (the compensation is
/// refitted, never stored).
pub fn encode_scorer(t: &Trained) -> Vec<u8> {
    let mut w = Writer::default();
    w.f64s(&t.scorer.w);
    w.f64s(&t.mean_return);
    w.0
}

/// [`encode_scorer`]'s bytes back into a policy with `compensation` (`None` unless they hold a
/// scorer of `features` weights).
pub fn decode_scorer(b: &[u8], features: usize, compensation: &Compensator) -> Option<Trained> {
    let mut r = Reader(b);
    let w = r.f64s()?;
    let mean_return = r.f64s()?;
    (w.len() == features).then_some(())?;
    r.end(Trained {
        scorer: Scorer { w },
        compensation: compensation.clone(),
        mean_return,
    })
}

/// An evaluation's bytes: quality, skip ratio, per-layer skip fractions, then the per-token
/// patterns (token count, layer count, one byte per decision).
pub fn encode_evaluation(e: &Evaluation) -> Vec<u8> {
    let mut w = Writer::default();
    w.quality(&e.quality);
    w.f64(e.skip_ratio);
    w.f64s(&e.layer_skip);
    w.len(e.patterns.len());
    w.len(e.patterns.first().map_or(0, Vec::len));
    for p in &e.patterns {
        w.0.extend(p.iter().map(|s| u8::from(*s)));
    }
    w.0
}

/// [`encode_evaluation`]'s bytes back (`None` unless they hold `tokens` patterns of `layers`
/// decisions).
pub fn decode_evaluation(b: &[u8], tokens: usize, layers: usize) -> Option<Evaluation> {
    let mut r = Reader(b);
    let quality = r.quality()?;
    let skip_ratio = r.f64()?;
    let layer_skip = r.f64s()?;
    if r.u64()? != tokens as u64 || r.u64()? != layers as u64 || layer_skip.len() != layers {
        return None;
    }
    let patterns = (0..tokens)
        .map(|_| r.bools(layers))
        .collect::<Option<Vec<_>>>()?;
    r.end(Evaluation {
        skip_ratio,
        layer_skip,
        quality,
        patterns,
    })
}

/// The oracle study's bytes, field after field.
pub fn encode_oracle(o: &Oracle) -> Vec<u8> {
    let mut w = Writer::default();
    w.quality(&o.base);
    w.len(o.single.len());
    for p in &o.single {
        w.quality(&p.identity);
        w.quality(&p.compensated);
    }
    w.len(o.ranking.len());
    o.ranking.iter().for_each(|l| w.len(*l));
    w.len(o.greedy.len());
    o.greedy.iter().for_each(|q| w.quality(q));
    w.len(o.spans.len());
    for (first, len, q) in &o.spans {
        w.len(*first);
        w.len(*len);
        w.quality(q);
    }
    w.f64(o.token_skippable);
    w.f64(o.token_cheap_layers);
    w.0
}

/// [`encode_oracle`]'s bytes back (`None` unless they hold one study of `layers` layers).
pub fn decode_oracle(b: &[u8], layers: usize) -> Option<Oracle> {
    let mut r = Reader(b);
    let base = r.quality()?;
    let n = r.len(layers)?;
    let single = (0..n)
        .map(|_| {
            Some(Pair {
                identity: r.quality()?,
                compensated: r.quality()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let n = r.len(layers)?;
    let ranking = (0..n)
        .map(|_| r.len(layers - 1))
        .collect::<Option<Vec<_>>>()?;
    let n = r.len(layers)?;
    let greedy = (0..n).map(|_| r.quality()).collect::<Option<Vec<_>>>()?;
    let n = r.len(r.0.len() / 48)?;
    let spans = (0..n)
        .map(|_| Some((r.len(layers)?, r.len(layers)?, r.quality()?)))
        .collect::<Option<Vec<_>>>()?;
    let token_skippable = r.f64()?;
    let token_cheap_layers = r.f64()?;
    (single.len() == layers).then_some(())?;
    r.end(Oracle {
        base,
        single,
        ranking,
        greedy,
        spans,
        token_skippable,
        token_cheap_layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(i: usize) -> Quality {
        Quality {
            tokens: 100 + i,
            nll_sum: 3.25 * i as f64,
            kl_sum: 0.125 + i as f64,
            top1_agree: 90 + i,
        }
    }

    /// Every prefix of `b` and `b` with a byte appended are refused by `decode`.
    fn refuses_cut_and_padded<T>(b: &[u8], decode: impl Fn(&[u8]) -> Option<T>) {
        for cut in [0, 1, 8, b.len() / 2, b.len() - 1] {
            assert!(decode(&b[..cut]).is_none(), "a prefix of {cut} bytes");
        }
        let mut longer = b.to_vec();
        longer.push(0);
        assert!(decode(&longer).is_none(), "trailing bytes");
    }

    /// A scorer comes back from its disk bytes exactly; bytes of another width, truncated, with an
    /// impossible length or with trailing garbage are refused (and so recomputed by the cache).
    #[test]
    fn a_scorer_round_trips_and_bad_bytes_are_refused() {
        let comp = Compensator::identity(4, 8);
        let t = Trained {
            scorer: Scorer {
                w: vec![0.5, -1.25, 3.0, f64::MIN_POSITIVE],
            },
            compensation: comp.clone(),
            mean_return: vec![0.01, -0.2],
        };
        let b = encode_scorer(&t);
        let back = decode_scorer(&b, 4, &comp).expect("round trip");
        assert_eq!(back.scorer.w, t.scorer.w);
        assert_eq!(back.mean_return, t.mean_return);
        assert!(decode_scorer(&b, 5, &comp).is_none(), "another width");
        refuses_cut_and_padded(&b, |b| decode_scorer(b, 4, &comp));
        let mut huge = b.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(
            decode_scorer(&huge, 4, &comp).is_none(),
            "a length past the end"
        );
    }

    #[test]
    fn an_evaluation_round_trips_and_bad_bytes_are_refused() {
        let e = Evaluation {
            skip_ratio: 1.0 / 3.0,
            layer_skip: vec![0.5, 0.0, 0.5],
            quality: q(1),
            patterns: vec![vec![true, false, false], vec![false, false, true]],
        };
        let b = encode_evaluation(&e);
        assert_eq!(decode_evaluation(&b, 2, 3), Some(e));
        assert!(decode_evaluation(&b, 3, 3).is_none(), "another token count");
        assert!(decode_evaluation(&b, 2, 4).is_none(), "another depth");
        refuses_cut_and_padded(&b, |b| decode_evaluation(b, 2, 3));
        let mut not_bool = b.clone();
        let last = not_bool.len() - 1;
        not_bool[last] = 2;
        assert!(
            decode_evaluation(&not_bool, 2, 3).is_none(),
            "a decision byte of 2"
        );
    }

    #[test]
    fn an_oracle_study_round_trips_and_bad_bytes_are_refused() {
        let o = Oracle {
            base: q(0),
            single: (0..3)
                .map(|i| Pair {
                    identity: q(i),
                    compensated: q(i + 10),
                })
                .collect(),
            ranking: vec![2, 0, 1],
            greedy: vec![q(20), q(21)],
            spans: vec![(0, 2, q(30)), (1, 2, q(31))],
            token_skippable: 0.25,
            token_cheap_layers: 1.5,
        };
        let b = encode_oracle(&o);
        assert_eq!(decode_oracle(&b, 3), Some(o));
        assert!(decode_oracle(&b, 4).is_none(), "another depth");
        refuses_cut_and_padded(&b, |b| decode_oracle(b, 3));
    }

    #[test]
    fn a_reference_round_trips_and_another_width_is_refused() {
        let windows = vec![vec![1u32, 2], vec![3]];
        let run = Baseline {
            windows: windows.clone(),
            finals: vec![vec![0.5f32, 1.0, -2.0, 4.0], vec![8.0, 0.25]],
        };
        let b = encode_reference(&run, &q(5));
        let (back, quality) = decode_reference(&b, &windows, 2).expect("round trip");
        assert_eq!(
            (back.finals, back.windows, quality),
            (run.finals, windows.clone(), q(5))
        );
        assert!(decode_reference(&b, &windows, 3).is_none(), "another width");
        refuses_cut_and_padded(&b, |b| decode_reference(b, &windows, 2));
    }
}
