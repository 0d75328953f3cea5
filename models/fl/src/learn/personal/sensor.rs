//! Per-client sensor response: each client reads the 8×8 digits through its own fixed affine
//! intensity map `r = a·x + b` — a gain, an offset and, for some clients, inverted polarity (bright
//! background, dark strokes). This is heterogeneity that sits at the input: the first convolution
//! undoes it (weights `W/a`, bias shifted by `−b·ΣW/a`) everywhere except where the kernel reads the
//! zero padding, so a model whose stem is the client's own and whose other layers are shared serves
//! every client. It is the simplest case of the "feature shift" of FedBN (Li et al., ICLR 2021:
//! clients whose images come from different scanners or sensors, which FedBN answers with local
//! normalisation, a per-client affine map of the features) and the analogue of pFedNavi's setting
//! (arXiv 2602.14401), where environment-specific appearance enters through the input projection of
//! a shared pretrained encoder. Labels are never changed.

use rand::Rng as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

/// How far the clients' sensors spread (the scenario's `sensor:` block).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SensorShift {
    /// Spread of the gain: a client's gain is `exp(U(−s, s))`.
    pub gain_log: f64,
    /// Largest offset: a client adds `U(−o, o)` to every pixel.
    pub offset: f64,
    /// Probability that a client's sensor has inverted polarity (`r = 1 − (gain·x + offset)`).
    pub invert: f64,
}

impl Validate for SensorShift {
    fn validate(&self, c: &mut Checks) {
        c.within("gain_log", self.gain_log, 0.0, 3.0);
        c.within("offset", self.offset, 0.0, 1.0);
        c.fraction("invert", self.invert);
    }
}

/// One client's sensor: `r = gain·x + offset` (a negative gain for inverted polarity).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sensor {
    /// Gain `a` (negative: inverted polarity).
    pub gain: f64,
    /// Offset `b`.
    pub offset: f64,
}

impl Sensor {
    /// A client's sensor drawn within `s`.
    pub fn draw(s: &SensorShift, rng: &mut Rng) -> Self {
        let mut sym = |r: f64| {
            if r > 0.0 {
                rng.random_range(-r..=r)
            } else {
                0.0
            }
        };
        let gain = sym(s.gain_log).exp();
        let offset = sym(s.offset);
        if rng.random::<f64>() < s.invert {
            Self {
                gain: -gain,
                offset: 1.0 - offset,
            }
        } else {
            Self { gain, offset }
        }
    }

    /// The reading of one image (pixels in [0, 1]), not clipped: the map stays affine.
    pub fn apply(&self, img: &[f32]) -> Vec<f32> {
        img.iter()
            .map(|&v| (self.offset + self.gain * f64::from(v)) as f32)
            .collect()
    }

    /// Whether the sensor inverts polarity.
    pub fn inverted(&self) -> bool {
        self.gain < 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensor_is_the_affine_map_it_states() {
        let s = Sensor {
            gain: -0.5,
            offset: 0.9,
        };
        assert_eq!(s.apply(&[0.0, 1.0, 0.4]), vec![0.9, 0.4, 0.7]);
        assert!(s.inverted());
    }

    #[test]
    fn drawn_sensors_stay_within_their_limits_and_invert_at_the_stated_rate() {
        let mut rng = sim::rng::stream(3, "sensor");
        let lim = SensorShift {
            gain_log: 0.5,
            offset: 0.2,
            invert: 0.3,
        };
        let drawn: Vec<Sensor> = (0..2000).map(|_| Sensor::draw(&lim, &mut rng)).collect();
        for s in &drawn {
            assert!(s.gain.abs().ln().abs() <= 0.5 + 1e-12, "{s:?}");
            let b = if s.inverted() {
                1.0 - s.offset
            } else {
                s.offset
            };
            assert!(b.abs() <= 0.2 + 1e-12, "{s:?}");
        }
        let share = drawn.iter().filter(|s| s.inverted()).count() as f64 / 2000.0;
        assert!((share - 0.3).abs() < 0.04, "{share}");
        let none = SensorShift {
            gain_log: 0.0,
            offset: 0.0,
            invert: 0.0,
        };
        assert_eq!(
            Sensor::draw(&none, &mut rng),
            Sensor {
                gain: 1.0,
                offset: 0.0
            }
        );
    }
}
