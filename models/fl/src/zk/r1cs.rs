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
