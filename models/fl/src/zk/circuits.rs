//! SettleFL's circuits over a committed T×P reward matrix R (row t = round, column p = participant).
//!
//! Commitment C = H₃(chunked(R), chunked(list), salt): the matrix hashed in chunks of 16, the
//! participant list (each participant's Baby Jubjub key Aₓ, Aᵧ and payout address) hashed the same
//! way, and a salt ([`super::poseidon`]). Participant p signs its column digest Mₚ = chunked(R[·][p]) with
//! EdDSA-Poseidon ([`super::eddsa`]). The paper names the circuits and their sizes at P = T = 10
//! (PAPERS.md) but the listing does not give their statements; ours, inferred from the protocol:
//!
//! - **Commit** (Commit-with-Proof): public (C, rounds, root): C opens to R, every participant
//!   signed its column, 0 ≤ rounds ≤ T and every row t ≥ rounds (not yet trained) is zero, so a
//!   commit cannot carry rewards of rounds still to come. The keccak claim root of the Merkle
//!   payouts is bound to the proof as a public input (a proof for one root does not verify for
//!   another) but not derived from R: a keccak Merkle tree in R1CS costs ≈ 150k constraints per
//!   hash, so the Merkle payout still trusts the owner's leaves (a participant's recourse is a
//!   redeem proof, which is checked against C itself).
//! - **Challenge**: public (C, t, p, v): C opens to R and R[t][p] ≠ v (v from p's own receipt).
//! - **Counter**: public (C, t, p): C opens to R and p signed the column holding R[t][p].
//! - **RedeemOneShot**: public (C, p, recipient, amount): recipient is p's listed address and
//!   amount = Σₜ R[t][p].
//! - **RedeemMultiShot**: public (C, p, recipient, t₀, t₁, amount): as one-shot over
//!   t₀ ≤ t < t₁.

use ark_bn254::Fr;
use ark_ff::{AdditiveGroup, Field};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, SynthesisError,
};

use super::eddsa::{Keypair, PointVar, Signature, alloc_signature, verify_gadget};
use super::poseidon::{chunked, chunked_gadget, hash, hash_gadget};
use super::r1cs::{
    Num, R, enforce, enforce_eq, enforce_nonzero, input, is_equal, mul, sum, witness,
};

/// The data behind one commitment: the reward matrix, the participants' keys and signatures, a salt.
#[derive(Clone, Debug)]
pub struct Settlement {
    /// Participants P.
    pub participants: usize,
    /// Rounds T.
    pub rounds: usize,
    /// Rewards, row-major (index t·P + p).
    pub rewards: Vec<u64>,
    /// Key pairs of the participants (the secret half only signs, natively).
    pub keys: Vec<Keypair>,
    /// Each participant's payout address (a 160-bit integer).
    pub addresses: Vec<Fr>,
    /// Each participant's signature on its column digest.
    pub signatures: Vec<Signature>,
    /// Salt of the commitment.
    pub salt: Fr,
}

impl Settlement {
    /// A settlement with deterministic keys, the given rewards (row-major, T·P entries) and
    /// payout addresses (P of them).
    pub fn new(rounds: usize, rewards: Vec<u64>, addresses: Vec<Fr>, seed: u64) -> Self {
        let participants = addresses.len();
        assert_eq!(rewards.len(), participants * rounds, "T·P rewards");
        let keys: Vec<Keypair> = (0..participants)
            .map(|p| Keypair::from_seed(seed.wrapping_mul(1_000_003).wrapping_add(p as u64)))
            .collect();
        let mut s = Settlement {
            participants,
            rounds,
            rewards,
            keys,
            addresses,
            signatures: Vec::new(),
            salt: hash(&[Fr::from(seed), Fr::from(0x5a17u64)]),
        };
        s.signatures = (0..participants)
            .map(|p| s.keys[p].sign(s.column_digest(p)))
            .collect();
        s
    }

    fn column(&self, p: usize) -> Vec<u64> {
        (0..self.rounds)
            .map(|t| self.rewards[t * self.participants + p])
            .collect()
    }

    /// Mₚ: the digest participant p signs.
    pub fn column_digest(&self, p: usize) -> Fr {
        chunked(&self.column(p).into_iter().map(Fr::from).collect::<Vec<_>>())
    }

    fn list(&self) -> Vec<Fr> {
        self.keys
            .iter()
            .zip(&self.addresses)
            .flat_map(|(k, a)| [k.public.x, k.public.y, *a])
            .collect()
    }

    /// The commitment C.
    pub fn commitment(&self) -> Fr {
        let m: Vec<Fr> = self.rewards.iter().map(|&r| Fr::from(r)).collect();
        hash(&[chunked(&m), chunked(&self.list()), self.salt])
    }

    /// Σ_{t₀ ≤ t < t₁} R[t][p].
    pub fn redeem_amount(&self, p: usize, t0: usize, t1: usize) -> u64 {
        self.column(p)[t0..t1].iter().sum()
    }
}

/// The commitment opened inside a circuit.
struct Opened {
    entries: Vec<Num>,
    keys: Vec<PointVar>,
    addresses: Vec<Num>,
}

fn open(cs: &ConstraintSystemRef<Fr>, s: &Settlement, c: &Num) -> R<Opened> {
    let entries: Vec<Num> = s
        .rewards
        .iter()
        .map(|&r| witness(cs, Fr::from(r)))
        .collect::<R<_>>()?;
    let keys: Vec<PointVar> = s
        .keys
        .iter()
        .map(|k| {
            Ok(PointVar {
                x: witness(cs, k.public.x)?,
                y: witness(cs, k.public.y)?,
            })
        })
        .collect::<R<_>>()?;
    let addresses: Vec<Num> = s
        .addresses
        .iter()
        .map(|&a| witness(cs, a))
        .collect::<R<_>>()?;
    let list: Vec<Num> = keys
        .iter()
        .zip(&addresses)
        .flat_map(|(k, a)| [k.x.clone(), k.y.clone(), a.clone()])
        .collect();
    let salt = witness(cs, s.salt)?;
    let hm = chunked_gadget(cs, &entries)?;
    let hl = chunked_gadget(cs, &list)?;
    let commitment = hash_gadget(cs, &[hm, hl, salt])?;
    enforce_eq(cs, &commitment, c)?;
    Ok(Opened {
        entries,
        keys,
        addresses,
    })
}

/// One-hot selectors eq_k = [idx = k], k < n, constrained to sum to 1 (idx must be in range).
fn one_hot(cs: &ConstraintSystemRef<Fr>, idx: &Num, n: usize) -> R<Vec<Num>> {
    let sel: Vec<Num> = (0..n)
        .map(|k| is_equal(cs, idx, &Num::constant(Fr::from(k as u64))))
        .collect::<R<_>>()?;
    enforce_eq(cs, &sum(&sel), &Num::constant(Fr::ONE))?;
    Ok(sel)
}

/// Σₖ sel_k · xₖ.
fn select(cs: &ConstraintSystemRef<Fr>, sel: &[Num], xs: &[Num]) -> R<Num> {
    let terms: Vec<Num> = sel
        .iter()
        .zip(xs)
        .map(|(s, x)| mul(cs, s, x))
        .collect::<R<_>>()?;
    Ok(sum(&terms))
}

/// Column p of the opened matrix, selected by the one-hot `sel_p`.
fn column(cs: &ConstraintSystemRef<Fr>, s: &Settlement, o: &Opened, sel_p: &[Num]) -> R<Vec<Num>> {
    let p_n = s.participants;
    (0..s.rounds)
        .map(|t| select(cs, sel_p, &o.entries[t * p_n..(t + 1) * p_n]))
        .collect()
}

/// Which SettleFL circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Commit-with-Proof: opening plus every participant's signature.
    Commit,
    /// Challenge: R[t][p] ≠ v.
    Challenge,
    /// Counter: p signed the column holding R[t][p].
    Counter,
    /// RedeemOneShot: amount = Σₜ R[t][p].
    RedeemOneShot,
    /// RedeemMultiShot: amount = Σ_{t₀ ≤ t < t₁} R[t][p].
    RedeemMultiShot,
}

impl Kind {
    /// All circuits.
    pub const ALL: [Kind; 5] = [
        Kind::Commit,
        Kind::Challenge,
        Kind::Counter,
        Kind::RedeemOneShot,
        Kind::RedeemMultiShot,
    ];

    /// Name used in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Challenge => "challenge",
            Kind::Counter => "counter",
            Kind::RedeemOneShot => "redeem_one_shot",
            Kind::RedeemMultiShot => "redeem_multi_shot",
        }
    }
}

/// One instance of a SettleFL circuit: the settlement and the statement's round, participant and
/// claimed value (which of them are used depends on the kind).
#[derive(Clone, Debug)]
pub struct Circuit {
    /// Which circuit.
    pub kind: Kind,
    /// The committed data (private witness).
    pub settlement: Settlement,
    /// Round t (Challenge, Counter) or t₀ (RedeemMultiShot).
    pub round: usize,
    /// t₁ (RedeemMultiShot).
    pub round_end: usize,
    /// Participant p.
    pub participant: usize,
    /// Claimed value v (Challenge).
    pub claimed: u64,
    /// Claim root bound by the Commit circuit (`root mod r`).
    pub root: Fr,
}

impl Circuit {
    /// Circuit `kind` over `settlement` for participant `participant` and rounds `round..round_end`
    /// (one round: `round_end` unused), no claimed value, claim root `root`.
    pub fn new(
        kind: Kind,
        settlement: &Settlement,
        round: usize,
        round_end: usize,
        participant: usize,
        root: Fr,
    ) -> Self {
        Circuit {
            kind,
            settlement: settlement.clone(),
            round,
            round_end,
            participant,
            claimed: 0,
            root,
        }
    }

    /// The public inputs in order.
    pub fn public_inputs(&self) -> Vec<Fr> {
        let s = &self.settlement;
        let c = s.commitment();
        let (t, p) = (
            Fr::from(self.round as u64),
            Fr::from(self.participant as u64),
        );
        match self.kind {
            Kind::Commit => vec![c, t, self.root],
            Kind::Challenge => vec![c, t, p, Fr::from(self.claimed)],
            Kind::Counter => vec![c, t, p],
            Kind::RedeemOneShot => vec![
                c,
                p,
                s.addresses[self.participant],
                Fr::from(s.redeem_amount(self.participant, 0, s.rounds)),
            ],
            Kind::RedeemMultiShot => vec![
                c,
                p,
                s.addresses[self.participant],
                t,
                Fr::from(self.round_end as u64),
                Fr::from(s.redeem_amount(self.participant, self.round, self.round_end)),
            ],
        }
    }
}

impl ConstraintSynthesizer<Fr> for Circuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let s = &self.settlement;
        let (p_n, t_n) = (s.participants, s.rounds);
        let pubs: Vec<Num> = self
            .public_inputs()
            .into_iter()
            .map(|x| input(&cs, x))
            .collect::<R<_>>()?;
        let o = open(&cs, s, &pubs[0])?;
        match self.kind {
            Kind::Commit => {
                // rounds ∈ [0, T]; after_t = [rounds ≤ t] from the one-hot's prefix sums; each
                // entry of an untrained row is zero (one constraint per entry).
                let at = one_hot(&cs, &pubs[1], t_n + 1)?;
                let mut after = Num::constant(Fr::ZERO);
                for (sel, row) in at.iter().zip(o.entries.chunks(p_n.max(1))) {
                    after = after.add(sel);
                    for entry in row {
                        enforce(&cs, &after, entry, &Num::constant(Fr::ZERO))?;
                    }
                }
                mul(&cs, &pubs[2], &pubs[2])?;
                for p in 0..p_n {
                    let col: Vec<Num> = (0..t_n).map(|t| o.entries[t * p_n + p].clone()).collect();
                    let m = chunked_gadget(&cs, &col)?;
                    let (r8, sig_s) = alloc_signature(&cs, &s.signatures[p])?;
                    verify_gadget(&cs, &o.keys[p], &m, &r8, &sig_s)?;
                }
            }
            Kind::Challenge => {
                let idx = pubs[1].scale(Fr::from(p_n as u64)).add(&pubs[2]);
                let sel = one_hot(&cs, &idx, t_n * p_n)?;
                let entry = select(&cs, &sel, &o.entries)?;
                enforce_nonzero(&cs, &entry.sub(&pubs[3]))?;
            }
            Kind::Counter => {
                let sel_p = one_hot(&cs, &pubs[2], p_n)?;
                let sel_t = one_hot(&cs, &pubs[1], t_n)?;
                let col = column(&cs, s, &o, &sel_p)?;
                // The challenged entry exists in the column (binds t to the statement).
                select(&cs, &sel_t, &col)?;
                let m = chunked_gadget(&cs, &col)?;
                let ax = select(
                    &cs,
                    &sel_p,
                    &o.keys.iter().map(|k| k.x.clone()).collect::<Vec<_>>(),
                )?;
                let ay = select(
                    &cs,
                    &sel_p,
                    &o.keys.iter().map(|k| k.y.clone()).collect::<Vec<_>>(),
                )?;
                let (r8, sig_s) = alloc_signature(&cs, &s.signatures[self.participant])?;
                verify_gadget(&cs, &PointVar { x: ax, y: ay }, &m, &r8, &sig_s)?;
            }
            Kind::RedeemOneShot => {
                let sel_p = one_hot(&cs, &pubs[1], p_n)?;
                enforce_eq(&cs, &select(&cs, &sel_p, &o.addresses)?, &pubs[2])?;
                let col = column(&cs, s, &o, &sel_p)?;
                enforce_eq(&cs, &sum(&col), &pubs[3])?;
            }
            Kind::RedeemMultiShot => {
                let sel_p = one_hot(&cs, &pubs[1], p_n)?;
                enforce_eq(&cs, &select(&cs, &sel_p, &o.addresses)?, &pubs[2])?;
                let col = column(&cs, s, &o, &sel_p)?;
                // mask_t = [t₀ ≤ t] − [t₁ ≤ t] from prefix sums of one-hots over 0..=T.
                let from = one_hot(&cs, &pubs[3], t_n + 1)?;
                let to = one_hot(&cs, &pubs[4], t_n + 1)?;
                let mut started = Num::constant(Fr::ZERO);
                let mut ended = Num::constant(Fr::ZERO);
                let mut terms = Vec::with_capacity(t_n);
                for t in 0..t_n {
                    started = started.add(&from[t]);
                    ended = ended.add(&to[t]);
                    terms.push(mul(&cs, &started.sub(&ended), &col[t])?);
                }
                // t₀ < t₁ is the contract's check (it keeps each participant's redeemed-up-to round).
                enforce_eq(&cs, &sum(&terms), &pubs[5])?;
            }
        }
        Ok(())
    }
}

/// Constraints of a circuit and whether its witness satisfies it (synthesis only, no proving).
pub fn synthesize(c: Circuit) -> Result<(usize, bool), SynthesisError> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    c.generate_constraints(cs.clone())?;
    Ok((cs.num_constraints(), cs.is_satisfied()?))
}

/// A sample instance of each kind at P participants and T rounds (rewards from a fixed pattern,
/// every round trained).
pub fn sample(kind: Kind, participants: usize, rounds: usize) -> Circuit {
    let rewards: Vec<u64> = (0..participants * rounds)
        .map(|k| 1 + (k as u64 * 7_919) % 1_000)
        .collect();
    let addresses = (0..participants)
        .map(|p| Fr::from(0xa000 + p as u64))
        .collect();
    let settlement = Settlement::new(rounds, rewards, addresses, 11);
    let p = participants - 1;
    let claimed = settlement.rewards[p] + 1;
    Circuit {
        kind,
        settlement,
        // Commit: every round trained; the others: round 0.
        round: if kind == Kind::Commit { rounds } else { 0 },
        round_end: rounds,
        participant: p,
        claimed,
        root: Fr::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_circuit_is_satisfied_and_a_false_statement_is_not() {
        for kind in Kind::ALL {
            let (n, ok) = synthesize(sample(kind, 2, 2)).unwrap();
            assert!(ok, "{kind:?}");
            assert!(n > 1_000, "{kind:?}: {n}");
        }
        // Challenge with the true value: R[t][p] = v must fail.
        let mut c = sample(Kind::Challenge, 2, 2);
        c.claimed = c.settlement.rewards[c.participant];
        assert!(!synthesize(c).unwrap().1);
        // Counter with a signature from another participant must fail.
        let mut c = sample(Kind::Counter, 2, 2);
        c.settlement.signatures.swap(0, 1);
        assert!(!synthesize(c).unwrap().1);
        // Commit: rows 0..rounds hold rewards, later rows must be zero.
        let mut c = sample(Kind::Commit, 2, 3);
        let trained = 2 * 2;
        c.settlement = Settlement::new(
            3,
            (0..6)
                .map(|k| if k < trained { 5 + k } else { 0 })
                .collect(),
            c.settlement.addresses.clone(),
            11,
        );
        c.round = 2;
        assert!(synthesize(c.clone()).unwrap().1);
        c.round = 1; // claims one trained round while row 1 holds rewards
        assert!(!synthesize(c.clone()).unwrap().1);
        c.round = 4; // beyond T
        assert!(!synthesize(c).unwrap().1);
        // Multi-shot over rounds 1..2 only.
        let mut c = sample(Kind::RedeemMultiShot, 2, 2);
        c.round = 1;
        assert!(synthesize(c).unwrap().1);
    }
}
