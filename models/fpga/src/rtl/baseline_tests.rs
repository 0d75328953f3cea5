//! Co-simulation of the separate-unit designs (lut, pwl, poly, separate QUARK lanes) against the
//! Rust operators (Icarus Verilog; a note and a skip when it is absent).

use super::super::fixed::{Fmt, shr_round};
use super::super::ops::baseline::{self, act_table, exp_table, int_recip, isqrt, recip_table};
use super::super::ops::{Design, Op, Prec};
use super::baseline::{
    approx_instance, div_instance, norm_mul_instance, quark_sep_lane_instance, recip_instance,
    root_width, row_width, softmax_mul_instance, sqrt_instance,
};
use super::quark::{Mode, lane};
use super::tests::{Rng, cosim};

/// Every code at INT8 and INT4, a random sample at INT12.
fn codes(prec: Prec, rng: &mut Rng) -> Vec<i64> {
    let (lo, hi) = (
        Fmt::new(prec.bits, 0).min_code(),
        Fmt::new(prec.bits, 0).max_code(),
    );
    if prec.bits <= 8 {
        (lo..=hi).collect()
    } else {
        (0..4000).map(|_| rng.range(lo, hi)).collect()
    }
}

/// Row sums / variances: every small value, then a random sample over the row width.
fn row_values(prec: Prec, rng: &mut Rng) -> Vec<Vec<i64>> {
    let yw = row_width(prec);
    let mut v: Vec<Vec<i64>> = (0..4096).map(|y| vec![y]).collect();
    v.extend((0..6000).map(|_| vec![rng.range(1, (1i64 << yw) - 1)]));
    v
}

#[test]
fn lut_and_pwl_units_match_rust() {
    for prec in [Prec::INT8, Prec::INT4, Prec { bits: 12 }] {
        let mut rng = Rng(u64::from(prec.bits) + 200);
        let fin = prec.act_fmt();
        for design in [Design::Lut, Design::Pwl] {
            // GELU lane over every input code
            let xs: Vec<Vec<i64>> = codes(prec, &mut rng).into_iter().map(|q| vec![q]).collect();
            let inst =
                approx_instance(&act_table(design, Op::Gelu, prec, fin), prec, prec.bits + 2);
            cosim(&inst, &xs, |v| {
                baseline::elementwise(design, Op::Gelu, prec, v[0] as i32, fin)
            });
            // softmax exp lane over every code difference q − max
            let ds: Vec<Vec<i64>> = (-(1i64 << prec.bits) + 1..=0).map(|d| vec![d]).collect();
            let t = exp_table(design, prec, fin);
            cosim(&approx_instance(&t, prec, prec.bits + 2), &ds, |v| {
                t.eval(v[0])
            });
            // row 1/sum and 1/√var
            let ys = row_values(prec, &mut rng);
            let inst = recip_instance(&recip_table(design, prec, false), prec, false);
            cosim(&inst, &ys, |v| baseline::reciprocal(design, prec, v[0]));
            let inst = recip_instance(&recip_table(design, prec, true), prec, true);
            cosim(&inst, &ys, |v| baseline::rsqrt(design, prec, v[0]));
        }
    }
}

#[test]
fn ibert_division_and_square_root_match_rust() {
    for prec in [Prec::INT8, Prec::INT4, Prec { bits: 12 }] {
        let f = prec.frac();
        let mut rng = Rng(u64::from(prec.bits) + 300);
        let ys = row_values(prec, &mut rng);
        cosim(&div_instance(prec, row_width(prec)), &ys, |v| {
            int_recip(v[0], f)
        });
        cosim(&sqrt_instance(prec, row_width(prec)), &ys, |v| {
            isqrt(i128::from(v[0].max(1)) << f) as i64
        });
        // the root's reciprocal completes I-BERT's 1/√v
        let rw = root_width(prec, row_width(prec));
        let roots: Vec<Vec<i64>> = ys
            .iter()
            .map(|v| vec![isqrt(i128::from(v[0].max(1)) << f) as i64])
            .collect();
        cosim(&div_instance(prec, rw), &roots, |v| int_recip(v[0], f));
        assert!(ys.iter().all(|v| {
            let root = isqrt(i128::from(v[0].max(1)) << f) as i64;
            int_recip(root, f) == baseline::rsqrt(Design::Poly, prec, v[0])
        }));
    }
}

#[test]
fn output_multipliers_match_rust() {
    for prec in [Prec::INT8, Prec::INT4] {
        let f = prec.frac();
        let mut rng = Rng(u64::from(prec.bits) + 400);
        let sm = softmax_mul_instance(prec);
        let (aw, bw) = (sm.inputs[0].1, sm.inputs[1].1);
        let v: Vec<Vec<i64>> = (0..4000)
            .map(|_| vec![rng.range(0, 1 << f), rng.range(0, (1i64 << (bw - 2)) - 1)])
            .collect();
        cosim(&sm, &v, |v| shr_round(v[0] * v[1], f));
        let nm = norm_mul_instance(prec);
        let (aw2, bw2) = (nm.inputs[0].1, nm.inputs[1].1);
        let v: Vec<Vec<i64>> = (0..4000)
            .map(|_| {
                vec![
                    rng.range(-(1i64 << (aw2 - 1)), (1i64 << (aw2 - 1)) - 1),
                    rng.range(0, (1i64 << (bw2 - 2)) - 1),
                ]
            })
            .collect();
        cosim(&nm, &v, |v| shr_round(v[0] * v[1], f));
        assert!(aw < bw);
    }
}

#[test]
fn separate_quark_lanes_match_rust() {
    let prec = Prec::INT8;
    let f = prec.frac();
    let mut rng = Rng(500);
    let w = |q: i64| shr_round(q, prec.bits as i32 - 4 - f);
    let sm: Vec<Vec<i64>> = (-128..=127)
        .flat_map(|q| {
            let m = rng.range(q, 127);
            let ls = super::super::ops::quark::log2(rng.range(1 << f, 1i64 << (f + 12)), f);
            [vec![0, w(q), w(m), ls], vec![1, w(q), w(m), ls]]
        })
        .collect();
    cosim(&quark_sep_lane_instance(prec, true), &sm, |v| {
        let mode = if v[0] == 0 { Mode::Exp } else { Mode::SmOut };
        lane(mode, v[1], v[2], v[3], f)
    });
    let xs: Vec<Vec<i64>> = (-128..=127).map(|q| vec![shr_round(q, 4 - f)]).collect();
    cosim(&quark_sep_lane_instance(prec, false), &xs, |v| {
        lane(Mode::Gelu, v[0], 0, 0, f)
    });
}
