//! The committed contract artifacts (`contracts/artifacts/*.json`, compiled from `contracts/*.sol`
//! by `contracts/compile.js` with the pinned npm `solc`) and their deployment.

use revm::primitives::{Address, Bytes, U256, hex};

use super::abi::{self, Tok};
use super::evm::{Call, Evm, EvmError, Receipt, revert_reason};

/// The settlement contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `OnchainSettle.sol`.
    Onchain,
    /// `CommitChallenge.sol`.
    CommitChallenge,
    /// `CommitProof.sol`.
    CommitProof,
    /// `Redeem.sol`: the Groth16 verifier of up to 6 public inputs.
    Groth16Verifier,
    /// `Redeem.sol`: redeem payouts (one-shot and multi-shot).
    SettleRedeem,
}

impl Contract {
    /// Artifact JSON text.
    pub fn artifact(self) -> &'static str {
        match self {
            Contract::Onchain => include_str!("../../../contracts/artifacts/OnchainSettle.json"),
            Contract::CommitChallenge => {
                include_str!("../../../contracts/artifacts/CommitChallenge.json")
            }
            Contract::CommitProof => include_str!("../../../contracts/artifacts/CommitProof.json"),
            Contract::Groth16Verifier => {
                include_str!("../../../contracts/artifacts/Groth16Verifier.json")
            }
            Contract::SettleRedeem => {
                include_str!("../../../contracts/artifacts/SettleRedeem.json")
            }
        }
    }

    /// Creation bytecode from the artifact.
    pub fn creation_code(self) -> Result<Vec<u8>, EvmError> {
        let v: serde_json::Value = serde_json::from_str(self.artifact())
            .map_err(|e| EvmError(format!("artifact: {e}")))?;
        let code = v["bytecode"]
            .as_str()
            .ok_or_else(|| EvmError("artifact without bytecode".into()))?;
        hex::decode(code.trim_start_matches("0x"))
            .map_err(|e| EvmError(format!("artifact hex: {e}")))
    }
}

/// Deploys `c` from `from` with constructor arguments `args`; returns its address and receipt.
pub fn deploy(
    evm: &mut Evm,
    from: Address,
    c: Contract,
    args: &[Tok],
) -> Result<(Address, Receipt), EvmError> {
    let mut code = c.creation_code()?;
    code.extend_from_slice(&abi::encode(args));
    let r = evm.execute(
        &Call {
            from,
            to: None,
            data: Bytes::from(code),
            value: U256::ZERO,
        },
        0,
    )?;
    match r.created {
        Some(a) if r.success => Ok((a, r)),
        _ => Err(EvmError(format!(
            "deployment of {c:?} failed: {}",
            revert_reason(&r.output)
        ))),
    }
}
