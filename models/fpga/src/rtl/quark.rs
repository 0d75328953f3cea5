//! The QUARK shared circuit in RTL (`quark_exp2.v`, `quark_log2.v`, `quark_lane.v`): the lane's
//! operating modes, the Rust model of one lane (composed from [`ops::quark`](super::super::ops)
//! functions, so the RTL is checked against the operator itself) and the Verilog parameters.

use super::super::fixed::{konst, shr_round};
use super::super::ops::{Prec, quark};
use super::Instance;

/// What one QUARK lane computes in a cycle (the `mode` port of `quark_lane.v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// GELU ≈ x·σ(1.702x), σ as a two-element division-free softmax.
    Gelu = 0,
    /// Softmax pass 2: exp2((x − a)·log2e) with a = the row maximum.
    Exp = 1,
    /// Softmax pass 3: exp2((x − a)·log2e − b) with b = log2 of the row sum.
    SmOut = 2,
    /// LN mode: 1/√v = exp2(−(b >> 1)) with b = log2 v.
    Rsq = 3,
    /// LayerNorm output: x·a (centred value times 1/√v).
    Norm = 4,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 5] = [Mode::Gelu, Mode::Exp, Mode::SmOut, Mode::Rsq, Mode::Norm];
}

/// One lane of the shared circuit on datapath values at `f` fractional bits: what `quark_lane.v`
/// computes, built from the operator functions of [`ops::quark`](super::super::ops).
pub fn lane(mode: Mode, x: i64, a: i64, b: i64, f: i32) -> i64 {
    let t = || shr_round((x - a) * konst(std::f64::consts::LOG2_E, f), f);
    match mode {
        Mode::Gelu => quark::elementwise(super::super::ops::Op::Gelu, x, f),
        Mode::Exp => quark::exp2(t(), f),
        Mode::SmOut => quark::exp2(t() - b, f),
        Mode::Rsq => quark::exp2(-(b >> 1), f),
        Mode::Norm => shr_round(x * a, f),
    }
}

/// Width of a datapath value: sign + 6 integer bits + `f` fraction (as the cost model's `width`).
pub fn value_width(prec: Prec) -> u32 {
    prec.frac() as u32 + 7
}

/// Width of a log2 result at `f` fractional bits.
pub fn log_width(prec: Prec) -> u32 {
    prec.frac() as u32 + 8
}

/// Width of the lane's `a` port (a row maximum or 1/√v up to 2^(F/2)).
pub fn a_width(prec: Prec) -> u32 {
    let f = prec.frac() as u32;
    f + f / 2 + 2
}

fn poly_params(f: i32) -> Vec<(&'static str, i64)> {
    vec![
        ("F", i64::from(f)),
        ("A", konst(quark::EXP2_A, f)),
        ("B", konst(quark::EXP2_B, f)),
    ]
}

fn log_params(f: i32) -> Vec<(&'static str, i64)> {
    vec![
        ("C1", konst(quark::LOG2_B, f)),
        ("C2", -konst(1.0 - quark::LOG2_B, f)),
    ]
}

/// `quark_lane.v` at precision `prec`.
pub fn lane_instance(prec: Prec) -> Instance {
    let f = prec.frac();
    let mut params = poly_params(f);
    params.extend(log_params(f));
    params.extend([
        ("XW", i64::from(value_width(prec))),
        ("LW", i64::from(log_width(prec))),
        ("AW", i64::from(a_width(prec))),
        ("K1702", konst(1.702, f)),
        ("L2E", konst(std::f64::consts::LOG2_E, f)),
    ]);
    Instance {
        module: "quark_lane",
        params,
        inputs: vec![
            ("mode", 3),
            ("x", value_width(prec)),
            ("a", a_width(prec)),
            ("b", log_width(prec)),
        ],
        output: ("y", 2 * f as u32 + 3, true),
        latency: 13,
        roms: Vec::new(),
    }
}

/// `quark_log2.v` at precision `prec` over inputs of `yw` bits (the row log2 of the sum or the
/// variance).
pub fn log2_instance(prec: Prec, yw: u32) -> Instance {
    let f = prec.frac();
    let mut params = vec![("F", i64::from(f))];
    params.extend(log_params(f));
    params.extend([("YW", i64::from(yw)), ("LW", i64::from(log_width(prec)))]);
    Instance {
        module: "quark_log2",
        params,
        inputs: vec![("y", yw)],
        output: ("l", log_width(prec), true),
        latency: 3,
        roms: Vec::new(),
    }
}

/// `quark_exp2.v` at precision `prec` with `tw`-bit arguments and left shifts up to `lsh`.
pub fn exp2_instance(prec: Prec, tw: u32, lsh: u32) -> Instance {
    let f = prec.frac();
    let mut params = poly_params(f);
    params.extend([("TW", i64::from(tw)), ("LSH", i64::from(lsh))]);
    Instance {
        module: "quark_exp2",
        params,
        inputs: vec![("t", tw)],
        output: ("y", f as u32 + lsh + 1, false),
        latency: 3,
        roms: Vec::new(),
    }
}

/// What `row_reduce.v` outputs after each beat of (clear, lane values): the running maximum and sum
/// of the lane values since the last beat with `clear` set — the row maximum `m` (softmax pass 1)
/// and the row sum `s` (softmax pass 2) of [`quark::softmax`], and the sums of the norms'
/// mean/variance (`ops::norm_stats`), one `lanes`-wide beat at a time. Bit-exact with
/// `row_reduce.v` while a row's sum fits its accumulator (`row_instance`: up to 2^10 beats of
/// 16 lanes).
pub fn row_reduce(beats: &[(bool, Vec<i64>)]) -> Vec<(i64, i64)> {
    let mut acc = (i64::MIN, 0);
    beats
        .iter()
        .map(|(clear, v)| {
            let m = v.iter().copied().max().unwrap_or(i64::MIN);
            let s: i64 = v.iter().sum();
            acc = if *clear {
                (m, s)
            } else {
                (acc.0.max(m), acc.1 + s)
            };
            acc
        })
        .collect()
}

/// `row_reduce.v` at precision `prec` over `lanes` lane values (accumulator 14 bits wider); its
/// Rust model is [`row_reduce`].
pub fn row_instance(prec: Prec, lanes: u32) -> Instance {
    let w = value_width(prec);
    Instance {
        module: "row_reduce",
        params: vec![
            ("N", i64::from(lanes)),
            ("W", i64::from(w)),
            ("AW", i64::from(w + 14)),
        ],
        inputs: vec![("clear", 1), ("v", lanes * w)],
        output: ("acc", w + 14, true),
        latency: 2,
        roms: Vec::new(),
    }
}
