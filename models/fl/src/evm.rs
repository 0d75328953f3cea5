//! The embedded EVM: revm 43 (Osaka rules: EIP-7623 calldata floor, EIP-7825 per-transaction gas
//! cap of 2²⁴) over an in-memory `CacheDB<EmptyDB>`. Every gas figure of the family comes from
//! [`Evm::execute`]; nothing is computed by formula.

use revm::context::{BlockEnv, TxEnv};
use revm::context_interface::ContextTr;
use revm::context_interface::result::ExecutionResult;
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{MainnetContext, MainnetEvm};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, Bytes, TxKind, U256};
use revm::state::AccountInfo;
use revm::{Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};

/// EIP-7825 (Osaka) cap on one transaction's gas limit: 2²⁴.
pub const TX_GAS_CAP: u64 = 1 << 24;

/// One transaction to execute.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Sender (an externally owned account).
    pub from: Address,
    /// Callee, or `None` to create a contract.
    pub to: Option<Address>,
    /// Calldata (or init code for a creation).
    pub data: Bytes,
    /// Wei sent along.
    pub value: U256,
}

/// What executing a [`Call`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// Gas charged (the receipt's gasUsed, refunds and the EIP-7623 floor applied).
    pub gas_used: u64,
    /// False when the call reverted or halted.
    pub success: bool,
    /// Return data (revert data when `success` is false).
    pub output: Bytes,
    /// Address of the created contract, for creations.
    pub created: Option<Address>,
    /// Number of logs emitted.
    pub logs: usize,
    /// Gas limit the transaction ran with.
    pub gas_limit: u64,
    /// Gas spent before the refund (the most the execution held at once is at most this).
    pub gas_spent: u64,
}

/// A failure of the EVM itself (invalid transaction, database error), not a revert.
#[derive(Debug, thiserror::Error)]
#[error("evm: {0}")]
pub struct EvmError(pub String);

type Db = CacheDB<EmptyDB>;

/// An EVM with its world state.
pub struct Evm {
    evm: MainnetEvm<MainnetContext<Db>>,
}

// SAFETY: revm's instance is not `Send` only because of (a) `LocalContext::shared_memory_buffer`,
// an `Rc<RefCell<Vec<u8>>>` whose clones are held only by the interpreter frames of this same
// instance, and (b) `ExtBytecode`'s instruction pointer into bytecode the instance owns. Moving the
// whole `Evm` to another thread moves every clone and the pointee with it, and nothing of it is
// handed out (receipts and state changes are owned values). The co-simulation
// ([`super::cosim`]) needs `Send` for a nexosim model's environment; it moves the `Evm` only as a
// whole, behind a mutex, and the engine runs on one thread.
unsafe impl Send for Evm {}

impl Default for Evm {
    fn default() -> Self {
        Self::new()
    }
}

impl Evm {
    /// An empty world (Osaka rules, chain id 1, nonce checks off: the simulator does not sign).
    pub fn new() -> Self {
        let ctx = Context::mainnet()
            .with_db(CacheDB::new(EmptyDB::default()))
            .modify_cfg_chained(|c| {
                c.spec = SpecId::OSAKA;
                c.disable_nonce_check = true;
            });
        Self {
            evm: ctx.build_mainnet(),
        }
    }

    /// Gives `addr` a balance of `wei`.
    pub fn fund(&mut self, addr: Address, wei: U256) {
        self.evm
            .ctx
            .db_mut()
            .insert_account_info(addr, AccountInfo::from_balance(wei));
    }

    /// Balance of `addr`, wei.
    pub fn balance(&mut self, addr: Address) -> U256 {
        self.evm
            .ctx
            .db_mut()
            .cache
            .accounts
            .get(&addr)
            .map_or(U256::ZERO, |a| a.info.balance)
    }

    /// Sets the block the next transactions execute in.
    pub fn set_block(&mut self, number: u64, timestamp: u64, basefee_wei: u64, gas_limit: u64) {
        self.evm.set_block(BlockEnv {
            number: U256::from(number),
            timestamp: U256::from(timestamp),
            basefee: basefee_wei,
            gas_limit,
            ..BlockEnv::default()
        });
    }

    /// Executes `call` with gas limit `gas_limit` at gas price `gas_price_wei` and commits its
    /// state changes (the sender's fee and nonce only, when it reverted) if `keep` accepts the
    /// receipt; otherwise the world is left untouched. Returns the receipt and whether it was
    /// committed.
    pub fn execute_if(
        &mut self,
        call: &Call,
        gas_limit: u64,
        gas_price_wei: u128,
        keep: impl FnOnce(&Receipt) -> bool,
    ) -> Result<(Receipt, bool), EvmError> {
        let tx = TxEnv::builder()
            .caller(call.from)
            .kind(call.to.map_or(TxKind::Create, TxKind::Call))
            .data(call.data.clone())
            .value(call.value)
            .gas_limit(gas_limit)
            .gas_price(gas_price_wei)
            .build_fill();
        let out = self
            .evm
            .transact(tx)
            .map_err(|e| EvmError(format!("{e:?}")))?;
        let r = &out.result;
        let output = match r {
            ExecutionResult::Revert { output, .. } => output.clone(),
            _ => r.output().cloned().unwrap_or_default(),
        };
        let receipt = Receipt {
            gas_used: r.gas().tx_gas_used(),
            success: r.is_success(),
            output,
            created: r.created_address(),
            logs: r.logs().len(),
            gas_limit,
            gas_spent: r.gas().total_gas_spent().max(r.gas().floor_gas()),
        };
        let kept = keep(&receipt);
        if kept {
            self.evm.commit(out.state);
        }
        Ok((receipt, kept))
    }

    /// Executes `call` with the EIP-7825 cap as gas limit and commits it (deployment, tests).
    pub fn execute(&mut self, call: &Call, gas_price_wei: u128) -> Result<Receipt, EvmError> {
        self.execute_if(call, TX_GAS_CAP, gas_price_wei, |_| true)
            .map(|r| r.0)
    }

    /// Dry-run gas estimate of `call` at `gas_price_wei`, as go-ethereum's `eth_estimateGas`
    /// computes it (`internal/ethapi/estimate`, v1.14): run once with the highest limit the
    /// sender can pay for (at most [`TX_GAS_CAP`]); then try the optimistic limit
    /// (spent + 2300 call stipend) · 64/63, and if that does not reach the same outcome, bisect
    /// until the bracket is within 1.5 %. The outcome matched is the one at the highest limit
    /// (a call that reverts there is estimated at the gas its revert needs: the agents send
    /// some calls that are meant to fail, e.g. a rejected proof). Nothing is committed.
    pub fn estimate_gas(&mut self, call: &Call, gas_price_wei: u128) -> Result<u64, EvmError> {
        let funds = self.balance(call.from).saturating_sub(call.value);
        let afford = (funds / U256::from(gas_price_wei.max(1))).saturating_to::<u64>();
        let hi = TX_GAS_CAP.min(afford);
        let (top, _) = self.execute_if(call, hi, gas_price_wei, |_| false)?;
        let same = |r: &Receipt| r.success == top.success;
        let optimistic = ((top.gas_spent + 2300) * 64 / 63).min(hi);
        let (r, _) = self.execute_if(call, optimistic, gas_price_wei, |_| false)?;
        if same(&r) {
            return Ok(optimistic);
        }
        let (mut lo, mut hi) = (optimistic, hi);
        while (hi - lo) as f64 / hi as f64 > 0.015 {
            let mid = lo + (hi - lo) / 2;
            let (r, _) = self.execute_if(call, mid, gas_price_wei, |_| false)?;
            if same(&r) { hi = mid } else { lo = mid }
        }
        Ok(hi)
    }
}

/// Human-readable revert reason of `Error(string)` revert data, if any.
pub fn revert_reason(output: &[u8]) -> String {
    if output.len() >= 68 && output[..4] == [0x08, 0xc3, 0x79, 0xa0] {
        let len = U256::from_be_slice(&output[36..68]).saturating_to::<usize>();
        let end = (68 + len).min(output.len());
        return String::from_utf8_lossy(&output[68..end]).into_owned();
    }
    format!("0x{}", revm::primitives::hex::encode(output))
}
