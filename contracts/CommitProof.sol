// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleClaims} from "./MerkleClaims.sol";
import {Groth16Verifier, RedeemPayouts} from "./Redeem.sol";

/// @title SettleFL Commit-with-Proof (validity-proof settlement).
/// @notice Every epoch the aggregator commits the Poseidon commitment C of the job's T×P reward
/// matrix (rounds not yet trained are zero), the number of rounds it covers, the keccak claim root
/// and a Groth16 proof of the Commit circuit over BN254: C opens to the matrix, the participant
/// list and a salt, and every participant's EdDSA signature on its column verifies. The proof's
/// public inputs are (C, rounds, root mod r); the verifier is a `Groth16Verifier` (EIP-196/197
/// precompiles). A commit is final when included. Payouts, chosen per job at `new_job`: Merkle
/// claims against the last root after `reward_init` and the pay delay, or redeem proofs against C
/// (one-shot after `reward_init` and the delay; multi-shot any time up to a committed round count).
contract CommitProof is RedeemPayouts {
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    Groth16Verifier public immutable commitVerifier;
    uint256 public immutable depth;

    mapping(uint256 => bytes32) public root;
    /// Commitment by (job, rounds covered): multi-shot redeems prove against the commitment that
    /// covers exactly their last round, so a later commit does not invalidate a proof in flight.
    mapping(uint256 => mapping(uint256 => uint256)) public commitmentAt;
    mapping(uint256 => bool) public byRedeem;
    mapping(uint256 => mapping(address => uint256)) public paid;

    event JobOpened(uint256 indexed jobId, bytes32 pubHash, bytes32 salt, bool byRedeem);
    event Committed(uint256 indexed jobId, uint256 rounds, uint256 commitment, bytes32 root);

    constructor(
        Groth16Verifier commitVerifier_,
        Groth16Verifier oneShot_,
        Groth16Verifier multiShot_,
        uint256 payDelay_,
        uint256 depth_
    ) RedeemPayouts(oneShot_, multiShot_, payDelay_) {
        commitVerifier = commitVerifier_;
        depth = depth_;
    }

    /// @notice Opens a job; msg.value is the reward budget; `redeem` chooses redeem proofs (true)
    /// or Merkle claims (false) for its payouts.
    function new_job(bytes32 pubHash, bytes32 salt, bool redeem) external payable returns (uint256 id) {
        id = _newJob();
        byRedeem[id] = redeem;
        emit JobOpened(id, pubHash, salt, redeem);
    }

    /// @notice Commits the first `rounds` rounds with their validity proof (A, B, C as 8 words, B
    /// in precompile order).
    function commit(uint256 jobId, uint256 commitment, uint256 rounds, bytes32 claimRoot, uint256[8] calldata proof)
        external
    {
        Job storage j = jobs[jobId];
        require(msg.sender == j.owner, "owner");
        require(j.payStart == 0, "closed");
        require(rounds > j.rounds, "rounds");
        uint256[] memory inputs = new uint256[](3);
        inputs[0] = commitment;
        inputs[1] = rounds;
        inputs[2] = uint256(claimRoot) % R;
        require(commitVerifier.verify(proof, inputs), "proof");
        j.commitment = commitment;
        j.rounds = rounds;
        commitmentAt[jobId][rounds] = commitment;
        root[jobId] = claimRoot;
        emit Committed(jobId, rounds, commitment, claimRoot);
    }

    /// @notice Closes the job (every committed round is already final) and starts the delay.
    function reward_init(uint256 jobId) external {
        Job storage j = jobs[jobId];
        require(msg.sender == j.owner, "owner");
        require(j.payStart == 0 && j.rounds > 0, "state");
        j.payStart = uint64(block.timestamp + payDelay);
    }

    /// @notice A participant claims its cumulative reward with a Merkle proof.
    function reward_pay(uint256 jobId, uint256 index, uint256 cum, bytes32[] calldata path) external {
        _claim(jobId, index, msg.sender, cum, path, 0);
    }

    /// @notice Batched payouts: `paths` holds `depth` siblings per participant, in order.
    function reward_pay_multi(
        uint256 jobId,
        uint256[] calldata index,
        address[] calldata who,
        uint256[] calldata cum,
        bytes32[] calldata paths
    ) external {
        require(index.length == who.length && who.length == cum.length, "length");
        uint256 d = depth;
        for (uint256 i = 0; i < who.length; i++) {
            _claim(jobId, index[i], who[i], cum[i], paths, i * d);
        }
    }

    function _claim(uint256 jobId, uint256 index, address who, uint256 cum, bytes32[] calldata paths, uint256 off)
        internal
    {
        Job storage j = jobs[jobId];
        require(!byRedeem[jobId], "redeem job");
        require(j.payStart != 0 && block.timestamp >= j.payStart, "delay");
        require(
            MerkleClaims.rootOf(MerkleClaims.leaf(jobId, index, who, cum), index, paths, off, depth) == root[jobId],
            "proof"
        );
        uint256 amount = cum - paid[jobId][who];
        if (amount == 0) return;
        paid[jobId][who] = cum;
        j.paidOut += amount;
        require(j.paidOut <= j.budget, "budget");
        (bool ok,) = payable(who).call{value: amount}("");
        require(ok, "transfer");
    }

    function _commitmentAt(uint256 jobId, Job storage, uint256 toRound) internal view override returns (uint256) {
        return commitmentAt[jobId][toRound];
    }

    function _redeemOpen(uint256 jobId, Job storage j, bool whole) internal view override returns (bool) {
        if (!byRedeem[jobId]) return false;
        if (whole) return j.payStart != 0 && block.timestamp >= j.payStart;
        return true;
    }
}
