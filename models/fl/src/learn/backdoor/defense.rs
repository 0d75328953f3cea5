//! Robust aggregation rules over flat client updates (client weights − global weights), each returning
//! the aggregate and which clients it flagged (excluded, zero-trusted, clipped or outvoted).

use rand_distr::{Distribution, Normal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

/// An aggregation rule on the server.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Defense {
    /// Plain FedAvg (no defense).
    Fedavg,
    /// Krum (Blanchard et al. 2017): the single update closest to its n − f − 2 nearest neighbours.
    Krum,
    /// Multi-Krum: the mean of the n − f updates with the best Krum scores.
    MultiKrum,
    /// Coordinate-wise median.
    Median,
    /// Coordinate-wise trimmed mean (f largest and f smallest values dropped per coordinate).
    TrimmedMean,
    /// FLTrust (Cao et al. 2021): trust = ReLU(cosine with the server's root-data update), magnitudes
    /// normalised to the root update's.
    Fltrust,
    /// FLAME-style (Nguyen et al. 2022): cosine outlier filtering (core-distance rule instead of HDBSCAN),
    /// clipping to the median norm, Gaussian noise.
    Flame,
    /// Robust learning rate (Ozdayi et al. 2021): coordinates with sign agreement below a threshold get
    /// a negated learning rate.
    Rlr,
    /// Norm clipping to a multiple of the median update norm, then the mean.
    NormClip,
}

impl Defense {
    /// The scenario spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fedavg => "fedavg",
            Self::Krum => "krum",
            Self::MultiKrum => "multi-krum",
            Self::Median => "median",
            Self::TrimmedMean => "trimmed-mean",
            Self::Fltrust => "fltrust",
            Self::Flame => "flame",
            Self::Rlr => "rlr",
            Self::NormClip => "norm-clip",
        }
    }
}

/// Tuning of the defenses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefenseConfig {
    /// Number of attackers the server assumes (Krum's f, trimmed mean's cut per side).
    pub assumed_attackers: usize,
    /// RLR: minimum |Σ sign| for a coordinate to keep a positive learning rate.
    pub rlr_threshold: usize,
    /// Norm clipping: bound as a multiple of the median update norm.
    pub clip_factor: f64,
    /// FLAME: noise standard deviation as a multiple of the clipping bound (per coordinate).
    pub flame_noise: f64,
}

impl Validate for DefenseConfig {
    fn validate(&self, c: &mut Checks) {
        c.at_least("rlr_threshold", self.rlr_threshold, 1);
        c.positive("clip_factor", self.clip_factor);
        c.non_negative("flame_noise", self.flame_noise);
    }
}

/// What a defense made of one round's updates.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The aggregate update added to the global weights.
    pub update: Vec<f32>,
    /// Per client: whether the defense excluded, zero-trusted, clipped or outvoted it.
    pub flagged: Vec<bool>,
}

fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt()
}

fn dist2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let n = norm(a) * norm(b);
    if n == 0.0 { 0.0 } else { dot / n }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn mean_of(updates: &[&[f32]], scale: &[f64]) -> Vec<f32> {
    let total: f64 = scale.iter().sum();
    let mut out = vec![0.0f64; updates.first().map_or(0, |u| u.len())];
    if total <= 0.0 {
        return vec![0.0; out.len()];
    }
    for (u, s) in updates.iter().zip(scale) {
        for (o, x) in out.iter_mut().zip(*u) {
            *o += s * f64::from(*x);
        }
    }
    out.into_iter().map(|v| (v / total) as f32).collect()
}

/// Krum scores: sum of squared distances to the `n − f − 2` nearest other updates.
pub fn krum_scores(updates: &[Vec<f32>], f: usize) -> Vec<f64> {
    let n = updates.len();
    let k = n.saturating_sub(f + 2).max(1);
    (0..n)
        .map(|i| {
            let mut d: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| dist2(&updates[i], &updates[j]))
                .collect();
            d.sort_by(f64::total_cmp);
            d.iter().take(k).sum()
        })
        .collect()
}

/// Indices of the `m` smallest values.
fn smallest(v: &[f64], m: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|a, b| v[*a].total_cmp(&v[*b]).then(a.cmp(b)));
    idx.truncate(m);
    idx
}

/// Coordinate-wise rule: per coordinate, keeps the sorted values `[cut, n − cut)` and averages them
/// (median when `cut = ⌊(n−1)/2⌋`); a client is flagged when more than half of its coordinates fall
/// among the `flag_cut` most extreme on either side.
fn coordinatewise(updates: &[Vec<f32>], cut: usize, flag_cut: usize) -> Verdict {
    let n = updates.len();
    let d = updates[0].len();
    let mut extreme = vec![0usize; n];
    let mut out = vec![0.0f32; d];
    let mut col: Vec<(f32, usize)> = Vec::with_capacity(n);
    for (j, o) in out.iter_mut().enumerate() {
        col.clear();
        col.extend(updates.iter().enumerate().map(|(i, u)| (u[j], i)));
        col.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let kept = &col[cut..n - cut];
        *o = (kept.iter().map(|v| f64::from(v.0)).sum::<f64>() / kept.len() as f64) as f32;
        for (_, i) in col[..flag_cut].iter().chain(&col[n - flag_cut..]) {
            extreme[*i] += 1;
        }
    }
    Verdict {
        update: out,
        flagged: extreme.iter().map(|e| *e * 2 > d).collect(),
    }
}

/// Applies `defense` to `updates`; `root` is the server's own update on its root data (read by
/// FLTrust only; may be empty for the others).
pub fn aggregate(
    defense: Defense,
    updates: &[Vec<f32>],
    root: &[f32],
    cfg: &DefenseConfig,
    rng: &mut Rng,
) -> Verdict {
    let n = updates.len();
    let refs: Vec<&[f32]> = updates.iter().map(Vec::as_slice).collect();
    let f = cfg.assumed_attackers.min(n.saturating_sub(1) / 2);
    match defense {
        Defense::Fedavg => Verdict {
            update: mean_of(&refs, &vec![1.0; n]),
            flagged: vec![false; n],
        },
        Defense::Krum | Defense::MultiKrum => {
            let scores = krum_scores(updates, f);
            let m = if defense == Defense::Krum { 1 } else { n - f };
            let chosen = smallest(&scores, m);
            let mut w = vec![0.0; n];
            for &i in &chosen {
                w[i] = 1.0;
            }
            Verdict {
                update: mean_of(&refs, &w),
                flagged: w.iter().map(|x| *x == 0.0).collect(),
            }
        }
        Defense::Median => coordinatewise(updates, (n - 1) / 2, f),
        Defense::TrimmedMean => coordinatewise(updates, f, f),
        Defense::Fltrust => {
            let r = norm(root);
            let trust: Vec<f64> = refs.iter().map(|u| cosine(u, root).max(0.0)).collect();
            let scaled: Vec<f64> = refs
                .iter()
                .zip(&trust)
                .map(|(u, t)| {
                    let nu = norm(u);
                    if nu == 0.0 { 0.0 } else { t * r / nu }
                })
                .collect();
            let total: f64 = trust.iter().sum();
            let mut update = mean_of(&refs, &scaled);
            // mean_of divides by Σ scaled; FLTrust divides by Σ trust.
            let ratio = if total > 0.0 {
                scaled.iter().sum::<f64>() / total
            } else {
                0.0
            };
            for v in &mut update {
                *v = (f64::from(*v) * ratio) as f32;
            }
            Verdict {
                update,
                flagged: trust.iter().map(|t| *t == 0.0).collect(),
            }
        }
        Defense::Flame => {
            let k = n / 2;
            let mut core: Vec<f64> = (0..n)
                .map(|i| {
                    let mut d: Vec<f64> = (0..n)
                        .filter(|&j| j != i)
                        .map(|j| 1.0 - cosine(refs[i], refs[j]))
                        .collect();
                    d.sort_by(f64::total_cmp);
                    d[k.saturating_sub(1).min(d.len().saturating_sub(1))]
                })
                .collect();
            let core_copy = core.clone();
            let med = median(&mut core);
            let mut dev: Vec<f64> = core_copy.iter().map(|c| (c - med).abs()).collect();
            let mad = median(&mut dev).max(1e-3 * med.abs()).max(1e-9);
            let admitted: Vec<bool> = core_copy.iter().map(|c| *c <= med + 2.0 * mad).collect();
            let mut norms: Vec<f64> = refs.iter().map(|u| norm(u)).collect();
            let bound = median(&mut norms);
            let scale: Vec<f64> = refs
                .iter()
                .zip(&admitted)
                .map(|(u, a)| {
                    if *a {
                        (bound / norm(u).max(1e-12)).min(1.0)
                    } else {
                        0.0
                    }
                })
                .collect();
            let count = admitted.iter().filter(|a| **a).count().max(1) as f64;
            let mut update = mean_of(&refs, &scale);
            let ratio = scale.iter().sum::<f64>() / count;
            let noise = Normal::new(0.0, (cfg.flame_noise * bound).max(0.0)).expect("finite");
            for v in &mut update {
                *v = (f64::from(*v) * ratio + noise.sample(rng)) as f32;
            }
            Verdict {
                update,
                flagged: admitted.iter().map(|a| !a).collect(),
            }
        }
        Defense::Rlr => {
            let d = updates[0].len();
            let mut update = mean_of(&refs, &vec![1.0; n]);
            let mut disagree = vec![0usize; n];
            for (j, v) in update.iter_mut().enumerate() {
                let s: i64 = refs.iter().map(|u| sign(u[j])).sum();
                if (s.unsigned_abs() as usize) < cfg.rlr_threshold {
                    *v = -*v;
                }
                for (i, u) in refs.iter().enumerate() {
                    if s != 0 && sign(u[j]) == -s.signum() {
                        disagree[i] += 1;
                    }
                }
            }
            Verdict {
                update,
                flagged: disagree.iter().map(|c| *c * 2 > d).collect(),
            }
        }
        Defense::NormClip => {
            let mut norms: Vec<f64> = refs.iter().map(|u| norm(u)).collect();
            let raw = norms.clone();
            let bound = cfg.clip_factor * median(&mut norms);
            let scale: Vec<f64> = raw
                .iter()
                .map(|nu| if *nu > bound { bound / nu } else { 1.0 })
                .collect();
            let mut update = mean_of(&refs, &scale);
            let ratio = scale.iter().sum::<f64>() / n as f64;
            for v in &mut update {
                *v = (f64::from(*v) * ratio) as f32;
            }
            Verdict {
                update,
                flagged: raw.iter().map(|nu| *nu > bound).collect(),
            }
        }
    }
}

fn sign(x: f32) -> i64 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    const ALL: [Defense; 8] = [
        Defense::Krum,
        Defense::MultiKrum,
        Defense::Median,
        Defense::TrimmedMean,
        Defense::Fltrust,
        Defense::Flame,
        Defense::Rlr,
        Defense::NormClip,
    ];

    fn cfg() -> DefenseConfig {
        DefenseConfig {
            assumed_attackers: 2,
            rlr_threshold: 4,
            clip_factor: 1.5,
            flame_noise: 0.001,
        }
    }

    /// Nine benign updates around a direction with positive coordinates, and one large outlier
    /// pointing the other way.
    fn crafted(rng: &mut Rng) -> (Vec<Vec<f32>>, Vec<f32>) {
        let d = 40;
        let base: Vec<f32> = (0..d).map(|_| 0.5 + rng.random::<f32>()).collect();
        let mut ups: Vec<Vec<f32>> = (0..9)
            .map(|_| {
                base.iter()
                    .map(|b| b + 0.2 * (rng.random::<f32>() - 0.5))
                    .collect()
            })
            .collect();
        ups.push(base.iter().map(|b| -10.0 * b).collect());
        (ups, base)
    }

    #[test]
    fn every_defense_rejects_a_crafted_outlier() {
        let mut rng = sim::rng::stream(11, "def");
        let (ups, base) = crafted(&mut rng);
        let benign_mean = mean_of(
            &ups[..9].iter().map(Vec::as_slice).collect::<Vec<_>>(),
            &[1.0; 9],
        );
        let plain = aggregate(Defense::Fedavg, &ups, &base, &cfg(), &mut rng);
        let plain_err = dist2(&plain.update, &benign_mean).sqrt();
        for d in ALL {
            let v = aggregate(d, &ups, &base, &cfg(), &mut rng);
            let err = dist2(&v.update, &benign_mean).sqrt();
            assert!(v.flagged[9], "{d:?} did not flag the outlier");
            if d == Defense::Rlr {
                // RLR only flips coordinates without sign consensus; here every coordinate has one.
                continue;
            }
            assert!(
                err < 0.3 * plain_err,
                "{d:?}: error {err} vs undefended {plain_err}"
            );
            assert!(cosine(&v.update, &benign_mean) > 0.95, "{d:?} direction");
        }
    }

    #[test]
    fn rlr_negates_the_learning_rate_where_signs_disagree() {
        // Coordinate 0: benign signs split 5/5 and one attacker pushes hard; coordinate 1: consensus.
        let mut ups: Vec<Vec<f32>> = (0..10)
            .map(|i| vec![if i % 2 == 0 { 0.1 } else { -0.1 }, 0.2])
            .collect();
        ups[0] = vec![5.0, 0.2];
        let mut rng = sim::rng::stream(12, "rlr");
        let v = aggregate(Defense::Rlr, &ups, &[0.0, 0.0], &cfg(), &mut rng);
        assert!(
            v.update[0] < 0.0,
            "attacker's push is reversed: {}",
            v.update[0]
        );
        assert!(v.update[1] > 0.0);
    }

    #[test]
    fn krum_picks_a_benign_update() {
        let mut rng = sim::rng::stream(13, "krum");
        let (ups, _) = crafted(&mut rng);
        let s = krum_scores(&ups, 2);
        assert_eq!(smallest(&s, 10)[9], 9);
    }
}
