//! Federated benchmark data: FedProx's Synthetic(α, β) (Li et al., MLSys 2020, §5.1 and their
//! `generate_niid.py`) and Dirichlet(α) label shards of a pooled data set (Hsu et al. 2019).
//!
//! Synthetic(α, β): participant k draws u_k ~ N(0, α) and B_k ~ N(0, β); its labeller is
//! W_k ~ N(u_k, 1) ∈ R^{C×D}, b_k ~ N(u_k, 1) ∈ R^C; its feature mean v_k has entries N(B_k, 1);
//! features are x ~ N(v_k, Σ) with Σ = diag(j^{-1.2}); the label is argmax(W_k x + b_k). α controls
//! how much the local models differ, β how much the local feature distributions differ. Sample
//! counts per participant follow a lognormal (power-law-like, as in FedProx). Synthetic-IID
//! (FedProx's `synthetic_iid`) uses one W, b ~ N(0, 1) and v = 0 for everyone.

use rand::Rng as _;
use rand_distr::{Distribution, Gamma, LogNormal, Normal};
use sim::rng::Rng;

/// Labelled examples: `n` rows of `dim` features and a class label each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shard {
    /// Feature dimension D.
    pub dim: usize,
    /// Row-major features, `n × dim`.
    pub x: Vec<f32>,
    /// Class labels in `0..classes`.
    pub y: Vec<u32>,
}

impl Shard {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }
    /// True when the shard holds no example.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
    /// Features of example `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
    /// Appends example `i` of `other`.
    pub fn push_from(&mut self, other: &Shard, i: usize) {
        self.dim = other.dim;
        self.x.extend_from_slice(other.row(i));
        self.y.push(other.y[i]);
    }
    /// Concatenation of `shards`.
    pub fn concat(shards: &[Shard]) -> Shard {
        let mut s = Shard::default();
        for sh in shards {
            s.dim = sh.dim;
            s.x.extend_from_slice(&sh.x);
            s.y.extend_from_slice(&sh.y);
        }
        s
    }
}

/// A federated data set: one training shard per participant and a pooled test set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Federated {
    /// Number of classes C.
    pub classes: usize,
    /// Training shard of each participant.
    pub shards: Vec<Shard>,
    /// Held-out test set (pooled over participants).
    pub test: Shard,
}

/// Shape of a Synthetic(α, β) data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticSpec {
    /// Spread of the participants' labelling models (0 = identical).
    pub alpha: f64,
    /// Spread of the participants' feature means (0 = identical).
    pub beta: f64,
    /// Participants.
    pub clients: usize,
    /// Feature dimension D (FedProx: 60).
    pub dim: usize,
    /// Classes C (FedProx: 10).
    pub classes: usize,
    /// Median training samples per participant.
    pub samples_median: f64,
    /// Lognormal σ of the per-participant sample count (0 = all equal).
    pub samples_sigma: f64,
    /// Test examples held out per participant.
    pub test_per_client: usize,
    /// Synthetic-IID: one labeller and zero feature mean for everyone (α, β ignored).
    pub iid: bool,
}

fn normal(mean: f64, sd: f64) -> Normal<f64> {
    Normal::new(mean, sd.max(0.0)).unwrap_or_else(|_| Normal::new(0.0, 0.0).expect("N(0,0)"))
}

/// Generates Synthetic(α, β) (or Synthetic-IID) for `spec.clients` participants.
pub fn synthetic(spec: &SyntheticSpec, rng: &mut Rng) -> Federated {
    let (d, c) = (spec.dim, spec.classes);
    let sigma: Vec<f64> = (1..=d).map(|j| (j as f64).powf(-1.2).sqrt()).collect();
    let counts = LogNormal::new(
        spec.samples_median.max(1.0).ln(),
        spec.samples_sigma.max(0.0),
    )
    .expect("lognormal");
    let std = normal(0.0, 1.0);
    let shared_w: Vec<f64> = (0..c * d).map(|_| std.sample(rng)).collect();
    let shared_b: Vec<f64> = (0..c).map(|_| std.sample(rng)).collect();
    let mut fed = Federated {
        classes: c,
        shards: Vec::with_capacity(spec.clients),
        test: Shard {
            dim: d,
            ..Shard::default()
        },
    };
    for _ in 0..spec.clients {
        let (w, b, v) = if spec.iid {
            (shared_w.clone(), shared_b.clone(), vec![0.0; d])
        } else {
            let u = normal(0.0, spec.alpha.sqrt()).sample(rng);
            let bk = normal(0.0, spec.beta.sqrt()).sample(rng);
            let w: Vec<f64> = (0..c * d).map(|_| normal(u, 1.0).sample(rng)).collect();
            let b: Vec<f64> = (0..c).map(|_| normal(u, 1.0).sample(rng)).collect();
            let v: Vec<f64> = (0..d).map(|_| normal(bk, 1.0).sample(rng)).collect();
            (w, b, v)
        };
        let n_train = (counts.sample(rng).round() as usize).max(2);
        let mut shard = Shard {
            dim: d,
            ..Shard::default()
        };
        for k in 0..n_train + spec.test_per_client {
            let x: Vec<f64> = (0..d).map(|j| v[j] + sigma[j] * std.sample(rng)).collect();
            let mut best = (0, f64::NEG_INFINITY);
            for cls in 0..c {
                let z = b[cls]
                    + w[cls * d..(cls + 1) * d]
                        .iter()
                        .zip(&x)
                        .map(|(a, b)| a * b)
                        .sum::<f64>();
                if z > best.1 {
                    best = (cls, z);
                }
            }
            let target = if k < n_train {
                &mut shard
            } else {
                &mut fed.test
            };
            target.x.extend(x.iter().map(|&v| v as f32));
            target.y.push(best.0 as u32);
        }
        fed.shards.push(shard);
    }
    fed
}

/// Splits `pool` over `clients` participants with per-class Dirichlet(α) proportions (small α:
/// each participant sees few classes; large α: close to IID). Every example goes to exactly one
/// participant; a participant may end up empty when α is tiny.
pub fn dirichlet_split(
    pool: &Shard,
    classes: usize,
    clients: usize,
    alpha: f64,
    rng: &mut Rng,
) -> Vec<Shard> {
    let gamma = Gamma::new(alpha.max(1e-6), 1.0).expect("gamma");
    let mut shards = vec![
        Shard {
            dim: pool.dim,
            ..Shard::default()
        };
        clients
    ];
    for cls in 0..classes as u32 {
        let mut idx: Vec<usize> = (0..pool.len()).filter(|&i| pool.y[i] == cls).collect();
        // Fisher–Yates with the seeded stream.
        for i in (1..idx.len()).rev() {
            let j = rng.random_range(0..=i);
            idx.swap(i, j);
        }
        let p: Vec<f64> = (0..clients).map(|_| gamma.sample(rng)).collect();
        let total: f64 = p.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let mut acc = 0.0;
        let mut start = 0usize;
        for (k, pk) in p.iter().enumerate() {
            acc += pk / total;
            let end = if k + 1 == clients {
                idx.len()
            } else {
                ((acc * idx.len() as f64).round() as usize).min(idx.len())
            };
            for &i in &idx[start..end.max(start)] {
                shards[k].push_from(pool, i);
            }
            start = end.max(start);
        }
    }
    shards
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(iid: bool) -> SyntheticSpec {
        SyntheticSpec {
            alpha: 1.0,
            beta: 1.0,
            clients: 20,
            dim: 60,
            classes: 10,
            samples_median: 40.0,
            samples_sigma: 0.5,
            test_per_client: 5,
            iid,
        }
    }

    #[test]
    fn synthetic_shapes_and_labels() {
        let f = synthetic(&spec(false), &mut sim::rng::stream(1, "d"));
        assert_eq!(f.shards.len(), 20);
        assert_eq!(f.test.len(), 100);
        for s in &f.shards {
            assert_eq!(s.x.len(), s.len() * 60);
            assert!(s.y.iter().all(|&y| y < 10));
        }
    }

    #[test]
    fn dirichlet_keeps_every_example_and_small_alpha_skews() {
        let f = synthetic(&spec(true), &mut sim::rng::stream(2, "d"));
        let pool = Shard::concat(&f.shards);
        let skew = |alpha: f64| {
            let s = dirichlet_split(&pool, 10, 10, alpha, &mut sim::rng::stream(3, "s"));
            assert_eq!(s.iter().map(Shard::len).sum::<usize>(), pool.len());
            // Mean over participants of the share of their most frequent class.
            s.iter()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let mut h = [0usize; 10];
                    s.y.iter().for_each(|&y| h[y as usize] += 1);
                    *h.iter().max().unwrap() as f64 / s.len() as f64
                })
                .sum::<f64>()
                / 10.0
        };
        assert!(skew(0.1) > skew(100.0) + 0.2);
    }
}
