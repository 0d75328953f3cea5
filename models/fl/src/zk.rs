//! The Commit-with-Proof validity proof: a real Groth16 proof over BN254 (arkworks 0.6) of a
//! reward-transition circuit, serialized for the `CommitProof` contract's pairing check.
//!
//! Circuit over `P` participants (public: cPrev, cNew, total, root; private: prev[P], delta[P]):
//! cPrev = H(prev), cNew = H(prev + delta), Σ delta = total, every delta < 2³² (bit decomposition),
//! and root² is bound so the claim root is a constrained public input. H is a MiMC-style chain
//! s ← (s + vᵢ + kᵢ)⁵ (3 constraints per element) — a stand-in for SettleFL's Poseidon, which is
//! not in the allowed dependency set. Constraints: 6P (hashes) + 33P (ranges) + 2.
//!
//! Prover time of SettleFL's circuits is charged with a constraint-count model: the paper's
//! Challenge circuit has 12,840 constraints at P = 10 participants × T = 10 rounds (README.md),
//! i.e. 128.4 constraints per participant-round, so a commitment covering P participants and T
//! rounds is charged 128.4·P·T constraints × the measured prover time per constraint.

use std::sync::OnceLock;
use std::time::Instant;

use ark_bn254::{Bn254, Fq, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField};
use ark_groth16::{Groth16, PreparedVerifyingKey, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, LinearCombination,
    SynthesisError, Variable,
};
use ark_snark::SNARK;
use ark_std::rand::SeedableRng;
use ark_std::rand::rngs::StdRng;
use revm::primitives::{B256, U256};

/// Participants covered by the real circuit.
pub const CIRCUIT_P: usize = 8;
/// Range of a per-round reward in the circuit: 32 bits (of the reward unit).
pub const RANGE_BITS: usize = 32;
/// SettleFL Challenge circuit: 12,840 constraints at P = 10, T = 10 (the paper; README.md).
pub const PAPER_CONSTRAINTS_PER_PARTICIPANT_ROUND: f64 = 12_840.0 / 100.0;
/// Seed of the circuit-specific setup (a fixed public ceremony so the verifying key, and with it
/// the deployed contract, is the same in every run).
const SETUP_SEED: u64 = 0x5e77_1ef1;

fn round_constant(i: usize) -> Fr {
    Fr::from(0x9e37_79b9_u64.wrapping_mul(i as u64 + 1))
}

/// H(values): the MiMC-style chain s ← (s + vᵢ + kᵢ)⁵ from s = 0.
pub fn commit_hash(values: &[u64]) -> Fr {
    values
        .iter()
        .enumerate()
        .fold(Fr::from(0u64), |s, (i, &v)| {
            let t = s + Fr::from(v) + round_constant(i);
            let t2 = t.square();
            t2.square() * t
        })
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

fn hash_gadget(
    cs: &ConstraintSystemRef<Fr>,
    elems: &[LinearCombination<Fr>],
    values: Option<&[u64]>,
) -> Result<(Variable, Option<Fr>), SynthesisError> {
    let mut s_lc = LinearCombination::<Fr>::zero();
    let mut s_val = Some(Fr::from(0u64));
    let mut last = Variable::One;
    for (i, e) in elems.iter().enumerate() {
        let k = round_constant(i);
        let t_val = s_val.zip(values).map(|(s, v)| s + Fr::from(v[i]) + k);
        let t_lc = &s_lc + e + (k, Variable::One);
        let t2 = cs.new_witness_variable(|| {
            t_val
                .map(|t| t.square())
                .ok_or(SynthesisError::AssignmentMissing)
        })?;
        cs.enforce_r1cs_constraint(|| t_lc.clone(), || t_lc.clone(), || t2.into())?;
        let t4 = cs.new_witness_variable(|| {
            t_val
                .map(|t| t.square().square())
                .ok_or(SynthesisError::AssignmentMissing)
        })?;
        cs.enforce_r1cs_constraint(|| t2.into(), || t2.into(), || t4.into())?;
        let s_new = t_val.map(|t| t.square().square() * t);
        let s = cs.new_witness_variable(|| s_new.ok_or(SynthesisError::AssignmentMissing))?;
        cs.enforce_r1cs_constraint(|| t4.into(), || t_lc.clone(), || s.into())?;
        s_lc = s.into();
        s_val = s_new;
        last = s;
    }
    Ok((last, s_val))
}

impl ConstraintSynthesizer<Fr> for RewardCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let miss = SynthesisError::AssignmentMissing;
        let prev = self.prev.as_deref();
        let delta = self.delta.as_deref();
        let cum: Option<Vec<u64>> = prev
            .zip(delta)
            .map(|(p, d)| p.iter().zip(d).map(|(a, b)| a + b).collect());
        // Public inputs, in the contract's order.
        let c_prev = cs.new_input_variable(|| prev.map(commit_hash).ok_or(miss))?;
        let c_new = cs.new_input_variable(|| cum.as_deref().map(commit_hash).ok_or(miss))?;
        let total =
            cs.new_input_variable(|| delta.map(|d| Fr::from(d.iter().sum::<u64>())).ok_or(miss))?;
        let root_val = self.root.map(root_input);
        let root = cs.new_input_variable(|| root_val.ok_or(miss))?;
        // Private witnesses.
        let mut prev_lc = Vec::with_capacity(CIRCUIT_P);
        let mut cum_lc = Vec::with_capacity(CIRCUIT_P);
        let mut delta_sum = LinearCombination::<Fr>::zero();
        for i in 0..CIRCUIT_P {
            let p = cs.new_witness_variable(|| prev.map(|v| Fr::from(v[i])).ok_or(miss))?;
            let d = cs.new_witness_variable(|| delta.map(|v| Fr::from(v[i])).ok_or(miss))?;
            // Range: delta = Σ bⱼ 2ʲ with bⱼ ∈ {0, 1}.
            let mut bits = LinearCombination::<Fr>::zero();
            let mut coeff = Fr::from(1u64);
            for j in 0..RANGE_BITS {
                let b = cs.new_witness_variable(|| {
                    delta.map(|v| Fr::from((v[i] >> j) & 1)).ok_or(miss)
                })?;
                cs.enforce_r1cs_constraint(
                    || b.into(),
                    || LinearCombination::from(Variable::One) - b,
                    LinearCombination::zero,
                )?;
                bits += (coeff, b);
                coeff.double_in_place();
            }
            cs.enforce_r1cs_constraint(|| bits, || Variable::One.into(), || d.into())?;
            prev_lc.push(LinearCombination::from(p));
            cum_lc.push(LinearCombination::from(p) + d);
            delta_sum += (Fr::from(1u64), d);
        }
        let (hp, _) = hash_gadget(&cs, &prev_lc, prev)?;
        cs.enforce_r1cs_constraint(|| hp.into(), || Variable::One.into(), || c_prev.into())?;
        let (hn, _) = hash_gadget(&cs, &cum_lc, cum.as_deref())?;
        cs.enforce_r1cs_constraint(|| hn.into(), || Variable::One.into(), || c_new.into())?;
        cs.enforce_r1cs_constraint(|| delta_sum, || Variable::One.into(), || total.into())?;
        let root_sq = cs.new_witness_variable(|| root_val.map(|r| r.square()).ok_or(miss))?;
        cs.enforce_r1cs_constraint(|| root.into(), || root.into(), || root_sq.into())?;
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

/// The contract's 24 verifying-key words: α, β, γ, δ, IC₀…IC₄.
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
    let mut words = [U256::ZERO; 8];
    words[..2].copy_from_slice(&g1(&proof.a));
    words[2..6].copy_from_slice(&g2(&proof.b));
    words[6..].copy_from_slice(&g1(&proof.c));
    Ok(RoundProof {
        words,
        c_new: fr_to_u256(commit_hash(&cum)),
        total,
        native_ok,
        wall_s,
    })
}
