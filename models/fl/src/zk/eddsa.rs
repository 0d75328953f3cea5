//! EdDSA over Baby Jubjub with Poseidon, as circomlib's `EdDSAPoseidonVerifier` checks it: the
//! twisted Edwards curve a·x² + y² = 1 + d·x²·y² over BN254's scalar field (a = 168700,
//! d = 168696, base point B8 and subgroup order l from circomlib `babyjub.circom` / EIP-2494),
//! h = Poseidon(R8ₓ, R8ᵧ, Aₓ, Aᵧ, M), and S·B8 = R8 + 8·h·A.
//!
//! The native signer derives the secret scalar from a seed with Poseidon instead of circomlibjs'
//! BLAKE-512 key expansion (key derivation is outside the verifier; signatures verify the same).
//! The in-circuit verifier checks what circomlib's `EdDSAPoseidonVerifier` checks: S in 253 bits
//! and S < l (`CompConstant(l − 1)`, so S + l cannot stand in for S), h in 254 bits with the alias
//! check (`Num2Bits_strict`), 8·A not the identity, and the curve equation. It computes the scalar
//! multiplications with plain double-and-add (6-constraint Edwards additions, ≈ 14 constraints per
//! bit of h, 6 per bit of S) where circomlib uses windowed Montgomery ladders, so it is larger than
//! circomlib's (≈ 4.2k constraints, an estimate from circomlib's template) — stated, not hidden.

use std::str::FromStr;

use ark_bn254::Fr;
use ark_ff::fields::{Fp256, MontBackend, MontConfig};
use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField};
use ark_relations::gr1cs::ConstraintSystemRef;

use super::poseidon::{hash, hash_gadget};
use super::r1cs::{
    Num, R, div, enforce_eq, enforce_nonzero, greater_than_constant, mul, to_bits, to_bits_strict,
};

/// The scalar field's Montgomery configuration (its own module: arkworks' derive emits a
/// `feature = "asm"` cfg this crate does not declare).
mod scalar {
    #![allow(unexpected_cfgs)]
    use ark_ff::fields::MontConfig;

    /// Field of Baby Jubjub scalars (order l of the prime subgroup; EIP-2494).
    #[derive(MontConfig)]
    #[modulus = "2736030358979909402780800718157159386076813972158567259200215660948447373041"]
    #[generator = "31"]
    pub struct FsConfig;
}
pub use scalar::FsConfig;
/// A Baby Jubjub scalar mod l.
pub type Fs = Fp256<MontBackend<FsConfig, 4>>;

/// Curve coefficient a (circomlib babyjub.circom).
const A: u64 = 168_700;
/// Curve coefficient d (circomlib babyjub.circom).
const D: u64 = 168_696;
/// Bits S is decomposed into before the S < l check (circomlib `Num2Bits(253)`; l < 2²⁵²).
const S_BITS: usize = 253;

/// An affine Baby Jubjub point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    /// x coordinate.
    pub x: Fr,
    /// y coordinate.
    pub y: Fr,
}

impl Point {
    /// The neutral element (0, 1).
    pub const IDENTITY: Point = Point {
        x: Fr::ZERO,
        y: Fr::ONE,
    };

    /// B8, the generator of the prime-order subgroup (circomlib `Base8`).
    pub fn base8() -> Point {
        Point {
            x: Fr::from_str(
                "5299619240641551281634865583518297030282874472190772894086521144482721001553",
            )
            .expect("constant"),
            y: Fr::from_str(
                "16950150798460657717958625567821834550301663161624707787222815936182638968203",
            )
            .expect("constant"),
        }
    }

    /// Twisted Edwards addition (complete for Baby Jubjub).
    pub fn add(&self, o: &Point) -> Point {
        let xx = self.x * o.x;
        let yy = self.y * o.y;
        let tau = Fr::from(D) * xx * yy;
        Point {
            x: (self.x * o.y + self.y * o.x) * (Fr::ONE + tau).inverse().expect("complete"),
            y: (yy - Fr::from(A) * xx) * (Fr::ONE - tau).inverse().expect("complete"),
        }
    }

    /// k·self for a little-endian bit string of k.
    pub fn mul_bits(&self, bits: impl Iterator<Item = bool>) -> Point {
        let mut acc = Point::IDENTITY;
        let mut pow = *self;
        for b in bits {
            if b {
                acc = acc.add(&pow);
            }
            pow = pow.add(&pow);
        }
        acc
    }

    /// k·self for a field element k (its canonical integer).
    pub fn mul<F: PrimeField>(&self, k: F) -> Point {
        let big = k.into_bigint();
        self.mul_bits((0..F::MODULUS_BIT_SIZE as usize).map(|i| big.get_bit(i)))
    }

    /// Whether the point satisfies a·x² + y² = 1 + d·x²·y².
    pub fn on_curve(&self) -> bool {
        let (x2, y2) = (self.x.square(), self.y.square());
        Fr::from(A) * x2 + y2 == Fr::ONE + Fr::from(D) * x2 * y2
    }
}

/// A key pair: secret scalar k and public key A = k·B8.
#[derive(Clone, Copy, Debug)]
pub struct Keypair {
    /// Secret scalar.
    pub secret: Fs,
    /// Public key.
    pub public: Point,
}

/// An EdDSA-Poseidon signature (R8, S).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Commitment point R8 = r·B8.
    pub r8: Point,
    /// Response S = r + 8·h·k mod l.
    pub s: Fs,
}

fn fr_of(s: Fs) -> Fr {
    Fr::from_le_bytes_mod_order(&s.into_bigint().to_bytes_le())
}

fn fs_of(x: Fr) -> Fs {
    Fs::from_le_bytes_mod_order(&x.into_bigint().to_bytes_le())
}

impl Keypair {
    /// Deterministic key pair from a seed (secret = Poseidon(seed) mod l, never zero).
    pub fn from_seed(seed: u64) -> Keypair {
        let mut secret = fs_of(hash(&[Fr::from(seed)]));
        if secret == Fs::ZERO {
            secret = Fs::ONE;
        }
        Keypair {
            secret,
            public: Point::base8().mul(secret),
        }
    }

    /// Signs a field element (deterministic nonce r = Poseidon(k, M) mod l).
    pub fn sign(&self, msg: Fr) -> Signature {
        let r = fs_of(hash(&[fr_of(self.secret), msg]));
        let r8 = Point::base8().mul(r);
        let h = challenge(&r8, &self.public, msg);
        Signature {
            r8,
            s: r + fs_of(h) * Fs::from(8u64) * self.secret,
        }
    }
}

fn challenge(r8: &Point, a: &Point, msg: Fr) -> Fr {
    hash(&[r8.x, r8.y, a.x, a.y, msg])
}

/// Native verification: S·B8 = R8 + 8·h·A.
pub fn verify(public: &Point, msg: Fr, sig: &Signature) -> bool {
    let h = challenge(&sig.r8, public, msg);
    let ha = public.mul(h);
    let ha8 = ha.add(&ha);
    let ha8 = ha8.add(&ha8);
    let ha8 = ha8.add(&ha8);
    Point::base8().mul(sig.s) == sig.r8.add(&ha8)
}

/// A point in the circuit.
#[derive(Clone, Debug)]
pub struct PointVar {
    /// x coordinate.
    pub x: Num,
    /// y coordinate.
    pub y: Num,
}

impl PointVar {
    fn constant(p: &Point) -> PointVar {
        PointVar {
            x: Num::constant(p.x),
            y: Num::constant(p.y),
        }
    }
}

/// circomlib BabyAdd: 6 constraints.
pub fn add_gadget(cs: &ConstraintSystemRef<Fr>, p: &PointVar, q: &PointVar) -> R<PointVar> {
    let beta = mul(cs, &p.x, &q.y)?;
    let gamma = mul(cs, &p.y, &q.x)?;
    let delta = mul(cs, &p.y.sub(&p.x.scale(Fr::from(A))), &q.x.add(&q.y))?;
    let tau = mul(cs, &beta, &gamma)?;
    let dt = tau.scale(Fr::from(D));
    let one = Num::constant(Fr::ONE);
    let x = div(cs, &beta.add(&gamma), &one.add(&dt))?;
    let y = div(
        cs,
        &delta.add(&beta.scale(Fr::from(A))).sub(&gamma),
        &one.sub(&dt),
    )?;
    Ok(PointVar { x, y })
}

/// k·B8 for a fixed base: each bit selects 2ʲ·B8 or the identity linearly (no constraint), then one
/// addition.
fn fixed_base_mul(cs: &ConstraintSystemRef<Fr>, bits: &[Num], base: &Point) -> R<PointVar> {
    let mut acc = PointVar::constant(&Point::IDENTITY);
    let mut pow = *base;
    for b in bits {
        let sel = PointVar {
            x: b.scale(pow.x),
            y: b.scale(pow.y - Fr::ONE).add_const(Fr::ONE),
        };
        acc = add_gadget(cs, &acc, &sel)?;
        pow = pow.add(&pow);
    }
    Ok(acc)
}

/// k·P for a point in the circuit: double-and-add with a selected addend.
fn var_base_mul(cs: &ConstraintSystemRef<Fr>, bits: &[Num], p: &PointVar) -> R<PointVar> {
    let mut acc = PointVar::constant(&Point::IDENTITY);
    let mut pow = p.clone();
    for (j, b) in bits.iter().enumerate() {
        let sel = PointVar {
            x: mul(cs, b, &pow.x)?,
            y: mul(cs, b, &pow.y.add_const(-Fr::ONE))?.add_const(Fr::ONE),
        };
        acc = add_gadget(cs, &acc, &sel)?;
        if j + 1 < bits.len() {
            pow = add_gadget(cs, &pow, &pow)?;
        }
    }
    Ok(acc)
}

/// Allocates a signature as private witnesses.
pub fn alloc_signature(cs: &ConstraintSystemRef<Fr>, sig: &Signature) -> R<(PointVar, Num)> {
    use super::r1cs::witness;
    Ok((
        PointVar {
            x: witness(cs, sig.r8.x)?,
            y: witness(cs, sig.r8.y)?,
        },
        witness(cs, fr_of(sig.s))?,
    ))
}

/// In-circuit EdDSA-Poseidon verification of (R8, S) on `msg` under public key `a`.
pub fn verify_gadget(
    cs: &ConstraintSystemRef<Fr>,
    a: &PointVar,
    msg: &Num,
    r8: &PointVar,
    s: &Num,
) -> R<()> {
    // A must not be of small order: 8·A ≠ identity (x ≠ 0).
    let a2 = add_gadget(cs, a, a)?;
    let a4 = add_gadget(cs, &a2, &a2)?;
    let a8 = add_gadget(cs, &a4, &a4)?;
    enforce_nonzero(cs, &a8.x)?;
    let s_bits = to_bits(cs, s, S_BITS)?;
    // S < l, i.e. S ≤ l − 1 (circomlib: CompConstant(l − 1) over S's bits must output 0).
    let mut l_minus_one = Fr::from_bigint(FsConfig::MODULUS)
        .expect("l < p")
        .into_bigint();
    l_minus_one.sub_with_borrow(&1u64.into());
    let above = greater_than_constant(cs, &s_bits, &l_minus_one)?;
    enforce_eq(cs, &above, &Num::constant(Fr::ZERO))?;
    let h = hash_gadget(
        cs,
        &[
            r8.x.clone(),
            r8.y.clone(),
            a.x.clone(),
            a.y.clone(),
            msg.clone(),
        ],
    )?;
    let h_bits = to_bits_strict(cs, &h)?;
    // 8·h·A = h·(8·A).
    let right = add_gadget(cs, r8, &var_base_mul(cs, &h_bits, &a8)?)?;
    let left = fixed_base_mul(cs, &s_bits, &Point::base8())?;
    enforce_eq(cs, &left.x, &right.x)?;
    enforce_eq(cs, &left.y, &right.y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::r1cs::witness;
    use ark_relations::gr1cs::ConstraintSystem;

    #[test]
    fn curve_constants_and_subgroup_order() {
        let b8 = Point::base8();
        assert!(b8.on_curve());
        // l·B8 = identity: B8 generates the subgroup of order l.
        let l_bits = FsConfig::MODULUS;
        let lb = b8.mul_bits((0..256).map(|i| l_bits.get_bit(i)));
        assert_eq!(lb, Point::IDENTITY);
    }

    #[test]
    fn sign_verify_native_and_in_circuit() {
        let kp = Keypair::from_seed(42);
        assert!(kp.public.on_curve());
        let msg = Fr::from(123_456u64);
        let sig = kp.sign(msg);
        assert!(verify(&kp.public, msg, &sig));
        assert!(!verify(&kp.public, msg + Fr::ONE, &sig));
        for (m, ok) in [(msg, true), (msg + Fr::ONE, false)] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let a = PointVar {
                x: witness(&cs, kp.public.x).unwrap(),
                y: witness(&cs, kp.public.y).unwrap(),
            };
            let m = witness(&cs, m).unwrap();
            let (r8, s) = alloc_signature(&cs, &sig).unwrap();
            verify_gadget(&cs, &a, &m, &r8, &s).unwrap();
            assert_eq!(cs.is_satisfied().unwrap(), ok);
        }
    }

    #[test]
    fn an_unreduced_s_is_rejected_in_circuit() {
        // S + l gives the same S·B8 (l·B8 = identity) and fits in 253 bits: only S < l stops it.
        let kp = Keypair::from_seed(7);
        let msg = Fr::from(99u64);
        let sig = kp.sign(msg);
        let l = Fr::from_bigint(FsConfig::MODULUS).unwrap();
        let b8 = Point::base8();
        let s_plus_l = fr_of(sig.s) + l;
        assert_eq!(b8.mul(s_plus_l), b8.mul(fr_of(sig.s)));
        for (s_val, ok) in [(fr_of(sig.s), true), (s_plus_l, false)] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let a = PointVar {
                x: witness(&cs, kp.public.x).unwrap(),
                y: witness(&cs, kp.public.y).unwrap(),
            };
            let m = witness(&cs, msg).unwrap();
            let r8 = PointVar {
                x: witness(&cs, sig.r8.x).unwrap(),
                y: witness(&cs, sig.r8.y).unwrap(),
            };
            let s = witness(&cs, s_val).unwrap();
            verify_gadget(&cs, &a, &m, &r8, &s).unwrap();
            assert_eq!(cs.is_satisfied().unwrap(), ok, "S + l accepted: {}", !ok);
        }
    }
}
