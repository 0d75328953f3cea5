//! Fixed-point arithmetic shared by every operator circuit: signed formats, rounding shifts,
//! saturation and the leading-one detector. Values are integers; a format says what they are worth.

/// A signed fixed-point format: `bits`-bit two's-complement codes worth `code · 2^-frac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fmt {
    /// Word width in bits (2..=31).
    pub bits: u32,
    /// Fractional bits (the scale is 2^-frac; may be negative for coarse scales).
    pub frac: i32,
}

impl Fmt {
    /// A format of `bits` bits with `frac` fractional bits.
    pub const fn new(bits: u32, frac: i32) -> Self {
        Self { bits, frac }
    }
    /// Smallest code, −2^(bits−1).
    pub fn min_code(self) -> i64 {
        -(1i64 << (self.bits - 1))
    }
    /// Largest code, 2^(bits−1) − 1.
    pub fn max_code(self) -> i64 {
        (1i64 << (self.bits - 1)) - 1
    }
    /// Real value of one code step (LSB).
    pub fn step(self) -> f64 {
        (-f64::from(self.frac)).exp2()
    }
    /// Round-to-nearest, saturating quantization of a real value.
    pub fn quantize(self, v: f64) -> i32 {
        let q = (v / self.step()).round();
        q.clamp(self.min_code() as f64, self.max_code() as f64) as i32
    }
    /// Real value of a code.
    pub fn dequantize(self, q: i32) -> f64 {
        f64::from(q) * self.step()
    }
    /// Saturates an integer to the code range.
    pub fn saturate(self, x: i64) -> i32 {
        x.clamp(self.min_code(), self.max_code()) as i32
    }
    /// Requantizes a value held at `from_frac` fractional bits into this format (round, saturate).
    pub fn requantize(self, x: i64, from_frac: i32) -> i32 {
        self.saturate(shr_round(x, from_frac - self.frac))
    }
}

/// Arithmetic shift right by `s` with round-half-up (a left shift when `s` < 0); saturates the
/// shift amount so that huge shifts give 0 (or the sign) instead of overflowing.
pub fn shr_round(x: i64, s: i32) -> i64 {
    if s <= 0 {
        let s = (-s).min(62) as u32;
        x.saturating_mul(1i64 << s)
    } else if s >= 63 {
        0
    } else {
        (x + (1i64 << (s - 1))) >> s
    }
}

/// Position of the leading one of a positive integer (the leading-one detector), `None` for ≤ 0.
pub fn lod(x: i64) -> Option<i32> {
    (x > 0).then(|| 63 - x.leading_zeros() as i32)
}

/// A real constant as an integer with `frac` fractional bits (round to nearest).
pub fn konst(v: f64, frac: i32) -> i64 {
    (v * f64::from(frac).exp2()).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_dequantize_is_within_half_a_step() {
        let f = Fmt::new(8, 4);
        for k in -1000..1000 {
            let v = f64::from(k) * 0.0071;
            if v > f.dequantize(f.max_code() as i32) || v < f.dequantize(f.min_code() as i32) {
                continue;
            }
            assert!((f.dequantize(f.quantize(v)) - v).abs() <= f.step() / 2.0 + 1e-12);
        }
        assert_eq!(f.quantize(1e9), 127);
        assert_eq!(f.quantize(-1e9), -128);
    }

    #[test]
    fn shifts_round_and_lod_finds_the_top_bit() {
        assert_eq!(shr_round(5, 1), 3);
        assert_eq!(shr_round(-5, 1), -2);
        assert_eq!(shr_round(3, -2), 12);
        assert_eq!(shr_round(1 << 40, 80), 0);
        assert_eq!(lod(1), Some(0));
        assert_eq!(lod(0x80), Some(7));
        assert_eq!(lod(0), None);
    }
}
