//! A proof-of-stake Ethereum-like chain at slot granularity: one block every `slot_s` (12 s since
//! the Merge), a block gas limit, the EIP-1559 base fee, other users' demand, and a mempool from
//! which the block builder takes the settlement transactions in arrival order while they fit.
//!
//! * Base fee (EIP-1559): target = limit / elasticity (2); next = base + base·(used − target) /
//!   target / 8 (BASE_FEE_MAX_CHANGE_DENOMINATOR), at least +1 wei when above target.
//! * Block gas limit: a parameter (30,000,000 in EIP-1559's London configuration, 2021–Feb 2025;
//!   validators have raised it since).
//! * Other users fill `background_util` of each block (a draw around the mean) at the first
//!   block's base fee; their demand falls as the base fee rises, with constant price elasticity
//!   `background_elasticity` (u = u₀·(p₀/p)^ε, clamped to [0, 1]), so the base fee settles where
//!   total use meets the target instead of ratcheting while settlement adds load. During a
//!   congestion window they fill every block completely, so settlement transactions wait.
//! * A transaction becomes includable `propagation_s` after submission (mempool gossip). Each
//!   block executes the eligible transactions in FIFO order in revm; one that does not fit in the
//!   gas left waits for the next block, and so do later transactions of the same sender (nonce
//!   order). Gas is what revm charges.
//! * Senders behave like wallets: when a transaction reaches the head of its sender's queue it
//!   gets a gas limit from a dry-run estimate in revm ([`Evm::estimate_gas`], go-ethereum's
//!   `eth_estimateGas` procedure) times (1 + `gas_margin`), and a max fee per gas
//!   (`max_fee_gwei`). The builder includes it only if its gas limit fits the gas left in the
//!   block and the base fee does not exceed its max fee (EIP-1559 validity); it pays the
//!   effective price min(max fee, base fee + tip). While the base fee is above the cap the sender
//!   holds its transactions (pacing).

use rand_distr::{Distribution, Normal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

use revm::primitives::{Address, U256};

use super::evm::{Call, Evm, EvmError, Receipt, TX_GAS_CAP};

/// Chain parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// Slot length, seconds (Ethereum PoS: 12).
    pub slot_s: f64,
    /// Block gas limit (EIP-1559 London: 30,000,000).
    pub gas_limit: u64,
    /// Base fee of the first block, gwei.
    pub base_fee_gwei: f64,
    /// Priority fee (tip) of the settlement transactions, gwei.
    pub priority_fee_gwei: f64,
    /// Mean fraction of each block's gas limit used by other users, in [0, 1].
    pub background_util: f64,
    /// Standard deviation of that fraction between blocks.
    pub background_sd: f64,
    /// Price elasticity ε of other users' gas demand against the base fee: their mean use is
    /// `background_util`·(p₀/p)^ε at base fee p, p₀ the first block's. 0 (the default) keeps
    /// demand fixed whatever the price. Estimate: we know of no published elasticity of Ethereum
    /// gas demand; the scale scenarios use ε = 1 (unit-elastic) and say so.
    pub background_elasticity: f64,
    /// Windows `[start_s, end_s)` of full blocks (other users take the whole gas limit).
    pub congestion: Vec<[f64; 2]>,
    /// Mempool propagation delay before a transaction can be included, seconds.
    pub propagation_s: f64,
    /// Max fee per gas the settlement senders accept, gwei. Stated default: 10,000 gwei, a
    /// ceiling that does not bind in the bundled congestion scenarios (a 10-minute window of full
    /// blocks lifts a 10 gwei base fee to ≈ 3,600 gwei); wallets set about 2 × base fee + tip
    /// (ethers.js v5 `getFeeData`), which the scale scenarios use to study pacing.
    pub max_fee_gwei: f64,
    /// Margin added to the gas estimate for the gas limit (0.2: the 20 % that Uniswap's
    /// interface adds in `calculateGasMargin`).
    pub gas_margin: f64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            slot_s: 12.0,
            gas_limit: 30_000_000,
            base_fee_gwei: 10.0,
            priority_fee_gwei: 1.0,
            background_util: 0.5,
            background_sd: 0.0,
            background_elasticity: 0.0,
            congestion: Vec::new(),
            propagation_s: 1.0,
            max_fee_gwei: 10_000.0,
            gas_margin: 0.2,
        }
    }
}

impl Validate for ChainConfig {
    fn validate(&self, c: &mut Checks) {
        if !(self.slot_s.is_finite() && self.slot_s >= 1.0) {
            c.fail("slot_s", format!("must be ≥ 1, got {}", self.slot_s));
        }
        c.at_least("gas_limit", self.gas_limit, 100_000);
        c.non_negative("base_fee_gwei", self.base_fee_gwei);
        c.non_negative("priority_fee_gwei", self.priority_fee_gwei);
        c.non_negative("background_sd", self.background_sd);
        c.within(
            "background_elasticity",
            self.background_elasticity,
            0.0,
            10.0,
        );
        c.non_negative("propagation_s", self.propagation_s);
        c.non_negative("gas_margin", self.gas_margin);
        if !(self.max_fee_gwei.is_finite() && self.max_fee_gwei >= self.priority_fee_gwei) {
            c.fail(
                "max_fee_gwei",
                format!(
                    "must be finite and ≥ priority_fee_gwei ({}), got {}",
                    self.priority_fee_gwei, self.max_fee_gwei
                ),
            );
        }
        c.fraction("background_util", self.background_util);
        for (i, w) in self.congestion.iter().enumerate() {
            if !(w[0].is_finite() && w[1].is_finite() && 0.0 <= w[0] && w[0] < w[1]) {
                c.fail(
                    &format!("congestion[{i}]"),
                    format!("must be [start_s, end_s] with 0 ≤ start < end, got {w:?}"),
                );
            }
        }
    }
}

/// A settlement transaction waiting in the mempool.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// Caller-chosen id.
    pub id: u64,
    /// Short label of the contract function (e.g. `"commit"`), for the per-call breakdown.
    pub label: &'static str,
    /// The call.
    pub call: Call,
    /// Submission time, seconds.
    pub submitted_s: f64,
    /// Gas limit set by the sender (estimate plus margin) when the transaction first reached the
    /// head of its sender's queue; `None` before.
    pub gas_limit: Option<u64>,
}

/// A transaction that made it into a block.
#[derive(Debug, Clone, PartialEq)]
pub struct Included {
    /// The pending transaction.
    pub tx: Pending,
    /// Its receipt.
    pub receipt: Receipt,
    /// Block number.
    pub block: u64,
    /// Block time, seconds.
    pub t_s: f64,
    /// Base fee of the block, wei.
    pub base_fee_wei: u128,
    /// Effective gas price: min(max fee, base fee + tip), wei.
    pub price_wei: u128,
    /// Fee paid: gas used × effective gas price, wei.
    pub fee_wei: u128,
}

/// Summary of one produced block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockInfo {
    /// Block number.
    pub number: u64,
    /// Block time, seconds.
    pub t_s: f64,
    /// Base fee, wei.
    pub base_fee_wei: u128,
    /// Gas used by other users.
    pub background_gas: u64,
    /// Gas used by settlement transactions.
    pub settlement_gas: u64,
    /// Eligible settlement transactions left waiting for lack of space.
    pub waiting: usize,
}

/// The chain: world state in revm, mempool, base fee.
pub struct Chain {
    /// Configuration.
    pub cfg: ChainConfig,
    /// The EVM and its state.
    pub evm: Evm,
    mempool: Vec<Pending>,
    base_fee_wei: u128,
    first_base_fee_wei: u128,
    number: u64,
    rng: Rng,
    /// Settlement transactions that had to wait at least one block for space.
    pub delayed_txs: u64,
    /// Blocks in which eligible settlement transactions did not all fit.
    pub full_blocks: u64,
    /// Blocks whose base fee exceeded the senders' max fee (every settlement sender waited).
    pub priced_out_blocks: u64,
}

impl Chain {
    /// A chain at block 0 with an empty mempool.
    pub fn new(cfg: ChainConfig, evm: Evm, rng: Rng) -> Self {
        let base = (cfg.base_fee_gwei * 1e9).round() as u128;
        Self {
            cfg,
            evm,
            mempool: Vec::new(),
            base_fee_wei: base.max(7),
            first_base_fee_wei: base.max(7),
            number: 0,
            rng,
            delayed_txs: 0,
            full_blocks: 0,
            priced_out_blocks: 0,
        }
    }

    /// Time of the next block, seconds.
    pub fn next_block_s(&self) -> f64 {
        (self.number + 1) as f64 * self.cfg.slot_s
    }

    /// Current base fee, wei.
    pub fn base_fee_wei(&self) -> u128 {
        self.base_fee_wei
    }

    /// Adds a transaction to the mempool.
    pub fn submit(&mut self, tx: Pending) {
        self.mempool.push(tx);
    }

    /// Drops `from`'s pending transactions whose id satisfies `pred` (replacement/cancellation).
    pub fn cancel(&mut self, from: Address, pred: impl Fn(&Pending) -> bool) -> usize {
        let before = self.mempool.len();
        self.mempool.retain(|p| !(p.call.from == from && pred(p)));
        before - self.mempool.len()
    }

    /// Transactions still in the mempool.
    pub fn pending(&self) -> usize {
        self.mempool.len()
    }

    fn background(&mut self, t_s: f64) -> u64 {
        if self
            .cfg
            .congestion
            .iter()
            .any(|w| w[0] <= t_s && t_s < w[1])
        {
            return self.cfg.gas_limit;
        }
        let price_ratio = self.first_base_fee_wei as f64 / self.base_fee_wei as f64;
        let mean = self.cfg.background_util * price_ratio.powf(self.cfg.background_elasticity);
        let u = if self.cfg.background_sd > 0.0 {
            Normal::new(mean, self.cfg.background_sd)
                .expect("sd ≥ 0")
                .sample(&mut self.rng)
        } else {
            mean
        };
        (u.clamp(0.0, 1.0) * self.cfg.gas_limit as f64) as u64
    }

    /// Produces the next block; returns it and the settlement transactions it included.
    pub fn produce_block(&mut self) -> Result<(BlockInfo, Vec<Included>), EvmError> {
        self.number += 1;
        let t_s = self.number as f64 * self.cfg.slot_s;
        let limit = self.cfg.gas_limit;
        let bg = self.background(t_s);
        let tip = (self.cfg.priority_fee_gwei * 1e9).round() as u128;
        let max_fee = (self.cfg.max_fee_gwei * 1e9).round() as u128;
        let price = (self.base_fee_wei + tip).min(max_fee);
        let mut used = bg;
        let mut included = Vec::new();
        let mut waiting = 0usize;
        if self.base_fee_wei > max_fee {
            // Pacing: every sender holds its transactions until the base fee is back under its cap.
            self.priced_out_blocks += 1;
        } else {
            self.evm
                .set_block(self.number, t_s as u64, self.base_fee_wei as u64, limit);
            let mut blocked: Vec<Address> = Vec::new();
            let mut keep = Vec::with_capacity(self.mempool.len());
            for mut tx in std::mem::take(&mut self.mempool) {
                let eligible = tx.submitted_s + self.cfg.propagation_s <= t_s;
                if !eligible || blocked.contains(&tx.call.from) {
                    if eligible {
                        waiting += 1;
                    }
                    keep.push(tx);
                    continue;
                }
                let gas_limit = match tx.gas_limit {
                    Some(g) => g,
                    None => {
                        let est = self.evm.estimate_gas(&tx.call, price)?;
                        let g = ((est as f64 * (1.0 + self.cfg.gas_margin)).ceil() as u64)
                            .min(TX_GAS_CAP)
                            .max(est);
                        tx.gas_limit = Some(g);
                        g
                    }
                };
                if gas_limit > limit {
                    return Err(EvmError(format!(
                        "transaction `{}` needs a gas limit of {gas_limit}, more than the block gas limit {limit}",
                        tx.label
                    )));
                }
                // A wallet does not sign what its balance cannot cover (limit × price + value).
                let cost = U256::from(gas_limit) * U256::from(price) + tx.call.value;
                if gas_limit > limit - used || self.evm.balance(tx.call.from) < cost {
                    waiting += 1;
                    blocked.push(tx.call.from);
                    keep.push(tx);
                    continue;
                }
                let (receipt, _) = self.evm.execute_if(&tx.call, gas_limit, price, |_| true)?;
                used += receipt.gas_used;
                included.push(Included {
                    fee_wei: u128::from(receipt.gas_used) * price,
                    price_wei: price,
                    receipt,
                    block: self.number,
                    t_s,
                    base_fee_wei: self.base_fee_wei,
                    tx,
                });
            }
            self.mempool = keep;
        }
        if waiting > 0 {
            self.full_blocks += 1;
            self.delayed_txs += waiting as u64;
        }
        let info = BlockInfo {
            number: self.number,
            t_s,
            base_fee_wei: self.base_fee_wei,
            background_gas: bg,
            settlement_gas: used - bg,
            waiting,
        };
        self.base_fee_wei = next_base_fee(self.base_fee_wei, used, limit);
        Ok((info, included))
    }
}

/// EIP-1559 `ELASTICITY_MULTIPLIER`: the gas target is the block gas limit over 2.
pub const ELASTICITY_MULTIPLIER: u64 = 2;
/// EIP-1559 `BASE_FEE_MAX_CHANGE_DENOMINATOR`: the base fee moves by at most 1/8 per block.
pub const BASE_FEE_MAX_CHANGE_DENOMINATOR: u128 = 8;

/// EIP-1559 base-fee update for a parent block that used `used` of `limit` gas.
pub fn next_base_fee(base: u128, used: u64, limit: u64) -> u128 {
    let target = u128::from(limit / ELASTICITY_MULTIPLIER).max(1);
    let used = u128::from(used);
    if used > target {
        base.saturating_add(
            (base.saturating_mul(used - target) / target / BASE_FEE_MAX_CHANGE_DENOMINATOR).max(1),
        )
    } else {
        base - base * (target - used) / target / BASE_FEE_MAX_CHANGE_DENOMINATOR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_fee_follows_eip1559() {
        let b = 1_000_000_000u128;
        assert_eq!(next_base_fee(b, 15_000_000, 30_000_000), b);
        assert_eq!(next_base_fee(b, 30_000_000, 30_000_000), b * 9 / 8);
        assert_eq!(next_base_fee(b, 0, 30_000_000), b * 7 / 8);
    }

    /// Base fee after `blocks` empty-mempool blocks of a chain whose other users want `util` of
    /// each block at the first base fee, with elasticity `eps`.
    fn base_fee_after(util: f64, eps: f64, blocks: usize) -> f64 {
        let cfg = ChainConfig {
            background_util: util,
            background_elasticity: eps,
            ..ChainConfig::default()
        };
        let p0 = cfg.base_fee_gwei;
        let mut chain = Chain::new(cfg, Evm::new(), sim::rng::stream(1, "chain"));
        for _ in 0..blocks {
            chain.produce_block().unwrap();
        }
        chain.base_fee_wei() as f64 / 1e9 / p0
    }

    #[test]
    fn price_responsive_demand_settles_where_use_meets_the_target() {
        // u₀·(p₀/p)^ε = ½ ⇒ p/p₀ = (2u₀)^(1/ε): 1.5 for u₀ = 0.75, ε = 1; √1.5 for ε = 2.
        for (eps, want) in [(1.0, 1.5), (2.0, 1.5f64.sqrt())] {
            let got = base_fee_after(0.75, eps, 400);
            assert!(
                (got / want - 1.0).abs() < 0.01,
                "ε = {eps}: p/p₀ = {got}, want {want}"
            );
        }
        // Fixed demand above the target ratchets without bound: +1/16 per block.
        let fixed = base_fee_after(0.75, 0.0, 100);
        assert!(fixed > 100.0, "fixed demand: p/p₀ = {fixed}");
    }
}
