//! Per-client feature shift on 8×8 images: each client sees the digits through its own fixed
//! transform — a rotation and translation (bilinear resampling), stroke thickening (a blend with the
//! 3×3 grey dilation), a contrast gamma and pixel noise — drawn once per client from a seeded stream.
//! The labels are never changed: one global model can serve every client, only less well than a
//! model adapted to the client's own view (the "feature shift" non-IID setting of FedBN, Li et al.,
//! ICLR 2021, on digits).

use rand::Rng as _;
use rand_distr::{Distribution, Normal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

/// Side of the square images (8×8 digits).
pub const SIDE: usize = 8;

/// How far the clients' transforms spread: each client draws every parameter uniformly within
/// these limits (the gamma log-uniformly). The default (all zero) is no transform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureShift {
    /// Largest rotation, degrees (a client rotates by U(−r, r)).
    pub rotate_deg: f64,
    /// Largest translation per axis, pixels.
    pub translate_px: f64,
    /// Largest stroke-thickening blend (0 = none, 1 = full 3×3 dilation).
    pub thicken: f64,
    /// Spread of the contrast gamma: a client's γ = exp(U(−s, s)), pixels become x^γ.
    pub gamma_log: f64,
    /// Largest standard deviation of the per-pixel Gaussian noise (a client draws U(0, n)).
    pub noise: f64,
}

impl Validate for FeatureShift {
    fn validate(&self, c: &mut Checks) {
        c.within("rotate_deg", self.rotate_deg, 0.0, 180.0);
        c.within("translate_px", self.translate_px, 0.0, 4.0);
        c.fraction("thicken", self.thicken);
        c.within("gamma_log", self.gamma_log, 0.0, 3.0);
        c.within("noise", self.noise, 0.0, 1.0);
    }
}

/// One client's fixed transform.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTransform {
    /// Rotation, radians.
    pub angle_rad: f64,
    /// Translation `(dx, dy)`, pixels.
    pub shift_px: (f64, f64),
    /// Thickening blend in [0, 1].
    pub thicken: f64,
    /// Contrast gamma.
    pub gamma: f64,
    /// Noise standard deviation.
    pub noise: f64,
}

impl ImageTransform {
    /// The identity (no shift).
    pub fn identity() -> Self {
        Self {
            angle_rad: 0.0,
            shift_px: (0.0, 0.0),
            thicken: 0.0,
            gamma: 1.0,
            noise: 0.0,
        }
    }

    /// A client's transform drawn within `s`.
    pub fn draw(s: &FeatureShift, rng: &mut Rng) -> Self {
        let mut sym = |r: f64| {
            if r > 0.0 {
                rng.random_range(-r..=r)
            } else {
                0.0
            }
        };
        let angle_rad = sym(s.rotate_deg).to_radians();
        let shift_px = (sym(s.translate_px), sym(s.translate_px));
        let gamma = sym(s.gamma_log).exp();
        Self {
            angle_rad,
            shift_px,
            thicken: rng.random_range(0.0..=s.thicken),
            gamma,
            noise: rng.random_range(0.0..=s.noise),
        }
    }

    /// The transformed copy of one 8×8 image (pixels in [0, 1]); the noise comes from `rng`.
    pub fn apply(&self, img: &[f32], rng: &mut Rng) -> Vec<f32> {
        let moved = self.resample(img);
        let thick = dilate_blend(&moved, self.thicken as f32);
        let noise = Normal::new(0.0, self.noise.max(0.0)).expect("finite noise");
        thick
            .iter()
            .map(|&v| {
                let v = f64::from(v.clamp(0.0, 1.0)).powf(self.gamma);
                let n = if self.noise > 0.0 {
                    noise.sample(rng)
                } else {
                    0.0
                };
                (v + n).clamp(0.0, 1.0) as f32
            })
            .collect()
    }

    /// Rotation about the centre and translation, by inverse mapping with bilinear interpolation
    /// (outside the image reads 0).
    fn resample(&self, img: &[f32]) -> Vec<f32> {
        let c = (SIDE as f64 - 1.0) / 2.0;
        let (sin, cos) = self.angle_rad.sin_cos();
        let mut out = vec![0.0f32; SIDE * SIDE];
        for y in 0..SIDE {
            for x in 0..SIDE {
                let (u, v) = (
                    x as f64 - c - self.shift_px.0,
                    y as f64 - c - self.shift_px.1,
                );
                let sx = cos * u + sin * v + c;
                let sy = -sin * u + cos * v + c;
                out[y * SIDE + x] = bilinear(img, sx, sy);
            }
        }
        out
    }
}

fn pixel(img: &[f32], x: i64, y: i64) -> f32 {
    let n = SIDE as i64;
    if (0..n).contains(&x) && (0..n).contains(&y) {
        img[(y * n + x) as usize]
    } else {
        0.0
    }
}

fn bilinear(img: &[f32], x: f64, y: f64) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = ((x - x0) as f32, (y - y0) as f32);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let top = pixel(img, x0, y0) * (1.0 - fx) + pixel(img, x0 + 1, y0) * fx;
    let bottom = pixel(img, x0, y0 + 1) * (1.0 - fx) + pixel(img, x0 + 1, y0 + 1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// `(1 − t)·img + t·max₃ₓ₃(img)`: thicker strokes.
fn dilate_blend(img: &[f32], t: f32) -> Vec<f32> {
    if t == 0.0 {
        return img.to_vec();
    }
    let mut out = vec![0.0f32; SIDE * SIDE];
    for y in 0..SIDE as i64 {
        for x in 0..SIDE as i64 {
            let mut m = 0.0f32;
            for dy in -1..=1 {
                for dx in -1..=1 {
                    m = m.max(pixel(img, x + dx, y + dy));
                }
            }
            let v = img[(y * SIDE as i64 + x) as usize];
            out[(y * SIDE as i64 + x) as usize] = (1.0 - t) * v + t * m;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar() -> Vec<f32> {
        // A vertical stroke in column 3.
        (0..SIDE * SIDE)
            .map(|i| if i % SIDE == 3 { 1.0 } else { 0.0 })
            .collect()
    }

    #[test]
    fn identity_keeps_the_image() {
        let mut rng = sim::rng::stream(1, "t");
        let img = bar();
        assert_eq!(ImageTransform::identity().apply(&img, &mut rng), img);
    }

    #[test]
    fn shift_rotation_thickening_and_gamma_act_as_stated() {
        let mut rng = sim::rng::stream(1, "t");
        let img = bar();
        let mut t = ImageTransform::identity();
        t.shift_px = (1.0, 0.0);
        let moved = t.apply(&img, &mut rng);
        assert!((0..SIDE).all(|y| moved[y * SIDE + 4] == 1.0 && moved[y * SIDE + 3] == 0.0));
        let mut t = ImageTransform::identity();
        t.angle_rad = std::f64::consts::FRAC_PI_2;
        let turned = t.apply(&img, &mut rng);
        // A quarter turn makes the column a row (row 3 or 4 about the centre 3.5).
        let row = (3..=4)
            .map(|r| (0..SIDE).map(|x| turned[r * SIDE + x]).sum::<f32>())
            .fold(0.0, f32::max);
        assert!(row > 6.0, "{turned:?}");
        let mut t = ImageTransform::identity();
        t.thicken = 1.0;
        let thick = t.apply(&img, &mut rng);
        assert!((0..SIDE).all(|y| (2..=4).all(|x| thick[y * SIDE + x] == 1.0)));
        let mut t = ImageTransform::identity();
        t.gamma = 2.0;
        assert_eq!(t.apply(&[0.5; 64], &mut rng)[0], 0.25);
    }

    #[test]
    fn drawn_transforms_stay_within_their_limits() {
        let mut rng = sim::rng::stream(2, "t");
        let s = FeatureShift {
            rotate_deg: 20.0,
            translate_px: 1.0,
            thicken: 0.5,
            gamma_log: 0.5,
            noise: 0.1,
        };
        for _ in 0..50 {
            let t = ImageTransform::draw(&s, &mut rng);
            assert!(t.angle_rad.abs() <= 20f64.to_radians() + 1e-12);
            assert!(t.shift_px.0.abs() <= 1.0 && t.shift_px.1.abs() <= 1.0);
            assert!((0.0..=0.5).contains(&t.thicken) && (0.0..=0.1).contains(&t.noise));
            assert!((-0.5..=0.5).contains(&t.gamma.ln()));
        }
    }
}
