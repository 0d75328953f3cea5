//! Groth16 over BN254 (arkworks 0.6) for SettleFL's circuits ([`circuits`]): circuit-specific
//! setup from a fixed public seed, proving, arkworks' own verification, and the words the
//! `Groth16Verifier` contract takes (verifying key, proof).
//!
//! A job of P participants × T rounds sets up its Commit and redeem circuits once (their shape
//! depends on P and T only) and proves the Commit circuit every epoch. Where those circuits are
//! too large to prove in a simulation run ([`count`] gives their exact constraint counts), the
//! contracts verify a real proof of the [`Binding`] circuit instead: the same public inputs, so the
//! same on-chain verifier gas (EIP-1108 charges per pairing and per public input, not per
//! constraint), and the prover time still comes from the full circuit's constraint count.

use ark_bn254::{Bn254, Fq, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use ark_snark::SNARK;
use ark_std::rand::SeedableRng;
use ark_std::rand::rngs::StdRng;
use revm::primitives::{B256, U256};

pub mod circuits;
pub mod count;
pub mod eddsa;
pub mod poseidon;
pub mod r1cs;

/// A BN254 scalar as a 256-bit word.
pub fn fr_to_u256(x: Fr) -> U256 {
    U256::from_be_slice(&x.into_bigint().to_bytes_be())
}

fn fq(x: Fq) -> U256 {
    U256::from_be_slice(&x.into_bigint().to_bytes_be())
}

/// `root mod r` as a circuit's public input.
pub fn root_input(root: B256) -> Fr {
    Fr::from_be_bytes_mod_order(root.as_slice())
}

fn g1(p: &G1Affine) -> [U256; 2] {
    if p.is_zero() {
        return [U256::ZERO; 2];
    }
    [fq(p.x), fq(p.y)]
}

fn g2(p: &G2Affine) -> [U256; 4] {
    [fq(p.x.c1), fq(p.x.c0), fq(p.y.c1), fq(p.y.c0)]
}

/// The verifying-key words: α, β, γ, δ, IC₀…ICₙ (14 + 2(n + 1) words for n public inputs).
pub fn vk_words(vk: &VerifyingKey<Bn254>) -> Vec<U256> {
    let mut w = Vec::with_capacity(14 + 2 * vk.gamma_abc_g1.len());
    w.extend(g1(&vk.alpha_g1));
    w.extend(g2(&vk.beta_g2));
    w.extend(g2(&vk.gamma_g2));
    w.extend(g2(&vk.delta_g2));
    for ic in &vk.gamma_abc_g1 {
        w.extend(g1(ic));
    }
    w
}

/// A, B, C of a proof as the contracts' 8 words (B in the precompile's order).
pub fn proof_words(proof: &Proof<Bn254>) -> [U256; 8] {
    let mut words = [U256::ZERO; 8];
    words[..2].copy_from_slice(&g1(&proof.a));
    words[2..6].copy_from_slice(&g2(&proof.b));
    words[6..].copy_from_slice(&g1(&proof.c));
    words
}

/// Keys of one circuit shape.
pub struct Keys {
    /// Proving key.
    pub pk: ProvingKey<Bn254>,
    /// Verifying key.
    pub vk: VerifyingKey<Bn254>,
    /// Prepared verifying key (native check).
    pub pvk: PreparedVerifyingKey<Bn254>,
}

impl Keys {
    /// Circuit-specific setup of `circuit`'s shape from the public seed `seed` (a fixed ceremony,
    /// so the deployed verifier is the same in every run of the same job shape).
    pub fn setup<C: ConstraintSynthesizer<Fr>>(
        circuit: C,
        seed: u64,
    ) -> Result<Keys, SynthesisError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let (pk, vk) = Groth16::<Bn254>::circuit_specific_setup(circuit, &mut rng)?;
        let pvk = Groth16::<Bn254>::process_vk(&vk)?;
        Ok(Keys { pk, vk, pvk })
    }

    /// Proves `circuit` with public inputs `public` (the circuit's own); returns the contract's
    /// 8 proof words and whether arkworks' verifier accepts the proof.
    pub fn prove<C: ConstraintSynthesizer<Fr>>(
        &self,
        circuit: C,
        public: &[Fr],
        seed: u64,
    ) -> Result<([U256; 8], bool), SynthesisError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let proof = Groth16::<Bn254>::prove(&self.pk, circuit, &mut rng)?;
        let ok = Groth16::<Bn254>::verify_with_processed_vk(&self.pvk, public, &proof)?;
        Ok((proof_words(&proof), ok))
    }

    /// Public inputs of the circuit.
    pub fn inputs(&self) -> usize {
        self.vk.gamma_abc_g1.len() - 1
    }
}

/// The stand-in proven at scale: binds each public input xᵢ by one constraint xᵢ·xᵢ = wᵢ, so a
/// proof is valid for exactly these inputs (as a real circuit's is), with the real circuit's arity.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The public inputs.
    pub inputs: Vec<Fr>,
}

impl ConstraintSynthesizer<Fr> for Binding {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        for x in self.inputs {
            let v = r1cs::input(&cs, x)?;
            r1cs::mul(&cs, &v, &v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_proof_verifies_for_its_inputs_only() {
        let inputs = vec![Fr::from(3u64), Fr::from(5u64), Fr::from(7u64)];
        let keys = Keys::setup(
            Binding {
                inputs: vec![Fr::from(0u64); 3],
            },
            1,
        )
        .unwrap();
        assert_eq!(keys.inputs(), 3);
        let (words, ok) = keys
            .prove(
                Binding {
                    inputs: inputs.clone(),
                },
                &inputs,
                2,
            )
            .unwrap();
        assert!(ok);
        assert!(words.iter().any(|w| *w != U256::ZERO));
        let mut other = inputs.clone();
        other[1] = Fr::from(6u64);
        let (_, ok) = keys.prove(Binding { inputs }, &other, 2).unwrap();
        assert!(!ok, "a proof binds its public inputs");
    }
}
