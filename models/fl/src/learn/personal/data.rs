//! The clients' data for `fl-personal`: the real UCI 8×8 digits ([`crate::learn::digits`]) split
//! into a training pool and a test pool; every client draws its examples from the pools with its
//! own Dirichlet(α) class proportions (label-distribution skew) and sees them through its own fixed
//! [`ImageTransform`] (feature shift) and, when the scenario gives `sensor:`, through its own
//! [`Sensor`] (an affine intensity map applied last). Labels are never remapped. When the digits file is absent a
//! synthetic stand-in of the same shape (64 features in [0, 1], 10 classes) is used and the run
//! reports `real_data = 0`.

use rand::Rng as _;
use rand::seq::SliceRandom;
use sim::rng::Rng;

use super::sensor::{Sensor, SensorShift};
use super::shift::{FeatureShift, ImageTransform, SIDE};
use crate::learn::digits;
use crate::learn::task::{Dataset, Prototypes, TaskShape, dirichlet_label_skew};

/// Every client's training, held-out (pFedNavi's mixing data) and test examples.
pub struct ClientData {
    /// Training examples per client (all methods train on these plus `holdout`, see below).
    pub train: Vec<Dataset>,
    /// A part of each client's own data held out of the local-weight training, on which pFedNavi
    /// learns its mixing coefficients; every other method trains on it as ordinary data.
    pub holdout: Vec<Dataset>,
    /// Test examples per client (same transform and class proportions as its training data).
    pub test: Vec<Dataset>,
    /// Untransformed images of the training pool with uniform class proportions, on which the
    /// initial model is pretrained (empty when `Sizes::pretrain` is 0).
    pub pretrain: Dataset,
    /// Whether the real digits were used (false: the synthetic stand-in).
    pub real: bool,
    /// Each client's sensor (empty without `sensor:`).
    pub sensors: Vec<Sensor>,
}

/// How one client sees an image: its transform, then its sensor (if any).
struct Lens {
    view: ImageTransform,
    sensor: Option<Sensor>,
}

impl Lens {
    fn apply(&self, img: &[f32], rng: &mut Rng) -> Vec<f32> {
        let seen = self.view.apply(img, rng);
        match &self.sensor {
            Some(s) => s.apply(&seen),
            None => seen,
        }
    }
}

/// How much data each client gets.
pub struct Sizes {
    /// Clients.
    pub clients: usize,
    /// Examples a client trains on (its held-out part included).
    pub samples_per_client: usize,
    /// Of which held out for pFedNavi's mixing coefficients.
    pub holdout_per_client: usize,
    /// Test examples per client.
    pub test_per_client: usize,
    /// Pretraining examples (0: the initial model is not pretrained).
    pub pretrain: usize,
}

/// The real digits, or the stand-in (and whether they are real).
fn images(rng: &mut Rng) -> Result<(Dataset, bool), String> {
    if let Some(path) = digits::locate() {
        return Ok((digits::load(&path)?, true));
    }
    // Stand-in when `data/digits/digits.csv` is absent (run scripts/fetch-data.sh): Gaussian
    // prototypes squashed into [0, 1], as many examples as the real set (1,797).
    let shape = TaskShape {
        dim: SIDE * SIDE,
        classes: digits::CLASSES,
        modes: 3,
        separation: 1.0,
        noise: 0.7,
    };
    let mut d = Prototypes::new(shape, rng).sample(1797, &[1.0; digits::CLASSES], rng);
    for v in &mut d.x {
        *v = 1.0 / (1.0 + (-*v).exp());
    }
    Ok((d, false))
}

/// Row indices of each class.
fn by_class(d: &Dataset, rows: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); digits::CLASSES];
    for &i in rows {
        out[d.y[i] as usize].push(i);
    }
    out
}

/// `n` examples drawn (with replacement) from `pool` with class proportions `weights`, seen
/// through `view`.
fn draw(
    d: &Dataset,
    pool: &[Vec<usize>],
    weights: &[f64],
    n: usize,
    view: &Lens,
    rng: &mut Rng,
) -> Dataset {
    // Classes absent from the pool cannot be drawn.
    let w: Vec<f64> = weights
        .iter()
        .zip(pool)
        .map(|(w, p)| if p.is_empty() { 0.0 } else { *w })
        .collect();
    let total: f64 = w.iter().sum();
    let mut out = Dataset {
        dim: d.dim,
        ..Dataset::default()
    };
    for _ in 0..n {
        let mut u = rng.random::<f64>() * total;
        let mut c = w.iter().rposition(|v| *v > 0.0).unwrap_or(0);
        for (k, v) in w.iter().enumerate() {
            if u < *v {
                c = k;
                break;
            }
            u -= v;
        }
        let i = pool[c][rng.random_range(0..pool[c].len())];
        out.x.extend(view.apply(d.row(i), rng));
        out.y.push(d.y[i]);
    }
    out
}

/// The clients' data: half the images (shuffled) form the training pool, the other half the test
/// pool, so no client is tested on an image any client trained on. A client's sensor is drawn
/// right after its transform, only when `sensor` is given (so scenarios without one draw the same
/// data as before it existed).
pub fn build(
    sizes: &Sizes,
    alpha: f64,
    shift: &FeatureShift,
    sensor: Option<&SensorShift>,
    rng: &mut Rng,
) -> Result<ClientData, String> {
    let (d, real) = images(rng)?;
    let mut rows: Vec<usize> = (0..d.len()).collect();
    rows.shuffle(rng);
    let (train_rows, test_rows) = rows.split_at(d.len() / 2);
    let (train_pool, test_pool) = (by_class(&d, train_rows), by_class(&d, test_rows));
    let skew = dirichlet_label_skew(sizes.clients, digits::CLASSES, alpha, rng);
    let mut out = ClientData {
        train: Vec::new(),
        holdout: Vec::new(),
        test: Vec::new(),
        pretrain: Dataset {
            dim: d.dim,
            ..Dataset::default()
        },
        real,
        sensors: Vec::new(),
    };
    let fit = sizes.samples_per_client - sizes.holdout_per_client;
    for w in &skew {
        let view = Lens {
            view: ImageTransform::draw(shift, rng),
            sensor: sensor.map(|s| Sensor::draw(s, rng)),
        };
        out.sensors.extend(view.sensor);
        out.train.push(draw(&d, &train_pool, w, fit, &view, rng));
        out.holdout.push(draw(
            &d,
            &train_pool,
            w,
            sizes.holdout_per_client,
            &view,
            rng,
        ));
        out.test
            .push(draw(&d, &test_pool, w, sizes.test_per_client, &view, rng));
    }
    if sizes.pretrain > 0 {
        let uniform = [1.0; digits::CLASSES];
        let plain = Lens {
            view: ImageTransform::identity(),
            sensor: None,
        };
        out.pretrain = draw(&d, &train_pool, &uniform, sizes.pretrain, &plain, rng);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_get_their_sizes_skewed_labels_and_pixels_in_range() {
        let mut rng = sim::rng::stream(5, "data");
        let shift = FeatureShift {
            rotate_deg: 15.0,
            translate_px: 1.0,
            thicken: 0.5,
            gamma_log: 0.4,
            noise: 0.05,
        };
        let sizes = Sizes {
            clients: 4,
            samples_per_client: 40,
            holdout_per_client: 10,
            test_per_client: 20,
            pretrain: 30,
        };
        let c = build(&sizes, 0.1, &shift, None, &mut rng).unwrap();
        assert_eq!(c.train.len(), 4);
        for k in 0..4 {
            assert_eq!(c.train[k].len(), 30);
            assert_eq!(c.holdout[k].len(), 10);
            assert_eq!(c.test[k].len(), 20);
            assert_eq!(c.train[k].dim, 64);
            assert!(c.train[k].x.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        assert_eq!(c.pretrain.len(), 30);
        // α = 0.1: a client's most frequent class dominates its data.
        let top = (0..4)
            .map(|k| {
                let mut n = [0usize; 10];
                c.train[k].y.iter().for_each(|&y| n[y as usize] += 1);
                *n.iter().max().unwrap() as f64 / 30.0
            })
            .sum::<f64>()
            / 4.0;
        assert!(top > 0.5, "mean top-class share {top}");
    }

    /// With every sensor inverted at unit gain, clients read `1 − x` of exactly the images an
    /// identity sensor shows them (both draw the same random numbers), the pretraining images stay
    /// plain, and no sensor is drawn without `sensor:`. Pixel for pixel, so it holds on the real
    /// digits and on the synthetic stand-in alike.
    #[test]
    fn inverted_sensors_flip_the_clients_images_only() {
        let sizes = Sizes {
            clients: 3,
            samples_per_client: 20,
            holdout_per_client: 5,
            test_per_client: 10,
            pretrain: 20,
        };
        let none = FeatureShift::default();
        let sensor = |invert| SensorShift {
            gain_log: 0.0,
            offset: 0.0,
            invert,
        };
        let with = |s: Option<&SensorShift>| {
            build(&sizes, 1.0, &none, s, &mut sim::rng::stream(5, "d")).unwrap()
        };
        let flipped = with(Some(&sensor(1.0)));
        let identity = with(Some(&sensor(0.0)));
        assert_eq!(flipped.sensors.len(), 3);
        assert!(
            flipped
                .sensors
                .iter()
                .all(|s| s.gain == -1.0 && s.offset == 1.0)
        );
        assert!(
            identity
                .sensors
                .iter()
                .all(|s| s.gain == 1.0 && s.offset == 0.0)
        );
        for (f, i) in flipped.test.iter().zip(&identity.test) {
            assert_eq!(f.y, i.y);
            assert!(
                f.x.iter()
                    .zip(&i.x)
                    .all(|(a, b)| (a - (1.0 - b)).abs() < 1e-6)
            );
        }
        assert_eq!(
            flipped.pretrain.x, identity.pretrain.x,
            "plain pretraining images"
        );
        assert!(with(None).sensors.is_empty());
    }
}
