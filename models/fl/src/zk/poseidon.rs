//! Poseidon over BN254 as circom builds it (circomlib `poseidon.circom`, x⁵ S-box, 8 full rounds,
//! the circom partial-round counts and constants): the native hash is `light-poseidon`'s circom
//! instance (audited, circomlibjs-compatible), and [`hash_gadget`] is the same permutation in
//! R1CS, reading the same round constants and MDS matrix (3 constraints per S-box).
//!
//! SettleFL hashes its T×P reward matrix "in chunks of 16" (PAPERS.md). light-poseidon carries
//! circom's constants for 1–12 inputs only, so a chunk of 16 is hashed as
//! H₂(H₈(first 8), H₈(last 8)) and the chunks are folded as acc ← H₂(acc, chunk) from acc = 0
//! ([`chunked`]); circom's single 16-input Poseidon would cost 612 constraints per chunk, ours
//! costs 1,053 (an estimate of the difference, not a measured circom count).

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ff::AdditiveGroup;
use ark_relations::gr1cs::ConstraintSystemRef;
use light_poseidon::parameters::bn254_x5::get_poseidon_parameters;
use light_poseidon::{Poseidon, PoseidonHasher, PoseidonParameters};

use super::r1cs::{Num, R, mul};

/// Most inputs of one Poseidon call (light-poseidon's circom constants: widths 2–13).
pub const MAX_INPUTS: usize = 12;
/// Matrix entries per chunk (SettleFL).
pub const CHUNK: usize = 16;

fn params(inputs: usize) -> &'static PoseidonParameters<Fr> {
    static P: OnceLock<Vec<PoseidonParameters<Fr>>> = OnceLock::new();
    let all = P.get_or_init(|| {
        (1..=MAX_INPUTS)
            .map(|n| get_poseidon_parameters::<Fr>(n as u8 + 1).expect("circom width in 2..=13"))
            .collect()
    });
    &all[inputs - 1]
}

/// Native circom Poseidon of 1–12 inputs.
pub fn hash(inputs: &[Fr]) -> Fr {
    assert!(
        (1..=MAX_INPUTS).contains(&inputs.len()),
        "Poseidon takes 1 to {MAX_INPUTS} inputs, got {}",
        inputs.len()
    );
    Poseidon::<Fr>::new_circom(inputs.len())
        .and_then(|mut h| h.hash(inputs))
        .expect("input count checked")
}

fn sbox(cs: &ConstraintSystemRef<Fr>, x: &Num) -> R<Num> {
    let x2 = mul(cs, x, x)?;
    let x4 = mul(cs, &x2, &x2)?;
    mul(cs, &x4, x)
}

/// In-circuit circom Poseidon of 1–12 inputs (same permutation as [`hash`]).
pub fn hash_gadget(cs: &ConstraintSystemRef<Fr>, inputs: &[Num]) -> R<Num> {
    let p = params(inputs.len());
    let t = p.width;
    let mut state: Vec<Num> = std::iter::once(Num::constant(Fr::ZERO))
        .chain(inputs.iter().cloned())
        .collect();
    let half = p.full_rounds / 2;
    let rounds = p.full_rounds + p.partial_rounds;
    for round in 0..rounds {
        for (i, s) in state.iter_mut().enumerate() {
            *s = s.add_const(p.ark[round * t + i]);
        }
        let full = round < half || round >= half + p.partial_rounds;
        for (i, s) in state.iter_mut().enumerate() {
            if full || i == 0 {
                *s = sbox(cs, s)?;
            }
        }
        state = (0..t)
            .map(|i| {
                state
                    .iter()
                    .zip(&p.mds[i])
                    .fold(Num::constant(Fr::ZERO), |acc, (s, m)| acc.add(&s.scale(*m)))
            })
            .collect();
    }
    Ok(state.swap_remove(0))
}

fn chunk_native(c: &[Fr]) -> Fr {
    hash(&[hash(&c[..CHUNK / 2]), hash(&c[CHUNK / 2..])])
}

/// Native chunked hash of any number of field elements (zero-padded to a multiple of 16).
pub fn chunked(values: &[Fr]) -> Fr {
    let mut padded = values.to_vec();
    padded.resize(values.len().div_ceil(CHUNK).max(1) * CHUNK, Fr::ZERO);
    padded
        .chunks(CHUNK)
        .fold(Fr::ZERO, |acc, c| hash(&[acc, chunk_native(c)]))
}

/// In-circuit [`chunked`].
pub fn chunked_gadget(cs: &ConstraintSystemRef<Fr>, values: &[Num]) -> R<Num> {
    let mut padded = values.to_vec();
    padded.resize(
        values.len().div_ceil(CHUNK).max(1) * CHUNK,
        Num::constant(Fr::ZERO),
    );
    let mut acc = Num::constant(Fr::ZERO);
    for c in padded.chunks(CHUNK) {
        let lo = hash_gadget(cs, &c[..CHUNK / 2])?;
        let hi = hash_gadget(cs, &c[CHUNK / 2..])?;
        let h = hash_gadget(cs, &[lo, hi])?;
        acc = hash_gadget(cs, &[acc, h])?;
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::r1cs::witness;
    use ark_ff::{BigInteger, PrimeField, UniformRand};
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::rand::SeedableRng;
    use ark_std::rand::rngs::StdRng;

    #[test]
    fn native_matches_circomlibjs_vector() {
        // circomlibjs poseidon([1, 2]) (the reference vector light-poseidon and circomlib share).
        let h = hash(&[Fr::from(1u64), Fr::from(2u64)]);
        let hex: String = h
            .into_bigint()
            .to_bytes_be()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a"
        );
    }

    #[test]
    fn gadget_equals_native_on_random_inputs() {
        let mut rng = StdRng::seed_from_u64(7);
        for n in [1, 2, 5, 8, 12] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let xs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let vars: Vec<Num> = xs.iter().map(|x| witness(&cs, *x).unwrap()).collect();
            let out = hash_gadget(&cs, &vars).unwrap();
            assert_eq!(out.val, hash(&xs), "inputs {n}");
            assert!(cs.is_satisfied().unwrap(), "inputs {n}");
            // circom: 3 constraints per S-box, 8 full rounds of t S-boxes plus the partial
            // rounds, less the first S-box of the constant capacity element (folded).
            let p = params(n);
            let expected = 3 * (p.full_rounds * p.width + p.partial_rounds) - 3;
            assert_eq!(cs.num_constraints(), expected, "inputs {n}");
        }
        let cs = ConstraintSystem::<Fr>::new_ref();
        let xs: Vec<Fr> = (0..37).map(|_| Fr::rand(&mut rng)).collect();
        let vars: Vec<Num> = xs.iter().map(|x| witness(&cs, *x).unwrap()).collect();
        assert_eq!(chunked_gadget(&cs, &vars).unwrap().val, chunked(&xs));
        assert!(cs.is_satisfied().unwrap());
    }
}
