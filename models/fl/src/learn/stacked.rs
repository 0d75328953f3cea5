//! `K` models of one architecture trained side by side as ONE candle graph ("batched clients"):
//! each layer's weights are stacked into a `K × d_out × d_in` variable (biases `K × d_out`), each
//! step's minibatches into `K × B × d`, and the forward pass ([`Arch::forward`]) runs every layer
//! once for all models (one batched matmul, one gather). The loss is the sum of the models' own
//! mean losses, so each model receives exactly its own gradient. A training step of the 15-layer
//! CNN on 10-image minibatches is a few hundred candle ops on tiny tensors; its cost is per-op
//! overhead, not arithmetic, so `K` models in one graph cost about what one does.
//!
//! Models whose data give fewer or shorter minibatches are padded: a padded example has weight 0
//! in the loss (no gradient), and a model with no minibatch left at a step gets a zero gradient,
//! so plain SGD leaves it where it is (`v − lr·0 = v`). Each model draws its minibatches from its
//! own random stream exactly as [`Arch::train`] does, so stacked training equals training the
//! models one by one, up to float summation order (tested below).

use candle_core::{Device, Result, Tensor, Var};
use sim::rng::Rng;

use super::nn::{self, Arch, Vars, Weights};
use super::task::Dataset;

/// One model's local training: its starting weights, its data and its shuffling stream.
pub struct Job<'a> {
    /// Weights the model starts from.
    pub start: &'a Weights,
    /// Examples it trains on.
    pub data: &'a Dataset,
    /// Stream its minibatches are shuffled by (advanced as [`Arch::train`] advances it).
    pub rng: &'a mut Rng,
}

/// Variables holding the models `ws` (same layout) stacked layer by layer: weight
/// `K × d_out × d_in`, bias `K × d_out`.
pub fn stack(ws: &[&Weights]) -> Result<Vars> {
    let dev = Device::Cpu;
    let k = ws.len();
    let layers = (0..ws[0].layers.len())
        .map(|l| {
            let (d_out, d_in) = (ws[0].layers[l].d_out, ws[0].layers[l].d_in);
            let w: Vec<f32> = ws.iter().flat_map(|m| m.layers[l].w.clone()).collect();
            let b: Vec<f32> = ws.iter().flat_map(|m| m.layers[l].b.clone()).collect();
            Ok((
                Var::from_vec(w, (k, d_out, d_in), &dev)?,
                Var::from_vec(b, (k, d_out), &dev)?,
            ))
        })
        .collect::<Result<_>>()?;
    Ok(Vars { layers })
}

/// The `K` models held by stacked `vars`, each laid out like `shape`.
pub fn unstack(vars: &Vars, shape: &Weights) -> Result<Vec<Weights>> {
    let k = vars.layers.first().map_or(Ok(0), |(w, _)| w.dim(0))?;
    let mut out = vec![shape.clone(); k];
    for (l, (w, b)) in vars.layers.iter().enumerate() {
        let w: Vec<f32> = w.as_tensor().flatten_all()?.to_vec1()?;
        let b: Vec<f32> = b.as_tensor().flatten_all()?.to_vec1()?;
        let (nw, nb) = (w.len() / k, b.len() / k);
        for (m, model) in out.iter_mut().enumerate() {
            model.layers[l].w.copy_from_slice(&w[m * nw..(m + 1) * nw]);
            model.layers[l].b.copy_from_slice(&b[m * nb..(m + 1) * nb]);
        }
    }
    Ok(out)
}

/// One stacked SGD step's data: inputs `K × B × d`, labels `K × B`, and each example's weight in
/// the loss (`1/batch` of its model's minibatch, 0 for padding), `K × B`.
struct Step {
    x: Tensor,
    y: Tensor,
    weight: Tensor,
}

/// The stacked steps of `jobs`: model `k`'s `s`-th minibatch (from [`nn::batch_rows`] on its own
/// stream) at step `s`, padded to the longest minibatch and the longest run of steps.
fn steps(jobs: &mut [Job<'_>], epochs: usize, batch: usize) -> Result<Vec<Step>> {
    let rows: Vec<Vec<Vec<usize>>> = jobs
        .iter_mut()
        .map(|j| {
            // An empty set draws nothing, as in `Arch::train`.
            if j.data.is_empty() {
                Vec::new()
            } else {
                nn::batch_rows(j.data.len(), epochs, batch, j.rng)
            }
        })
        .collect();
    let k = jobs.len();
    let dim = jobs.iter().map(|j| j.data.dim).max().unwrap_or(0);
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = rows.iter().flatten().map(Vec::len).max().unwrap_or(0);
    (0..count)
        .map(|s| {
            let mut x = vec![0.0f32; k * width * dim];
            let mut y = vec![0u32; k * width];
            let mut weight = vec![0.0f32; k * width];
            for (m, (job, r)) in jobs.iter().zip(&rows).enumerate() {
                let Some(r) = r.get(s) else { continue };
                for (i, &row) in r.iter().enumerate() {
                    let at = m * width + i;
                    x[at * dim..(at + 1) * dim].copy_from_slice(job.data.row(row));
                    y[at] = job.data.y[row];
                    weight[at] = 1.0 / r.len() as f32;
                }
            }
            let dev = Device::Cpu;
            Ok(Step {
                x: Tensor::from_vec(x, (k, width, dim), &dev)?,
                y: Tensor::from_vec(y, (k, width), &dev)?,
                weight: Tensor::from_vec(weight, (k, width), &dev)?,
            })
        })
        .collect()
}

/// Trains the models of `jobs` with SGD as one stacked graph (minibatches of `batch` for `epochs`
/// passes over each model's own data, learning rate `lr`); returns the trained models in the
/// order of `jobs`. Equals [`Arch::train`] on each job in turn up to float summation order.
pub fn train(
    arch: &Arch,
    mut jobs: Vec<Job<'_>>,
    epochs: usize,
    batch: usize,
    lr: f64,
) -> Result<Vec<Weights>> {
    let Some(shape) = jobs.first().map(|j| j.start) else {
        return Ok(Vec::new());
    };
    let starts: Vec<&Weights> = jobs.iter().map(|j| j.start).collect();
    let vars = stack(&starts)?;
    let all = vars.all();
    for step in steps(&mut jobs, epochs, batch)? {
        let logits = arch.forward(&vars.tensors(), &step.x)?;
        let loss = (nn::example_cross_entropy(&logits, &step.y)? * &step.weight)?.sum_all()?;
        nn::sgd_step(&loss, &all, lr)?;
    }
    unstack(&vars, shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::cnn::{Cnn, CnnShape};
    use crate::learn::nn::constants;
    use crate::learn::task::{Prototypes, TaskShape};

    fn cnn() -> Arch {
        Arch::Cnn(Cnn {
            shape: CnnShape {
                channels: [4, 8],
                blocks: 2,
            },
            side: 8,
            classes: 5,
        })
    }

    /// Client `k`'s data: `sizes[k]` examples of a 64-feature, 5-class task.
    fn sets(sizes: &[usize]) -> Vec<Dataset> {
        let mut rng = sim::rng::stream(11, "task");
        let shape = TaskShape {
            dim: 64,
            classes: 5,
            modes: 1,
            separation: 2.0,
            noise: 1.0,
        };
        let task = Prototypes::new(shape, &mut rng);
        sizes
            .iter()
            .map(|n| task.sample(*n, &[1.0; 5], &mut rng))
            .collect()
    }

    /// Largest `|a − b| / (1 + |b|)` over every parameter of the model pairs.
    fn max_gap(a: &[Weights], b: &[Weights]) -> f32 {
        a.iter()
            .zip(b)
            .flat_map(|(x, y)| {
                x.flatten()
                    .into_iter()
                    .zip(y.flatten())
                    .map(|(p, q)| (p - q).abs() / (1.0 + q.abs()))
                    .collect::<Vec<_>>()
            })
            .fold(0.0, f32::max)
    }

    /// Stacked training of `starts` on `data` against training each model on its own (same
    /// streams); also checks the streams end in the same state.
    fn compare(arch: &Arch, starts: &[Weights], data: &[Dataset], (e, b, lr): (usize, usize, f64)) {
        let streams = || -> Vec<Rng> {
            (0..data.len())
                .map(|k| sim::rng::stream(5, &format!("client/{k}")))
                .collect()
        };
        let mut one = streams();
        let want: Vec<Weights> = starts
            .iter()
            .zip(data)
            .zip(&mut one)
            .map(|((w, d), rng)| arch.train(w, d, e, b, lr, rng).unwrap())
            .collect();
        let mut all = streams();
        let jobs = starts
            .iter()
            .zip(data)
            .zip(&mut all)
            .map(|((start, data), rng)| Job { start, data, rng })
            .collect();
        let got = train(arch, jobs, e, b, lr).unwrap();
        let gap = max_gap(&got, &want);
        assert!(gap < 1e-5, "stacked vs one by one: {gap}");
        // Training moved every model that had data, by far more than the tolerance.
        for ((g, s), d) in got.iter().zip(starts).zip(data) {
            let moved = max_gap(std::slice::from_ref(g), std::slice::from_ref(s));
            assert_eq!(moved > 1e-3, !d.is_empty(), "moved {moved}");
        }
        for (a, b) in one.iter_mut().zip(&mut all) {
            assert_eq!(rand::Rng::random::<u64>(a), rand::Rng::random::<u64>(b));
        }
    }

    /// Four CNN clients from the same global model, equal data (no padding): stacked = one by one.
    #[test]
    fn stacked_cnn_clients_equal_one_by_one_training() {
        let arch = cnn();
        let Arch::Cnn(net) = arch else { unreachable!() };
        let g = net.init(&mut sim::rng::stream(1, "init"));
        compare(&arch, &vec![g; 4], &sets(&[30; 4]), (2, 10, 0.1));
    }

    /// Different starting models, data sizes giving different step counts and a short last
    /// minibatch, and a client without data: padding and masking leave the result unchanged.
    #[test]
    fn padded_clients_of_unequal_sizes_equal_one_by_one_training() {
        let arch = cnn();
        let Arch::Cnn(net) = arch else { unreachable!() };
        let mut rng = sim::rng::stream(2, "init");
        let starts: Vec<Weights> = (0..4).map(|_| net.init(&mut rng)).collect();
        compare(&arch, &starts, &sets(&[23, 40, 0, 7]), (2, 10, 0.1));
    }

    /// The MLP stacks the same way.
    #[test]
    fn stacked_mlp_clients_equal_one_by_one_training() {
        let mut rng = sim::rng::stream(3, "init");
        let starts: Vec<Weights> = (0..3)
            .map(|_| Weights::init(&[64, 16, 5], &mut rng))
            .collect();
        compare(&Arch::Mlp, &starts, &sets(&[25, 31, 18]), (3, 8, 0.05));
    }

    /// Stacking and unstacking is lossless, and the stacked forward pass gives each model's own
    /// logits.
    #[test]
    fn stacked_forward_gives_each_models_logits() {
        let arch = cnn();
        let Arch::Cnn(net) = arch else { unreachable!() };
        let mut rng = sim::rng::stream(4, "init");
        let ws: Vec<Weights> = (0..3).map(|_| net.init(&mut rng)).collect();
        let refs: Vec<&Weights> = ws.iter().collect();
        let vars = stack(&refs).unwrap();
        assert_eq!(unstack(&vars, &ws[0]).unwrap(), ws);
        let data = sets(&[6]).remove(0);
        let (x, _) = data.all_tensors().unwrap();
        let xs = Tensor::stack(&[&x, &x, &x], 0).unwrap();
        let stacked = arch.forward(&vars.tensors(), &xs).unwrap();
        for (k, w) in ws.iter().enumerate() {
            let own: Vec<f32> = arch
                .forward(&constants(w).unwrap(), &x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let got: Vec<f32> = stacked
                .get(k)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            for (a, b) in got.iter().zip(&own) {
                assert!(
                    (a - b).abs() < 1e-5 * (1.0 + b.abs()),
                    "model {k}: {a} vs {b}"
                );
            }
        }
    }
}
