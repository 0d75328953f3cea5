//! Error bounds of every operator circuit against f64, over each op's input range, and
//! determinism.

use super::*;
use rand::{Rng as _, SeedableRng};

/// Inputs (codes) of `op` at `prec`: every code of the op's range for elementwise ops, 50 random
/// rows of 64 for row ops.
fn inputs(op: Op, prec: Prec) -> Vec<Vec<i32>> {
    let fin = prec.act_fmt();
    let (lo, hi) = (fin.min_code() as i32, fin.max_code() as i32);
    match op {
        Op::Exp => vec![(lo..=0).collect()],
        Op::Reciprocal | Op::Rsqrt => vec![(1..=hi).collect()],
        _ if op.is_row() => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(5);
            (0..50)
                .map(|_| (0..64).map(|_| rng.random_range(lo..=hi)).collect())
                .collect()
        }
        _ => vec![(lo..=hi).collect()],
    }
}

/// Largest error of `design`'s `op` over its inputs, with a wide output format (so that the
/// approximation, not the output rounding, is measured). Reciprocal and 1/√x: relative error.
pub(crate) fn max_error(design: Design, op: Op, prec: Prec) -> f64 {
    let fin = prec.act_fmt();
    let fout = Fmt::new(31, prec.frac());
    let mut worst = 0.0f64;
    for row in inputs(op, prec) {
        let y = apply(design, op, prec, &row, fin, fout);
        let xr: Vec<f64> = row.iter().map(|&q| fin.dequantize(q)).collect();
        let want = reference(op, &xr);
        for (&q, w) in y.iter().zip(want) {
            let got = fout.dequantize(q);
            let e = if matches!(op, Op::Reciprocal | Op::Rsqrt) {
                ((got - w) / w).abs()
            } else {
                (got - w).abs()
            };
            worst = worst.max(e);
        }
    }
    worst
}

/// Error bounds (absolute; relative for reciprocal and 1/√x) per design and op at INT8. They
/// are the measured worst case rounded up, and are the figures quoted in the README.
fn bound_int8(design: Design, op: Op) -> f64 {
    use Design::*;
    use Op::*;
    match (design, op) {
        (Lut, Exp | Sigmoid | Tanh | Gelu | Silu) => 1e-5,
        (Lut, Reciprocal) => 3e-3,
        (Lut, Rsqrt) => 6e-3,
        (Lut, Softmax) => 4e-3,
        (Lut, LayerNorm | RmsNorm) => 1.2e-2,
        (Pwl, Exp | Tanh | Gelu) => 1.2e-1,
        (Pwl, Sigmoid) => 2e-2,
        (Pwl, Silu) => 8e-2,
        (Pwl, Reciprocal | Rsqrt) => 8e-3,
        (Pwl, Softmax) => 4e-2,
        (Pwl, LayerNorm | RmsNorm) => 1.5e-2,
        (Poly, Exp) => 4e-3,
        (Poly, Sigmoid | Silu) => 1.2e-3,
        (Poly, Tanh) => 2e-3,
        (Poly, Gelu) => 3e-2,
        (Poly, Reciprocal | Rsqrt) => 2e-4,
        (Poly, Softmax) => 1e-3,
        (Poly, LayerNorm | RmsNorm) => 3e-4,
        (Quark, Exp) => 1e-2,
        (Quark, Sigmoid) => 1.2e-2,
        (Quark, Tanh | Silu) => 2.5e-2,
        (Quark, Gelu) => 3e-2,
        (Quark, Reciprocal | Rsqrt) => 2e-2,
        (Quark, Softmax) => 5e-3,
        (Quark, LayerNorm | RmsNorm) => 3.5e-2,
    }
}

/// Prints the error table quoted in the README (`cargo test -p fpga print_errors -- --nocapture`).
#[test]
fn print_errors() {
    for prec in [Prec::INT8, Prec::INT4] {
        for op in Op::ALL {
            let row: Vec<String> = Design::ALL
                .iter()
                .map(|&d| format!("{}={:.2e}", d.name(), max_error(d, op, prec)))
                .collect();
            eprintln!("INT{} {op:?}: {}", prec.bits, row.join(" "));
        }
    }
}

#[test]
fn every_int8_operator_is_within_its_error_bound() {
    for d in Design::ALL {
        for op in Op::ALL {
            let e = max_error(d, op, Prec::INT8);
            let b = bound_int8(d, op);
            assert!(e <= b, "{} {op:?}: error {e:.3e} > bound {b:.1e}", d.name());
        }
    }
}

#[test]
fn int4_operators_are_within_a_coarse_bound() {
    // At INT4 the inputs themselves are 1-unit steps over ±8; the internal datapath has 8
    // fractional bits. Bound: 0.6 absolute (relative for reciprocal/√); PWL's 4 segments over ±8
    // are the worst (tanh 0.51).
    for d in Design::ALL {
        for op in Op::ALL {
            let e = max_error(d, op, Prec::INT4);
            assert!(e <= 0.6, "{} {op:?} INT4: error {e:.3e}", d.name());
        }
    }
}

#[test]
fn outputs_in_activation_codes_are_within_bound_plus_half_a_step() {
    let prec = Prec::INT8;
    let fin = prec.act_fmt();
    let fout = Fmt::new(8, 7);
    for d in Design::ALL {
        let x: Vec<i32> = (fin.min_code() as i32..=0).collect();
        let y = apply(d, Op::Exp, prec, &x, fin, fout);
        for (&q, &p) in x.iter().zip(&y) {
            let want = fin.dequantize(q).exp().min(fout.dequantize(127));
            let e = (fout.dequantize(p) - want).abs();
            assert!(e <= bound_int8(d, Op::Exp) + fout.step() / 2.0 + 1e-12);
        }
    }
}

#[test]
fn operators_are_deterministic() {
    let prec = Prec::INT8;
    let fin = prec.act_fmt();
    let x: Vec<i32> = (-128..128).step_by(3).collect();
    for d in Design::ALL {
        for op in [Op::Softmax, Op::Gelu, Op::LayerNorm] {
            let a = apply(d, op, prec, &x, fin, fin);
            let b = apply(d, op, prec, &x, fin, fin);
            assert_eq!(a, b);
        }
    }
}

#[test]
fn quark_primitives_follow_the_paper_polynomials() {
    let f = 16;
    let one = 1i64 << f;
    // 2^0 = 1 and 2^-1 ≈ 0.1713 − 0.6647 + 1 = 0.5066 (polynomial at r = −1 ⇒ shift instead).
    assert_eq!(quark::exp2(0, f), one);
    assert_eq!(quark::exp2(-one, f), one / 2);
    assert!((quark::exp2(-one / 2, f) as f64 / one as f64 - 0.7105).abs() < 1e-3);
    // log2 of powers of two is exact (leading-one detector).
    for k in -8..8 {
        assert_eq!(quark::log2(super::shr_round(one, -k), f), i64::from(k) << f);
    }
}
