//! Bit-accurate fixed-point nonlinear operators: per-op baseline circuits in three styles (lookup
//! table, piecewise linear, integer polynomial) and the QUARK shared circuit configured per op.
//!
//! Every operator is a plain function over integer codes: inputs are codes in a [`Fmt`], the
//! datapath works on integers with [`Prec::frac`] fractional bits, outputs are codes in the caller's
//! output format. [`reference`] gives the f64 function each one approximates.

pub(crate) mod baseline;
pub(crate) mod quark;
mod reference;
#[cfg(test)]
mod tests;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::fixed::Fmt;
use super::fixed::shr_round;
pub use reference::{erf, reference};

/// Which circuit computes the nonlinear operators.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// Separate per-op units built from lookup tables (one ROM per function).
    Lut,
    /// Separate per-op units built from piecewise-linear segments (slope/intercept ROM + multiply).
    Pwl,
    /// Separate per-op units built from integer polynomials and integer division/Newton square
    /// root (I-BERT style, Kim et al., ICML 2021).
    Poly,
    /// QUARK's shared circuit: exp2 by shifts + quadratic, log2 by leading-one detector +
    /// quadratic, every op configured onto that one datapath.
    Quark,
}

impl Design {
    /// All designs, in report order.
    pub const ALL: [Design; 4] = [Design::Lut, Design::Pwl, Design::Poly, Design::Quark];
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Design::Lut => "lut",
            Design::Pwl => "pwl",
            Design::Poly => "poly",
            Design::Quark => "quark",
        }
    }
}

/// A nonlinear operator of a Transformer (or a primitive underneath one).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// e^x (the softmax numerator; inputs ≤ 0 after max subtraction).
    Exp,
    /// 1/x for x > 0.
    Reciprocal,
    /// 1/√x for x > 0.
    Rsqrt,
    /// 1/(1+e^−x).
    Sigmoid,
    /// tanh x.
    Tanh,
    /// Row softmax.
    Softmax,
    /// GELU x·Φ(x).
    Gelu,
    /// SiLU x·σ(x).
    Silu,
    /// Row LayerNorm without affine (γ = 1, β = 0), ε = 1e-5.
    LayerNorm,
    /// Row RMSNorm without gain, ε = 1e-5.
    RmsNorm,
}

impl Op {
    /// Every operator.
    pub const ALL: [Op; 10] = [
        Op::Exp,
        Op::Reciprocal,
        Op::Rsqrt,
        Op::Sigmoid,
        Op::Tanh,
        Op::Softmax,
        Op::Gelu,
        Op::Silu,
        Op::LayerNorm,
        Op::RmsNorm,
    ];
    /// True for operators over a whole row (reductions), false for elementwise ones.
    pub fn is_row(self) -> bool {
        matches!(self, Op::Softmax | Op::LayerNorm | Op::RmsNorm)
    }
}

/// The normalisation ε of LayerNorm and RMSNorm.
pub const NORM_EPS: f64 = 1e-5;

/// Operator precision: the width of input/output activation codes (INT8 or INT4) and, derived
/// from it, the internal datapath's fractional bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Prec {
    /// Activation code width in bits (4 or 8).
    pub bits: u32,
}

impl Prec {
    /// INT8 activations.
    pub const INT8: Prec = Prec { bits: 8 };
    /// INT4 activations.
    pub const INT4: Prec = Prec { bits: 4 };
    /// Internal fractional bits of the datapath: 2 × the code width (16 at INT8, 8 at INT4).
    pub fn frac(self) -> i32 {
        2 * self.bits as i32
    }
    /// Address bits of a baseline lookup table (one entry per input code).
    pub fn lut_addr_bits(self) -> u32 {
        self.bits
    }
    /// log2 of the number of segments of a baseline piecewise-linear unit (16 at INT8, 4 at INT4).
    pub fn pwl_seg_bits(self) -> u32 {
        self.bits / 2
    }
    /// The activation format commonly used at this precision: range ±8 (INT8: 1/16 steps).
    pub fn act_fmt(self) -> Fmt {
        Fmt::new(self.bits, self.bits as i32 - 4)
    }
}

/// Applies `op` with circuit `design` at precision `prec` to codes `x` (format `fin`), returning
/// codes in `fout`. Row operators treat all of `x` as one row.
pub fn apply(design: Design, op: Op, prec: Prec, x: &[i32], fin: Fmt, fout: Fmt) -> Vec<i32> {
    let f = prec.frac();
    match op {
        Op::Softmax => {
            let y = match design {
                Design::Quark => quark::softmax(x, fin, f),
                _ => baseline::softmax(design, prec, x, fin),
            };
            y.into_iter().map(|v| fout.requantize(v, f)).collect()
        }
        Op::LayerNorm | Op::RmsNorm => {
            let (c, var) = norm_stats(x, fin, f, op == Op::LayerNorm);
            let r = match design {
                Design::Quark => quark::rsqrt(var, f),
                _ => baseline::rsqrt(design, prec, var),
            };
            c.iter()
                .map(|&ci| fout.requantize(shr_round(ci * r, f), f))
                .collect()
        }
        _ => x
            .iter()
            .map(|&q| {
                let v = match design {
                    Design::Quark => quark::elementwise(op, widen(q, fin, f), f),
                    _ => baseline::elementwise(design, op, prec, q, fin),
                };
                fout.requantize(v, f)
            })
            .collect(),
    }
}

/// A code at `fin` as an integer at `f` fractional bits.
fn widen(q: i32, fin: Fmt, f: i32) -> i64 {
    shr_round(i64::from(q), fin.frac - f)
}

/// The shared normalisation datapath (identical in every design): centred (LayerNorm) or raw
/// (RMSNorm) values at `f` fractional bits, and the variance (or mean square) + ε, at `f`.
/// The 1/n factors are constant multiplies with 24-bit constants.
fn norm_stats(x: &[i32], fin: Fmt, f: i32, centre: bool) -> (Vec<i64>, i64) {
    const K: i32 = 24;
    let n = x.len().max(1) as i64;
    let inv_n = ((1i64 << K) + n / 2) / n;
    let xf: Vec<i64> = x.iter().map(|&q| widen(q, fin, f)).collect();
    let mu = if centre {
        shr_round(xf.iter().sum::<i64>() * inv_n, K)
    } else {
        0
    };
    let c: Vec<i64> = xf.iter().map(|&v| v - mu).collect();
    let sq: i128 = c.iter().map(|&v| i128::from(v) * i128::from(v)).sum();
    let var = ((sq * i128::from(inv_n)) >> (K + f)) as i64;
    let eps = super::fixed::konst(NORM_EPS, f).max(1);
    (c, var + eps)
}
