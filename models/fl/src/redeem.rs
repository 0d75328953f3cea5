//! SettleFL's redeem payouts executed in revm: real Groth16 proofs of the RedeemOneShot and
//! RedeemMultiShot circuits ([`crate::zk::circuits`]) verified on chain by `Redeem.sol`
//! (`Groth16Verifier` + `SettleRedeem`), gas per participant from the receipts.
//!
//! The verifier's gas depends on the number of public inputs (one ecMul + ecAdd each, EIP-1108),
//! not on the circuit's size, so a small job (P participants × T rounds) measures the per-call gas
//! of any size; the multi-shot participant redeems twice (rounds [0, ⌈T/2⌉) and [⌈T/2⌉, T)).

use revm::primitives::{Address, Bytes, U256};

use crate::abi::{self, Tok, u};
use crate::contracts::{Contract, deploy};
use crate::evm::{Call, Evm, EvmError, revert_reason};
use crate::proofs::{self, address_fr};
use crate::settle::{OWNER, participant};
use crate::zk::circuits::{Circuit, Kind, Settlement};
use crate::zk::{Keys, fr_to_u256};

/// Gas of the redeem payouts, measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RedeemGas {
    /// Mean gas of one `redeem_one_shot` transaction (= per participant).
    pub one_shot: f64,
    /// Mean gas per participant of `redeem_multi_shot` (two transactions each when T ≥ 2).
    pub multi_shot_per_participant: f64,
    /// Mean gas of one `redeem_multi_shot` transaction.
    pub multi_shot_per_call: f64,
    /// Gas of deploying the two verifiers and the redeem contract.
    pub deploy: u64,
    /// Every participant received its rewards from both flows (every proof verified on chain,
    /// or the transaction reverted and `measure` failed).
    pub all_paid: bool,
}

fn err(e: impl std::fmt::Display) -> EvmError {
    EvmError(format!("redeem: {e}"))
}

fn deploy_verifier(
    evm: &mut Evm,
    circuit: &Circuit,
    seed: u64,
) -> Result<(Address, Keys, u64), EvmError> {
    let keys = Keys::setup(circuit.clone(), seed).map_err(err)?;
    let (addr, gas) = proofs::deploy_verifier(evm, &keys)?;
    Ok((addr, keys, gas))
}

/// One redeem transaction from participant p; returns its gas.
fn redeem(
    evm: &mut Evm,
    contract: Address,
    keys: &Keys,
    circuit: Circuit,
    job: u64,
    seed: u64,
) -> Result<u64, EvmError> {
    let inputs = circuit.public_inputs();
    let p = circuit.participant;
    let who = participant(p);
    let amount = Tok::U(fr_to_u256(*inputs.last().expect("amount is public")));
    let kind = circuit.kind;
    let round_end = circuit.round_end as u64;
    let (words, _) = keys.prove(circuit, &inputs, seed).map_err(err)?;
    let words = Tok::Fixed(words.into_iter().map(Tok::U).collect());
    let data = match kind {
        Kind::RedeemOneShot => abi::call(
            "redeem_one_shot(uint256,uint256,address,uint256,uint256[8])",
            &[u(job), u(p as u64), Tok::A(who), amount, words],
        ),
        _ => abi::call(
            "redeem_multi_shot(uint256,uint256,address,uint256,uint256,uint256[8])",
            &[
                u(job),
                u(p as u64),
                Tok::A(who),
                u(round_end),
                amount,
                words,
            ],
        ),
    };
    let r = evm.execute(
        &Call {
            from: who,
            to: Some(contract),
            data,
            value: U256::ZERO,
        },
        0,
    )?;
    if !r.success {
        return Err(err(format!(
            "{kind:?} of participant {p}: {}",
            revert_reason(&r.output)
        )));
    }
    Ok(r.gas_used)
}

/// Runs both redeem flows for a job of `participants` × `rounds` and measures their gas.
pub fn measure(participants: usize, rounds: usize, seed: u64) -> Result<RedeemGas, EvmError> {
    let addrs: Vec<Address> = (0..participants).map(participant).collect();
    let rewards: Vec<u64> = (0..participants * rounds)
        .map(|k| 1 + (k as u64 * 7_919 + seed) % 1_000)
        .collect();
    let total: u64 = rewards.iter().sum();
    let s = Settlement::new(
        rounds,
        rewards,
        addrs.iter().map(address_fr).collect(),
        seed,
    );
    let circuit =
        |kind, p, from, to| Circuit::new(kind, &s, from, to, p, ark_bn254::Fr::from(0u64));
    let mut evm = Evm::new();
    evm.fund(OWNER, U256::from(10u64).pow(U256::from(24u64)));
    let (v1, pk1, g1) =
        deploy_verifier(&mut evm, &circuit(Kind::RedeemOneShot, 0, 0, rounds), seed)?;
    let (v2, pk2, g2) = deploy_verifier(
        &mut evm,
        &circuit(Kind::RedeemMultiShot, 0, 0, rounds),
        seed + 1,
    )?;
    let (redeem_addr, r) = deploy(
        &mut evm,
        OWNER,
        Contract::SettleRedeem,
        &[Tok::A(v1), Tok::A(v2), u(0)],
    )?;
    let owner_call = |evm: &mut Evm, data: Bytes, value: U256| -> Result<(), EvmError> {
        let r = evm.execute(
            &Call {
                from: OWNER,
                to: Some(redeem_addr),
                data,
                value,
            },
            0,
        )?;
        r.success
            .then_some(())
            .ok_or_else(|| err(revert_reason(&r.output)))
    };
    let c = Tok::U(fr_to_u256(s.commitment()));
    for job in 0..2 {
        owner_call(&mut evm, abi::call("new_job()", &[]), U256::from(total))?;
        owner_call(
            &mut evm,
            abi::call(
                "commit(uint256,uint256,uint256)",
                &[u(job), c.clone(), u(rounds as u64)],
            ),
            U256::ZERO,
        )?;
    }
    let (mut one, mut multi, mut multi_calls, mut ok) = (0u64, 0u64, 0usize, true);
    let half = rounds.div_ceil(2);
    for (p, addr) in addrs.iter().enumerate() {
        let c1 = circuit(Kind::RedeemOneShot, p, 0, rounds);
        one += redeem(&mut evm, redeem_addr, &pk1, c1, 0, seed + 10 + p as u64)?;
        let mut from = 0;
        for to in [half, rounds] {
            if to > from {
                let c2 = circuit(Kind::RedeemMultiShot, p, from, to);
                multi += redeem(&mut evm, redeem_addr, &pk2, c2, 1, seed + 1_000 + p as u64)?;
                multi_calls += 1;
                from = to;
            }
        }
        let due = U256::from(2 * s.redeem_amount(p, 0, rounds));
        ok &= evm.balance(*addr) == due;
    }
    let n = participants as f64;
    Ok(RedeemGas {
        one_shot: one as f64 / n,
        multi_shot_per_participant: multi as f64 / n,
        multi_shot_per_call: multi as f64 / multi_calls as f64,
        deploy: g1 + g2 + r.gas_used,
        all_paid: ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redeem_proofs_verify_on_chain_and_pay_everyone() {
        let g = measure(2, 2, 3).unwrap();
        assert!(g.all_paid, "{g:?}");
        // A Groth16 check with 4 inputs costs at least the pairing (4·34,000 + 45,000, EIP-1108)
        // plus 4 ecMul (6,000 each) plus the 21,000 base.
        assert!(g.one_shot > 226_000.0, "{g:?}");
        // Six inputs: two more ecMul per call.
        assert!(g.multi_shot_per_call > g.one_shot, "{g:?}");
    }
}
