//! Small R1CS toolkit over BN254's scalar field: a [`Num`] is a linear combination of circuit
//! variables together with its value, so gadgets compute witnesses and constraints in one pass.
//! Products of two constants are folded (no constraint), as circom's compiler does.

use ark_bn254::Fr;
use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField};
use ark_relations::gr1cs::{ConstraintSystemRef, LinearCombination, SynthesisError, Variable};

/// A circuit value: linear combination of variables and its assignment.
#[derive(Clone, Debug)]
pub struct Num {
    /// The linear combination.
    pub lc: LinearCombination<Fr>,
    /// Its value under the witness.
    pub val: Fr,
}

/// Result of a gadget.
pub type R<T> = Result<T, SynthesisError>;

impl Num {
    /// A constant.
    pub fn constant(c: Fr) -> Self {
        Self {
            lc: LinearCombination::from((c, Variable::One)),
            val: c,
        }
    }

    /// `self + other`.
    pub fn add(&self, other: &Num) -> Num {
        Num {
            lc: &self.lc + &other.lc,
            val: self.val + other.val,
        }
    }

    /// `self − other`.
    pub fn sub(&self, other: &Num) -> Num {
        Num {
            lc: &self.lc - &other.lc,
            val: self.val - other.val,
        }
    }

    /// `k · self`.
    pub fn scale(&self, k: Fr) -> Num {
        Num {
            lc: &self.lc * k,
            val: self.val * k,
        }
    }

    /// `self + c` for a constant c.
    pub fn add_const(&self, c: Fr) -> Num {
        self.add(&Num::constant(c))
    }

    fn is_constant(&self) -> bool {
        self.lc.iter().all(|(_, v)| *v == Variable::One)
    }
}

/// Σ nums.
pub fn sum(nums: &[Num]) -> Num {
    nums.iter()
        .fold(Num::constant(Fr::ZERO), |acc, n| acc.add(n))
}

/// A private witness.
pub fn witness(cs: &ConstraintSystemRef<Fr>, val: Fr) -> R<Num> {
    let v = cs.new_witness_variable(|| Ok(val))?;
    Ok(Num { lc: v.into(), val })
}

/// A public input.
pub fn input(cs: &ConstraintSystemRef<Fr>, val: Fr) -> R<Num> {
    let v = cs.new_input_variable(|| Ok(val))?;
    Ok(Num { lc: v.into(), val })
}

/// Enforces `a · b = c`.
pub fn enforce(cs: &ConstraintSystemRef<Fr>, a: &Num, b: &Num, c: &Num) -> R<()> {
    cs.enforce_r1cs_constraint(|| a.lc.clone(), || b.lc.clone(), || c.lc.clone())
}

/// `a · b` (one constraint unless both are constants).
pub fn mul(cs: &ConstraintSystemRef<Fr>, a: &Num, b: &Num) -> R<Num> {
    if a.is_constant() && b.is_constant() {
        return Ok(Num::constant(a.val * b.val));
    }
    let w = witness(cs, a.val * b.val)?;
    enforce(cs, a, b, &w)?;
    Ok(w)
}

/// `n / d` with the constraint `out · d = n` (d must be nonzero under the witness).
pub fn div(cs: &ConstraintSystemRef<Fr>, n: &Num, d: &Num) -> R<Num> {
    let inv = d.val.inverse().ok_or(SynthesisError::DivisionByZero)?;
    let w = witness(cs, n.val * inv)?;
    enforce(cs, &w, d, n)?;
    Ok(w)
}

/// Enforces `a = b`.
pub fn enforce_eq(cs: &ConstraintSystemRef<Fr>, a: &Num, b: &Num) -> R<()> {
    enforce(
        cs,
        &a.sub(b),
        &Num::constant(Fr::ONE),
        &Num::constant(Fr::ZERO),
    )
}

/// Enforces `x ≠ 0` (one constraint: x · x⁻¹ = 1).
pub fn enforce_nonzero(cs: &ConstraintSystemRef<Fr>, x: &Num) -> R<()> {
    let inv = witness(cs, x.val.inverse().unwrap_or(Fr::ZERO))?;
    enforce(cs, x, &inv, &Num::constant(Fr::ONE))
}

/// 1 if x = 0 else 0 (circomlib IsZero: two constraints).
pub fn is_zero(cs: &ConstraintSystemRef<Fr>, x: &Num) -> R<Num> {
    let inv = witness(cs, x.val.inverse().unwrap_or(Fr::ZERO))?;
    let out_val = if x.val == Fr::ZERO { Fr::ONE } else { Fr::ZERO };
    let out = witness(cs, out_val)?;
    // x · inv = 1 − out; x · out = 0.
    enforce(cs, x, &inv, &Num::constant(Fr::ONE).sub(&out))?;
    enforce(cs, x, &out, &Num::constant(Fr::ZERO))?;
    Ok(out)
}

/// 1 if a = b else 0.
pub fn is_equal(cs: &ConstraintSystemRef<Fr>, a: &Num, b: &Num) -> R<Num> {
    is_zero(cs, &a.sub(b))
}

/// Little-endian bits of x (n boolean constraints + one recomposition constraint); x must fit.
pub fn to_bits(cs: &ConstraintSystemRef<Fr>, x: &Num, n: usize) -> R<Vec<Num>> {
    let big = x.val.into_bigint();
    let mut bits = Vec::with_capacity(n);
    let mut acc = Num::constant(Fr::ZERO);
    let mut coeff = Fr::ONE;
    for j in 0..n {
        let b = witness(cs, Fr::from(u64::from(big.get_bit(j))))?;
        enforce(
            cs,
            &b,
            &Num::constant(Fr::ONE).sub(&b),
            &Num::constant(Fr::ZERO),
        )?;
        acc = acc.add(&b.scale(coeff));
        coeff.double_in_place();
        bits.push(b);
    }
    enforce_eq(cs, &acc, x)?;
    Ok(bits)
}

/// `a · b`, free (a scaling) when either is a constant: the product of a constant bit and a signal
/// is linear, as circom's simplifier folds it.
fn mul_or_scale(cs: &ConstraintSystemRef<Fr>, a: &Num, b: &Num) -> R<Num> {
    if a.is_constant() {
        Ok(b.scale(a.val))
    } else if b.is_constant() {
        Ok(a.scale(b.val))
    } else {
        mul(cs, a, b)
    }
}

/// 1 if the number with little-endian boolean `bits` (at most 254; missing high bits are 0) is
/// greater than the constant `ct`, else 0 — circomlib `CompConstant`: the bits are taken in 127 pairs,
/// each pair's comparison with the constant's pair weighted so that the highest differing pair
/// decides (one constraint per pair for the product of its bits), and bit 127 of the 135-bit sum
/// is the answer (≈ 263 constraints).
pub fn greater_than_constant(
    cs: &ConstraintSystemRef<Fr>,
    bits: &[Num],
    ct: &<Fr as PrimeField>::BigInt,
) -> R<Num> {
    assert!(bits.len() <= 254, "CompConstant takes at most 254 bits");
    let zero = Num::constant(Fr::ZERO);
    let bit = |i: usize| bits.get(i).unwrap_or(&zero).clone();
    // b = 2¹²⁸ − 1, a = 1, e = 1; each pair: b −= e, a += e, e *= 2 (circomlib's weights).
    let mut b = Fr::from(2u64).pow([128]) - Fr::ONE;
    let mut a = Fr::ONE;
    let mut e = Fr::ONE;
    let mut total = Num::constant(Fr::ZERO);
    for i in 0..127 {
        let (clsb, cmsb) = (ct.get_bit(2 * i), ct.get_bit(2 * i + 1));
        let (slsb, smsb) = (bit(2 * i), bit(2 * i + 1));
        let both = mul_or_scale(cs, &smsb, &slsb)?;
        let part = match (cmsb, clsb) {
            (false, false) => both.scale(-b).add(&smsb.scale(b)).add(&slsb.scale(b)),
            (false, true) => both
                .scale(a)
                .sub(&slsb.scale(a))
                .add(&smsb.scale(b))
                .sub(&smsb.scale(a))
                .add_const(a),
            (true, false) => both.scale(b).sub(&smsb.scale(a)).add_const(a),
            (true, true) => both.scale(-a).add_const(a),
        };
        total = total.add(&part);
        b -= e;
        a += e;
        e.double_in_place();
    }
    Ok(to_bits(cs, &total, 135)?.swap_remove(127))
}

/// Little-endian bits of x (all 254), with circomlib's `AliasCheck`: the bits as an integer are at
/// most p − 1, so they are x's canonical bits and not those of x + p (circomlib `Num2Bits_strict`).
pub fn to_bits_strict(cs: &ConstraintSystemRef<Fr>, x: &Num) -> R<Vec<Num>> {
    let bits = to_bits(cs, x, Fr::MODULUS_BIT_SIZE as usize)?;
    let mut p_minus_one = Fr::MODULUS;
    p_minus_one.sub_with_borrow(&1u64.into());
    let alias = greater_than_constant(cs, &bits, &p_minus_one)?;
    enforce_eq(cs, &alias, &Num::constant(Fr::ZERO))?;
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relations::gr1cs::ConstraintSystem;

    /// The comparison's answer for `x` against `ct`, and whether its constraints hold.
    fn compare(x: Fr, bits: usize, ct: Fr) -> (bool, bool, usize) {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let xv = witness(&cs, x).unwrap();
        let b = to_bits(&cs, &xv, bits).unwrap();
        let before = cs.num_constraints();
        let out = greater_than_constant(&cs, &b, &ct.into_bigint()).unwrap();
        let used = cs.num_constraints() - before;
        (out.val == Fr::ONE, cs.is_satisfied().unwrap(), used)
    }

    #[test]
    fn comp_constant_compares_like_integers() {
        let ct = Fr::from(1_000_003u64);
        for (x, greater) in [
            (0u64, false),
            (1_000_002, false),
            (1_000_003, false),
            (1_000_004, true),
        ] {
            let (out, ok, _) = compare(Fr::from(x), 254, ct);
            assert!(ok);
            assert_eq!(out, greater, "{x} > {ct}");
        }
        // Large values: p − 1 against p − 2 and p − 1.
        let (out, ok, used) = compare(-Fr::ONE, 254, -Fr::from(2u64));
        assert!(ok && out);
        assert_eq!(
            used,
            127 + 136,
            "circomlib CompConstant: 127 pair products + Num2Bits(135)"
        );
        let (out, ok, _) = compare(-Fr::ONE, 254, -Fr::ONE);
        assert!(ok && !out);
    }

    #[test]
    fn strict_bits_hold_for_every_canonical_value() {
        for x in [Fr::ZERO, Fr::from(5u64), -Fr::ONE] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let xv = witness(&cs, x).unwrap();
            to_bits_strict(&cs, &xv).unwrap();
            assert!(cs.is_satisfied().unwrap());
        }
        // The bits of p itself (an alias of 0) are above p − 1: the check that rejects them fires.
        let cs = ConstraintSystem::<Fr>::new_ref();
        let p_bits: Vec<Num> = (0..254)
            .map(|i| Num::constant(Fr::from(u64::from(Fr::MODULUS.get_bit(i)))))
            .collect();
        let mut p_minus_one = Fr::MODULUS;
        p_minus_one.sub_with_borrow(&1u64.into());
        let alias = greater_than_constant(&cs, &p_bits, &p_minus_one).unwrap();
        assert_eq!(alias.val, Fr::ONE);
    }
}
