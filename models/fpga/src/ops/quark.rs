//! The QUARK shared nonlinear circuit (arXiv 2511.06767): two hardware primitives and the way each
//! operator is configured onto them.
//!
//! * exp2 unit: t = −k + r with r ∈ (−1, 0]; 2^r ≈ 0.1713r² + 0.6647r + 1 (one squarer, two
//!   constant multiplies), then a barrel shift by k. e^x is exp2(x·log2e).
//! * log2 unit: leading-one detector gives the exponent, the mantissa 1+t is normalised by a shift
//!   and log2(1+t) ≈ b·t + (1−b)·t² (b = 1.3465, endpoints exact).
//!
//! Softmax without division: y_i = exp2(t_i − log2 Σ exp2(t_j)), t = (x − max)·log2e (the paper's
//! exp(x_i − x_max − ln Σ exp) evaluated in base 2, which saves the ln2 multiply). Sigmoid is a
//! two-element softmax over (z, 0); GELU ≈ x·σ(1.702x); SiLU = x·σ(x); tanh = 2σ(2z) − 1;
//! division a/b = exp2(log2 a − log2 b); LN mode: 1/√v = exp2(−½·log2 v).

use super::super::fixed::{Fmt, konst, lod, shr_round};
use super::Op;

/// Quadratic coefficient of the exp2 polynomial (QUARK).
pub const EXP2_A: f64 = 0.1713;
/// Linear coefficient of the exp2 polynomial (QUARK).
pub const EXP2_B: f64 = 0.6647;
/// Linear coefficient b of log2(1+t) ≈ b·t + (1−b)·t² (ours; the paper gives only "quadratic").
pub const LOG2_B: f64 = 1.3465;

/// 2^t for any t, all at `f` fractional bits (results beyond 2^62 saturate).
pub fn exp2(t: i64, f: i32) -> i64 {
    let one = 1i64 << f;
    let k = (-t) >> f; // floor(−t), so r = t + k ∈ (−1, 0]
    let r = t + k * one;
    let r2 = shr_round(r * r, f);
    let p = shr_round(konst(EXP2_A, f) * r2, f) + shr_round(konst(EXP2_B, f) * r, f) + one;
    shr_round(p, k.clamp(-62, 63) as i32)
}

/// log2 y of a positive y, both at `f` fractional bits; y ≤ 0 gives the most negative log the
/// datapath holds (−64).
pub fn log2(y: i64, f: i32) -> i64 {
    let Some(e) = lod(y) else {
        return -64 << f;
    };
    let one = 1i64 << f;
    let m = shr_round(y, e - f).min(2 * one - 1); // mantissa in [1, 2) at f bits
    let t = m - one;
    let t2 = shr_round(t * t, f);
    let l = shr_round(konst(LOG2_B, f) * t, f) + shr_round(konst(1.0 - LOG2_B, f) * t2, f);
    (i64::from(e - f) << f) + l
}

/// e^x at `f` bits: exp2(x·log2e).
pub fn exp(x: i64, f: i32) -> i64 {
    exp2(shr_round(x * konst(std::f64::consts::LOG2_E, f), f), f)
}

/// σ(z) at `f` bits as a two-element division-free softmax over (z, 0).
pub fn sigmoid(z: i64, f: i32) -> i64 {
    let m = z.max(0);
    let l2e = konst(std::f64::consts::LOG2_E, f);
    let t1 = shr_round((z - m) * l2e, f);
    let t0 = shr_round(-m * l2e, f);
    let s = exp2(t1, f) + exp2(t0, f);
    exp2(t1 - log2(s, f), f)
}

/// a/b for b > 0 as exp2(log2|a| − log2 b), sign restored.
pub fn divide(a: i64, b: i64, f: i32) -> i64 {
    if a == 0 {
        return 0;
    }
    let q = exp2(log2(a.abs(), f) - log2(b, f), f);
    if a < 0 { -q } else { q }
}

/// LN mode: 1/√v = exp2(−½·log2 v), at `f` bits.
pub fn rsqrt(v: i64, f: i32) -> i64 {
    exp2(-(log2(v, f) >> 1), f)
}

/// An elementwise operator on one value `x` at `f` bits.
pub fn elementwise(op: Op, x: i64, f: i32) -> i64 {
    let one = 1i64 << f;
    match op {
        Op::Exp => exp(x, f),
        Op::Reciprocal => divide(one, x, f),
        Op::Rsqrt => rsqrt(x, f),
        Op::Sigmoid => sigmoid(x, f),
        Op::Tanh => 2 * sigmoid(2 * x, f) - one,
        Op::Gelu => shr_round(x * sigmoid(shr_round(x * konst(1.702, f), f), f), f),
        Op::Silu => shr_round(x * sigmoid(x, f), f),
        // Row operators never reach here (ops::apply routes them); pass through.
        Op::Softmax | Op::LayerNorm | Op::RmsNorm => x,
    }
}

/// Division-free softmax of one row of codes, result at `f` bits.
pub fn softmax(x: &[i32], fin: Fmt, f: i32) -> Vec<i64> {
    let m = x.iter().copied().max().unwrap_or(0);
    let l2e = konst(std::f64::consts::LOG2_E, f);
    let t: Vec<i64> = x
        .iter()
        .map(|&q| shr_round(shr_round(i64::from(q - m), fin.frac - f) * l2e, f))
        .collect();
    let s: i64 = t.iter().map(|&ti| exp2(ti, f)).sum();
    let ls = log2(s, f);
    t.iter().map(|&ti| exp2(ti - ls, f)).collect()
}
