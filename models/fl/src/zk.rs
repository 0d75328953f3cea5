//! The Commit-with-Proof validity proof: a real Groth16 proof over BN254 (arkworks 0.6) of a
//! reward-transition circuit, serialized for the `CommitProof` contract's pairing check.
//!
//! Circuit over `P` participants (public: cPrev, cNew, total, root; private: prev[P], delta[P]):
//! cPrev = H(prev), cNew = H(prev + delta), Σ delta = total, every delta < 2³² (bit decomposition),
//! and root² is bound so the claim root is a constrained public input. H is circom's Poseidon in
//! chunks of 16 ([`poseidon`], native hash from `light-poseidon`, matched by the in-circuit gadget).
//! SettleFL's own circuits over the T×P matrix with EdDSA signatures are in [`circuits`]; this
//! transition circuit is the one proven in every Commit-with-Proof round of the simulation.
//!
//! Prover time of SettleFL's circuits is charged with a constraint-count model: the paper's
//! Challenge circuit has 12,840 constraints at P = 10 participants × T = 10 rounds (README.md),
//! i.e. 128.4 constraints per participant-round, so a commitment covering P participants and T
//! rounds is charged 128.4·P·T constraints × the measured prover time per constraint.

use std::sync::OnceLock;
use std::time::Instant;

use ark_bn254::{Bn254, Fq, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, SynthesisError,
};
use ark_snark::SNARK;
use ark_std::rand::SeedableRng;
use ark_std::rand::rngs::StdRng;
use revm::primitives::{B256, U256};

pub mod circuits;
pub mod eddsa;
pub mod poseidon;
pub mod r1cs;

/// Participants covered by the real circuit.
pub const CIRCUIT_P: usize = 8;
/// Range of a per-round reward in the circuit: 32 bits (of the reward unit).
pub const RANGE_BITS: usize = 32;
/// SettleFL Challenge circuit: 12,840 constraints at P = 10, T = 10 (the paper; README.md).
pub const PAPER_CONSTRAINTS_PER_PARTICIPANT_ROUND: f64 = 12_840.0 / 100.0;
/// Seed of the circuit-specific setup (a fixed public ceremony so the verifying key, and with it
/// the deployed contract, is the same in every run).
const SETUP_SEED: u64 = 0x5e77_1ef1;

/// H(values): circom Poseidon over the values in chunks of 16 ([`poseidon::chunked`]).
pub fn commit_hash(values: &[u64]) -> Fr {
    poseidon::chunked(&values.iter().map(|&v| Fr::from(v)).collect::<Vec<_>>())
}

/// A BN254 scalar as a 256-bit word.
pub fn fr_to_u256(x: Fr) -> U256 {
    U256::from_be_slice(&x.into_bigint().to_bytes_be())
}

fn fq(x: Fq) -> U256 {
    U256::from_be_slice(&x.into_bigint().to_bytes_be())
}

/// `root mod r` as the circuit's public input.
pub fn root_input(root: B256) -> Fr {
    Fr::from_be_bytes_mod_order(root.as_slice())
}

/// The reward-transition circuit (values `None` during setup).
#[derive(Clone)]
pub struct RewardCircuit {
    /// Previous cumulative rewards of the P participants.
    pub prev: Option<Vec<u64>>,
    /// This round's rewards.
    pub delta: Option<Vec<u64>>,
    /// The keccak claim root bound as a public input.
    pub root: Option<B256>,
}

impl RewardCircuit {
    fn blank() -> Self {
        Self {
            prev: None,
            delta: None,
            root: None,
        }
    }
}

impl ConstraintSynthesizer<Fr> for RewardCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let zeros = vec![0; CIRCUIT_P];
        let prev = self.prev.unwrap_or_else(|| zeros.clone());
        let delta = self.delta.unwrap_or(zeros);
        let cum: Vec<u64> = prev.iter().zip(&delta).map(|(a, b)| a + b).collect();
        // Public inputs, in the contract's order.
        let c_prev = r1cs::input(&cs, commit_hash(&prev))?;
        let c_new = r1cs::input(&cs, commit_hash(&cum))?;
        let total = r1cs::input(&cs, Fr::from(delta.iter().sum::<u64>()))?;
        let root = r1cs::input(&cs, root_input(self.root.unwrap_or(B256::ZERO)))?;
        // Private witnesses; each delta < 2³² (bit decomposition).
        let mut prev_n = Vec::with_capacity(CIRCUIT_P);
        let mut cum_n = Vec::with_capacity(CIRCUIT_P);
        let mut delta_n = Vec::with_capacity(CIRCUIT_P);
        for (&p, &d) in prev.iter().zip(&delta) {
            let p = r1cs::witness(&cs, Fr::from(p))?;
            let d = r1cs::witness(&cs, Fr::from(d))?;
            r1cs::to_bits(&cs, &d, RANGE_BITS)?;
            cum_n.push(p.add(&d));
            prev_n.push(p);
            delta_n.push(d);
        }
        r1cs::enforce_eq(&cs, &poseidon::chunked_gadget(&cs, &prev_n)?, &c_prev)?;
        r1cs::enforce_eq(&cs, &poseidon::chunked_gadget(&cs, &cum_n)?, &c_new)?;
        r1cs::enforce_eq(&cs, &r1cs::sum(&delta_n), &total)?;
        r1cs::mul(&cs, &root, &root)?;
        Ok(())
    }
}

/// Keys of the circuit, generated once per process from the fixed setup seed.
pub struct Keys {
    /// Proving key.
    pub pk: ProvingKey<Bn254>,
    /// Verifying key.
    pub vk: VerifyingKey<Bn254>,
    /// Prepared verifying key (native check).
    pub pvk: PreparedVerifyingKey<Bn254>,
    /// Constraints of the circuit.
    pub constraints: usize,
}

/// The process-wide keys (setup runs on first use).
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(SETUP_SEED);
        let (pk, vk) = Groth16::<Bn254>::circuit_specific_setup(RewardCircuit::blank(), &mut rng)
            .expect("setup of a fixed circuit");
        let pvk = Groth16::<Bn254>::process_vk(&vk).expect("vk");
        Keys {
            pk,
            vk,
            pvk,
            constraints: constraint_count(),
        }
    })
}

/// Number of constraints of the circuit (counted by synthesizing it with a witness).
pub fn constraint_count() -> usize {
    let cs = ConstraintSystem::<Fr>::new_ref();
    let c = RewardCircuit {
        prev: Some(vec![0; CIRCUIT_P]),
        delta: Some(vec![0; CIRCUIT_P]),
        root: Some(B256::ZERO),
    };
    c.generate_constraints(cs.clone()).expect("synthesis");
    cs.num_constraints()
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

/// The verifying-key words: α, β, γ, δ, IC₀…ICₙ (24 words for the 4-input transition circuit).
pub fn vk_words(vk: &VerifyingKey<Bn254>) -> Vec<U256> {
    let mut w = Vec::with_capacity(24);
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

/// A proof and its public statement, ready for `CommitProof.commit`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundProof {
    /// A, B, C as 8 words (B in the precompile's order).
    pub words: [U256; 8],
    /// New commitment cNew.
    pub c_new: U256,
    /// Sum of the round's rewards.
    pub total: u64,
    /// Whether arkworks' own verifier accepts it.
    pub native_ok: bool,
    /// Wall-clock proving time on this machine, seconds (not used in simulated time by default).
    pub wall_s: f64,
}

/// Proves the transition `prev → prev + delta` with claim root `root`.
pub fn prove(
    prev: &[u64],
    delta: &[u64],
    root: B256,
    seed: u64,
) -> Result<RoundProof, SynthesisError> {
    let k = keys();
    let mut rng = StdRng::seed_from_u64(seed);
    let circuit = RewardCircuit {
        prev: Some(prev.to_vec()),
        delta: Some(delta.to_vec()),
        root: Some(root),
    };
    let t0 = Instant::now();
    let proof = Groth16::<Bn254>::prove(&k.pk, circuit, &mut rng)?;
    let wall_s = t0.elapsed().as_secs_f64();
    let cum: Vec<u64> = prev.iter().zip(delta).map(|(a, b)| a + b).collect();
    let total: u64 = delta.iter().sum();
    let inputs = [
        commit_hash(prev),
        commit_hash(&cum),
        Fr::from(total),
        root_input(root),
    ];
    let native_ok = Groth16::<Bn254>::verify_with_processed_vk(&k.pvk, &inputs, &proof)?;
    Ok(RoundProof {
        words: proof_words(&proof),
        c_new: fr_to_u256(commit_hash(&cum)),
        total,
        native_ok,
        wall_s,
    })
}
