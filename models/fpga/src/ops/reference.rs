//! f64 references of the nonlinear operators (what every circuit approximates).

use super::{NORM_EPS, Op};

/// The error function, Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7).
pub fn erf(x: f64) -> f64 {
    let s = x.signum();
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    s * (1.0 - poly * (-a * a).exp())
}

/// The exact operator on real inputs (row operators over all of `x`).
pub fn reference(op: Op, x: &[f64]) -> Vec<f64> {
    let n = x.len().max(1) as f64;
    match op {
        Op::Softmax => {
            let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        }
        Op::LayerNorm | Op::RmsNorm => {
            let mu = if op == Op::LayerNorm {
                x.iter().sum::<f64>() / n
            } else {
                0.0
            };
            let var = x.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / n;
            let r = 1.0 / (var + NORM_EPS).sqrt();
            x.iter().map(|v| (v - mu) * r).collect()
        }
        _ => x.iter().map(|&v| scalar(op, v)).collect(),
    }
}

fn scalar(op: Op, v: f64) -> f64 {
    let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
    match op {
        Op::Exp => v.exp(),
        Op::Reciprocal => 1.0 / v,
        Op::Rsqrt => 1.0 / v.sqrt(),
        Op::Sigmoid => sig(v),
        Op::Tanh => v.tanh(),
        Op::Gelu => 0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2)),
        Op::Silu => v * sig(v),
        Op::Softmax | Op::LayerNorm | Op::RmsNorm => unreachable!("row operators handled above"),
    }
}
