//! The integer-polynomial (I-BERT, Kim et al., ICML 2021) design's per-lane units in RTL
//! (`ibert_gelu.v`, `ibert_exp.v`), bit-exact with `ops::baseline::{i_gelu, i_exp}`.

use super::super::fixed::konst;
use super::super::ops::Prec;
use super::Instance;
use super::quark::value_width;

/// The exact multiply-by-reciprocal for floor(n / d) over 0 ≤ n < 2^`nbits`: (M, S) with
/// M = ⌈2^S / d⌉, S = nbits + ⌈log2 d⌉, so that M·d − 2^S < d ≤ 2^(S − nbits) (Granlund and
/// Montgomery, PLDI 1994, Theorem 4.2).
pub fn reciprocal_multiplier(d: i64, nbits: u32) -> (i64, u32) {
    let s = nbits + (64 - (d - 1).leading_zeros());
    let m = ((1i128 << s) + i128::from(d) - 1) / i128::from(d);
    (m as i64, s)
}

/// `ibert_gelu.v` at precision `prec`.
pub fn gelu_instance(prec: Prec) -> Instance {
    let f = prec.frac();
    let xw = value_width(prec);
    Instance {
        module: "ibert_gelu",
        params: vec![
            ("F", i64::from(f)),
            ("XW", i64::from(xw)),
            ("K", konst(std::f64::consts::FRAC_1_SQRT_2, f)),
            ("C", konst(1.769, f)),
            ("P", -konst(-0.2888, f)),
        ],
        inputs: vec![("x", xw)],
        output: ("y", xw, true),
        latency: 4,
        roms: Vec::new(),
    }
}

/// `ibert_exp.v` at precision `prec` (inputs x ≤ 0).
pub fn exp_instance(prec: Prec) -> Instance {
    let f = prec.frac();
    let xw = value_width(prec);
    let ln2 = konst(std::f64::consts::LN_2, f);
    let (m, s) = reciprocal_multiplier(ln2, xw);
    Instance {
        module: "ibert_exp",
        params: vec![
            ("F", i64::from(f)),
            ("XW", i64::from(xw)),
            ("LN2", ln2),
            ("MW", i64::from(64 - m.leading_zeros())),
            ("M", m),
            ("S", i64::from(s)),
            ("D", konst(1.353, f)),
            ("Q", konst(0.3585, f)),
            ("E", konst(0.344, f)),
        ],
        inputs: vec![("x", xw)],
        output: ("y", f as u32 + 2, false),
        latency: 4,
        roms: Vec::new(),
    }
}
