//! The zero-knowledge side of one Commit-with-Proof job of P participants × T rounds: setup of its
//! Commit, RedeemOneShot and RedeemMultiShot circuits, their verifiers deployed in revm, and the
//! proofs the owner (each epoch) and the participants (each redeem) send.
//!
//! The job's T×P reward matrix (wei, row = round) has the rounds not yet trained as zeros, so every
//! epoch proves the same circuit shape against one verifier. Up to `real_max_constraints` (the
//! Commit circuit's exact count, [`zk::count`]) the circuits are SettleFL's own, over the job's
//! real rewards, keys, payout addresses and signatures. Beyond, the verifiers check real proofs of
//! the [`zk::Binding`] stand-in with the same public inputs — identical verifier gas — and the
//! commitment is the stand-in Poseidon(root mod r, rounds) (a Poseidon commitment over 10⁶ entries
//! per epoch would dominate the run). Prover time always comes from the real circuits' counts.

use ark_bn254::Fr;
use ark_ff::PrimeField;
use ark_relations::gr1cs::SynthesisError;
use revm::primitives::{Address, B256, U256};

use crate::abi::{Tok, u};
use crate::contracts::{Contract, deploy};
use crate::evm::{Evm, EvmError};
use crate::settle::{OWNER, participant};
use crate::zk::circuits::{Circuit, Kind, Settlement};
use crate::zk::poseidon::hash;
use crate::zk::{Binding, Keys, count, fr_to_u256, root_input, vk_words};

/// Verifying-key words `Groth16Verifier` takes (α, β, γ, δ, IC₀…IC₆).
const VK_WORDS: usize = 28;
/// Seed of the circuits' setup (a fixed public ceremony: the verifiers are the same in every run).
const SETUP_SEED: u64 = 0x5e77_1ef1;

/// A proof ready for a contract: its public inputs as words and A, B, C.
#[derive(Debug, Clone, PartialEq)]
pub struct SentProof {
    /// The commitment the proof is about.
    pub commitment: U256,
    /// Redeemed amount, wei (redeem proofs; 0 for Commit).
    pub amount: u128,
    /// A, B, C (B in the precompile's order).
    pub words: [U256; 8],
    /// arkworks' own verifier accepts it.
    pub native_ok: bool,
}

/// Deploys a `Groth16Verifier` for `keys`; returns its address and the deployment gas.
pub fn deploy_verifier(evm: &mut Evm, keys: &Keys) -> Result<(Address, u64), EvmError> {
    let mut words = vk_words(&keys.vk);
    words.resize(VK_WORDS, U256::ZERO);
    let args = [
        Tok::Fixed(words.into_iter().map(Tok::U).collect()),
        u(keys.inputs() as u64),
    ];
    let (addr, r) = deploy(evm, OWNER, Contract::Groth16Verifier, &args)?;
    Ok((addr, r.gas_used))
}

/// A participant's payout address as a circuit input.
pub fn address_fr(a: &Address) -> Fr {
    Fr::from_be_bytes_mod_order(a.as_slice())
}

/// The circuits, keys and constraint counts of one job.
pub struct JobProofs {
    participants: usize,
    rounds: usize,
    /// Whether the circuits are SettleFL's own (else the same-arity stand-in).
    pub real: bool,
    commit: Keys,
    one_shot: Keys,
    multi_shot: Keys,
    /// Constraints of the Commit circuit at P × T.
    pub commit_constraints: usize,
    /// Constraints of RedeemOneShot at P × T.
    pub one_shot_constraints: usize,
    /// Constraints of RedeemMultiShot at P × T.
    pub multi_shot_constraints: usize,
}

fn err(e: SynthesisError) -> EvmError {
    EvmError(format!("prover: {e}"))
}

impl JobProofs {
    /// Sets up the job's three circuits (real ones when the Commit circuit has at most
    /// `real_max_constraints` constraints).
    pub fn new(
        participants: usize,
        rounds: usize,
        real_max_constraints: u64,
    ) -> Result<JobProofs, EvmError> {
        let c = |k| count::constraints(k, participants, rounds).expect("counted kind");
        let commit_constraints = c(Kind::Commit);
        let real = commit_constraints as u64 <= real_max_constraints;
        let mut jp = JobProofs {
            participants,
            rounds,
            real,
            commit: Keys::setup(
                Binding {
                    inputs: vec![Fr::from(0u64); 3],
                },
                SETUP_SEED,
            )
            .map_err(err)?,
            one_shot: Keys::setup(
                Binding {
                    inputs: vec![Fr::from(0u64); 4],
                },
                SETUP_SEED + 1,
            )
            .map_err(err)?,
            multi_shot: Keys::setup(
                Binding {
                    inputs: vec![Fr::from(0u64); 6],
                },
                SETUP_SEED + 2,
            )
            .map_err(err)?,
            commit_constraints,
            one_shot_constraints: c(Kind::RedeemOneShot),
            multi_shot_constraints: c(Kind::RedeemMultiShot),
        };
        if real {
            let blank = vec![0u64; participants * rounds];
            let s = jp.settlement(&blank);
            let setup = |kind, seed| {
                Keys::setup(Circuit::new(kind, &s, 0, rounds, 0, Fr::from(0u64)), seed)
            };
            let commit = setup(Kind::Commit, SETUP_SEED).map_err(err)?;
            let one_shot = setup(Kind::RedeemOneShot, SETUP_SEED + 1).map_err(err)?;
            let multi_shot = setup(Kind::RedeemMultiShot, SETUP_SEED + 2).map_err(err)?;
            jp.commit = commit;
            jp.one_shot = one_shot;
            jp.multi_shot = multi_shot;
        }
        Ok(jp)
    }

    fn settlement(&self, matrix: &[u64]) -> Settlement {
        let addresses = (0..self.participants)
            .map(|p| address_fr(&participant(p)))
            .collect();
        Settlement::new(self.rounds, matrix.to_vec(), addresses, SETUP_SEED)
    }

    /// Deploys the three verifiers; returns (commit, one-shot, multi-shot) and the total gas.
    pub fn deploy(&self, evm: &mut Evm) -> Result<([Address; 3], u64), EvmError> {
        let (a, g1) = deploy_verifier(evm, &self.commit)?;
        let (b, g2) = deploy_verifier(evm, &self.one_shot)?;
        let (c, g3) = deploy_verifier(evm, &self.multi_shot)?;
        Ok(([a, b, c], g1 + g2 + g3))
    }

    fn stand_in_commitment(root: B256, rounds_done: usize) -> Fr {
        hash(&[root_input(root), Fr::from(rounds_done as u64)])
    }

    fn prove(
        &self,
        keys: &Keys,
        real: Option<Circuit>,
        inputs: Vec<Fr>,
        amount: u128,
        seed: u64,
    ) -> Result<SentProof, EvmError> {
        let commitment = fr_to_u256(inputs[0]);
        let (words, native_ok) = match real {
            Some(c) => keys.prove(c, &inputs, seed),
            None => keys.prove(
                Binding {
                    inputs: inputs.clone(),
                },
                &inputs,
                seed,
            ),
        }
        .map_err(err)?;
        Ok(SentProof {
            commitment,
            amount,
            words,
            native_ok,
        })
    }

    /// The owner's proof for the first `rounds_done` rounds of `matrix` (T×P, wei, later rows
    /// zero) with claim root `root`.
    pub fn commit(
        &self,
        matrix: &[u64],
        rounds_done: usize,
        root: B256,
        seed: u64,
    ) -> Result<SentProof, EvmError> {
        let r = root_input(root);
        let rounds = Fr::from(rounds_done as u64);
        if self.real {
            let s = self.settlement(matrix);
            let c = Circuit::new(Kind::Commit, &s, rounds_done, self.rounds, 0, r);
            let inputs = c.public_inputs();
            self.prove(&self.commit, Some(c), inputs, 0, seed)
        } else {
            let c = Self::stand_in_commitment(root, rounds_done);
            self.prove(&self.commit, None, vec![c, rounds, r], 0, seed)
        }
    }

    /// Participant p's redeem proof over rounds [from, to) against the commitment of the first
    /// `to` rounds (`one_shot`: the whole job, from = 0, to = T) of `matrix`; `root` is that
    /// commitment's claim root.
    #[allow(clippy::too_many_arguments)]
    pub fn redeem(
        &self,
        one_shot: bool,
        matrix: &[u64],
        root: B256,
        p: usize,
        from: usize,
        to: usize,
        seed: u64,
    ) -> Result<SentProof, EvmError> {
        let amount: u128 = (from..to)
            .map(|t| u128::from(matrix[t * self.participants + p]))
            .sum();
        let (kind, keys) = if one_shot {
            (Kind::RedeemOneShot, &self.one_shot)
        } else {
            (Kind::RedeemMultiShot, &self.multi_shot)
        };
        if self.real {
            let s = self.settlement(matrix);
            let c = Circuit::new(kind, &s, from, to, p, Fr::from(0u64));
            let inputs = c.public_inputs();
            self.prove(keys, Some(c), inputs, amount, seed)
        } else {
            let c = Self::stand_in_commitment(root, to);
            let who = address_fr(&participant(p));
            let inputs = if one_shot {
                vec![c, Fr::from(p as u64), who, Fr::from(amount)]
            } else {
                vec![
                    c,
                    Fr::from(p as u64),
                    who,
                    Fr::from(from as u64),
                    Fr::from(to as u64),
                    Fr::from(amount),
                ]
            };
            self.prove(keys, None, inputs, amount, seed)
        }
    }
}
