//! Exact constraint counts of the Commit and redeem circuits ([`super::circuits`]) at any P × T,
//! composed from parts synthesized once at tiny sizes, so the simulated prover delay of a job of
//! 800 or 10,000 participants follows the circuit actually used without synthesizing millions of
//! constraints. The composition mirrors the circuits' code; tests check it equals synthesis.
//!
//! * chunked(n): the Poseidon fold over n values in chunks of 16 — every chunk after the first
//!   full one costs the same, and the last (zero-padded) chunk's cost depends only on its fill, so
//!   chunked(n) = chunked(16 + r) + (k − 2)·(chunked(32) − chunked(16)) for k ≥ 3 chunks, r the
//!   last chunk's fill; sizes ≤ 32 are synthesized.
//! * open(P, T) = chunked(P·T) + chunked(3P) + H₃ + 1 (the commitment equality).
//! * Commit = open + one-hot(T + 1) + T·P (untrained rows zero) + 1 (root) + P·(chunked(T) + one
//!   EdDSA verification).
//! * RedeemOneShot = open + one-hot(P) + P (address select) + 1 + T·P (column select) + 1.
//! * RedeemMultiShot = RedeemOneShot + 2·one-hot(T + 1) + T (round mask); one-hot(n) = 2n + 1.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use ark_bn254::Fr;
use ark_relations::gr1cs::{ConstraintSystem, ConstraintSystemRef};

use super::circuits::Kind;
use super::eddsa::{Keypair, PointVar, alloc_signature, verify_gadget};
use super::poseidon::{CHUNK, chunked_gadget, hash_gadget};
use super::r1cs::{R, witness};

fn synth(f: impl FnOnce(&ConstraintSystemRef<Fr>) -> R<()>) -> usize {
    let cs = ConstraintSystem::<Fr>::new_ref();
    f(&cs).expect("synthesis of a fixed gadget");
    cs.num_constraints()
}

fn witnesses(cs: &ConstraintSystemRef<Fr>, n: usize) -> R<Vec<super::r1cs::Num>> {
    (0..n)
        .map(|k| witness(cs, Fr::from(k as u64 + 1)))
        .collect()
}

/// Constraints of the chunked Poseidon over `n` ≤ 32 witnesses (synthesized, cached).
fn chunked_small(n: usize) -> usize {
    static CACHE: OnceLock<Mutex<BTreeMap<usize, usize>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(&c) = cache.lock().expect("cache").get(&n) {
        return c;
    }
    let c = synth(|cs| chunked_gadget(cs, &witnesses(cs, n)?).map(|_| ()));
    cache.lock().expect("cache").insert(n, c);
    c
}

/// Constraints of the chunked Poseidon over `n` witnesses.
pub fn chunked(n: usize) -> usize {
    let k = n.div_ceil(CHUNK).max(1);
    if k <= 2 {
        return chunked_small(n);
    }
    let fill = n - CHUNK * (k - 1);
    chunked_small(CHUNK + fill) + (k - 2) * (chunked_small(2 * CHUNK) - chunked_small(CHUNK))
}

/// Constraints of one in-circuit EdDSA-Poseidon verification.
fn signature() -> usize {
    static C: OnceLock<usize> = OnceLock::new();
    *C.get_or_init(|| {
        let key = Keypair::from_seed(1);
        let sig = key.sign(Fr::from(7u64));
        synth(|cs| {
            let a = PointVar {
                x: witness(cs, key.public.x)?,
                y: witness(cs, key.public.y)?,
            };
            let m = witness(cs, Fr::from(7u64))?;
            let (r8, s) = alloc_signature(cs, &sig)?;
            verify_gadget(cs, &a, &m, &r8, &s)
        })
    })
}

fn h3() -> usize {
    static C: OnceLock<usize> = OnceLock::new();
    *C.get_or_init(|| synth(|cs| hash_gadget(cs, &witnesses(cs, 3)?).map(|_| ())))
}

fn one_hot(n: usize) -> usize {
    2 * n + 1
}

fn open(p: usize, t: usize) -> usize {
    chunked(p * t) + chunked(3 * p) + h3() + 1
}

/// Constraints of circuit `kind` over `p` participants × `t` rounds (Commit and the two redeem
/// circuits; `None` for Challenge and Counter, which the simulated settlement does not prove).
pub fn constraints(kind: Kind, p: usize, t: usize) -> Option<usize> {
    let one_shot = open(p, t) + one_hot(p) + p + 1 + t * p + 1;
    match kind {
        Kind::Commit => {
            Some(open(p, t) + one_hot(t + 1) + t * p + 1 + p * (chunked(t) + signature()))
        }
        Kind::RedeemOneShot => Some(one_shot),
        Kind::RedeemMultiShot => Some(one_shot + 2 * one_hot(t + 1) + t),
        Kind::Challenge | Kind::Counter => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::circuits::{sample, synthesize};

    #[test]
    fn composed_counts_equal_synthesis() {
        // Partial and multiple chunks in the matrix (P·T = 18, 51), the list (3P = 18) and a
        // column (T = 17).
        for (p, t) in [(1, 1), (2, 3), (6, 3), (3, 17)] {
            for kind in [Kind::Commit, Kind::RedeemOneShot, Kind::RedeemMultiShot] {
                let (n, ok) = synthesize(sample(kind, p, t)).unwrap();
                assert!(ok);
                assert_eq!(
                    constraints(kind, p, t),
                    Some(n),
                    "{kind:?} P = {p}, T = {t}"
                );
            }
        }
        for n in [40, 49, 64, 100] {
            let direct = synth(|cs| chunked_gadget(cs, &witnesses(cs, n)?).map(|_| ()));
            assert_eq!(chunked(n), direct, "chunked({n})");
        }
    }
}
