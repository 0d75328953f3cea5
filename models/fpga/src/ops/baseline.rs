//! Separate per-op baseline circuits in three styles.
//!
//! * Lookup table: a ROM of 2^[`Prec::lut_addr_bits`] entries per function, indexed by the top
//!   bits of the input (elementwise ops: one entry per input code; reciprocal and 1/√x: by the
//!   mantissa after a leading-one normalisation).
//! * Piecewise linear: 2^[`Prec::pwl_seg_bits`] chord segments (intercept + delta ROM, one
//!   multiply).
//! * Integer polynomial (I-BERT, Kim et al., ICML 2021): i-exp (range reduction by ln2 +
//!   0.3585(p+1.353)² + 0.344), i-GELU (erf ≈ sgn·[−0.2888(min(|x|,1.769) − 1.769)² + 1]),
//!   integer division for reciprocals, Newton integer square root.
//!
//! Softmax is exp → sum → reciprocal → multiply; LayerNorm/RMSNorm use the shared mean/variance
//! datapath and the style's 1/√x.

use super::super::fixed::{Fmt, konst, lod, shr_round};
use super::{Design, Op, Prec, reference};

/// A ROM-based approximation of a real function over an integer input range: a lookup table
/// (`delta` all 0) or chord piecewise-linear segments (the ROM of `rtl/approx_unit.v`).
pub(crate) struct Approx {
    /// Smallest input; inputs are clamped to the table's range.
    pub(crate) lo: i64,
    /// Input bits per entry (log2 of the inputs one entry covers).
    pub(crate) shift: i32,
    /// Value at each entry's first input (table: at its centre).
    pub(crate) base: Vec<i64>,
    /// Chord rise over the entry (0 for a table).
    pub(crate) delta: Vec<i64>,
}

impl Approx {
    /// Builds a table (`linear` = false) or PWL over inputs lo..=hi worth `x·2^-in_frac`, with at
    /// most 2^`addr_bits` entries, values at `f` fractional bits.
    fn new(
        fun: impl Fn(f64) -> f64,
        (lo, hi): (i64, i64),
        in_frac: i32,
        addr_bits: u32,
        f: i32,
        linear: bool,
    ) -> Self {
        let span = hi - lo + 1;
        let mut shift = 0;
        while (span + (1 << shift) - 1) >> shift > 1 << addr_bits {
            shift += 1;
        }
        let n = (span + (1 << shift) - 1) >> shift;
        let real = |x: f64| x * (-f64::from(in_frac)).exp2();
        let w = (1i64 << shift) as f64;
        let (mut base, mut delta) = (Vec::new(), Vec::new());
        for i in 0..n {
            let x0 = (lo + (i << shift)) as f64;
            if linear {
                let b = konst(fun(real(x0)), f);
                base.push(b);
                delta.push(konst(fun(real(x0 + w)), f) - b);
            } else {
                base.push(konst(fun(real(x0 + (w - 1.0) / 2.0)), f));
                delta.push(0);
            }
        }
        Self {
            lo,
            shift,
            base,
            delta,
        }
    }

    /// The value at input `x`.
    pub(crate) fn eval(&self, x: i64) -> i64 {
        let top = self.lo + ((self.base.len() as i64) << self.shift) - 1;
        let x = x.clamp(self.lo, top) - self.lo;
        let i = (x >> self.shift) as usize;
        let off = x - ((i as i64) << self.shift);
        self.base[i] + shr_round(self.delta[i] * off, self.shift)
    }
}

fn bits_of(design: Design, prec: Prec) -> (u32, bool) {
    match design {
        Design::Pwl => (prec.pwl_seg_bits(), true),
        _ => (prec.lut_addr_bits(), false),
    }
}

fn rom(
    design: Design,
    prec: Prec,
    fun: impl Fn(f64) -> f64,
    range: (i64, i64),
    in_frac: i32,
) -> Approx {
    let (addr, linear) = bits_of(design, prec);
    Approx::new(fun, range, in_frac, addr, prec.frac(), linear)
}

/// The mantissa table of the lut/pwl 1/y (`sqrt` = false, mantissa in [1, 2)) or 1/√y
/// (`sqrt` = true, [1, 4)) at prec.frac() bits.
pub(crate) fn recip_table(design: Design, prec: Prec, sqrt: bool) -> Approx {
    let f = prec.frac();
    let one = 1i64 << f;
    if sqrt {
        rom(design, prec, |x| 1.0 / x.sqrt(), (one, 4 * one - 1), f)
    } else {
        rom(design, prec, |v| 1.0 / v, (one, 2 * one - 1), f)
    }
}

/// The lut/pwl softmax exp table over code differences q − max of format `fin`.
pub(crate) fn exp_table(design: Design, prec: Prec, fin: Fmt) -> Approx {
    rom(design, prec, f64::exp, (fin.min_code(), 0), fin.frac)
}

/// The lut/pwl table of the elementwise `op` over every code of `fin`.
pub(crate) fn act_table(design: Design, op: Op, prec: Prec, fin: Fmt) -> Approx {
    let fun = |v: f64| reference(op, &[v])[0];
    rom(
        design,
        prec,
        fun,
        (fin.min_code(), fin.max_code()),
        fin.frac,
    )
}

/// I-BERT i-exp of x ≤ 0 at `f` bits (positive x also handled by the floor range reduction).
pub(crate) fn i_exp(x: i64, f: i32) -> i64 {
    let ln2 = konst(std::f64::consts::LN_2, f);
    let z = (-x).div_euclid(ln2);
    let p = x + z * ln2;
    let pb = p + konst(1.353, f);
    let l = shr_round(konst(0.3585, f) * shr_round(pb * pb, f), f) + konst(0.344, f);
    shr_round(l, z.clamp(-62, 63) as i32)
}

/// I-BERT i-GELU at `f` bits.
pub(crate) fn i_gelu(x: i64, f: i32) -> i64 {
    let one = 1i64 << f;
    let xs = shr_round(x * konst(std::f64::consts::FRAC_1_SQRT_2, f), f);
    let c = xs.abs().min(konst(1.769, f)) - konst(1.769, f);
    let l = xs.signum() * (shr_round(konst(-0.2888, f) * shr_round(c * c, f), f) + one);
    shr_round(x * (one + l), f + 1)
}

/// Integer division 2^(2f)/y (the reciprocal of y at `f` bits), y > 0.
pub(crate) fn int_recip(y: i64, f: i32) -> i64 {
    ((1i128 << (2 * f)) / i128::from(y.max(1))) as i64
}

/// Integer square root by Newton iteration (I-BERT i-sqrt).
pub(crate) fn isqrt(n: i128) -> i128 {
    if n <= 0 {
        return 0;
    }
    let mut x = 1i128 << ((128 - n.leading_zeros()).div_ceil(2));
    loop {
        let y = (x + n / x) / 2;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// σ(z) at `f` bits from i-exp and an integer division (polynomial style).
fn i_sigmoid(z: i64, f: i32) -> i64 {
    let one = 1i64 << f;
    let s = int_recip(one + i_exp(-z.abs(), f), f);
    if z < 0 { one - s } else { s }
}

/// 1/y of a positive y at the style's precision (`f` = prec.frac() bits in and out).
pub fn reciprocal(design: Design, prec: Prec, y: i64) -> i64 {
    let f = prec.frac();
    if design == Design::Poly {
        return int_recip(y, f);
    }
    let y = y.max(1);
    let s = lod(y).unwrap_or(0) - f;
    let one = 1i64 << f;
    let m = shr_round(y, s).clamp(one, 2 * one - 1);
    shr_round(recip_table(design, prec, false).eval(m), s)
}

/// 1/√v of a positive v at `f` = prec.frac() bits.
pub fn rsqrt(design: Design, prec: Prec, v: i64) -> i64 {
    let f = prec.frac();
    let v = v.max(1);
    if design == Design::Poly {
        let root = isqrt(i128::from(v) << f) as i64;
        return int_recip(root, f);
    }
    let mut s = lod(v).unwrap_or(0) - f;
    if s.rem_euclid(2) == 1 {
        s -= 1;
    }
    let one = 1i64 << f;
    let m = shr_round(v, s).clamp(one, 4 * one - 1);
    shr_round(recip_table(design, prec, true).eval(m), s / 2)
}

/// An elementwise op on one code `q` (format `fin`), result at prec.frac() bits.
pub fn elementwise(design: Design, op: Op, prec: Prec, q: i32, fin: Fmt) -> i64 {
    let f = prec.frac();
    let x = shr_round(i64::from(q), fin.frac - f);
    let one = 1i64 << f;
    match (design, op) {
        (_, Op::Reciprocal) => reciprocal(design, prec, x),
        (_, Op::Rsqrt) => rsqrt(design, prec, x),
        (Design::Poly, Op::Exp) => i_exp(x, f),
        (Design::Poly, Op::Gelu) => i_gelu(x, f),
        (Design::Poly, Op::Sigmoid) => i_sigmoid(x, f),
        (Design::Poly, Op::Silu) => shr_round(x * i_sigmoid(x, f), f),
        (Design::Poly, Op::Tanh) => 2 * i_sigmoid(2 * x, f) - one,
        _ => act_table(design, op, prec, fin).eval(i64::from(q)),
    }
}

/// Softmax of one row: exp → sum → reciprocal → multiply, result at prec.frac() bits.
pub fn softmax(design: Design, prec: Prec, x: &[i32], fin: Fmt) -> Vec<i64> {
    let f = prec.frac();
    let m = x.iter().copied().max().unwrap_or(0);
    let e: Vec<i64> = if design == Design::Poly {
        x.iter()
            .map(|&q| i_exp(shr_round(i64::from(q - m), fin.frac - f), f))
            .collect()
    } else {
        let t = exp_table(design, prec, fin);
        x.iter().map(|&q| t.eval(i64::from(q - m))).collect()
    };
    let r = reciprocal(design, prec, e.iter().sum());
    e.iter().map(|&v| shr_round(v * r, f)).collect()
}
