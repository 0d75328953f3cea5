//! Synthetic classification tasks for the learning studies: class prototypes (a mixture of Gaussian
//! modes per class) with per-client input shifts, label permutations, Dirichlet label skew and a
//! backdoor trigger. All sampling comes from the caller's seeded stream.

use candle_core::{Device, Result, Tensor};
use rand::Rng as _;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Gamma, Normal, StandardNormal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

/// Labelled examples (`x` row-major `len × dim`, labels in `0..classes`): the FL network's
/// [`crate::data::Shard`], with the tensor and trigger helpers the learning studies add below.
pub type Dataset = crate::data::Shard;

impl Dataset {
    /// `(x, y)` tensors of the examples `rows`.
    pub fn tensors(&self, rows: &[usize]) -> Result<(Tensor, Tensor)> {
        let mut x = Vec::with_capacity(rows.len() * self.dim);
        let mut y = Vec::with_capacity(rows.len());
        for &i in rows {
            x.extend_from_slice(self.row(i));
            y.push(self.y[i]);
        }
        Ok((
            Tensor::from_vec(x, (rows.len(), self.dim), &Device::Cpu)?,
            Tensor::from_vec(y, rows.len(), &Device::Cpu)?,
        ))
    }

    /// `(x, y)` tensors of every example.
    pub fn all_tensors(&self) -> Result<(Tensor, Tensor)> {
        self.tensors(&(0..self.len()).collect::<Vec<_>>())
    }

    /// Appends the examples of `other` (same width).
    pub fn extend(&mut self, other: &Dataset) {
        self.dim = other.dim;
        self.x.extend_from_slice(&other.x);
        self.y.extend_from_slice(&other.y);
    }

    /// The examples whose label is not `label`, with the trigger stamped and relabelled to `label`
    /// (the backdoor test set, or the poisoned part of an attacker's data).
    pub fn triggered(&self, trigger: &Trigger, label: u32) -> Dataset {
        let mut out = Dataset {
            dim: self.dim,
            ..Dataset::default()
        };
        for i in 0..self.len() {
            if self.y[i] == label {
                continue;
            }
            let mut row = self.row(i).to_vec();
            trigger.stamp(&mut row);
            out.x.extend_from_slice(&row);
            out.y.push(label);
        }
        out
    }

    /// The examples `rows`, in that order.
    pub fn subset(&self, rows: &[usize]) -> Dataset {
        let mut out = Dataset {
            dim: self.dim,
            ..Dataset::default()
        };
        for &i in rows {
            out.x.extend_from_slice(self.row(i));
            out.y.push(self.y[i]);
        }
        out
    }

    /// The first `n` examples.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            dim: self.dim,
            x: self.x[..n * self.dim].to_vec(),
            y: self.y[..n].to_vec(),
        }
    }
}

/// Shape of a prototype task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskShape {
    /// Input width.
    pub dim: usize,
    /// Number of classes.
    pub classes: usize,
    /// Gaussian modes per class (> 1 makes the task non-linear).
    pub modes: usize,
    /// Standard deviation of the mode centres (larger = easier).
    pub separation: f64,
    /// Standard deviation of the per-example noise.
    pub noise: f64,
}

impl Validate for TaskShape {
    fn validate(&self, c: &mut Checks) {
        c.at_least("dim", self.dim, 1);
        c.at_least("classes", self.classes, 2);
        c.at_least("modes", self.modes, 1);
        c.positive("separation", self.separation);
        c.positive("noise", self.noise);
    }
}

#[cfg(test)]
impl TaskShape {
    /// The unit tests' small, easy task: one mode per class, separation 2, noise 0.5.
    pub(crate) fn easy(dim: usize, classes: usize) -> Self {
        TaskShape {
            dim,
            classes,
            modes: 1,
            separation: 2.0,
            noise: 0.5,
        }
    }
}

/// A classification task: `modes` Gaussian centres per class; an example of class `c` is a random
/// centre of `c` plus isotropic noise.
#[derive(Debug, Clone, PartialEq)]
pub struct Prototypes {
    /// Shape.
    pub shape: TaskShape,
    /// Centres, `classes × modes × dim`.
    pub centres: Vec<f32>,
}

impl Prototypes {
    /// A task with random centres.
    pub fn new(shape: TaskShape, rng: &mut Rng) -> Self {
        let n = shape.classes * shape.modes * shape.dim;
        let centres = (0..n)
            .map(|_| (shape.separation * rng.sample::<f64, _>(StandardNormal)) as f32)
            .collect();
        Self { shape, centres }
    }

    /// A related task: every centre moved by `shift` × a fresh random offset (the "target" task of a
    /// model pretrained on `self`).
    pub fn shifted(&self, shift: f64, rng: &mut Rng) -> Self {
        let s = self.shape.separation * shift;
        let centres = self
            .centres
            .iter()
            .map(|c| c + (s * rng.sample::<f64, _>(StandardNormal)) as f32)
            .collect();
        Self {
            shape: self.shape,
            centres,
        }
    }

    /// `n` examples with class probabilities proportional to `class_weights`.
    pub fn sample(&self, n: usize, class_weights: &[f64], rng: &mut Rng) -> Dataset {
        let TaskShape {
            dim, modes, noise, ..
        } = self.shape;
        let total: f64 = class_weights.iter().sum();
        let noise = Normal::new(0.0, noise).expect("validated noise");
        let mut out = Dataset {
            dim,
            ..Dataset::default()
        };
        for _ in 0..n {
            let mut u = rng.random::<f64>() * total;
            let mut c = class_weights.len() - 1;
            for (k, w) in class_weights.iter().enumerate() {
                if u < *w {
                    c = k;
                    break;
                }
                u -= w;
            }
            let m = rng.random_range(0..modes);
            let centre = &self.centres[(c * modes + m) * dim..(c * modes + m + 1) * dim];
            out.x
                .extend(centre.iter().map(|v| v + noise.sample(rng) as f32));
            out.y.push(c as u32);
        }
        out
    }
}

/// Per-client class proportions drawn from a symmetric Dirichlet(α) (label skew; small α = few
/// classes per client). Row `k` is client `k`'s class weights, summing to 1.
pub fn dirichlet_label_skew(
    clients: usize,
    classes: usize,
    alpha: f64,
    rng: &mut Rng,
) -> Vec<Vec<f64>> {
    let gamma = Gamma::new(alpha, 1.0).expect("validated alpha");
    (0..clients)
        .map(|_| {
            let g: Vec<f64> = (0..classes).map(|_| gamma.sample(rng).max(1e-12)).collect();
            let s: f64 = g.iter().sum();
            g.iter().map(|v| v / s).collect()
        })
        .collect()
}

/// Splits real examples among clients without replacement, with label skew: client `k` gets `n`
/// examples, each of a class drawn from `class_weights[k]` (e.g. [`dirichlet_label_skew`]); when
/// that class has run out, the class with the most examples left (lowest index on ties). Examples
/// of a class are handed out in a random order. `pool` must hold `n × class_weights.len()` examples.
pub fn skewed_split(
    pool: &Dataset,
    class_weights: &[Vec<f64>],
    n: usize,
    rng: &mut Rng,
) -> Vec<Dataset> {
    let classes = class_weights.first().map_or(0, Vec::len);
    let mut left: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &y) in pool.y.iter().enumerate() {
        left[y as usize].push(i);
    }
    for l in &mut left {
        l.shuffle(rng);
    }
    class_weights
        .iter()
        .map(|w| {
            let total: f64 = w.iter().sum();
            let rows: Vec<usize> = (0..n)
                .filter_map(|_| {
                    let mut u = rng.random::<f64>() * total;
                    let mut c = w.len() - 1;
                    for (k, wk) in w.iter().enumerate() {
                        if u < *wk {
                            c = k;
                            break;
                        }
                        u -= wk;
                    }
                    if left[c].is_empty() {
                        c = (0..classes)
                            .max_by(|a, b| left[*a].len().cmp(&left[*b].len()).then(b.cmp(a)))?;
                    }
                    left[c].pop()
                })
                .collect();
            pool.subset(&rows)
        })
        .collect()
}

/// A client's view of a task: its inputs are shifted by `offset` and its labels relabelled through
/// `labels` (client `k` calls true class `c` `labels[c]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientView {
    /// Added to every input.
    pub offset: Vec<f32>,
    /// Label map, a permutation of `0..classes`.
    pub labels: Vec<u32>,
}

impl ClientView {
    /// A view with input offset of standard deviation `shift` and `swaps` random label transpositions.
    pub fn random(dim: usize, classes: usize, shift: f64, swaps: usize, rng: &mut Rng) -> Self {
        let offset = (0..dim)
            .map(|_| (shift * rng.sample::<f64, _>(StandardNormal)) as f32)
            .collect();
        let mut labels: Vec<u32> = (0..classes as u32).collect();
        for _ in 0..swaps {
            let mut pair: Vec<usize> = (0..classes).collect();
            pair.shuffle(rng);
            labels.swap(pair[0], pair[1]);
        }
        Self { offset, labels }
    }

    /// `data` as this client sees it.
    pub fn apply(&self, data: &Dataset) -> Dataset {
        let mut out = data.clone();
        for row in out.x.chunks_mut(data.dim) {
            for (v, o) in row.iter_mut().zip(&self.offset) {
                *v += o;
            }
        }
        for y in &mut out.y {
            *y = self.labels[*y as usize];
        }
        out
    }
}

/// A backdoor trigger: the listed input coordinates are set to `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// Coordinates overwritten.
    pub coords: Vec<usize>,
    /// Value written.
    pub value: f32,
}

impl Trigger {
    /// Stamps the trigger on one input row.
    pub fn stamp(&self, row: &mut [f32]) {
        for &c in &self.coords {
            row[c] = self.value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirichlet_rows_sum_to_one_and_small_alpha_skews() {
        let mut rng = sim::rng::stream(3, "d");
        let rows = dirichlet_label_skew(20, 10, 0.1, &mut rng);
        for r in &rows {
            assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        let top: f64 = rows
            .iter()
            .map(|r| r.iter().copied().fold(0.0, f64::max))
            .sum::<f64>()
            / 20.0;
        assert!(top > 0.5, "mean largest class share {top}");
    }

    #[test]
    fn skewed_split_draws_without_replacement() {
        let mut rng = sim::rng::stream(5, "s");
        let pool = Dataset {
            dim: 1,
            x: (0..60).map(|i| i as f32).collect(),
            y: (0..60).map(|i| i % 3).collect(),
        };
        // Client 0 wants only class 0 (20 exist), client 1 only class 1: 25 each forces spill-over.
        let w = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
        let parts = skewed_split(&pool, &w, 25, &mut rng);
        let mut seen: Vec<f32> = parts.iter().flat_map(|p| p.x.clone()).collect();
        assert_eq!(seen.len(), 50);
        seen.sort_by(f32::total_cmp);
        seen.dedup();
        assert_eq!(seen.len(), 50, "an example was handed out twice");
        let count = |k: usize, c: u32| parts[k].y.iter().filter(|y| **y == c).count();
        // Client 0 took every class-0 example, then spilled over to the fullest classes; client 1
        // took every class-1 example client 0 left.
        assert_eq!(count(0, 0), 20);
        assert!(count(0, 1) > 0);
        assert_eq!(count(0, 1) + count(1, 1), 20);
        for p in &parts {
            for (x, y) in p.x.iter().zip(&p.y) {
                assert_eq!(*x as u32 % 3, *y);
            }
        }
    }

    #[test]
    fn views_permute_labels_and_triggers_relabel() {
        let mut rng = sim::rng::stream(4, "v");
        let shape = TaskShape {
            dim: 6,
            classes: 4,
            modes: 2,
            separation: 1.0,
            noise: 0.1,
        };
        let data = Prototypes::new(shape, &mut rng).sample(50, &[1.0; 4], &mut rng);
        let view = ClientView::random(6, 4, 1.0, 2, &mut rng);
        let mut sorted = view.labels.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2, 3]);
        let seen = view.apply(&data);
        assert_eq!(seen.y[0], view.labels[data.y[0] as usize]);
        let trig = Trigger {
            coords: vec![0, 5],
            value: 4.0,
        };
        let poisoned = data.triggered(&trig, 1);
        assert!(poisoned.y.iter().all(|&y| y == 1));
        assert!(poisoned.x.chunks(6).all(|r| r[0] == 4.0 && r[5] == 4.0));
    }
}
