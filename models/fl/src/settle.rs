//! SettleFL reward settlement on the simulated chain: the job owner (aggregator), the watchers and
//! the participants as agents submitting real contract calls, executed in revm block by block.
//! [`Settler`] learns each FL round when it closes and produces one block per call: the
//! co-simulation ([`super::cosim`]) drives it from a nexosim model on the network's clock,
//! [`settle`] replays a finished run through it.
//!
//! * `onchain`: every round the owner writes each rewarded participant's amount into storage
//!   (`commit` in batches), then `reward_init` and batched `reward_pay_multi`.
//! * `commit-challenge`: every epoch (`commit_every` rounds) the owner commits the keccak Merkle
//!   roots of the cumulative rewards and of the epoch's rewards with a bond. With probability
//!   `dishonest_prob` it inflates one colluder's cumulative leaf. Honest watchers recompute the
//!   trees from the published data and, on a mismatch, send `challenge` with the three Merkle
//!   openings; the contract slashes the bond. The owner then `counter`s with a corrected root and
//!   re-commits the later epochs. A round is final one challenge window after its (valid) commit.
//! * `commit-proof`: every epoch the owner proves SettleFL's signed Commit circuit over the job's
//!   T×P reward matrix (rounds not yet trained are zero) with Groth16 ([`super::proofs`]: real
//!   circuits at small P × T, a same-arity stand-in beyond) and commits (C, rounds, root, proof);
//!   the contract's verifier runs the pairing check. The commit is sent when the simulated prover
//!   finishes: exact constraint count of the circuit at P × T times the prover time per
//!   constraint. A tampered root fails verification (the transaction reverts and the owner
//!   resubmits). Final at inclusion.
//!
//! Payouts are claimed with Merkle proofs against the final root (commit-challenge, commit-proof
//! with `payout: merkle`), from stored balances (onchain), or — commit-proof — by the participants'
//! own redeem proofs (`redeem-one-shot` after the job closes; `redeem-multi-shot` after every
//! commit, for the rounds it covers), each sent when that participant's simulated prover finishes.

use std::collections::BTreeMap;

use rand::Rng as _;
use revm::primitives::{Address, B256, Bytes, U256};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::experiment::RunError;
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

use super::abi::{self, Tok, u};
use super::chain::{BlockInfo, Chain, ChainConfig, Included, Pending};
use super::contracts::{Contract, deploy};
use super::evm::{Call, Evm, EvmError};
use super::merkle::{MerkleTree, depth_for, leaf};
use super::network::{NetworkRun, RoundRecord};
use super::proofs::{JobProofs, SentProof};
use super::reward_delay::RewardDelays;
use super::rewards::{GWEI, round_rewards};

/// Settlement protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Rewards written per participant per round in contract storage.
    Onchain,
    /// Optimistic Merkle-root commitments with fraud proofs.
    CommitChallenge,
    /// Commitments carrying a Groth16 validity proof.
    CommitProof,
}

/// How commit-with-proof pays the participants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Payout {
    /// The owner pays batched Merkle claims against the last root (every protocol).
    #[default]
    Merkle,
    /// Each participant redeems its whole reward with one RedeemOneShot proof after the job closes.
    RedeemOneShot,
    /// Each participant redeems the rounds of every commit with a RedeemMultiShot proof.
    RedeemMultiShot,
}

/// Settlement parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleConfig {
    /// Protocol.
    pub protocol: Protocol,
    /// Reward budget deposited with `new_job`, ETH.
    #[serde(default = "one")]
    pub budget_eth: f64,
    /// Rounds per commitment (epoch length T) for commit-challenge and commit-proof.
    #[serde(default = "one_u")]
    pub commit_every: u32,
    /// Participants per `commit` transaction of the onchain baseline.
    #[serde(default = "batch")]
    pub onchain_batch: u32,
    /// Participants per `reward_pay_multi` transaction.
    #[serde(default = "batch")]
    pub payout_batch: u32,
    /// Aggregator bond of commit-challenge, ETH.
    #[serde(default = "one")]
    pub bond_eth: f64,
    /// Challenge window, seconds.
    #[serde(default = "window")]
    pub challenge_window_s: f64,
    /// Delay between `reward_init` and the first payout, seconds.
    #[serde(default = "pay_delay")]
    pub pay_delay_s: f64,
    /// Probability that the aggregator commits a wrong root (per commitment).
    #[serde(default)]
    pub dishonest_prob: f64,
    /// Watchers of commit-challenge.
    #[serde(default = "three")]
    pub watchers: u32,
    /// How many of them are honest (the others collude with the aggregator).
    #[serde(default = "one_u")]
    pub honest_watchers: u32,
    /// Time for a watcher to rebuild the trees after a commit is included, seconds (watcher w
    /// takes (1 + w/2) times this).
    #[serde(default = "watch_delay")]
    pub watcher_delay_s: f64,
    /// Owner reaction time after a slash or a rejected proof, seconds.
    #[serde(default = "react")]
    pub aggregator_delay_s: f64,
    /// Prover time per constraint, µs (measured for the real circuit; see README).
    #[serde(default = "us_per_constraint")]
    pub prover_us_per_constraint: f64,
    /// Payouts of commit-proof (the other protocols pay Merkle claims or stored balances).
    #[serde(default)]
    pub payout: Payout,
    /// Largest Commit circuit (constraints at the job's P × T) proven for real in a run; larger
    /// jobs prove the same-arity stand-in ([`super::proofs`]).
    #[serde(default = "real_max")]
    pub real_proof_max_constraints: u64,
    /// Feedback of the chain on training, off (0) by default: after a round that ends an epoch
    /// the coordinator opens the next round only once that epoch's commitment is included on
    /// chain (onchain: the round's last write), waiting at most this long after the round's
    /// close, seconds. A slashed commitment is waited for again until its counter is included.
    #[serde(default)]
    pub commit_wait_max_s: f64,
}

fn real_max() -> u64 {
    30_000
}

fn one() -> f64 {
    1.0
}
fn one_u() -> u32 {
    1
}
fn three() -> u32 {
    3
}
fn batch() -> u32 {
    250
}
fn window() -> f64 {
    3600.0
}
fn pay_delay() -> f64 {
    600.0
}
fn watch_delay() -> f64 {
    30.0
}
fn react() -> f64 {
    12.0
}
/// Single-thread Groth16 (arkworks 0.6, BN254) proving CPU time per constraint of our Commit
/// circuit, measured on the 2-core development machine (x86-64, arkworks built at opt-level 2):
/// slope 60.7 µs of a line through P = 1, 2, 4 × T = 2 (8,752 / 15,536 / 29,485 constraints:
/// 0.53 / 0.78 / 1.76 s CPU), `sysim run scenarios/fl/circuits.yaml`, metric
/// `prover_us_per_constraint_fit`. PAPERS.md names no prover machine for the paper (Circom +
/// Groth16), so the paper's prover speed is unknown; a multi-threaded or GPU prover would be faster.
pub const MEASURED_US_PER_CONSTRAINT: f64 = 60.0;
fn us_per_constraint() -> f64 {
    MEASURED_US_PER_CONSTRAINT
}

impl Validate for SettleConfig {
    fn validate(&self, c: &mut Checks) {
        c.positive("budget_eth", self.budget_eth);
        c.positive("bond_eth", self.bond_eth);
        c.positive("challenge_window_s", self.challenge_window_s);
        c.positive("prover_us_per_constraint", self.prover_us_per_constraint);
        c.non_negative("pay_delay_s", self.pay_delay_s);
        c.non_negative("watcher_delay_s", self.watcher_delay_s);
        c.non_negative("aggregator_delay_s", self.aggregator_delay_s);
        c.non_negative("commit_wait_max_s", self.commit_wait_max_s);
        if self.budget_eth > 4.0 {
            c.fail(
                "budget_eth",
                format!(
                    "must be ≤ 4 (per-round rewards must fit the circuit's 32-bit gwei range), got {}",
                    self.budget_eth
                ),
            );
        }
        if !(0.0..1.0).contains(&self.dishonest_prob) {
            c.fail(
                "dishonest_prob",
                format!("must be in [0, 1), got {}", self.dishonest_prob),
            );
        }
        c.at_least("commit_every", self.commit_every, 1);
        c.at_least("onchain_batch", self.onchain_batch, 1);
        c.at_least("payout_batch", self.payout_batch, 1);
        if self.payout != Payout::Merkle && self.protocol != Protocol::CommitProof {
            c.fail(
                "payout",
                format!(
                    "redeem payouts need protocol commit-proof, got {:?}",
                    self.protocol
                ),
            );
        }
        if self.honest_watchers > self.watchers {
            c.fail(
                "honest_watchers",
                format!(
                    "must be ≤ watchers ({}), got {}",
                    self.watchers, self.honest_watchers
                ),
            );
        }
    }
}

/// One settlement transaction as included on chain.
#[derive(Debug, Clone, PartialEq)]
pub struct TxRecord {
    /// Contract function.
    pub label: &'static str,
    /// The call (replayable).
    pub call: Call,
    /// Gas charged by revm.
    pub gas: u64,
    /// Gas limit the sender set (estimate plus margin).
    pub gas_limit: u64,
    /// False when it reverted.
    pub success: bool,
    /// Block number and time, seconds.
    pub block: u64,
    /// Block time, seconds.
    pub t_s: f64,
    /// Submission time, seconds.
    pub submitted_s: f64,
    /// Base fee of the block, wei.
    pub base_fee_wei: u128,
    /// Effective gas price paid, wei.
    pub price_wei: u128,
    /// Fee paid, wei.
    pub fee_wei: u128,
}

/// What settlement did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettleReport {
    /// Deployment gas (not part of the per-job totals).
    pub deploy_gas: u64,
    /// Contract address.
    pub contract: Address,
    /// Every settlement transaction in inclusion order.
    pub txs: Vec<TxRecord>,
    /// Per FL round: finality time minus the round's close, seconds.
    pub finality_s: Vec<f64>,
    /// Commitments with a wrong root that reached the chain (included, or rejected by the verifier).
    pub wrong_roots: u64,
    /// Wrong roots discarded unchallenged because an earlier epoch was slashed (re-committed).
    pub wrong_roots_superseded: u64,
    /// Payout batches the contract rejected (claims above the budget after an unchallenged fraud).
    pub failed_payouts: u64,
    /// Wrong roots that became final unchallenged.
    pub fraud_finalized: u64,
    /// Challenges sent / won.
    pub disputes_raised: u64,
    /// Challenges that slashed the bond.
    pub disputes_won: u64,
    /// Bond slashed, wei.
    pub slashed_wei: u128,
    /// Commit-with-proof commitments rejected by the verifier.
    pub rejected_proofs: u64,
    /// Simulated prover time of the owner's Commit proofs, seconds (sum over commitments).
    pub prover_s: f64,
    /// Simulated prover time of one participant's redeem proof, seconds.
    pub redeem_prover_s: f64,
    /// Constraints of the job's Commit circuit at P × T (exact count).
    pub commit_constraints: usize,
    /// Constraints of the job's redeem circuit of the chosen payout (0 for Merkle payouts).
    pub redeem_constraints: usize,
    /// Whether the proofs were of SettleFL's own circuits (else the same-arity stand-in).
    pub real_circuits: bool,
    /// Proofs generated and accepted by arkworks' own verifier (commits and redeems).
    pub real_proofs_ok: u64,
    /// Blocks with settlement transactions left waiting, and those transactions (summed).
    pub full_blocks: u64,
    /// Settlement transactions that waited for block space (summed over blocks).
    pub delayed_txs: u64,
    /// Paid to participants, wei.
    pub paid_wei: u128,
    /// Deposited budget, wei.
    pub budget_wei: u128,
    /// Time the last payout was included (the horizon when settlement did not finish), seconds.
    pub end_s: f64,
    /// Whether every payout was included before the horizon.
    pub settled: bool,
    /// Rewards owed to participants (Σ of the per-round rewards), wei.
    pub owed_wei: u128,
    /// Settlement transactions submitted or scheduled but not included by the horizon.
    pub unsettled_tx: u64,
    /// Blocks in which the base fee exceeded the senders' max fee (they held their transactions).
    pub priced_out_blocks: u64,
    /// Time after which settlement is given up (end of training plus the allowance), seconds.
    pub horizon_s: f64,
    /// Blocks that carried or delayed settlement transactions.
    pub blocks: Vec<BlockInfo>,
    /// When the participants were paid for each round.
    pub reward_delays: RewardDelays,
}

impl SettleReport {
    /// True when a wrong root may have become final (payout reverts are then expected).
    fn fraud_finalized_seen(&self) -> bool {
        self.wrong_roots > self.disputes_won + self.wrong_roots_superseded
    }
    /// Gas and call count per function, in name order.
    pub fn by_label(&self) -> BTreeMap<&'static str, (u64, u64)> {
        let mut m = BTreeMap::new();
        for t in &self.txs {
            let e = m.entry(t.label).or_insert((0u64, 0u64));
            e.0 += 1;
            e.1 += t.gas;
        }
        m
    }
    /// Total settlement gas.
    pub fn total_gas(&self) -> u64 {
        self.txs.iter().map(|t| t.gas).sum()
    }
    /// Total fees, wei.
    pub fn fees_wei(&self) -> u128 {
        self.txs.iter().map(|t| t.fee_wei).sum()
    }
    /// Fees paid by the job owner (aggregator), wei.
    pub fn owner_fees_wei(&self) -> u128 {
        self.txs
            .iter()
            .filter(|t| t.call.from == OWNER)
            .map(|t| t.fee_wei)
            .sum()
    }
}

/// Address of participant `i`.
pub fn participant(i: usize) -> Address {
    let mut b = [0u8; 20];
    b[0] = 0xfe;
    b[12..].copy_from_slice(&(i as u64).to_be_bytes());
    Address::from(b)
}
/// Address of the job owner (the aggregator), who sends every call but the challenges.
pub const OWNER: Address = Address::new([0xa1; 20]);
fn watcher(w: usize) -> Address {
    let mut b = [0xbb; 20];
    b[19] = w as u8;
    b[18] = (w >> 8) as u8;
    Address::from(b)
}

fn wei(eth: f64) -> U256 {
    U256::from((eth * 1e18).round() as u128)
}

/// One commitment period.
struct Epoch {
    /// FL rounds it covers.
    rounds: Vec<usize>,
    /// Close time of its last round, seconds.
    close_s: f64,
    /// Rewards of the epoch, gwei.
    delta: Vec<u64>,
    /// Honest cumulative rewards after it, gwei.
    cum: Vec<u64>,
}

enum Action {
    Submit(Pending),
    Commit,
    Watch {
        watcher: usize,
        epoch: usize,
        seen_s: f64,
    },
    Init,
    Payouts,
}

struct Agents {
    cfg: SettleConfig,
    n: usize,
    job: U256,
    contract: Address,
    epochs: Vec<Epoch>,
    round_rewards: Vec<Vec<u64>>,
    round_close: Vec<f64>,
    queue: Vec<(f64, u64, Action)>,
    seq: u64,
    next_id: u64,
    rng: Rng,
    report: SettleReport,
    // Commit-chain state (commit-challenge / commit-proof).
    ready_s: Vec<f64>,
    next_epoch: usize,
    in_flight: Option<(u64, usize, bool)>,
    disputed: bool,
    published: Vec<Option<(Vec<u64>, f64, bool)>>,
    force_honest: bool,
    pending_vals: BTreeMap<u64, Vec<u64>>,
    challenges: BTreeMap<u64, usize>,
    payout_amounts: BTreeMap<u64, u128>,
    /// Payout tx id → the participants it pays and the rounds it covers.
    payout_cover: BTreeMap<u64, (Vec<usize>, std::ops::Range<usize>)>,
    proofs: Vec<Option<SentProof>>,
    job_proofs: Option<JobProofs>,
    /// Rounds each participant has redeemed (multi-shot).
    redeemed_to: Vec<usize>,
    /// Commit-proof epochs committed (multi-shot payouts end after the last).
    committed: usize,
    // Onchain bookkeeping: tx id → (round, last batch of the round).
    onchain_batches: BTreeMap<u64, (usize, bool)>,
    rounds_final: usize,
    payouts_left: usize,
    done: bool,
    delays: RewardDelays,
}

impl Agents {
    fn at(&mut self, t: f64, a: Action) {
        self.seq += 1;
        self.queue.push((t, self.seq, a));
    }

    fn tx(&mut self, t: f64, label: &'static str, from: Address, data: Bytes, value: U256) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.at(
            t,
            Action::Submit(Pending {
                id,
                label,
                call: Call {
                    from,
                    to: Some(self.contract),
                    data,
                    value,
                },
                submitted_s: t,
                gas_limit: None,
            }),
        );
        id
    }

    fn leaves(&self, vals: &[u64]) -> Vec<B256> {
        vals.iter()
            .enumerate()
            .map(|(i, &v)| {
                leaf(
                    self.job,
                    i,
                    participant(i),
                    U256::from(u128::from(v) * GWEI),
                )
            })
            .collect()
    }

    fn tree(&self, vals: &[u64]) -> MerkleTree {
        MerkleTree::new(self.leaves(vals))
    }

    /// The owner commits the next epoch when it is ready and nothing is in flight.
    fn try_commit(&mut self, now: f64) -> Result<(), RunError> {
        if self.in_flight.is_some()
            || self.next_epoch >= self.epochs.len()
            || self.ready_s[self.next_epoch] > now
        {
            return Ok(());
        }
        let e = self.next_epoch;
        let honest = self.force_honest
            || self.disputed
            || self.rng.random::<f64>() >= self.cfg.dishonest_prob;
        self.force_honest = false;
        let mut vals = self.epochs[e].cum.clone();
        if !honest {
            let j = self.rng.random_range(0..self.n);
            let per_round = (self.cfg.budget_eth * 1e9 / self.round_close.len() as f64) as u64;
            vals[j] += per_round.max(1);
        }
        let root = self.tree(&vals).root();
        let (label, data, value) = match self.cfg.protocol {
            Protocol::CommitChallenge => {
                let delta_root = self.tree(&self.epochs[e].delta).root();
                if self.disputed {
                    (
                        "counter",
                        abi::call(
                            "counter(uint256,bytes32,bytes32)",
                            &[Tok::U(self.job), Tok::H(root), Tok::H(delta_root)],
                        ),
                        wei(self.cfg.bond_eth),
                    )
                } else {
                    (
                        "commit",
                        abi::call(
                            "commit(uint256,bytes32,bytes32)",
                            &[Tok::U(self.job), Tok::H(root), Tok::H(delta_root)],
                        ),
                        U256::ZERO,
                    )
                }
            }
            Protocol::CommitProof => {
                let p = self.proofs[e]
                    .clone()
                    .ok_or_else(|| RunError::Model("proof missing".into()))?;
                // The proof binds the honest root; a tampered root makes the pairing check fail.
                let words = p.words.iter().map(|w| Tok::U(*w)).collect();
                (
                    "commit",
                    abi::call(
                        "commit(uint256,uint256,uint256,bytes32,uint256[8])",
                        &[
                            Tok::U(self.job),
                            Tok::U(p.commitment),
                            u(self.rounds_done(e) as u64),
                            Tok::H(root),
                            Tok::Fixed(words),
                        ],
                    ),
                    U256::ZERO,
                )
            }
            Protocol::Onchain => unreachable!("onchain writes per round"),
        };
        let id = self.tx(now, label, OWNER, data, value);
        self.in_flight = Some((id, e, honest));
        self.published[e] = None;
        self.pending_vals.insert(id, vals);
        Ok(())
    }
}

fn evm_err(e: EvmError) -> RunError {
    RunError::Model(e.to_string())
}

impl Agents {
    /// Rounds covered by epoch `e`'s commitment.
    fn rounds_done(&self, e: usize) -> usize {
        self.epochs[e].rounds.last().map_or(0, |r| r + 1)
    }

    /// The job's T×P reward matrix in wei with the rounds from `rounds_done` on still zero.
    fn matrix(&self, rounds_done: usize) -> Vec<u64> {
        let mut m = vec![0u64; self.round_rewards.len() * self.n];
        for (t, row) in self.round_rewards.iter().enumerate().take(rounds_done) {
            for (p, &g) in row.iter().enumerate() {
                m[t * self.n + p] = g * GWEI as u64;
            }
        }
        m
    }

    /// Every participant with rewards in rounds [redeemed, `to`) proves and sends its redeem.
    fn redeems(&mut self, now: f64, one_shot: bool, e: usize) -> Result<(), RunError> {
        let to = self.rounds_done(e);
        let matrix = self.matrix(to);
        let root = self.tree(&self.epochs[e].cum).root();
        let delay = self.report.redeem_prover_s;
        for p in 0..self.n {
            let from = self.redeemed_to[p];
            if (from..to).all(|t| self.round_rewards[t][p] == 0) {
                continue;
            }
            let seed = self.rng.random::<u64>();
            let jp = self
                .job_proofs
                .as_ref()
                .expect("commit-proof sets up its proofs");
            let proof = jp
                .redeem(one_shot, &matrix, root, p, from, to, seed)
                .map_err(evm_err)?;
            if proof.native_ok {
                self.report.real_proofs_ok += 1;
            }
            self.redeemed_to[p] = to;
            let words = Tok::Fixed(proof.words.iter().map(|w| Tok::U(*w)).collect());
            let who = participant(p);
            let amount = Tok::U(U256::from(proof.amount));
            let (label, data) = if one_shot {
                (
                    "redeem_one_shot",
                    abi::call(
                        "redeem_one_shot(uint256,uint256,address,uint256,uint256[8])",
                        &[Tok::U(self.job), u(p as u64), Tok::A(who), amount, words],
                    ),
                )
            } else {
                (
                    "redeem_multi_shot",
                    abi::call(
                        "redeem_multi_shot(uint256,uint256,address,uint256,uint256,uint256[8])",
                        &[
                            Tok::U(self.job),
                            u(p as u64),
                            Tok::A(who),
                            u(to as u64),
                            amount,
                            words,
                        ],
                    ),
                )
            };
            let id = self.tx(now + delay, label, who, data, U256::ZERO);
            self.payout_amounts.insert(id, proof.amount);
            self.payout_cover.insert(id, (vec![p], from..to));
            self.payouts_left += 1;
        }
        Ok(())
    }

    fn final_vals(&self) -> Vec<u64> {
        match self.cfg.protocol {
            Protocol::Onchain => {
                let mut bal = vec![0u64; self.n];
                for r in &self.round_rewards {
                    for (b, x) in bal.iter_mut().zip(r) {
                        *b += x;
                    }
                }
                bal
            }
            _ => self
                .published
                .last()
                .and_then(|p| p.as_ref())
                .map_or_else(|| vec![0; self.n], |p| p.0.clone()),
        }
    }

    fn payouts(&mut self, now: f64) -> Result<(), RunError> {
        if self.cfg.payout == Payout::RedeemOneShot {
            self.redeems(now, true, self.epochs.len() - 1)?;
            if self.payouts_left == 0 {
                self.done = true;
                self.report.end_s = now;
            }
            return Ok(());
        }
        let vals = self.final_vals();
        let paid: Vec<usize> = (0..self.n).filter(|&i| vals[i] > 0).collect();
        let tree = (self.cfg.protocol != Protocol::Onchain).then(|| self.tree(&vals));
        for chunk in paid.chunks(self.cfg.payout_batch as usize) {
            let who: Vec<Tok> = chunk.iter().map(|&i| Tok::A(participant(i))).collect();
            let data = match &tree {
                None => abi::call(
                    "reward_pay_multi(uint256,address[])",
                    &[Tok::U(self.job), Tok::Array(who)],
                ),
                Some(t) => {
                    let idx = chunk.iter().map(|&i| u(i as u64)).collect();
                    let cum = chunk
                        .iter()
                        .map(|&i| Tok::U(U256::from(u128::from(vals[i]) * GWEI)))
                        .collect();
                    let paths = chunk.iter().flat_map(|&i| t.proof(i)).map(Tok::H).collect();
                    abi::call(
                        "reward_pay_multi(uint256,uint256[],address[],uint256[],bytes32[])",
                        &[
                            Tok::U(self.job),
                            Tok::Array(idx),
                            Tok::Array(who),
                            Tok::Array(cum),
                            Tok::Array(paths),
                        ],
                    )
                }
            };
            let id = self.tx(now, "reward_pay_multi", OWNER, data, U256::ZERO);
            let amount: u128 = chunk.iter().map(|&i| u128::from(vals[i]) * GWEI).sum();
            self.payout_amounts.insert(id, amount);
            self.payout_cover
                .insert(id, (chunk.to_vec(), 0..self.round_close.len()));
            self.payouts_left += 1;
        }
        if self.payouts_left == 0 {
            self.done = true;
            self.report.end_s = now;
        }
        Ok(())
    }

    /// Payout `id`, included at `t`, paid what it covers.
    fn record_paid(&mut self, t: f64, id: u64) {
        if let Some((who, rounds)) = self.payout_cover.remove(&id) {
            self.delays
                .paid(t, &who, rounds, &self.round_rewards, &self.round_close);
        }
    }

    fn watch(&mut self, now: f64, w: usize, e: usize, seen_s: f64) {
        let Some((vals, at, _)) = self.published[e].clone() else {
            return;
        };
        if at != seen_s || self.disputed || now >= at + self.cfg.challenge_window_s {
            return;
        }
        let prev = if e == 0 {
            vec![0; self.n]
        } else {
            match &self.published[e - 1] {
                Some(p) => p.0.clone(),
                None => return,
            }
        };
        let delta = &self.epochs[e].delta;
        let Some(j) = (0..self.n).find(|&j| vals[j] != prev[j] + delta[j]) else {
            return;
        };
        let cur = self.tree(&vals);
        let dt = self.tree(delta);
        let mut paths = Vec::new();
        if e > 0 {
            paths.extend(self.tree(&prev).proof(j));
        }
        paths.extend(dt.proof(j));
        paths.extend(cur.proof(j));
        let g = |v: u64| Tok::U(U256::from(u128::from(v) * GWEI));
        let data = abi::call(
            "challenge(uint256,uint256,uint256,address,uint256,uint256,uint256,bytes32[])",
            &[
                Tok::U(self.job),
                u(e as u64),
                u(j as u64),
                Tok::A(participant(j)),
                g(prev[j]),
                g(delta[j]),
                g(vals[j]),
                Tok::Array(paths.into_iter().map(Tok::H).collect()),
            ],
        );
        let id = self.tx(now, "challenge", watcher(w), data, U256::ZERO);
        self.challenges.insert(id, e);
        self.report.disputes_raised += 1;
    }

    fn handle(&mut self, chain: &mut Chain, now: f64, a: Action) -> Result<(), RunError> {
        match a {
            Action::Submit(p) => chain.submit(p),
            Action::Commit => self.try_commit(now)?,
            Action::Watch {
                watcher,
                epoch,
                seen_s,
            } => self.watch(now, watcher, epoch, seen_s),
            Action::Init => {
                let ok = match self.cfg.protocol {
                    Protocol::CommitChallenge => {
                        self.next_epoch == self.epochs.len()
                            && !self.disputed
                            && self.in_flight.is_none()
                            && self
                                .published
                                .last()
                                .and_then(|p| p.as_ref())
                                .is_some_and(|p| p.1 + self.cfg.challenge_window_s <= now)
                    }
                    _ => true,
                };
                if ok {
                    let data = abi::call("reward_init(uint256)", &[Tok::U(self.job)]);
                    self.tx(now, "reward_init", OWNER, data, U256::ZERO);
                }
            }
            Action::Payouts => self.payouts(now)?,
        }
        Ok(())
    }

    fn included(&mut self, chain: &mut Chain, inc: Included) -> Result<(), RunError> {
        let t = inc.t_s;
        let ok = inc.receipt.success;
        let id = inc.tx.id;
        let label = inc.tx.label;
        self.report.txs.push(TxRecord {
            label,
            call: inc.tx.call.clone(),
            gas: inc.receipt.gas_used,
            gas_limit: inc.receipt.gas_limit,
            price_wei: inc.price_wei,
            success: ok,
            block: inc.block,
            t_s: t,
            submitted_s: inc.tx.submitted_s,
            base_fee_wei: inc.base_fee_wei,
            fee_wei: inc.fee_wei,
        });
        let fail = |what: &str| {
            RunError::Model(format!(
                "`{what}` reverted at t = {t} s: {}",
                super::evm::revert_reason(&inc.receipt.output)
            ))
        };
        match label {
            "new_job" if !ok => return Err(fail("new_job")),
            "commit" if self.cfg.protocol == Protocol::Onchain => {
                if !ok {
                    return Err(fail("commit"));
                }
                if let Some(&(r, last)) = self.onchain_batches.get(&id)
                    && last
                {
                    self.report.finality_s[r] = t - self.round_close[r];
                    self.rounds_final += 1;
                    if self.rounds_final == self.round_close.len() {
                        self.at(t, Action::Init);
                    }
                }
            }
            "commit" | "counter" => {
                let Some((fid, e, honest)) = self.in_flight else {
                    return Ok(());
                };
                if fid != id {
                    return Ok(());
                }
                self.in_flight = None;
                let vals = self.pending_vals.remove(&id).unwrap_or_default();
                if ok {
                    if !honest {
                        self.report.wrong_roots += 1;
                    }
                    self.published[e] = Some((vals, t, honest));
                    if label == "counter" {
                        self.disputed = false;
                    }
                    self.next_epoch = e + 1;
                    if self.cfg.protocol == Protocol::CommitChallenge {
                        for w in 0..self.cfg.honest_watchers as usize {
                            let d = self.cfg.watcher_delay_s * (1.0 + 0.5 * w as f64);
                            self.at(
                                t + d,
                                Action::Watch {
                                    watcher: w,
                                    epoch: e,
                                    seen_s: t,
                                },
                            );
                        }
                    }
                    let multi_shot = self.cfg.payout == Payout::RedeemMultiShot;
                    if multi_shot {
                        self.committed = e + 1;
                        self.redeems(t, false, e)?;
                        if self.committed == self.epochs.len() && self.payouts_left == 0 {
                            self.done = true;
                            self.report.end_s = t;
                        }
                    }
                    if e + 1 == self.epochs.len() && !multi_shot {
                        let wait = match self.cfg.protocol {
                            Protocol::CommitChallenge => self.cfg.challenge_window_s,
                            _ => 0.0,
                        };
                        self.at(t + wait, Action::Init);
                    }
                    self.try_commit(t)?;
                } else if self.cfg.protocol == Protocol::CommitProof {
                    if honest {
                        return Err(fail("commit"));
                    }
                    self.report.wrong_roots += 1;
                    self.report.rejected_proofs += 1;
                    self.force_honest = true;
                    self.at(t + self.cfg.aggregator_delay_s, Action::Commit);
                }
            }
            "challenge" if ok => {
                let e = self.challenges.get(&id).copied().unwrap_or(0);
                self.report.disputes_won += 1;
                self.report.slashed_wei += (self.cfg.bond_eth * 1e18).round() as u128;
                self.disputed = true;
                self.next_epoch = e;
                for (k, p) in self.published.iter_mut().enumerate().skip(e) {
                    if k > e && p.as_ref().is_some_and(|p| !p.2) {
                        self.report.wrong_roots_superseded += 1;
                    }
                    *p = None;
                }
                if chain.cancel(OWNER, |p| p.label == "commit") > 0 {
                    self.in_flight = None;
                }
                self.at(t + self.cfg.aggregator_delay_s, Action::Commit);
            }
            "challenge" => {}
            "reward_init" => {
                if ok {
                    self.at(t + self.cfg.pay_delay_s, Action::Payouts);
                } else if self.cfg.protocol != Protocol::CommitChallenge {
                    return Err(fail("reward_init"));
                }
            }
            "redeem_one_shot" | "redeem_multi_shot" => {
                if !ok {
                    return Err(fail(label));
                }
                self.report.paid_wei += self.payout_amounts.get(&id).copied().unwrap_or(0);
                self.record_paid(t, id);
                self.payouts_left -= 1;
                let all_committed =
                    self.cfg.payout == Payout::RedeemOneShot || self.committed == self.epochs.len();
                if self.payouts_left == 0 && all_committed {
                    self.done = true;
                    self.report.end_s = t;
                }
            }
            "reward_pay_multi" => {
                if ok {
                    self.report.paid_wei += self.payout_amounts.get(&id).copied().unwrap_or(0);
                    self.record_paid(t, id);
                } else if self.report.fraud_finalized_seen() {
                    self.report.failed_payouts += 1;
                } else {
                    return Err(fail("reward_pay_multi"));
                }
                self.payouts_left -= 1;
                if self.payouts_left == 0 {
                    self.done = true;
                    self.report.end_s = t;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The world before the job: funded owner, watchers and participants (1 ETH each, enough for
/// their redeem transactions), and the protocol's contract deployed by the owner — for
/// commit-proof with the job's three verifiers from `proofs`. Returns the EVM, the contract
/// address and the deployment gas.
pub fn genesis(
    cfg: &SettleConfig,
    n: usize,
    proofs: Option<&JobProofs>,
) -> Result<(Evm, Address, u64), RunError> {
    let mut evm = Evm::new();
    evm.fund(OWNER, wei(1e6));
    for w in 0..cfg.watchers as usize {
        evm.fund(watcher(w), wei(100.0));
    }
    for i in 0..n {
        evm.fund(participant(i), wei(1.0));
    }
    let mut verifier_gas = 0;
    let depth = depth_for(n) as u64;
    let pay_delay = cfg.pay_delay_s.round() as u64;
    let (contract, args) = match cfg.protocol {
        Protocol::Onchain => (Contract::Onchain, vec![u(pay_delay)]),
        Protocol::CommitChallenge => (
            Contract::CommitChallenge,
            vec![
                Tok::U(wei(cfg.bond_eth)),
                u(cfg.challenge_window_s.round() as u64),
                u(pay_delay),
                u(depth),
            ],
        ),
        Protocol::CommitProof => {
            let jp = proofs
                .ok_or_else(|| RunError::Model("commit-proof without its circuits".into()))?;
            let (v, gas) = jp.deploy(&mut evm).map_err(evm_err)?;
            verifier_gas = gas;
            (
                Contract::CommitProof,
                vec![
                    Tok::A(v[0]),
                    Tok::A(v[1]),
                    Tok::A(v[2]),
                    u(pay_delay),
                    u(depth),
                ],
            )
        }
    };
    let (addr, r) = deploy(&mut evm, OWNER, contract, &args).map_err(evm_err)?;
    Ok((evm, addr, r.gas_used + verifier_gas))
}

/// Settlement in progress: the agents and the chain, fed the FL rounds as they close
/// ([`Settler::round_closed`]) and advanced one block at a time ([`Settler::block`]). The
/// co-simulation ([`super::cosim`]) calls these from a nexosim model on the FL network's clock;
/// [`settle`] replays a finished run through the same calls.
pub struct Settler {
    ag: Agents,
    chain: Chain,
    /// Epoch length in rounds (1 for onchain).
    epoch_rounds: usize,
    /// Per-round share of the budget, gwei.
    round_budget_gwei: u64,
    /// Honest cumulative rewards after the rounds fed so far, gwei.
    cum: Vec<u64>,
    /// Time the simulated prover of the Commit proofs is free again, seconds.
    prover_free_s: f64,
    /// Seeds of the Commit proofs, a stream of their own so that drawing them when an epoch
    /// closes does not move the agents' other draws.
    proof_rng: Rng,
    /// Horizon cut-off reached.
    cut_off: bool,
    /// First error of a handler (the run fails with it).
    error: Option<RunError>,
}

impl Settler {
    /// The world before the job (genesis, contract deployed, `new_job` sent at t = 0) for `n`
    /// participants and `rounds` FL rounds; nothing is known of the rounds yet.
    pub fn new(
        cfg: &SettleConfig,
        chain_cfg: &ChainConfig,
        n: usize,
        rounds: usize,
        chain_rng: Rng,
        rng: Rng,
    ) -> Result<Self, RunError> {
        let budget_gwei = (cfg.budget_eth * 1e9).round() as u64;
        let epoch_rounds = if cfg.protocol == Protocol::Onchain {
            1
        } else {
            cfg.commit_every as usize
        };
        let epochs: Vec<Epoch> = (0..rounds)
            .collect::<Vec<_>>()
            .chunks(epoch_rounds)
            .map(|c| Epoch {
                rounds: c.to_vec(),
                close_s: f64::NAN,
                delta: Vec::new(),
                cum: Vec::new(),
            })
            .collect();
        let job_proofs = (cfg.protocol == Protocol::CommitProof)
            .then(|| JobProofs::new(n, rounds, cfg.real_proof_max_constraints))
            .transpose()
            .map_err(evm_err)?;
        let (evm, addr, deploy_gas) = genesis(cfg, n, job_proofs.as_ref())?;
        let chain = Chain::new(chain_cfg.clone(), evm, chain_rng);
        let n_epochs = epochs.len();
        // A jump of 2¹²⁷ draws ahead: a stretch of the stream the agents' own draws never reach.
        let mut proof_rng = rng.clone();
        proof_rng.advance(1 << 127);
        let mut ag = Agents {
            cfg: cfg.clone(),
            n,
            job: U256::ZERO,
            contract: addr,
            epochs,
            round_close: vec![f64::NAN; rounds],
            round_rewards: vec![vec![0; n]; rounds],
            queue: Vec::new(),
            seq: 0,
            next_id: 0,
            rng,
            report: SettleReport {
                deploy_gas,
                contract: addr,
                finality_s: vec![f64::NAN; rounds],
                budget_wei: (cfg.budget_eth * 1e18).round() as u128,
                horizon_s: f64::INFINITY,
                ..SettleReport::default()
            },
            ready_s: vec![f64::INFINITY; n_epochs],
            next_epoch: 0,
            in_flight: None,
            disputed: false,
            published: vec![None; n_epochs],
            force_honest: false,
            pending_vals: BTreeMap::new(),
            challenges: BTreeMap::new(),
            payout_amounts: BTreeMap::new(),
            payout_cover: BTreeMap::new(),
            proofs: vec![None; n_epochs],
            job_proofs,
            redeemed_to: vec![0; n],
            committed: 0,
            onchain_batches: BTreeMap::new(),
            rounds_final: 0,
            payouts_left: 0,
            done: false,
            delays: RewardDelays::new(rounds),
        };
        if let Some(jp) = &ag.job_proofs {
            ag.report.commit_constraints = jp.commit_constraints;
            ag.report.real_circuits = jp.real;
            ag.report.redeem_constraints = match cfg.payout {
                Payout::Merkle => 0,
                Payout::RedeemOneShot => jp.one_shot_constraints,
                Payout::RedeemMultiShot => jp.multi_shot_constraints,
            };
            ag.report.redeem_prover_s =
                ag.report.redeem_constraints as f64 * cfg.prover_us_per_constraint * 1e-6;
        }

        // The job: participant-list hash and salt as in SettleFL's new_job.
        let mut plist = Vec::with_capacity(20 * n);
        (0..n).for_each(|i| plist.extend_from_slice(participant(i).as_slice()));
        let pub_hash = revm::primitives::keccak256(&plist);
        let salt = revm::primitives::keccak256(b"sysim/settlefl");
        let mut value = wei(cfg.budget_eth);
        if cfg.protocol == Protocol::CommitChallenge {
            value += wei(cfg.bond_eth);
        }
        let new_job = if cfg.protocol == Protocol::CommitProof {
            abi::call(
                "new_job(bytes32,bytes32,bool)",
                &[
                    Tok::H(pub_hash),
                    Tok::H(salt),
                    Tok::Bool(cfg.payout != Payout::Merkle),
                ],
            )
        } else {
            abi::call(
                "new_job(bytes32,bytes32)",
                &[Tok::H(pub_hash), Tok::H(salt)],
            )
        };
        ag.tx(0.0, "new_job", OWNER, new_job, value);
        Ok(Self {
            ag,
            chain,
            epoch_rounds,
            round_budget_gwei: budget_gwei / rounds.max(1) as u64,
            cum: vec![0; n],
            prover_free_s: 0.0,
            proof_rng,
            cut_off: false,
            error: None,
        })
    }

    /// FL round `rec` closed (at `rec.close_s`): its rewards become known, and the owner sends
    /// its on-chain writes (onchain) or, when it ends an epoch, its commitment once ready.
    pub fn round_closed(&mut self, rec: &RoundRecord) {
        if let Err(e) = self.feed(rec) {
            self.error.get_or_insert(e);
        }
    }

    fn feed(&mut self, rec: &RoundRecord) -> Result<(), RunError> {
        let r = rec.round as usize;
        let (n, ag) = (self.ag.n, &mut self.ag);
        if r >= ag.round_close.len() {
            return Err(RunError::Model(format!(
                "round {r} closed, but the job has {} rounds",
                ag.round_close.len()
            )));
        }
        ag.round_close[r] = rec.close_s;
        ag.round_rewards[r] = round_rewards(rec, n, self.round_budget_gwei);
        for (c, x) in self.cum.iter_mut().zip(&ag.round_rewards[r]) {
            *c += x;
        }
        ag.report.owed_wei += ag.round_rewards[r]
            .iter()
            .map(|&x| u128::from(x) * GWEI)
            .sum::<u128>();
        match ag.cfg.protocol {
            Protocol::Onchain => {
                let who: Vec<usize> = (0..n).filter(|&i| ag.round_rewards[r][i] > 0).collect();
                let chunks: Vec<Vec<usize>> = if who.is_empty() {
                    vec![Vec::new()]
                } else {
                    who.chunks(ag.cfg.onchain_batch as usize)
                        .map(<[usize]>::to_vec)
                        .collect()
                };
                let last = chunks.len() - 1;
                for (k, c) in chunks.into_iter().enumerate() {
                    let addrs = c.iter().map(|&i| Tok::A(participant(i))).collect();
                    let amts = c
                        .iter()
                        .map(|&i| Tok::U(U256::from(u128::from(ag.round_rewards[r][i]) * GWEI)))
                        .collect();
                    let data = abi::call(
                        "commit(uint256,address[],uint256[],bool)",
                        &[
                            Tok::U(ag.job),
                            Tok::Array(addrs),
                            Tok::Array(amts),
                            Tok::Bool(k == last),
                        ],
                    );
                    let id = ag.tx(rec.close_s, "commit", OWNER, data, U256::ZERO);
                    ag.onchain_batches.insert(id, (r, k == last));
                }
            }
            Protocol::CommitChallenge | Protocol::CommitProof => {
                let e = r / self.epoch_rounds;
                if ag.epochs[e].rounds.last() != Some(&r) {
                    return Ok(());
                }
                let mut delta = vec![0u64; n];
                for &k in &ag.epochs[e].rounds {
                    for (d, x) in delta.iter_mut().zip(&ag.round_rewards[k]) {
                        *d += x;
                    }
                }
                ag.epochs[e].close_s = rec.close_s;
                ag.epochs[e].delta = delta;
                ag.epochs[e].cum = self.cum.clone();
                ag.ready_s[e] = if let Some(jp) = &ag.job_proofs {
                    let prove_s =
                        jp.commit_constraints as f64 * ag.cfg.prover_us_per_constraint * 1e-6;
                    let done = ag.rounds_done(e);
                    let root = ag.tree(&ag.epochs[e].cum).root();
                    let seed = self.proof_rng.random::<u64>();
                    let proof = jp
                        .commit(&ag.matrix(done), done, root, seed)
                        .map_err(evm_err)?;
                    ag.report.prover_s += prove_s;
                    if proof.native_ok {
                        ag.report.real_proofs_ok += 1;
                    }
                    ag.proofs[e] = Some(proof);
                    self.prover_free_s = self.prover_free_s.max(rec.close_s) + prove_s;
                    self.prover_free_s
                } else {
                    rec.close_s
                };
                let t = ag.ready_s[e];
                ag.at(t, Action::Commit);
            }
        }
        Ok(())
    }

    /// Training ended at `end_s`: settlement is given up if not done by the horizon (a day plus,
    /// per epoch and ten more, a challenge window, a payout delay and an hour after `end_s`).
    pub fn training_ended(&mut self, end_s: f64) {
        let c = &self.ag.cfg;
        let n_epochs = self.ag.epochs.len() as f64;
        self.ag.report.horizon_s =
            end_s + (n_epochs + 10.0) * (c.challenge_window_s + c.pay_delay_s + 3600.0) + 86_400.0;
    }

    /// Time of the next block, seconds.
    pub fn next_block_s(&self) -> f64 {
        self.chain.next_block_s()
    }

    /// Whether settlement still needs blocks (not done, not cut off, no error).
    pub fn running(&self) -> bool {
        !self.ag.done && !self.cut_off && self.error.is_none()
    }

    /// Whether the coordinator holds round `next` back at `now_s` (feedback on, see
    /// [`SettleConfig::commit_wait_max_s`]): round `next − 1` ended an epoch whose commitment is
    /// not included yet, and the wait since its close has not reached the maximum.
    pub fn holds(&self, next: usize, now_s: f64) -> bool {
        let (ag, max_s) = (&self.ag, self.ag.cfg.commit_wait_max_s);
        if max_s <= 0.0 || next == 0 || !self.running() {
            return false;
        }
        let r = next - 1;
        // A round not fed yet (NaN close) holds nothing.
        if ag.round_close[r].is_nan() || now_s >= ag.round_close[r] + max_s {
            return false;
        }
        match ag.cfg.protocol {
            Protocol::Onchain => ag.report.finality_s[r].is_nan(),
            _ => {
                let e = r / self.epoch_rounds;
                ag.epochs[e].rounds.last() == Some(&r) && ag.published[e].is_none()
            }
        }
    }

    /// The first error a handler met, if any (taken: later calls return `None`).
    pub fn take_error(&mut self) -> Option<RunError> {
        self.error.take()
    }

    /// Produces the next block: the agents act on what is due by its time (in time order), the
    /// builder fills it from the mempool, and the agents react to what it included. Past the
    /// horizon nothing more is produced and the remaining transactions are counted as unsettled.
    pub fn block(&mut self) {
        if !self.running() {
            return;
        }
        if let Err(e) = self.try_block() {
            self.error.get_or_insert(e);
        }
    }

    fn try_block(&mut self) -> Result<(), RunError> {
        let (ag, chain) = (&mut self.ag, &mut self.chain);
        let t_block = chain.next_block_s();
        if t_block > ag.report.horizon_s {
            // Not settled within the horizon: reported as metrics, not as a failed run.
            let scheduled = ag
                .queue
                .iter()
                .filter(|q| matches!(q.2, Action::Submit(_)))
                .count();
            ag.report.unsettled_tx = (chain.pending() + scheduled) as u64;
            ag.report.end_s = ag.report.horizon_s;
            self.cut_off = true;
            return Ok(());
        }
        loop {
            let next = ag
                .queue
                .iter()
                .enumerate()
                .filter(|(_, q)| q.0 <= t_block)
                .min_by(|a, b| a.1.0.total_cmp(&b.1.0).then(a.1.1.cmp(&b.1.1)))
                .map(|(k, _)| k);
            let Some(k) = next else { break };
            let (t, _, a) = ag.queue.swap_remove(k);
            ag.handle(chain, t, a)?;
        }
        let (info, incl) = chain.produce_block().map_err(evm_err)?;
        if info.settlement_gas > 0 || info.waiting > 0 {
            ag.report.blocks.push(info);
        }
        for inc in incl {
            ag.included(chain, inc)?;
        }
        Ok(())
    }

    /// Produces every block due by `t_s` (inclusive) while settlement runs.
    pub fn advance_to(&mut self, t_s: f64) {
        while self.running() && self.next_block_s() <= t_s {
            self.block();
        }
    }

    /// Rebuilds the state a co-simulation had at `until_s` from the rounds it had been fed (a
    /// resumed run: the chain's revm state is not saved): blocks up to each round's close, the
    /// round, and the blocks up to `until_s`, in the order the engine ran them.
    pub fn replay(&mut self, rounds: &[RoundRecord], until_s: f64) {
        for rec in rounds {
            self.advance_to(rec.close_s);
            self.round_closed(rec);
        }
        self.advance_to(until_s);
    }

    /// The report so far: counters of the chain, finality of the committed rounds, reward
    /// delays (the settler is left with an empty report).
    pub fn finish(&mut self) -> SettleReport {
        let ag = &mut self.ag;
        let mut rep = std::mem::take(&mut ag.report);
        rep.settled = ag.done;
        rep.priced_out_blocks = self.chain.priced_out_blocks;
        rep.full_blocks = self.chain.full_blocks;
        rep.delayed_txs = self.chain.delayed_txs;
        if ag.cfg.protocol != Protocol::Onchain {
            let wait = if ag.cfg.protocol == Protocol::CommitChallenge {
                ag.cfg.challenge_window_s
            } else {
                0.0
            };
            for (e, ep) in ag.epochs.iter().enumerate() {
                if let Some((_, at, honest)) = &ag.published[e] {
                    if !honest {
                        rep.fraud_finalized += 1;
                    }
                    for &r in &ep.rounds {
                        rep.finality_s[r] = at + wait - ag.round_close[r];
                    }
                }
            }
        }
        rep.reward_delays = ag.delays.finish(&ag.round_rewards);
        rep
    }
}

/// Settles the rewards of a finished `run` (over `n` participants) with `cfg.protocol` on a chain
/// `chain_cfg`: the replay, every round known before the first block. A co-simulated run whose
/// network does not react to the chain gives the same transactions (`tests::cosim_equals_replay`).
pub fn settle(
    cfg: &SettleConfig,
    chain_cfg: &ChainConfig,
    run: &NetworkRun,
    n: usize,
    chain_rng: Rng,
    rng: Rng,
) -> Result<SettleReport, RunError> {
    let mut s = Settler::new(cfg, chain_cfg, n, run.rounds.len(), chain_rng, rng)?;
    for rec in &run.rounds {
        s.round_closed(rec);
    }
    s.training_ended(run.end_s());
    while s.running() {
        s.block();
    }
    if let Some(e) = s.take_error() {
        return Err(e);
    }
    Ok(s.finish())
}
